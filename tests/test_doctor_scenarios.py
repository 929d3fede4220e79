"""`build.py doctor` against a real Prometheus backfilled with every simulator scenario.

All scenarios share one server, one namespace each, so one doctor run covers them; the verdict
and every signal's PASS/FAIL must be what each scenario's ground truth says. Besides ALL, the vLLM
0.24/0.33 deployments on each connector (scenarios.UPSTREAM) and a few of their failure modes.
"""

import json

import pytest
from doctor_helpers import write_rule_files

from pdobs import checks, cli
from pdobs.build import make
from pdobs.core import config
from pdobs.demo.story import TRUTH_VERDICT
from pdobs.signals import doctor as doctor_signals
from simulator import scenarios

ALERTS_FILE = "prometheus/alerts.yaml"

# How each checklist signal reads in the scenario truth: True means the signal FAILs.
TRUTH_FAILS = {
    # Neither witness shows KV moving: the connector's transfers, or decode's delivered tokens.
    "nixl_transfers_absent": lambda t: not (t["kv_transfer_observed"] or t["kv_delivered"]),
    "prefill_idle": lambda t: t["prefill_idle"],
    "decode_does_all_work": lambda t: t["decode_does_all_work"],
    "ttft_roles_equal": lambda t: t["ttft_roles_equal"],
    "epp_ready_lt_pods": lambda t: t["epp_ready_lt_pods"],
    "kv_not_delivered": lambda t: not t["kv_delivered"],
}
NOT_ACTIVE = ("AGGREGATED_BY_DESIGN", "NO_TRAFFIC")  # the checks do not apply: no P/D at work
# Checks with nothing to measure without a metric: N/A where it is not exported.
MEASURED_WHEN = {"kv_not_delivered": lambda t: t["kv_delivery_series_present"]}


def expected_status(truth: dict, signal: str) -> str:
    if truth["expected_verdict"] in NOT_ACTIVE:
        return "N/A"
    if not MEASURED_WHEN.get(signal, lambda t: True)(truth):
        return "N/A"
    return "FAIL" if TRUTH_FAILS[signal](truth) else "PASS"


def expected_exit(truth: dict) -> int:
    verdict = truth["expected_verdict"]
    failing = {c.name for c in checks.CHECKS if expected_status(truth, c.name) == "FAIL"}
    if verdict == "CANNOT_TELL":
        failing.discard("nixl_transfers_absent")  # no KV evidence to show it: undecided, not failing
    if verdict == "COLLAPSED" or failing:
        return 1
    return 0 if verdict in ("DISAGGREGATED", "AGGREGATED_BY_DESIGN") else 3


def _namespace(name: str) -> str:
    return name.replace("_", "-")


# Every fault starts by minute 10 and the transient ones end by minute 15: 25 minutes leave two
# rate windows of end state, and keep the backfill small.
DURATION_MIN = 25


# Failure modes of today's vLLM and EPP: namespace -> (scenario, options).
EXTRA = {
    "failing-v0-24": ("nixl_failing", {"vllm_version": "0.24.0"}),  # failed KV loads end as errors
    "failing-mooncake-v0-33": ("nixl_failing", {"vllm_version": "0.33.0", "kv_connector": "MooncakeConnector",
                                                "kv_both": False}),
    "notif-v0-33": ("healthy_pd", {"vllm_version": "0.33.0", "nixl_notif_fail_ratio": 0.006}),
    "rewrite": ("healthy_pd", {"epp_family": "llm_d_router", "vllm_version": "0.33.0", "epp_model_name": "qwen-small"}),
    "poll-errors": ("epp_mismatch_persistent", {"epp_family": "llm_d_router", "vllm_version": "0.16.0",
                                                "poll_errors_per_s": 20.0}),
}
SCENARIO_NAMES = [*[n for n in scenarios.ALL if n != "scale"], "scale", *scenarios.UPSTREAM]


def _all_scenarios() -> scenarios.Scenario:
    parts = [scenarios.get(name, namespace=_namespace(name), duration_min=DURATION_MIN)
             for name in (*scenarios.ALL, *scenarios.UPSTREAM) if name != "scale"]
    parts.append(scenarios.get("scale", prefill_pods=2, decode_pods=3, namespace="scale", duration_min=DURATION_MIN))
    parts += [scenarios.get(name, namespace=ns, duration_min=DURATION_MIN, **kw) for ns, (name, kw) in EXTRA.items()]
    return scenarios.combine(*parts, name="doctor-all")


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory):
    """Our rules as `make build` writes them, so the rules check sees them loaded."""
    return write_rule_files(config.load(), tmp_path_factory.mktemp("doctor-rules"))


@pytest.fixture(scope="module")
def served(prometheus_for_scenario, rule_files):
    # The doctor inlines every query, so the recording rules are loaded but not backfilled.
    return prometheus_for_scenario(_all_scenarios(), rule_files, backfill_recording_rules=False)


@pytest.fixture(autouse=True)
def no_credentials_from_the_outside(monkeypatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run_doctor(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = cli.main(["doctor", "--prometheus", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def report(served):
    """One unscoped JSON run over every namespace (module-scoped, so no capsys: call main directly)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["doctor", "--prometheus", served.url, "--time", str(served.end_time), "--output", "json"])
    return code, json.loads(buf.getvalue())


def _deployment(data: dict, namespace: str) -> dict:
    found = [d for d in data["deployments"] if d["labels"]["namespace"] == namespace]
    assert len(found) == 1, f"{namespace}: {len(found)} deployments in the report"
    return found[0]


def test_one_run_reports_every_namespace(served, report):
    code, data = report
    parts = served.scenario.truth["parts"]
    assert {d["labels"]["namespace"] for d in data["deployments"]} == set(parts)
    assert code == 1  # some scenarios collapse
    assert code == data["exit_code"]


@pytest.mark.parametrize("name", [*SCENARIO_NAMES, *EXTRA])
def test_verdict_and_every_signal_match_the_scenario_truth(served, report, name):
    ns = name if name in EXTRA else _namespace(name)
    truth = served.scenario.truth["parts"][ns]
    dep = _deployment(report[1], ns)
    assert dep["verdict"] == TRUTH_VERDICT[truth["expected_verdict"]], dep["reason"]
    statuses = {c["signal"]: c["status"] for c in dep["checks"]}
    assert list(statuses) == [c.name for c in checks.CHECKS]
    assert statuses == {c.name: expected_status(truth, c.name) for c in checks.CHECKS}, dep["checks"]
    assert dep["exit_code"] == expected_exit(truth)
    # The measured numbers are the quantities the truth describes.
    assert dep["prefill_pods"] + dep["decode_pods"] == truth["vllm_pods_up"]
    epp = next(c for c in dep["checks"] if c["signal"] == "epp_ready_lt_pods")
    assert epp["measured"] == f"{truth['epp_ready_pods']} ready / {truth['vllm_pods_up']} up"
    kv = next(c for c in dep["checks"] if c["signal"] == "nixl_transfers_absent")
    if truth["kv_transfer_observed"] or truth["kv_delivered"]:
        assert kv["value"] > 0
    elif not (truth["kv_series_present"] or truth["kv_delivery_series_present"]):
        assert kv["value"] is None
        assert kv["measured"] == "no KV transfer series, no prompt tokens by source"
    delivery = next(c for c in dep["checks"] if c["signal"] == "kv_not_delivered")
    if not truth["kv_delivery_series_present"] and truth["expected_verdict"] not in NOT_ACTIVE:
        assert delivery["reason"].startswith("vLLM older than 0.16.0"), delivery
    if truth["expected_verdict"] == "COLLAPSED":
        assert dep["runbook"].endswith("/PDDisaggregationCollapsed.md")
    if truth["expected_verdict"] == "CANNOT_TELL":
        assert "0.11.1" in dep["reason"]
        assert dep["runbook"].endswith("/PDKVTransferMetricsMissing.md")


@pytest.mark.parametrize(("name", "verdict"), [
    ("collapsed", "COLLAPSED TO AGGREGATED"), ("healthy_pd", "DISAGGREGATED"),
    ("aggregated", "AGGREGATED BY DESIGN"), ("idle_pd", "NO TRAFFIC"), ("old_vllm", "CANNOT TELL"),
    ("epp_mismatch_persistent", "DISAGGREGATED"),
])
def test_exit_code_and_text_for_one_namespace(capsys, served, name, verdict):
    ns = _namespace(name)
    code, out, err = run_doctor(capsys, served.url, "--time", str(served.end_time), "--namespace", ns)
    assert err == ""
    assert code == expected_exit(served.scenario.truth["parts"][ns])
    assert f"Verdict:   {verdict}:" in out
    assert out.count("Verdict:") == 1  # the other namespaces are out of scope
    for title in ("KV transfers", "Prefill worker utilisation", "Decode share of the work",
                  "TTFT prefill vs decode", "EPP ready pods vs pods up", "KV delivered to decode"):
        assert title in out
    assert "pd-diagnostic-drilldown" in out


def _drilldown_panel_ids() -> dict[str, int]:
    """Panel title -> id in the drill-down exactly as `make build` renders it."""
    rendered = json.loads(make.build(config.load())["dashboards/pd-diagnostic-drilldown.json"])
    return {p["title"]: p["id"] for p in rendered["panels"]}


@pytest.mark.parametrize(("name", "panel"), [
    ("healthy_pd", "Verdict"), ("collapsed", "Verdict"),
    ("epp_mismatch_persistent", "EPP ready pods vs pods up"),
])
def test_dashboard_link_opens_the_panel_that_shows_it(capsys, served, tmp_path, name, panel):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("grafana: {url: 'https://grafana.example/'}\n")
    ns = _namespace(name)
    _, out, _ = run_doctor(capsys, served.url, "--time", str(served.end_time), "--namespace", ns, "--config", str(cfg))
    ids = _drilldown_panel_ids()
    assert panel in ids, sorted(ids)
    link = (f"https://grafana.example/d/pd-diagnostic-drilldown?var-namespace={ns}"
            f"&var-model_name=Qwen%2FQwen3-0.6B&viewPanel={ids[panel]}")
    assert f"Dashboard: {link} (panel \"{panel}\")" in out


def test_runbook_link_keeps_other_braces_of_the_configured_url(capsys, served, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("runbook_url: 'https://wiki.example/{space}/{alert}'\n")
    code, out, _ = run_doctor(capsys, served.url, "--time", str(served.end_time), "--namespace",
                              _namespace("collapsed"), "--config", str(cfg))
    assert code == 1, out
    assert "Runbook:   https://wiki.example/{space}/PDDisaggregationCollapsed\n" in out


def _findings(data: dict, area: str, namespace: str | None = None) -> list[dict]:
    return [f for f in data["findings"] if f["area"] == area and (namespace is None or f["namespace"] == namespace)]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@pytest.mark.parametrize("name", ["healthy_pd", "collapsed", "old_vllm", "epp_inference_model",
                                  "epp_inference_objective_disagg", "epp_llm_d_router"])
def test_vllm_version_range_holds_the_true_version(served, report, name):
    ns = _namespace(name)
    truth = served.scenario.truth["parts"][ns]
    (finding,) = _findings(report[1], "vllm", ns)
    true = _version(truth["vllm_version"])
    details = finding["details"]
    assert details["at_least"] or details["below"], finding
    if details["at_least"]:
        assert true >= _version(details["at_least"]), finding
    if details["below"]:
        assert true < _version(details["below"]), finding
    assert details["nixl"] == truth["nixl_series_present"]


EPP_FAMILIES_OF = {
    "inference_model": {"inference_model_*"},
    "inference_objective": {"inference_objective_*"},
    "inference_objective_disagg": {"inference_objective_*"},
    "llm_d_router": {"llm_d_epp_*", "inference_objective_*"},
}


@pytest.mark.parametrize("name", ["healthy_pd", "epp_inference_model", "epp_inference_objective_disagg",
                                  "epp_llm_d_router"])
def test_epp_family_is_the_one_the_scenario_exports(served, report, name):
    ns = _namespace(name)
    truth = served.scenario.truth["parts"][ns]
    (finding,) = _findings(report[1], "epp", ns)
    request_families = {f for f in finding["details"]["families"]
                        if f.rstrip("*") in doctor_signals.EPP_REQUEST_FAMILIES}
    assert request_families == EPP_FAMILIES_OF[truth["epp_family"]], finding


def test_rules_roles_and_down_targets_are_reported(served, report):
    data = report[1]
    (rules,) = _findings(data, "rules")
    assert rules["level"] == "ok", rules["message"]
    assert rules["details"]["recording_loaded"] == rules["details"]["recording_expected"]
    assert set(rules["details"]["alerts_loaded"]) == set(rules["details"]["alerts_expected"])
    assert [f["level"] for f in _findings(data, "roles")] == ["ok"]
    down_pod = served.scenario.truth["parts"]["target-down"]["down_pods"]["decode-1"]
    targets = _findings(data, "targets")
    assert [f["namespace"] for f in targets] == ["target-down"]
    assert down_pod in targets[0]["message"]
    assert not _findings(data, "gotcha")


def test_empty_namespace_is_bad_input_naming_what_exists(capsys, served):
    code, out, err = run_doctor(capsys, served.url, "--time", str(served.end_time), "--namespace", "nothing-here")
    assert code == 2 and out == ""
    assert err.startswith("error: namespace=nothing-here: no vLLM series")
    assert served.url in err and "collapsed / Qwen/Qwen3-0.6B" in err


def test_prometheus_without_the_metrics_is_bad_input(capsys, prometheus_server):
    empty = prometheus_server()
    code, out, err = run_doctor(capsys, empty.url)
    assert code == 2 and out == ""
    assert err.startswith(f"error: no vLLM metrics in Prometheus at {empty.url}")
    assert "scraping the model-server pods" in err


def test_data_older_than_the_lookback_says_when_it_looked(capsys, served):
    code, _, err = run_doctor(capsys, served.url, "--time", str(served.end_time + 3600))
    assert code == 2
    assert "no vLLM metrics" in err and "UTC" in err


def test_bad_time_and_bad_url_are_bad_input(capsys, served):
    code, _, err = run_doctor(capsys, served.url, "--time", "yesterday")
    assert code == 2 and "--time 'yesterday'" in err
    code, _, err = run_doctor(capsys, "localhost:9090")
    assert code == 2 and "expected an http" in err
    code, _, err = run_doctor(capsys, served.url, "--timeout", "0")
    assert code == 2 and "--timeout 0" in err


# --- vLLM 0.24-0.33 and today's EPP ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["healthy_nixl_pull_v0_33", "healthy_nixl_push_v0_33", "healthy_mooncake_v0_33"])
def test_transfers_read_the_same_whichever_pod_records_them(served, report, name):
    dep = _deployment(report[1], _namespace(name))
    kv = next(c for c in dep["checks"] if c["signal"] == "nixl_transfers_absent")
    assert kv["value"] == pytest.approx(served.scenario.truth["parts"][_namespace(name)]["rps"], rel=0.02)
    assert "(1.00/decode req)" in kv["measured"]
    assert dep["verdict"] == "DISAGGREGATED" and "transfers/s" in dep["reason"]


def test_mooncake_without_transfer_metrics_is_disaggregated_by_what_decode_received(report):
    dep = _deployment(report[1], _namespace("healthy_mooncake_v0_24"))
    assert dep["verdict"] == "DISAGGREGATED" and dep["exit_code"] == 0
    assert "prompt tokens/s delivered to decode" in dep["reason"]
    kv = next(c for c in dep["checks"] if c["signal"] == "nixl_transfers_absent")
    assert kv["status"] == "PASS" and "tokens/s delivered to decode" in kv["measured"]
    (finding,) = _findings(report[1], "vllm", _namespace("healthy_mooncake_v0_24"))
    assert "no KV transfer metrics" in finding["message"]
    (finding,) = _findings(report[1], "vllm", _namespace("healthy_mooncake_v0_33"))
    assert "KV transfer metrics from Mooncake" in finding["message"] and finding["details"]["mooncake"]


def test_poll_errors_are_named_as_the_cause_of_the_ready_pods_gap(report):
    dep = _deployment(report[1], "poll-errors")
    epp = next(c for c in dep["checks"] if c["signal"] == "epp_ready_lt_pods")
    assert epp["status"] == "FAIL" and "20 datalayer poll errors/s" in epp["reason"]
    plain = next(c for c in _deployment(report[1], "epp-mismatch-persistent")["checks"]
                 if c["signal"] == "epp_ready_lt_pods")
    assert plain["status"] == "FAIL" and "poll" not in plain["reason"]


def test_the_0_33_version_is_narrowed_down(report):
    (finding,) = _findings(report[1], "vllm", _namespace("healthy_nixl_pull_v0_33"))
    assert finding["details"]["at_least"] == "0.33.0", finding
    (finding,) = _findings(report[1], "vllm", _namespace("healthy_nixl_pull_v0_24"))
    assert finding["details"]["at_least"] == "0.24.0", finding
