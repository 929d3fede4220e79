"""promtool unit tests of the alert and recording rules, on both Prometheus lines (3.5 and 2.53).

The specs in tests/rules/*.yaml are expanded by tests/alert_rules_gen.py into the folder
`make rule-tests` writes (here a temporary one): rules rendered by build.py from each spec's
config, and beside them one promtool test file per group, whose input series come from the
scenario simulator. Every file runs on both promtools, in parallel, from the folder's parent as
README's `promtool test rules build-tests/rule-tests/*.yaml` does from the repo root.
"""

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import alert_rules_gen as gen
import pytest

from alerts import definitions
from pdobs.core import config, promql
from pdobs.servers import tools

SPECS = gen.load_specs()
GROUPS = [(spec, i, group) for spec in SPECS for i, group in enumerate(spec.groups)]
LINES = sorted(tools.PROMTOOLS)
PROMTOOL_TIMEOUT_S = 600

# Benign scenarios: no alert may fire at any minute (old vLLM: only PDKVTransferMetricsMissing).
BENIGN = {
    "healthy_pd": set(), "aggregated": set(), "idle_pd": set(), "warmup": set(), "low_traffic": set(),
    "epp_mismatch_transient": set(), "rolling_update": set(), "pod_restart": set(), "scrape_gap": set(),
    "old_vllm": {"PDKVTransferMetricsMissing"},
    "epp_inference_model": set(), "epp_inference_objective_disagg": set(), "epp_llm_d_router": set(),
    # vLLM 0.24/0.33 on each connector: push mode and Mooncake (with or without transfer metrics).
    "healthy_nixl_pull_v0_24": set(), "healthy_nixl_push_v0_24": set(), "healthy_mooncake_v0_24": set(),
    "healthy_nixl_pull_v0_33": set(), "healthy_nixl_push_v0_33": set(), "healthy_mooncake_v0_33": set(),
}
# Fault scenarios whose fault, held under QUIET_S, must fire nothing at any evaluation.
SHORT_FAULTS = {"collapsed", "collapsed_nixl_flat", "nixl_failing"}
QUIET_S = 120
# Fault scenarios whose fault, held under 3 minutes, must fire nothing (their alerts wait longer).
SHORT_SLOW_FAULTS = {"nixl_slow", "epp_mismatch_persistent", "target_down"}
# Issue 15: a persistent fault pages within this many seconds of its start.
PAGE_WITHIN = {"PDKVTransferAbsent": 180, "PDPrefillIdle": 180, "PDDisaggregationCollapsed": 180,
               "PDKVTransferFailures": 300, "PDEPPReadyPodsMismatch": 20 * 60}


def _run(promtool: Path, test_file: Path) -> subprocess.CompletedProcess[str]:
    # Named relative to the folder's parent, not the test file: rule_files must resolve as-is.
    base = test_file.parent.parent
    return subprocess.run([str(promtool), "test", "rules", str(test_file.relative_to(base))], cwd=base,
                          capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("tree") / "rule-tests"
    generated = gen.write_folder(out, SPECS)
    binaries = {line: tools.tool_path(tools.PROMTOOLS[line]) for line in LINES}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {(g.path.stem, line): pool.submit(_run, binaries[line], g.path)
                   for g in generated for line in LINES}
        return {key: f.result() for key, f in futures.items()}


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize(("slug", "name"), [(gen.slug(s, i), g["name"]) for s, i, g in GROUPS],
                         ids=[gen.slug(s, i) for s, i, _ in GROUPS])
def test_promtool_unit_tests_pass(results, slug: str, name: str, line: str):
    proc = results[(slug, line)]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name}\n{output[-12000:]}"
    assert "SUCCESS" in proc.stdout


# --- the specs cover what the issue asks for ------------------------------------------------------


def _alert_cases(group: dict) -> list[dict]:
    return list(group.get("alerts") or ())


def test_every_group_says_what_it_proves():
    for spec, i, group in GROUPS:
        name = " ".join(group["name"].split())
        assert name[0].isupper() and name.endswith(".") and len(name.split()) >= 8, f"{gen.slug(spec, i)}: {name}"
    assert len({g["name"] for _, _, g in GROUPS}) == len(GROUPS), "two groups claim the same thing"


@pytest.mark.parametrize("alert", [a.name for a in definitions.ALERTS])
def test_every_alert_fires_where_meant_and_not_before_its_for(alert: str):
    cases = [c for _, _, g in GROUPS for c in _alert_cases(g) if c["alert"] == alert]
    assert any(c.get("firing") for c in cases), f"{alert} is never expected to fire"
    assert any(not c.get("firing") and re.search(r"\bfor\b", str(c["at"])) for c in cases), (
        f"{alert} is never checked to be silent before its for")


def _first_firing_after_fault(spec: gen.Spec, group: dict, case: dict) -> float:
    sc = gen.build_scenario(group)
    fault = gen.fault_start(sc, group) * 60
    times = gen.TimeContext(gen.spec_config(spec), fault, None, sc.duration_min * 60)
    return min(times.times(case["at"], case["alert"])) - fault


def test_every_firing_expectation_is_within_the_contract():
    """With the default config a persistent fault fires within its alert's PAGE_WITHIN (3 minutes
    for the collapse alerts, 5 for KV transfer failures, 20 for the EPP mismatch), others within 15."""
    for spec, _, group in GROUPS:
        if spec.config or "fault_end_min" in group:
            continue  # a user config may lengthen `for` (config_overrides.yaml, slow_path.yaml)
        first: dict[str, float] = {}
        for case in _alert_cases(group):
            if case.get("firing"):
                at = _first_firing_after_fault(spec, group, case)
                first[case["alert"]] = min(first.get(case["alert"], at), at)
        for alert, at in first.items():
            limit = PAGE_WITHIN.get(alert, 15 * 60)
            assert at <= limit, f"{group['name']}: {alert} first expected firing {at}s after the fault"


@pytest.mark.parametrize("alert", ["PDKVTransferAbsent", "PDPrefillIdle", "PDDisaggregationCollapsed",
                                   "PDKVTransferFailures"])
def test_fast_alerts_are_checked_at_their_deadline_mid_run_and_from_the_start(alert: str):
    """Each is expected firing at fault + PAGE_WITHIN exactly (on both lines, every group runs on
    both), for a fault that starts mid-run; the collapse alerts also for one from minute 0."""
    at_deadline = {(g["scenario"], gen.fault_start(gen.build_scenario(g), g) == 0)
                   for spec, _, g in GROUPS if not spec.config and "fault_end_min" not in g
                   for c in _alert_cases(g) if c["alert"] == alert and c.get("firing")
                   and _first_firing_after_fault(spec, g, c) == PAGE_WITHIN[alert]}
    assert any(not from_start for _, from_start in at_deadline), f"{alert}: no mid-run fault checked at its deadline"
    if alert != "PDKVTransferFailures":
        assert any(from_start for _, from_start in at_deadline), f"{alert}: no fault from minute 0 at its deadline"


def test_every_benign_scenario_is_silent_all_the_time():
    for scenario, allowed in BENIGN.items():
        groups = [g for _, _, g in GROUPS if g["scenario"] == scenario and "fault_end_min" not in g]
        quiet = [c for g in groups for c in _alert_cases(g)
                 if c["alert"] == "all" and isinstance(c["at"], dict) and set(c.get("except") or ()) == allowed
                 and promql.duration_seconds(c["at"]["every"]) <= 60 and "from" not in c["at"] and "to" not in c["at"]]
        assert quiet, f"no group checks that {scenario} fires nothing (but {sorted(allowed)}) every minute"


def _short_fault_groups(scenario: str, under_s: float, every_s: float) -> list[dict]:
    return [g for _, _, g in GROUPS if g["scenario"] == scenario and "fault_end_min" in g
            and (g["fault_end_min"] - gen.fault_start(gen.build_scenario(g))) * 60 < under_s
            and any(c["alert"] == "all" and isinstance(c["at"], dict)
                    and promql.duration_seconds(c["at"]["every"]) <= every_s for c in _alert_cases(g))]


def test_every_fault_held_under_two_minutes_fires_nothing_at_any_evaluation():
    for scenario in SHORT_FAULTS:
        assert _short_fault_groups(scenario, QUIET_S, 30), f"no group holds the {scenario} fault under 2 minutes"


def test_every_slow_fault_held_under_three_minutes_fires_nothing():
    for scenario in SHORT_SLOW_FAULTS:
        assert _short_fault_groups(scenario, 180, 60), f"no group holds the {scenario} fault under 3 minutes"


def test_recording_rule_values_cover_the_checklist_and_every_verdict():
    exprs = [(g["scenario"], c) for _, _, g in GROUPS for c in g.get("exprs") or ()]
    verdicts = {s["value"] for _, c in exprs if c.get("signal") == "verdict" for s in c["samples"]}
    assert verdicts >= {0, 1, 2, 3, 4}
    checked = {scenario for scenario, c in exprs if c.get("signal") == "checklist"}
    assert checked >= {"healthy_pd", "collapsed", "aggregated", "old_vllm"}


# --- times come from the config ---------------------------------------------------------------------


def test_times_in_specs_come_from_the_config():
    cfg = config.load(overrides={"alerts": {"PDPrefillIdle": {"for": "7m", "keep_firing_for": "90s"}},
                                 "prometheus": {"evaluation_interval": "15s", "rate_window": "10m"}})
    times = gen.TimeContext(cfg, fault_s=600, fault_end_s=900, end_s=1800)
    assert times.seconds("fault + for - eval", "PDPrefillIdle") == 600 + 420 - 15
    assert times.seconds("fault_end + window + keep + 1m", "PDPrefillIdle") == 900 + 600 + 90 + 60
    assert times.times({"every": "5m", "from": "20m"}, None) == [1200, 1500, 1800]
    with pytest.raises(gen.SpecError):
        times.seconds("fault + for", "all")
    with pytest.raises(gen.SpecError):
        times.seconds("fault for", "PDPrefillIdle")


# --- the patches that blind the monitoring (tests/rules/blind*.yaml) ---------------------------------


def _patched(patch: dict, **group: object) -> dict[str, str]:
    g = {"name": "g", "scenario": "healthy_pd", "params": {"duration_min": 4}, "patch": patch, **group}
    cfg = config.load()
    sc = gen.build_scenario(g)
    times = gen.TimeContext(cfg, gen.fault_start(sc, g) * 60, None, sc.duration_min * 60)
    return {s["series"]: s["values"] for s in gen.input_series(g, sc, times, 30.0)}


def test_relabel_ends_the_old_series_and_starts_the_renamed_one():
    series = _patched({"relabel": [{"match": ["vllm:num_requests_running", "-prefill-"], "label": "pod",
                                    "to": "pod_name", "from": "2m"}]})
    old = [s for s in series if s.startswith("vllm:num_requests_running{") and "-prefill-" in s]
    assert len(old) == 2
    (before,) = [s for s in old if ",pod=" in s]
    (after,) = [s for s in old if ",pod_name=" in s]
    assert series[before].endswith("stale") and series[after].startswith("_x4 ")
    assert after == before.replace(",pod=", ",pod_name=")
    dropped = _patched({"relabel": [{"match": ["vllm:num_requests_running", "-decode-"], "label": "pod",
                                     "to": None}]})
    running = [s for s in dropped if s.startswith("vllm:num_requests_running{")]
    (gone,) = [s for s in running if "pod" not in re.findall(r"[{,]([a-z_]+)=", s)]
    assert "decode-podmonitor" in gone and len(running) == 2


def test_stop_ends_series_with_a_staleness_marker():
    series = _patched({"stop": [{"match": ['job="gaie-pd-epp"'], "from": "1m"}]})
    epp = [v for s, v in series.items() if 'job="gaie-pd-epp"' in s]
    assert epp and all(v.endswith("stale") for v in epp)


def test_patches_and_rule_files_that_cannot_apply_are_refused():
    with pytest.raises(gen.SpecError, match="relabel"):
        _patched({"relabel": [{"match": ["no_such_series"], "label": "pod", "to": "x"}]})
    with pytest.raises(gen.SpecError, match="no label 'nope'"):
        _patched({"relabel": [{"match": ["vllm:num_requests_running"], "label": "nope", "to": "x"}]})
    with pytest.raises(gen.SpecError, match="stop"):
        _patched({"stop": [{"match": ["no_such_series"], "from": "1m"}]})
    with pytest.raises(gen.SpecError, match="rule_files"):
        gen.file_doc(config.load(), {"name": "g", "rule_files": ["prometheus/other.yaml"]}, "build-x")
