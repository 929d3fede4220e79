"""The dashboards against a real Prometheus 3.5: every panel query, with its variables substituted
as Grafana would, run as a range query over scenario-simulator data with the recording rules
backfilled.

One server holds every scenario, each in its own namespace: healthy P/D on each EPP metric family
and vLLM version the simulator renders (0.24 and 0.33 with NIXL pull, NIXL push and Mooncake
included), the post-mortem's collapse (no NIXL series, NIXL series present but flat, and on each
0.33 connector) and aggregated serving by design.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from dashboards import builder, ids, render
from dashboards import coordinator as coordinator_module
from dashboards.features import FEATURES
from dashboards.spec import Panel, Query
from pdobs import checks, signals
from pdobs.build import make
from pdobs.checks import NEUTRAL
from pdobs.core import config, promql
from pdobs.servers.prometheus import PrometheusServer
from recording_rules import render as recording_rules
from simulator import scenarios
from tests.dashboard_helpers import (
    grafana_rate_interval,
    grafana_result,
    interpolate,
    last_values,
    panels,
    regex_value,
    stat_display,
    targets,
)

DURATION_MIN = 30
FAULT_MIN = 5
# Queried window: from when the fault's effect fills the rules' 5 m windows to the end.
FROM_MIN = 15
STEP_S = 60
SCRAPE_S = 30
RANGE_FUNCTIONS = ("rate", "irate", "increase")
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
# A duration no query uses, substituted for $__rate_interval when checking the parsed AST.
SENTINEL_S = 17

# namespace -> (scenario, options). Healthy P/D on each EPP family with its usual vLLM, plus old
# vLLM; the collapse on old (no NIXL series) and current vLLM (NIXL series flat), on three EPP
# families; a model-server target down; aggregated serving on two.
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "healthy-objective": ("epp_inference_objective", {}),
    "healthy-objective-disagg": ("epp_inference_objective_disagg", {}),
    "healthy-model": ("epp_inference_model", {}),
    "healthy-router": ("epp_llm_d_router", {}),
    "healthy-old-vllm": ("old_vllm", {}),
    "collapsed-old-vllm": ("collapsed", {"fault_start_min": FAULT_MIN}),
    "collapsed-flat-router": ("collapsed_nixl_flat", {"fault_start_min": FAULT_MIN, "epp_family": "llm_d_router",
                                                      "vllm_version": "0.16.0"}),
    "collapsed-model": ("collapsed", {"fault_start_min": FAULT_MIN, "epp_family": "inference_model",
                                      "vllm_version": "0.10.2"}),
    "target-down": ("target_down", {"fault_start_min": FAULT_MIN}),
    "aggregated-objective": ("aggregated", {}),
    "aggregated-router": ("aggregated", {"epp_family": "llm_d_router", "vllm_version": "0.16.0"}),
    # vLLM 0.24/0.33 on each connector (transfers recorded on decode for pull, on prefill for push
    # and Mooncake; Mooncake on 0.24 exports no transfer metrics at all).
    "healthy-pull-v0-33": ("healthy_nixl_pull_v0_33", {}),
    "healthy-push-v0-33": ("healthy_nixl_push_v0_33", {}),
    "healthy-mooncake-v0-33": ("healthy_mooncake_v0_33", {}),
    "healthy-mooncake-v0-24": ("healthy_mooncake_v0_24", {}),
    "collapsed-push-v0-33": ("collapsed_nixl_push_v0_33", {"fault_start_min": FAULT_MIN}),
    "collapsed-mooncake-v0-33": ("collapsed_mooncake_v0_33", {"fault_start_min": FAULT_MIN}),
    "collapsed-mooncake-v0-24": ("collapsed_mooncake_v0_24", {"fault_start_min": FAULT_MIN}),
    # 0.6 % failed notifications on 0.33, which counts them in failed_transfers too.
    "healthy-notif-v0-33": ("healthy_pd", {"vllm_version": "0.33.0", "nixl_notif_fail_ratio": 0.006}),
    # Clients ask for "qwen-small", the EPP rewrites it to the served model; half stream.
    "healthy-rewrite": ("healthy_pd", {"epp_family": "llm_d_router", "vllm_version": "0.33.0",
                                       "epp_model_name": "qwen-small", "streaming_ratio": 0.5}),
    # llm-d-inference-scheduler v0.4: P/D decision counter without a model label.
    "healthy-scheduler-v0-4": ("healthy_pd", {"epp_family": "inference_objective_v0_4"}),
}
HEALTHY = [ns for ns in SCENARIOS if ns.startswith("healthy")]
COLLAPSED = [ns for ns in SCENARIOS if ns.startswith("collapsed")]
AGGREGATED = [ns for ns in SCENARIOS if ns.startswith("aggregated")]


def features(scenario: scenarios.Scenario) -> set[str]:
    """What the simulated deployment runs, from the simulator's own description of it (never from
    the catalog), in the terms of dashboards.features.FEATURES."""
    dep, truth = scenario.deployment, scenario.truth
    vllm = {f.name for f in dep.vllm_families}
    epp = dep.epp_families
    present = set()
    if truth["pd_deployed"]:
        present.add("pd")
        if truth["kv_series_present"]:
            present.add("kv")
            if any("kv_expired" in name for name in vllm):
                present.add("kv_expired")
        if truth["nixl_series_present"]:
            present.add("nixl")
            if "vllm:nixl_num_notifications_after_expiry" in vllm:
                present.add("nixl_after_expiry")
        if truth["kv_delivery_series_present"]:
            present.add("kv_delivery")
        if "vllm:num_requests_kv_fetch_by_stage" in vllm:
            present.add("kv_fetch")
    if any(f.name == "vllm:request_success" and "error" in f.key_values for f in dep.vllm_families):
        present.add("error_reason")
    if any(f.source == "epp_ttft" for f in epp):
        present.add("epp_ttft")
    decisions = [f for f in epp if f.source == "decision"]
    if any("model_name" in f.labels for f in decisions):
        present.add("pd_decisions")
    if any("model_name" not in f.labels for f in decisions):
        present.add("pd_decisions_v0_4")
    if any(f.source == "pool_pod_queue" for f in epp):
        present.add("epp_pod_queue")
    if truth.get("down_pods"):
        present.add("targets_down")
    # "alerts" never: ALERTS comes from alert rules evaluated live, which a backfill cannot make.
    return present


@dataclass
class Loaded:
    prom: PrometheusServer
    built: dict[str, scenarios.Scenario]
    start: float  # first queried time
    end: float
    first: float  # the scenarios' minute 0, healthy everywhere


@pytest.fixture(scope="module")
def cfg() -> dict:
    return config.load()


@pytest.fixture(scope="module")
def dashboards(cfg) -> dict[str, dict]:
    return {uid: b.json for uid, b in render.build_all(cfg).items()}


def _rules(cfg: dict, folder: Path) -> Path:
    path = folder / "recording-rules.yaml"
    path.write_text(make.build(cfg)[recording_rules.RULE_FILE])
    return path


@pytest.fixture(scope="module")
def loaded(cfg, prometheus_for_scenario, tmp_path_factory) -> Loaded:
    # conftest's fixture backfills the data, then the recording rules layer by layer (rules
    # evaluated live would only cover the time after the server started).
    built = {ns: scenarios.get(name, namespace=ns, duration_min=DURATION_MIN, **options)
             for ns, (name, options) in SCENARIOS.items()}
    combined = scenarios.combine(*built.values(), name="dashboards")
    served = prometheus_for_scenario(combined, [_rules(cfg, tmp_path_factory.mktemp("dash-rules"))],
                                     interval_s=SCRAPE_S)
    return Loaded(served.server, built, served.time_at(FROM_MIN), served.end_time, served.time_at(0))


def grafana_values(namespace: str, loaded: Loaded) -> dict[str, str]:
    """What Grafana substitutes with the namespace picked and the other variables on All."""
    return {
        "namespace": regex_value([namespace]), "model_name": ".*", "cluster": ".*",
        "__rate_interval": grafana_rate_interval(STEP_S, SCRAPE_S), "__interval": f"{STEP_S}s",
        "__range": f"{int(loaded.end - loaded.start)}s",
    }


def run(loaded: Loaded, namespace: str, expr: str) -> list[dict]:
    return loaded.prom.query_range(interpolate(expr, grafana_values(namespace, loaded)), loaded.start,
                                   loaded.end, STEP_S)


def has_data(result: list[dict]) -> bool:
    return bool(last_values(result))


def spec_queries(cfg: dict) -> Iterator[tuple[str, Panel, Query, int]]:
    for spec in render.specs(cfg):
        for row in spec.rows:
            for panel in row.panels:
                for i, q in enumerate(panel.queries):
                    yield spec.uid, panel, q, i


def panel_json(dashboards: dict, uid: str, title: str) -> dict:
    return next(p for p in panels(dashboards[uid]) if p["title"] == title)


def shown(loaded: Loaded, dashboards: dict, uid: str, title: str, namespace: str,
          start: float | None = None) -> list[tuple[str, str]]:
    """What the stat panel shows with the namespace picked, as Grafana queries each target (instant
    targets at the range's end), over [start or the queried window's start, end]."""
    panel = panel_json(dashboards, uid, title)
    start = loaded.start if start is None else start
    values = {**grafana_values(namespace, loaded), "__range": f"{int(loaded.end - start)}s"}
    result = [s for t in panel["targets"]
              for s in grafana_result(loaded.prom, t, interpolate(t["expr"], values), start, loaded.end, STEP_S)]
    return stat_display(panel, result)


# --- dashboard-linter target-promql, on Prometheus' own parser ---------------------------------------


def _walk(node: Any, calls: tuple[str, ...], found: list[tuple[str, Any, tuple[str, ...]]]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, calls, found)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in ("vectorSelector", "matrixSelector"):
        found.append((node["name"], node.get("range"), calls))
    if kind == "call":
        calls = (*calls, node["func"]["name"])
    for key, value in node.items():
        if key != "func" and isinstance(value, dict | list):
            _walk(value, calls, found)


def parse(prom: PrometheusServer, expr: str) -> Any:
    resp = requests.post(f"{prom.url}/api/v1/parse_query", data={"query": expr}, timeout=30)
    body = resp.json()
    assert body["status"] == "success", f"{body.get('error')}\n{expr}"
    return body["data"]


def test_every_query_parses_and_reads_counters_through_rate_interval(loaded, dashboards):
    # target-promql (Prometheus parses it), target-rate-interval and target-counter-agg on the AST.
    values = {"namespace": "x", "model_name": ".*", "cluster": ".*", "__rate_interval": f"{SENTINEL_S}s"}
    checked = 0
    for uid, data in dashboards.items():
        for panel, target in targets(data):
            found: list[tuple[str, Any, tuple[str, ...]]] = []
            _walk(parse(loaded.prom, interpolate(target["expr"], values)), (), found)
            for name, rng, calls in found:
                where = f"{uid} / {panel['title']} / {name}"
                if rng is not None:
                    assert rng == SENTINEL_S * 1000, f"{where}: range not $__rate_interval"
                if name.endswith(COUNTER_SUFFIXES):
                    assert calls and calls[-1] in RANGE_FUNCTIONS, f"{where}: counter outside rate()"
            checked += 1
        for variable in data["templating"]["list"]:
            if variable["type"] == "query":
                selector = variable["query"][len("label_values("):variable["query"].rindex(",")]
                parse(loaded.prom, interpolate(selector, values))
    assert checked > 100


def test_variables_list_what_exists(loaded, dashboards):
    variables = {v["name"]: v["query"] for v in dashboards[ids.DRILLDOWN]["templating"]["list"]}

    def label_values(query: str, **values: str) -> set[str]:
        query = interpolate(query, values)
        selector, label = query[len("label_values("):-1].rsplit(", ", 1)
        resp = requests.get(f"{loaded.prom.url}/api/v1/label/{label}/values",
                            params={"match[]": selector, "start": loaded.start, "end": loaded.end}, timeout=30)
        return set(resp.json()["data"])

    assert label_values(variables["namespace"]) == set(SCENARIOS)
    models = label_values(variables["model_name"], namespace="healthy-router")
    assert models == {loaded.built["healthy-router"].deployment.model_name}
    assert label_values(variables["model_name"], namespace="no-such-namespace") == set()


# --- behaviour per scenario ------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", HEALTHY)
def test_healthy_every_panel_has_data(loaded, cfg, namespace):
    present = features(loaded.built[namespace])
    missing, exempt, titles = [], [], set()
    for uid, panel, query, _ in spec_queries(cfg):
        titles.add((uid, panel.title))
        expr = signals.query(builder.dashboard_context(cfg), query.signal, **query.variant)
        got = has_data(run(loaded, namespace, expr))
        needed = set(query.needs) <= present
        if needed and not got:
            missing.append(f"{uid} / {panel.title} / {query.signal} {dict(query.variant)}")
        if not needed:
            exempt.append((uid, panel.title, query.needs))
            # A query exempted for a feature the scenario lacks must then be empty, not silently
            # reading something else; its panel says why.
            assert not got or "alerts" in query.needs, f"{panel.title}: data without {query.needs}"
            assert builder.no_value_text(panel) != "", panel.title
    assert not missing, f"{namespace}: panels without data:\n" + "\n".join(missing)
    # The exemptions are exactly what the features explain, and never the bulk of the dashboards
    # (vLLM 0.10.2 fills no KV panel at all: about a quarter of them).
    assert all(set(n) <= set(FEATURES) for *_, n in exempt)
    assert len({(uid, title) for uid, title, _ in exempt}) < len(titles) / 3, exempt


def expected_check(truth: dict, check: checks.Check) -> tuple[str, str]:
    """What a check's drill-down panel shows on an active P/D deployment, from the truth."""
    if check is checks.KV_DELIVERY:
        if not truth["kv_delivery_series_present"]:
            return ("NOT EXPORTED", NEUTRAL)
        return ("PASS", "green") if truth["kv_delivered"] else ("FAIL", "red")
    return ("FAIL", "red") if truth[check.name] else ("PASS", "green")


@pytest.mark.parametrize("namespace", HEALTHY)
def test_healthy_status_panels_are_green(loaded, dashboards, namespace):
    truth = loaded.built[namespace].truth
    verdict = shown(loaded, dashboards, ids.DRILLDOWN, "Verdict", namespace)
    kv = shown(loaded, dashboards, ids.COORDINATOR, "KV transfer status", namespace)
    if truth["kv_series_present"] or truth["kv_delivery_series_present"]:
        assert verdict == [("DISAGGREGATED", "green")]
        assert kv == [("FLOWING", "green")]
    else:  # healthy P/D on a vLLM without any KV evidence: say so, never red
        assert verdict == [("CANNOT TELL", "orange")]
        assert kv == [("NO METRICS", "orange")]
    for check in checks.CHECKS[1:]:
        assert shown(loaded, dashboards, ids.DRILLDOWN, check.title, namespace) == [expected_check(truth, check)], \
            check.title


@pytest.mark.parametrize("namespace", COLLAPSED)
def test_collapsed_reads_absent_failing_and_collapsed(loaded, dashboards, namespace):
    truth = loaded.built[namespace].truth
    assert truth["expected_verdict"] == "COLLAPSED"
    assert shown(loaded, dashboards, ids.COORDINATOR, "KV transfer status", namespace) == [("ABSENT", "red")]
    drill = [p for p in panels(dashboards[ids.DRILLDOWN]) if p["gridPos"]["y"] == 1]
    assert shown(loaded, dashboards, ids.DRILLDOWN, drill[0]["title"], namespace) == [("ABSENT", "red")]
    for check, panel in zip(checks.CHECKS[1:], drill[1:-1], strict=True):
        expected = expected_check(truth, check)
        assert shown(loaded, dashboards, ids.DRILLDOWN, panel["title"], namespace) == [expected], panel["title"]
    assert shown(loaded, dashboards, ids.DRILLDOWN, drill[-1]["title"], namespace) == [
        ("COLLAPSED TO AGGREGATED", "red")]


def test_collapsed_is_the_post_mortem_all_five_signals(loaded):
    # The collapse scenarios hold every one of the five signals, so the previous test saw five
    # FAILs (six where vLLM 0.16+ counts the prompt tokens decode no longer receives).
    for namespace in COLLAPSED:
        truth = loaded.built[namespace].truth
        assert all(truth[c.name] for c in checks.CHECKS[1:5]), namespace
        assert truth["kv_delivered"] is False, namespace


@pytest.mark.parametrize("namespace", COLLAPSED)
def test_collapsed_ttft_legs_show_the_collapse(loaded, cfg, dashboards, namespace):
    # Prefill legs go empty (prefill idles) while decode TTFT carries the prompt compute.
    prefill = panel_json(dashboards, ids.COORDINATOR, "Avg vLLM TTFT (Prefill)")
    decode = panel_json(dashboards, ids.COORDINATOR, "Avg vLLM TTFT (Decode)")
    assert not has_data(run(loaded, namespace, prefill["targets"][0]["expr"]))
    assert "prefill pods finish no requests" in prefill["fieldConfig"]["defaults"]["noValue"]
    decode_ttft = last_values(run(loaded, namespace, decode["targets"][0]["expr"]))
    healthy_ttft = last_values(run(loaded, "healthy-objective", decode["targets"][0]["expr"]))
    assert decode_ttft and healthy_ttft and decode_ttft[0] > healthy_ttft[0]


def test_every_stat_tile_reads_one_instant_value(dashboards):
    # A tile shows one number; a range reduced by lastNotNull shows the last finite point, which
    # after a collapse is the healthy value from before it.
    for uid, data in dashboards.items():
        for panel in panels(data):
            if panel["type"] == "stat":
                assert all(t["instant"] and not t["range"] for t in panel["targets"]), f"{uid} / {panel['title']}"
                assert panel["options"]["graphMode"] == "none", f"{uid} / {panel['title']}"


@pytest.mark.parametrize("namespace", COLLAPSED)
def test_headline_tiles_read_what_the_collapse_does_now_over_the_default_range(loaded, cfg, dashboards, namespace):
    # Grafana's default range (grafana.time_from, 1h) reaches back before the collapse.
    start = loaded.end - promql.duration_seconds(cfg["grafana"]["time_from"].removeprefix("now-"))
    assert start < loaded.first
    coordinator = {p["title"]: p for p in panels(dashboards[ids.COORDINATOR])}
    prefill, true_ttft = coordinator["Avg vLLM TTFT (Prefill)"], coordinator["Avg True TTFT (Prefill + Decode)"]
    values = {**grafana_values(namespace, loaded), "__range": f"{int(loaded.end - start)}s"}
    # The prefill leg had values before the collapse: a tile reading the range would show a stale one.
    before = loaded.prom.query_range(interpolate(prefill["targets"][0]["expr"], values), start, loaded.end, STEP_S)
    assert last_values(before), "the healthy minutes must be in the range for this test to mean anything"

    def tile(uid: str, title: str) -> list[tuple[str, str]]:
        return shown(loaded, dashboards, uid, title, namespace, start=start)

    none_now = [(coordinator_module.PREFILL_NONE, "")]
    assert tile(ids.COORDINATOR, "Avg vLLM TTFT (Prefill)") == none_now
    assert tile(ids.COORDINATOR, "Avg True TTFT (Prefill + Decode)") == none_now
    assert prefill["fieldConfig"]["defaults"]["noValue"] == true_ttft["fieldConfig"]["defaults"]["noValue"]
    decode = coordinator["Avg vLLM TTFT (Decode)"]
    now = loaded.prom.query(interpolate(decode["targets"][0]["expr"], values), loaded.end)
    decode_now = float(now[0]["value"][1])
    assert tile(ids.COORDINATOR, "Avg vLLM TTFT (Decode)") == [(f"{decode_now:g}", "green")]
    assert decode_now > 0.05  # the post-mortem's 54.9 ms: decode computes the prompts now
    assert tile(ids.COORDINATOR, "KV transfer status") == [("ABSENT", "red")]
    drill = [p for p in panels(dashboards[ids.DRILLDOWN]) if p["gridPos"]["y"] == 1]
    assert tile(ids.DRILLDOWN, drill[-1]["title"]) == [("COLLAPSED TO AGGREGATED", "red")]
    truth = loaded.built[namespace].truth
    for check, panel in zip(checks.CHECKS[1:], drill[1:-1], strict=True):
        assert tile(ids.DRILLDOWN, panel["title"]) == [expected_check(truth, check)], panel["title"]


@pytest.mark.parametrize("namespace", AGGREGATED)
def test_aggregated_says_not_deployed_rather_than_red(loaded, dashboards, namespace):
    assert loaded.built[namespace].truth["expected_verdict"] == "AGGREGATED_BY_DESIGN"
    assert shown(loaded, dashboards, ids.COORDINATOR, "KV transfer status", namespace) == [
        ("NOT DEPLOYED", NEUTRAL)]
    drill = [p for p in panels(dashboards[ids.DRILLDOWN]) if p["gridPos"]["y"] == 1]
    for panel in drill[:-1]:
        assert shown(loaded, dashboards, ids.DRILLDOWN, panel["title"], namespace) == [
            ("NOT DEPLOYED", NEUTRAL)], panel["title"]
    assert shown(loaded, dashboards, ids.DRILLDOWN, drill[-1]["title"], namespace) == [
        ("AGGREGATED BY DESIGN", NEUTRAL)]
    # No stat panel anywhere turns red, and every P/D-only panel explains its empty result.
    for uid, data in dashboards.items():
        for panel in panels(data):
            if panel["type"] != "stat":
                continue
            colours = [c for _, c in shown(loaded, dashboards, uid, panel["title"], namespace)]
            assert "red" not in colours, f"{uid} / {panel['title']}"


@pytest.mark.parametrize("namespace", AGGREGATED)
def test_aggregated_pd_panels_are_empty_with_a_reason(loaded, cfg, namespace):
    for uid, panel, query, _ in spec_queries(cfg):
        if not ({"pd", "kv", "nixl", "kv_expired", "nixl_after_expiry", "kv_delivery", "kv_fetch"}
                & set(query.needs)):
            continue
        expr = signals.query(builder.dashboard_context(cfg), query.signal, **query.variant)
        assert not has_data(run(loaded, namespace, expr)), f"{uid} / {panel.title}"
        text = builder.no_value_text(panel)
        assert "P/D" in text or "NIXL" in text, f"{uid} / {panel.title}: {text}"


def test_checklist_codes_match_the_simulators_truth_over_time(loaded, cfg):
    # Not just the last value: over the whole queried window each scenario keeps its verdict.
    ctx = builder.dashboard_context(cfg)
    names = {"DISAGGREGATED": 0, "COLLAPSED": 1, "AGGREGATED_BY_DESIGN": 2, "NO_TRAFFIC": 3, "CANNOT_TELL": 4}
    for namespace, scenario in loaded.built.items():
        result = run(loaded, namespace, signals.query(ctx, "verdict"))
        values = {float(v) for series in result for _, v in series["values"]}
        assert values == {names[scenario.truth["expected_verdict"]]}, (namespace, values)
        assert not any(math.isnan(v) for v in values)


def test_per_pod_panels_show_each_pod(loaded, cfg, dashboards):
    # A per-pod panel lists the scenario's pods by their Kubernetes names.
    scenario = loaded.built["healthy-objective"]
    pods = {p.name for p in scenario.deployment.pods}
    panel = panel_json(dashboards, ids.PERFORMANCE, "KV-cache usage per pod")
    result = run(loaded, "healthy-objective", panel["targets"][0]["expr"])
    assert {s["metric"][cfg["labels"]["pod"]] for s in result} == pods


def test_a_target_down_shows_in_red(loaded, dashboards):
    truth = loaded.built["target-down"].truth
    assert truth["down_pods"]
    values = shown(loaded, dashboards, ids.DRILLDOWN, "Model-server targets down", "target-down")
    assert values == [("1", "red")]
    assert shown(loaded, dashboards, ids.DRILLDOWN, "Model-server targets down", "healthy-objective") == [
        ("0: every model-server target answers its scrape", "")]


# --- vLLM 0.24-0.33 and today's EPP semantics -----------------------------------------------------


def model_value(model: str) -> str:
    """A picked model as Grafana writes it into the query: regex-escaped, each backslash doubled
    inside the PromQL string."""
    return regex_value([model]).replace("\\", "\\\\")


def panel_values(loaded: Loaded, dashboards: dict, uid: str, title: str, namespace: str,
                 **values: str) -> list[float]:
    """The last value of every series a panel draws, with the namespace picked (and `values`)."""
    panel = panel_json(dashboards, uid, title)
    subst = {**grafana_values(namespace, loaded), **values}
    return [v for t in panel["targets"]
            for v in last_values(loaded.prom.query_range(interpolate(t["expr"], subst), loaded.start, loaded.end,
                                                         STEP_S))]


@pytest.mark.parametrize("namespace", ["healthy-pull-v0-33", "healthy-push-v0-33", "healthy-mooncake-v0-33"])
def test_kv_transfers_read_the_same_whichever_pod_records_them(loaded, dashboards, namespace):
    # Pull: decode records; push and Mooncake: prefill does. One transfer per request either way.
    truth = loaded.built[namespace].truth
    assert truth["kv_transfer_recorded_by"] == ("decode" if "pull" in namespace else "prefill")
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV transfers/s", namespace) == [
        pytest.approx(truth["rps"], rel=0.02)]
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV transfers per decode request", namespace) == [
        pytest.approx(1, rel=0.02)]
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV delivered to decode", namespace) == [
        pytest.approx(1)]


def test_mooncake_without_transfer_metrics_is_judged_by_what_decode_received(loaded, dashboards):
    # vLLM 0.24's Mooncake exports no transfer series: the transfer panels say why they are empty,
    # the delivery panel shows every uncached prompt token arriving, the status reads FLOWING.
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV transfers/s", "healthy-mooncake-v0-24") == []
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV delivered to decode",
                        "healthy-mooncake-v0-24") == [pytest.approx(1)]
    assert panel_values(loaded, dashboards, ids.COORDINATOR, "KV delivered to decode",
                        "collapsed-mooncake-v0-24") == [0]


def test_failed_notifications_on_0_33_are_counted_once(loaded, dashboards):
    # 0.6 % of notifications fail; 0.33 counts them in failed_transfers as well.
    values = panel_values(loaded, dashboards, ids.COORDINATOR, "Failed transfers and notifications",
                          "healthy-notif-v0-33")
    failed, notifications, ratio = values
    assert failed == pytest.approx(notifications) == pytest.approx(0.06, rel=0.05)
    assert ratio == pytest.approx(0.006, rel=0.05)


def test_epp_panels_keep_their_data_under_a_model_rewrite(loaded, cfg):
    # The EPP labels requests with "qwen-small", vLLM with the served model: picking the served
    # model (what the model variable lists) must not empty any panel that has data on All.
    served = loaded.built["healthy-rewrite"].deployment.model_name
    picked = {"model_name": model_value(served)}
    emptied = []
    for uid, panel, query, _ in spec_queries(cfg):
        expr = signals.query(builder.dashboard_context(cfg), query.signal, **query.variant)
        if has_data(run(loaded, "healthy-rewrite", expr)):
            values = {**grafana_values("healthy-rewrite", loaded), **picked}
            got = loaded.prom.query_range(interpolate(expr, values), loaded.start, loaded.end, STEP_S)
            if not has_data(got):
                emptied.append(f"{uid} / {panel.title} / {query.signal}")
    assert emptied == []
    # The legends show the model name the clients use.
    result = run(loaded, "healthy-rewrite", signals.query(builder.dashboard_context(cfg), "epp_requests"))
    assert {s["metric"]["model_name"] for s in result} == {"qwen-small"}


def test_client_ttft_counts_streaming_requests_only(loaded, dashboards):
    # Half the requests do not stream: their "TTFT" is the whole answer. The tile shows the
    # streaming requests' first byte: prefill leg + KV wait + first decode step + EPP overhead.
    c = loaded.built["healthy-rewrite"].runs[0].base
    ttft = (c.prefill_queue_s + c.prefill_compute_s + c.nixl_handshake_s + c.nixl_xfer_s + c.decode_first_step_s
            + c.epp_overhead_s)
    (value,) = panel_values(loaded, dashboards, ids.COORDINATOR, "Avg client TTFT (EPP)", "healthy-rewrite")
    assert value == pytest.approx(ttft, rel=0.02)


def test_decision_panel_works_on_scheduler_v0_4(loaded, dashboards):
    # v0.4's counter has no model label: its decisions show with any model picked, and never twice.
    ns = "healthy-scheduler-v0-4"
    served = loaded.built[ns].deployment.model_name
    rps = loaded.built[ns].truth["rps"]
    for model in (".*", model_value(served)):
        values = panel_values(loaded, dashboards, ids.COORDINATOR, "P/D decisions by type", ns, model_name=model)
        assert sum(values) == pytest.approx(rps, rel=0.02), model
    assert sum(panel_values(loaded, dashboards, ids.COORDINATOR, "P/D decisions by type", "healthy-router",
                            model_name=model_value(served))) == pytest.approx(rps, rel=0.02)


def test_kv_fetch_backlog_shows_each_stage_on_0_33(loaded, dashboards):
    panel = panel_json(dashboards, ids.COORDINATOR, "KV-fetch backlog (decode)")
    result = run(loaded, "healthy-pull-v0-33", panel["targets"][0]["expr"])
    assert {s["metric"]["stage"] for s in result} == {"waiting_to_start", "in_progress", "completed_waiting"}


# --- multi-cluster: the cluster variable separates clusters that share namespace and pod names ------


@pytest.fixture(scope="module")
def multi(prometheus_for_scenario, tmp_path_factory) -> tuple[Any, dict[str, dict]]:
    cfg = config.load(overrides={"multi_cluster": True})
    both = scenarios.multi_cluster(
        scenarios.get("healthy_pd", duration_min=20),
        scenarios.get("collapsed", duration_min=20, fault_start_min=FAULT_MIN),
        clusters=("east", "west"))
    served = prometheus_for_scenario(both, [_rules(cfg, tmp_path_factory.mktemp("dash-rules-mc"))])
    return served, {uid: b.json for uid, b in render.build_all(cfg).items()}


def test_multi_cluster_variable_and_panels_follow_the_cluster(multi):
    served, dashboards = multi
    start, end = served.time_at(15), served.end_time
    variables = {v["name"]: v["query"] for v in dashboards[ids.DRILLDOWN]["templating"]["list"]}

    def label_values(query: str, **values: str) -> set[str]:
        selector, label = interpolate(query, values)[len("label_values("):-1].rsplit(", ", 1)
        resp = requests.get(f"{served.url}/api/v1/label/{label}/values",
                            params={"match[]": selector, "start": start, "end": end}, timeout=30)
        return set(resp.json()["data"])

    assert label_values(variables["cluster"]) == {"east", "west"}
    assert label_values(variables["namespace"], cluster="east") == {served.scenario.deployment.namespace}

    def display(uid: str, title: str, cluster: str) -> list[tuple[str, str]]:
        panel = next(p for p in panels(dashboards[uid]) if p["title"] == title)
        values = {"namespace": ".*", "model_name": ".*", "cluster": cluster,
                  "__rate_interval": grafana_rate_interval(STEP_S, SCRAPE_S)}
        result = [s for t in panel["targets"]
                  for s in grafana_result(served.server, t, interpolate(t["expr"], values), start, end, STEP_S)]
        return stat_display(panel, result)

    assert display(ids.DRILLDOWN, "Verdict", "east") == [("DISAGGREGATED", "green")]
    assert display(ids.DRILLDOWN, "Verdict", "west") == [("COLLAPSED TO AGGREGATED", "red")]
    assert display(ids.COORDINATOR, "KV transfer status", "west") == [("ABSENT", "red")]
    assert sorted(display(ids.DRILLDOWN, "Verdict", ".*")) == [("COLLAPSED TO AGGREGATED", "red"),
                                                               ("DISAGGREGATED", "green")]
