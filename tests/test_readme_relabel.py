"""The README's relabelling for `roles.mode: label`, run by a real Prometheus.

There is no Kubernetes here, so each scrape target carries the label Kubernetes pod discovery would
set for the pod label llm-d.ai/role (`__meta_kubernetes_pod_label_llm_d_ai_role`, unsupported
characters as underscores); the README's `relabel_configs` must turn it into the label the
config's `roles.label.name` names, which the doctor then reads.
"""

import re
import time

import yaml

from pdobs.core import config, paths
from pdobs.doctor import diagnose
from pdobs.doctor.client import Credentials, Prometheus
from simulator import scenarios

META = "__meta_kubernetes_pod_label_llm_d_ai_role"


def readme_relabel_configs() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", (paths.ROOT / "README.md").read_text(), re.S)
    (block,) = [yaml.safe_load(b) for b in blocks if b.startswith("relabel_configs:")]
    return block["relabel_configs"]


def test_the_readme_relabelling_gives_the_doctor_the_roles(live_endpoint, prometheus_server):
    rules = readme_relabel_configs()
    assert rules[0]["source_labels"] == [META]
    cfg = config.load(overrides={"roles": {"mode": "label"}, "prometheus": {"scrape_interval": "1s",
                                                                            "rate_window": "4s",
                                                                            "fast_window": "3s"}})
    assert rules[0]["target_label"] == cfg["roles"]["label"]["name"]

    endpoint = live_endpoint(scenarios.get("healthy_pd", namespace="relabel"), speed=60, step_s=15)
    jobs = endpoint.scrape_configs(scrape_interval_s=1.0)
    for job in jobs:
        labels = job["static_configs"][0]["labels"]
        role = "prefill" if "prefill" in labels["pod"] else "decode" if "decode" in labels["pod"] else "epp"
        labels[META] = role  # what pod discovery would attach
        job["relabel_configs"] = [*job.get("relabel_configs", []), *rules]
    prom = prometheus_server(scrape_configs=jobs, scrape_interval="1s", evaluation_interval="1s")

    by_role = "count by (llm_d_ai_role) (vllm:num_requests_running)"
    deadline = time.monotonic() + 60
    while (roles := {r["metric"].get("llm_d_ai_role") for r in prom.query(by_role)}) != {"prefill", "decode"}:
        assert time.monotonic() < deadline, roles
        time.sleep(1)
    time.sleep(8)  # the doctor's 4s rate windows fill
    assert roles == {"prefill", "decode"}
    assert not prom.query(f'{{{META}!=""}}'), "meta labels never reach the stored series"

    client = Prometheus(prom.url, Credentials())
    try:
        report = diagnose(cfg, client, {})
    finally:
        client.close()
    (dep,) = report.deployments
    assert (dep.prefill_pods, dep.decode_pods) == (1, 1)
    assert not [f for f in report.findings if f.area == "roles" and f.level == "warn"], report.findings
