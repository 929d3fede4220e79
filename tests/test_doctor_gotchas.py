"""What goes wrong before the metrics do, on a real Prometheus: an EPP reading a vLLM gauge that
is gone, other people's rules reading names that do not exist, pods whose role the config cannot
tell. The series come from the simulator; one namespace has its EPP pool KV gauge rewritten to 0,
which is what an EPP reading the removed gauge exports."""

import re
import subprocess

import pytest
import yaml

from pdobs import cli
from pdobs.servers import tools
from pdobs.servers.prometheus import PrometheusServer
from simulator import scenarios
from simulator.render_openmetrics import default_end_time, start_time_for, write_openmetrics

STUCK, CONTROL, LABELLED = "kv-stuck", "kv-control", "labelled"
EPP_KV_SAMPLE = re.compile(r'^((?:inference_pool|llm_d_epp)_average_kv_cache_utilization\{[^}]*namespace="'
                           + STUCK + r'"[^}]*\}) \S+ (\S+)$')

FOREIGN_RULES = {"groups": [{"name": "llm-d-shipped", "rules": [
    {"record": "llmd:preemptions:rate5m", "expr": "sum(rate(vllm:num_preemptions[5m]))"},
    {"alert": "NIXLTransfersFailing", "expr": "sum(rate(vllm:nixl_num_failed_transfers[5m])) > 0"},
    {"record": "llmd:ttft_old:p95",
     "expr": "histogram_quantile(0.95, sum by (le) (rate(vllm:time_per_output_token_seconds_bucket[5m])))"},
    {"record": "llmd:requests:rate5m", "expr": "sum(rate(inference_model_request_total[5m]))"},
    # Correct names are never reported.
    {"record": "llmd:ok:rate5m", "expr": "sum(rate(vllm:num_preemptions_total[5m]))"},
]}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("doctor-gotchas")
    combo = scenarios.combine(
        scenarios.get("healthy_pd", namespace=STUCK, duration_min=15),
        scenarios.get("healthy_pd", namespace=CONTROL, duration_min=15),
        scenarios.get("healthy_pd", namespace=LABELLED, role_label="llm_d_ai_role", duration_min=15),
    )
    end = default_end_time()
    om = work / "data.om"
    with om.open("w") as fh:
        write_openmetrics(combo, fh, start_time=start_time_for(combo, 30.0, end))
    text = om.read_text()
    rewritten, n = re.subn(EPP_KV_SAMPLE.pattern, r"\1 0 \2", text, flags=re.M)
    assert n > 20, "the EPP pool KV gauge of the stuck namespace was not found"
    om.write_text(rewritten)
    tsdb = work / "tsdb"
    subprocess.run([str(tools.tool_path("promtool")), "tsdb", "create-blocks-from", "openmetrics", str(om), str(tsdb)],
                   check=True, capture_output=True)
    rules = work / "foreign-rules.yaml"
    rules.write_text(yaml.safe_dump(FOREIGN_RULES))
    server = PrometheusServer(storage_dir=tsdb, rule_files=[rules], workdir=work / "prometheus").start()
    try:
        yield server, end
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def doctor(capsys, served, *args):
    server, end = served
    code = cli.main(["doctor", "--prometheus", server.url, "--time", str(end), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _lines(out: str, area: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(rf"\s+\[(ok|info|warn)\]\s+{area}\s", line)]


def test_epp_reading_the_removed_kv_gauge_is_reported_for_that_namespace_only(capsys, served):
    code, out, err = doctor(capsys, served)
    assert err == ""
    gotchas = [line for line in _lines(out, "gotcha") if "KV-cache utilisation 0" in line]
    assert len(gotchas) == 1, out
    assert f"{STUCK}: EPP pool(s) gaie-pd report KV-cache utilisation 0" in gotchas[0]
    assert "gpu_cache_usage_perc" in gotchas[0] and "--kv-cache-usage-percentage-metric" in gotchas[0]
    assert code == 0  # a gotcha is a warning: the deployments themselves are disaggregated


def test_other_rules_reading_names_that_do_not_exist_are_reported(capsys, served):
    _, out, _ = doctor(capsys, served)
    gotchas = "\n".join(_lines(out, "gotcha"))
    assert "llm-d-shipped/llmd:preemptions:rate5m reads vllm:num_preemptions, which does not exist" in gotchas
    assert "vllm:num_preemptions_total" in gotchas
    assert "llm-d-shipped/NIXLTransfersFailing reads vllm:nixl_num_failed_transfers, which does not exist" in gotchas
    assert "vllm:time_per_output_token_seconds_bucket, which is gone" in gotchas
    assert "vllm:inter_token_latency_seconds_bucket" in gotchas
    assert "inference_model_request_total, which does not exist: this EPP exports inference_objective_request_total" \
        in gotchas
    assert "llmd:ok:rate5m" not in gotchas
    # Our rules are not loaded here, and the doctor says so without needing them.
    (rules,) = _lines(out, "rules")
    assert "[warn]" in rules and "recording rules not loaded" in rules


def test_role_label_mode_without_the_label_cannot_tell_and_names_the_pods(capsys, served, tmp_path):
    cfg = tmp_path / "label.yaml"
    cfg.write_text("roles: {mode: label}\n")
    code, out, _ = doctor(capsys, served, "--config", str(cfg))
    roles = _lines(out, "roles")
    assert {line.split(":")[0].split()[-1] for line in roles} == {STUCK, CONTROL}, roles
    assert all("2 pod(s) match neither role (roles.mode=label: llm_d_ai_role=" in line for line in roles)
    assert "-prefill-" in roles[0] and "-decode-" in roles[0]
    # The relabelled namespace works in label mode; the others cannot tell which pod does what.
    assert out.count("Verdict:   DISAGGREGATED") == 1
    assert out.count("Verdict:   CANNOT TELL: no pod's role can be determined from label llm_d_ai_role") == 2
    assert code == 3


def test_regex_that_matches_no_decode_pod_is_reported(capsys, served, tmp_path):
    cfg = tmp_path / "regex.yaml"
    cfg.write_text("roles: {pod_regex: {decode: '.*decoder.*'}}\n")
    code, out, _ = doctor(capsys, served, "--config", str(cfg), "--namespace", CONTROL)
    (roles,) = _lines(out, "roles")
    assert "1 pod(s) match neither role" in roles and "decode '.*decoder.*'" in roles and "-decode-" in roles
    assert "Verdict:   NO TRAFFIC: 1 prefill pod(s) but no decode pod" in out
    assert code == 3


def test_regex_that_matches_every_pod_as_prefill_is_reported(capsys, served, tmp_path):
    cfg = tmp_path / "regex.yaml"
    cfg.write_text("roles: {pod_regex: {prefill: '.*'}}\n")
    _, out, _ = doctor(capsys, served, "--config", str(cfg), "--namespace", CONTROL)
    (roles,) = _lines(out, "roles")
    assert "1 pod(s) match both roles" in roles and "-decode-" in roles
