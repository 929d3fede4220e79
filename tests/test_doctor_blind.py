"""A blind namespace is never reported OK: on a real Prometheus, one namespace has the vLLM
targets' pod label relabelled to pod_name (the run in which no alert fired), beside a healthy and
an aggregated-by-design one. The series come from the simulator, rewritten as a relabelling
would leave them."""

import json
import re
import subprocess

import pytest

from pdobs import cli
from pdobs.core import config
from pdobs.servers import tools
from pdobs.servers.prometheus import PrometheusServer
from simulator import scenarios
from simulator.render_openmetrics import default_end_time, start_time_for, write_openmetrics

BLIND, HEALTHY, AGGREGATED = "relabelled", "healthy", "aggregated"
# A vLLM sample of the blind namespace (its targets' job is the modelservice PodMonitor).
BLIND_VLLM = re.compile(r'^[^{]+\{[^}]*namespace="' + BLIND + r'"[^}]*-podmonitor"[^}]*\}', re.M)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("doctor-blind")
    # Every target carries the role label too, so label mode can be run on the same data.
    combo = scenarios.combine(
        scenarios.get("healthy_pd", namespace=BLIND, role_label="llm_d_ai_role", duration_min=15),
        scenarios.get("healthy_pd", namespace=HEALTHY, role_label="llm_d_ai_role", duration_min=15),
        scenarios.get("aggregated", namespace=AGGREGATED, role_label="llm_d_ai_role", duration_min=15),
    )
    end = default_end_time()
    om = work / "data.om"
    with om.open("w") as fh:
        write_openmetrics(combo, fh, start_time=start_time_for(combo, 30.0, end))
    text, n = BLIND_VLLM.subn(lambda m: re.sub(r'([{,])pod="', r'\1pod_name="', m.group(0)), om.read_text())
    assert n > 100, "the blind namespace's vLLM series were not found"
    om.write_text(text)
    tsdb = work / "tsdb"
    subprocess.run([str(tools.tool_path("promtool")), "tsdb", "create-blocks-from", "openmetrics", str(om), str(tsdb)],
                   check=True, capture_output=True)
    server = PrometheusServer(storage_dir=tsdb, workdir=work / "prometheus").start()
    try:
        yield server, end
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def doctor(capsys, served, *args: str) -> tuple[int, str]:
    server, end = served
    code = cli.main(["doctor", "--prometheus", server.url, "--time", str(end), *args])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def _label_mode(tmp_path) -> str:
    path = tmp_path / "label.yaml"
    path.write_text("roles: {mode: label}\n")
    return str(path)


def _runbook() -> str:
    return config.load()["runbook_url"].replace("{alert}", "PDPodRolesUnresolved")


def test_pod_label_relabelled_away_cannot_tell_and_says_why(capsys, served):
    code, out = doctor(capsys, served, "--namespace", BLIND)
    assert "Verdict:   CANNOT TELL: 2 vLLM series carry no pod label (labels.pod): relabelled away" in out
    assert f"Runbook:   {_runbook()}" in out
    roles = [line for line in out.splitlines() if "[warn]" in line and " roles " in line]
    assert len(roles) == 1 and f"{BLIND}: 2 vLLM series carry no pod label" in roles[0], roles
    assert "?" not in roles[0]  # no nameless pod listed as "matching neither role"
    assert code == 3


def test_label_mode_blind_namespace_is_not_ok_though_its_verdict_signal_says_disaggregated(capsys, served,
                                                                                           tmp_path):
    # The roles survive in label mode, so the verdict signal computes DISAGGREGATED from pod
    # counts that are wrong (every pod is one nameless pod): the doctor must not pass it.
    code, out = doctor(capsys, served, "--config", _label_mode(tmp_path), "--namespace", BLIND, "--output", "json")
    report = json.loads(out)
    (dep,) = report["deployments"]
    assert dep["verdict_code"] == 0, "the premise of this test: the verdict signal alone says DISAGGREGATED"
    assert dep["verdict"] == "CANNOT TELL" and dep["blind"].startswith("2 vLLM series carry no pod label")
    assert dep["prefill_pods"] == dep["decode_pods"] == 1  # the nameless pod, counted once per role
    assert dep["runbook"] == _runbook()
    assert dep["exit_code"] == report["exit_code"] == code == 3
    assert any(f["area"] == "roles" and f["details"].get("blind") for f in report["findings"])


@pytest.mark.parametrize("label_mode", [False, True], ids=["pod_regex", "label"])
def test_healthy_and_aggregated_by_design_namespaces_are_not_blind(capsys, served, tmp_path, label_mode: bool):
    extra = ["--config", _label_mode(tmp_path)] if label_mode else []
    for namespace, verdict in ((HEALTHY, "DISAGGREGATED"), (AGGREGATED, "AGGREGATED BY DESIGN")):
        code, out = doctor(capsys, served, *extra, "--namespace", namespace, "--output", "json")
        report = json.loads(out)
        (dep,) = report["deployments"]
        assert (dep["verdict"], dep["blind"], code) == (verdict, None, 0), dep
        assert not [f for f in report["findings"] if f["area"] == "roles" and f["level"] == "warn"]


def test_one_blind_namespace_makes_the_whole_run_undecided(capsys, served):
    code, out = doctor(capsys, served)
    assert out.count("Verdict:   CANNOT TELL") == 1
    assert "Verdict:   DISAGGREGATED" in out and "Verdict:   AGGREGATED BY DESIGN" in out
    assert code == 3
