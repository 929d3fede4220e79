"""The multi-cluster dashboards on a real Prometheus 3.5 and a real VictoriaMetrics, both loaded
with the same simulated fleet (tests/scale_out_data.py) and the recording rules evaluated over it.

* No leak between clusters: with $cluster=b every panel query answers exactly what it answers for
  a healthy twin that has no namespace-and-pod-name double in another cluster, although cluster a
  (the collapse) has the same namespace and pod names as b.
* VictoriaMetrics answers every panel query like Prometheus, except where MetricsQL is known to
  differ; each difference has its own test here and is explained in docs/scaling-out.md.
* Cardinality: the namespace-level recording rules add the same number of series to a namespace at
  4 and 16 pods; the dashboards' per-pod rate records add exactly one series per pod and per-pod
  signal; docs/scaling-out.md states the measured numbers.
"""

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import tests.scale_out_data as D
from dashboards import render
from pdobs import checks, signals
from pdobs.core import paths
from pdobs.servers.prometheus import PrometheusServer
from tests.dashboard_helpers import grafana_rate_interval, interpolate, regex_value, targets

RECORDED = "[a-z_]+:[a-z0-9_]+:[a-z0-9_]+"
DOC = paths.DOCS / "scaling-out.md"
Series = dict[tuple[tuple[str, str], ...], dict[int, float]]


@dataclass
class Engines:
    cfg: dict[str, Any]
    fleet: Any
    prom: Any  # ScenarioPrometheus
    vm: D.LoadedVM
    boards: dict[str, dict]

    def at(self, minute: float) -> float:
        return self.prom.time_at(minute)

    def engine(self, name: str) -> PrometheusServer:
        return self.prom.server if name == "prometheus" else self.vm.server


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Iterator[Engines]:
    work = tmp_path_factory.mktemp("scale-out")
    cfg = D.multi_cluster_config()
    fleet = D.fleet()
    rules = D.write_rules(cfg, work)
    end = D.end_time()
    prom = D.load_prometheus(fleet, rules, work / "prometheus", end)
    try:
        vm = D.load_victoriametrics(cfg, fleet, rules, work, end)
        try:
            assert vm.backfill.start_time == prom.start_time and vm.backfill.end_time == prom.end_time
            yield Engines(cfg, fleet, prom, vm, {uid: b.json for uid, b in render.build_all(cfg).items()})
        finally:
            vm.stop()
    finally:
        prom.stop()


def panel_queries(boards: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    return [(uid, p["title"], t["refId"], t["expr"]) for uid, board in boards.items() for p, t in targets(board)]


def run(e: Engines, engine: str, expr: str, where: tuple[str, str], start_min: float = D.FROM_MIN) -> list[dict]:
    """A panel query as Grafana sends it with one cluster and namespace picked, over the window."""
    start, end = e.at(start_min), e.prom.end_time
    values = {"cluster": regex_value([where[0]]), "namespace": regex_value([where[1]]), "model_name": ".*",
              "__rate_interval": grafana_rate_interval(D.STEP_S, D.SCRAPE_S), "__interval": f"{D.STEP_S}s",
              "__range": f"{int(end - start)}s"}
    return e.engine(engine).query_range(interpolate(expr, values), start, end, D.STEP_S)


def series(result: list[dict], drop: tuple[str, ...] = ("__name__",), keep_nan: bool = True) -> Series:
    """Series by label set (without `drop`) -> {time: value}. Two series that become one when the
    labels are dropped are kept apart by a counter, so a dropped label never hides an extra series."""
    out: Series = {}
    for s in result:
        key = tuple(sorted((k, v) for k, v in s["metric"].items() if k not in drop))
        points = {int(t): float(v) for t, v in s["values"] if keep_nan or not math.isnan(float(v))}
        if points:
            while key in out:
                key = (*key, ("#duplicate", ""))
            out[key] = points
    return out


def clusters_in(result: list[dict], label: str) -> set[str]:
    return {s["metric"].get(label, "") for s in result}


def same(a: Series, b: Series, rel: float = 0.0) -> bool:
    if a.keys() != b.keys():
        return False
    for key, points in a.items():
        if points.keys() != b[key].keys():
            return False
        for t, x in points.items():
            y = b[key][t]
            if not (math.isnan(x) and math.isnan(y)) and not math.isclose(x, y, rel_tol=rel, abs_tol=rel * 1e-3):
                return False
    return True


# --- multi-cluster: nothing of cluster a in cluster b's panels ---------------------------------------


def test_every_panel_of_cluster_b_shows_what_a_lone_healthy_twin_shows(engines):
    where = ("cluster", engines.cfg["labels"]["namespace"])
    leaks, with_data, differs_from_a = [], 0, 0
    for uid, title, ref, expr in panel_queries(engines.boards):
        raw_b = run(engines, "prometheus", expr, D.HEALTHY)
        b = series(raw_b, drop=("__name__", *where))
        solo = series(run(engines, "prometheus", expr, D.SOLO), drop=("__name__", *where))
        a = series(run(engines, "prometheus", expr, D.COLLAPSED), drop=("__name__", *where))
        if not same(b, solo) or not clusters_in(raw_b, where[0]) <= {D.HEALTHY[0], ""}:
            leaks.append(f"{uid} / {title} / {ref}")
        with_data += bool(b)
        differs_from_a += not same(a, b)
    assert not leaks, "cluster b differs from its lone twin:\n" + "\n".join(leaks)
    # Not vacuous: most panels have data, and cluster a (same names, collapsed) reads differently.
    total = len(panel_queries(engines.boards))
    assert with_data > 0.8 * total, (with_data, total)
    assert differs_from_a > 0.3 * total, (differs_from_a, total)


def test_each_clusters_status_reads_its_own_state(engines):
    verdict = signals.query(signals.context(engines.cfg, scope={"cluster": ("=~", "$cluster"),
                                                                 "namespace": ("=~", "$namespace")}), "verdict")
    codes = {v.text: v.code for v in checks.Verdict}
    for where, expected in ((D.COLLAPSED, "COLLAPSED TO AGGREGATED"), (D.HEALTHY, "DISAGGREGATED")):
        values = {v for s in series(run(engines, "prometheus", verdict, where)).values() for v in s.values()}
        assert values == {codes[expected]}, (where, values)


# --- VictoriaMetrics answers the panels like Prometheus ----------------------------------------------


def test_victoriametrics_answers_every_panel_query_like_prometheus(engines):
    # NaN points are dropped on both sides: Prometheus returns them (e.g. 0/0 for an idle role),
    # VictoriaMetrics never does, and Grafana draws neither (test_nan_results_...).
    mismatched, compared, with_data = [], 0, 0
    for where in (D.COLLAPSED, D.HEALTHY, D.SOLO):
        for uid, title, ref, expr in panel_queries(engines.boards):
            prom = series(run(engines, "prometheus", expr, where), keep_nan=False)
            vm = series(run(engines, "victoriametrics", expr, where), keep_nan=False)
            compared += 1
            with_data += bool(prom)
            if not same(prom, vm, rel=1e-9):
                mismatched.append(f"{where[0]}: {uid} / {title} / {ref}\n  prometheus {prom}\n  victoriametrics {vm}")
    assert not mismatched, f"{len(mismatched)} of {compared} differ:\n" + "\n".join(mismatched[:10])
    assert compared > 300 and with_data > 0.7 * compared, (compared, with_data)


def label_values(e: Engines, engine: str, query: str, **values: str) -> set[str]:
    """A `label_values(selector, label)` variable as Grafana asks the label values API."""
    selector, label = interpolate(query, values)[len("label_values("):-1].rsplit(", ", 1)
    server = e.engine(engine)
    resp = server._session.get(f"{server.url}/api/v1/label/{label}/values",
                               params={"match[]": selector, "start": e.at(D.FROM_MIN), "end": e.prom.end_time},
                               timeout=30)
    return set(resp.json()["data"])


def test_dashboard_variables_list_the_same_values_on_both_engines(engines):
    board = next(iter(engines.boards.values()))
    variables = {v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "query"}
    assert list(variables) == ["cluster", "namespace", "model_name"]
    picks = [{}, {"cluster": D.COLLAPSED[0]}, {"cluster": D.HEALTHY[0], "namespace": D.HEALTHY[1]}]
    for values in picks:
        for name, query in variables.items():
            if not set(re.findall(r"\$(\w+)", query)) <= set(values):
                continue  # a chained variable whose parents this pick leaves open
            prom = label_values(engines, "prometheus", query, **values)
            assert prom and prom == label_values(engines, "victoriametrics", query, **values), (name, values)
    clusters = label_values(engines, "victoriametrics", variables["cluster"])
    assert clusters == {D.COLLAPSED[0], D.HEALTHY[0], D.SOLO[0], D.SCALE_CLUSTER}


def _raw(e: Engines, name: str, where: tuple[str, str], **variant: str) -> str:
    ctx = signals.context(e.cfg, inline=True, scope={"cluster": ("=", where[0]), "namespace": ("=", where[1])})
    return signals.query(ctx, name, **variant)


def test_rate_of_a_series_younger_than_the_window_differs(engines):
    # Two minutes after the counters appear, the 5m window holds 2 minutes of samples. Prometheus'
    # rate() divides the increase by the whole window (extrapolating only to the first sample),
    # so it reads 2/5 of the rate; MetricsQL's rate() divides by the time the samples span.
    expr = _raw(engines, "requests", D.HEALTHY, role="decode")
    rps = D.truth(engines.fleet, D.HEALTHY)["rps"]
    window_min = 5
    prom, vm = (engines.engine(n).query_value(expr, engines.at(2)) for n in ("prometheus", "victoriametrics"))
    assert prom == pytest.approx(rps * 2 / window_min) and vm == pytest.approx(rps)
    # Once the window is full both read the true rate.
    for name in ("prometheus", "victoriametrics"):
        assert engines.engine(name).query_value(expr, engines.at(window_min + 1)) == pytest.approx(rps)


def test_nan_results_are_returned_by_prometheus_and_dropped_by_victoriametrics(engines):
    # The collapsed cluster's prefill pods finish nothing: their mean TTFT is 0/0.
    expr = signals.query(signals.context(engines.cfg, scope={"cluster": ("=", D.COLLAPSED[0])}),
                         "ttft_mean", role="prefill")
    prom = engines.prom.server.query(expr, engines.prom.end_time)
    assert len(prom) == 1 and prom[0]["value"][1] == "NaN"
    assert engines.vm.server.query(expr, engines.prom.end_time) == []


def test_a_series_that_stops_stays_visible_longer_on_prometheus_graphs(engines):
    # The collapsed cluster's prefill prefix-cache hit ratio is recorded until its queries' rate
    # falls to 0 (the `> 0` guard then drops it). Without a staleness marker (backfilled or
    # remote-written data) a Prometheus graph keeps the last value for its 5m lookback; a
    # VictoriaMetrics graph (range query) looks back about one step, so the line ends there.
    expr = signals.query(signals.context(engines.cfg, scope={"cluster": ("=", D.COLLAPSED[0])}),
                         "prefix_hit_ratio", role="prefill")
    last = engines.prom.server.query(f"max_over_time(timestamp({expr})[{D.FROM_MIN}m:{D.SCRAPE_S}s])",
                                     engines.at(D.FROM_MIN))
    stopped = float(last[0]["value"][1])
    assert D.FAULT_MIN < (stopped - engines.at(0)) / 60 < D.FAULT_MIN + 6
    shown_for = {}
    for name in ("prometheus", "victoriametrics"):
        graph = engines.engine(name).query_range(expr, engines.at(0), engines.at(D.FROM_MIN), D.STEP_S)
        shown_for[name] = max(float(t) for t, _ in graph[0]["values"]) - stopped
    assert 4 * 60 < shown_for["prometheus"] <= 5 * 60, shown_for
    assert shown_for["victoriametrics"] <= 2 * D.STEP_S, shown_for
    # An instant query (what an alert rule runs) looks back 5m on both engines.
    probe = stopped + 4 * 60
    assert engines.prom.server.query(expr, probe) and engines.vm.server.query(expr, probe)


# --- cardinality ----------------------------------------------------------------------------------------


def counts(e: Engines, engine: str, selector: str) -> dict[str, int]:
    result = e.engine(engine).query(f"count by (namespace) ({selector})", e.prom.end_time)
    return {s["metric"]["namespace"]: int(float(s["value"][1])) for s in result}


def per_pod_records(cfg: dict[str, Any]) -> set[str]:
    return {s.record for s in signals.signals(cfg).values() if s.record and "pod" in s.level}


def measure(e: Engines) -> dict[str, dict[str, int]]:
    cluster = f'cluster="{D.SCALE_CLUSTER}"'
    per_pod = "|".join(sorted(per_pod_records(e.cfg)))
    return {engine: {
        **{f"namespace-level {ns}": n for ns, n in counts(
            e, engine, f'{{__name__=~"{RECORDED}", __name__!~"{per_pod}", {cluster}}}').items()},
        **{f"per-pod {ns}": n for ns, n in counts(e, engine, f'{{__name__=~"{per_pod}", {cluster}}}').items()},
        **{f"raw {ns}": n for ns, n in counts(e, engine, f'{{__name__!~"{RECORDED}", {cluster}}}').items()},
    } for engine in ("prometheus", "victoriametrics")}


def pod_counts() -> dict[str, int]:
    return {ns: sum(sizes) for ns, sizes in D.SCALES.items()}


def test_recorded_series_per_namespace_do_not_grow_with_pods(engines):
    """Namespace-level records are flat in the pod count; the per-pod records grow by exactly one
    series per pod and per-pod signal (each pod has one role), and only they carry the pod."""
    measured = measure(engines)
    signals_per_pod = len(per_pod_records(engines.cfg))
    assert signals_per_pod > 0
    for engine, m in measured.items():
        flat = {ns: m[f"namespace-level {ns}"] for ns in D.SCALES}
        assert len(set(flat.values())) == 1 and min(flat.values()) > 100, (engine, flat)
        grown = {ns: m[f"per-pod {ns}"] for ns in D.SCALES}
        assert grown == {ns: signals_per_pod * n for ns, n in pod_counts().items()}, (engine, grown)
        assert m["raw pods-16"] > 3 * m["raw pods-4"], (engine, m)
    pod = engines.cfg["labels"]["pod"]
    per_pod = "|".join(sorted(per_pod_records(engines.cfg)))
    for name in ("prometheus", "victoriametrics"):
        at = engines.prom.end_time
        # Not one namespace-level recorded series carries the pod label, on any cluster ...
        assert not engines.engine(name).query(f'{{__name__=~"{RECORDED}", __name__!~"{per_pod}", {pod}!=""}}', at)
        # ... and every per-pod one carries the pod and its role.
        assert engines.engine(name).query(f'{{__name__=~"{per_pod}"}}', at)
        assert not engines.engine(name).query(f'{{__name__=~"{per_pod}", {pod}=""}}', at)
        assert not engines.engine(name).query(f'{{__name__=~"{per_pod}", role!~"prefill|decode"}}', at)


def test_the_cardinality_report_states_the_measured_numbers(engines):
    m = measure(engines)["prometheus"]
    pods = pod_counts()
    per_pod = (m["raw pods-16"] - m["raw pods-4"]) / (pods["pods-16"] - pods["pods-4"])
    recorded_per_pod = (m["per-pod pods-16"] - m["per-pod pods-4"]) / (pods["pods-16"] - pods["pods-4"])
    expected = {
        "model-server pods": [str(pods[ns]) for ns in D.SCALES],
        "raw series in the namespace": [str(m[f"raw {ns}"]) for ns in D.SCALES],
        "namespace-level recorded series": [str(m[f"namespace-level {ns}"]) for ns in D.SCALES],
        "per-pod recorded series (dashboards)": [str(m[f"per-pod {ns}"]) for ns in D.SCALES],
        "recorded series per model-server pod": [f"{m[f'per-pod {ns}'] / pods[ns]:g}" for ns in D.SCALES],
    }
    table = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in expected:
            table[cells[0]] = cells[1:]
    assert table == expected, f"update the cardinality table in {DOC.name}: {expected}"
    stated = re.search(r"about (\d+) raw series per model-server pod", DOC.read_text())
    assert stated and int(stated.group(1)) == round(per_pod), f"{DOC.name}: about {round(per_pod)} raw series per pod"
    stated = re.search(r"exactly (\d+) recorded series per model-server pod", DOC.read_text())
    assert stated and int(stated.group(1)) == recorded_per_pod, \
        f"{DOC.name}: exactly {recorded_per_pod:g} recorded series per model-server pod"
