"""What a dashboard refresh costs Prometheus as the fleet grows: every panel query as Grafana sends
it, recorded form against the raw form, on one real Prometheus 3.5.

Data: one healthy P/D fleet per size (half prefill, half decode, 10 requests/s per decode pod,
vLLM 0.12 and the llm-d-router EPP, the simulator's `scale` scenario), each in its own namespace,
backfilled over the same hours with `promtool tsdb create-blocks-from openmetrics`; the recording
rules are then backfilled with `promtool tsdb create-blocks-from rules` (bench/backfill.py).

Each panel query runs with the dashboard's namespace variable set to one fleet and the others on
All, over the last `hours` (and last hour), with Grafana's step and $__rate_interval for the
panel's width (dashboards/grafana_query.py), as a range query (tables: an instant query) with
`stats=all`. Recorded form: the query in the dashboard JSON. Raw form: the same catalog signal
with every reference inlined (`signals.context(..., inline=True)`), i.e. rates and
histogram_quantile over the un-recorded per-pod series, as upstream llm-d dashboards query.
Reference: llm-d's own Diagnostic Drill-Down (bench/llmd_reference.py), its queries run the same
way on the same fleets, against which our Drill-Down is measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench import backfill, llmd_reference
from dashboards import builder, ids, render
from harness.grafana_query import interpolate, regex_value
from harness.grafana_query import request as grafana_request
from pdobs import signals
from pdobs.build import make
from pdobs.core import promql
from recording_rules import render as rules_render
from simulator import scenarios
from simulator.serve import ScenarioPrometheus

FORMS = ("recorded", "raw")
# Our dashboard measured against llm-d's own one of the same purpose.
REFERENCES = {ids.DRILLDOWN: llmd_reference.DRILLDOWN}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref: str  # refId
    width: int  # grid columns
    instant: bool
    recorded: str
    raw: str


@dataclass
class Cost:
    """Sums over the queries of one dashboard refresh."""

    queries: int = 0
    samples: int = 0  # stats.samples.totalQueryableSamples
    peak: int = 0  # largest stats.samples.peakSamples of a single query
    series: int = 0  # series returned
    points: int = 0  # values returned (series x steps; one per series for an instant query)
    wall_s: float = 0.0  # client round trips, one query after another
    eval_s: float = 0.0  # Prometheus' own evalTotalTime

    def add(self, r: Mapping[str, Any]) -> None:
        self.queries += 1
        self.samples += r["samples"]
        self.peak = max(self.peak, r["peak"])
        self.series += r["series"]
        self.points += r["points"]
        self.wall_s += r["wall_s"]
        self.eval_s += r["eval_s"]


@dataclass
class Fleet:
    pods: int
    namespace: str
    series: int = 0  # raw series the simulator wrote for this fleet
    rules_samples: int = 0  # samples one evaluation of every recording rule touches
    rules_series: int = 0  # series the recording rules write per evaluation


@dataclass
class QueryCost:
    hours: float
    ranges_h: list[float]
    fleets: list[Fleet]
    dashboards: dict[str, str]  # uid -> title
    # (pods, range_h, uid, form) -> Cost
    costs: dict[tuple[int, float, str, str], Cost] = field(default_factory=dict)
    # (pods, range_h, uid, panel, form) -> (samples, series, points) of each panel
    panels: dict[tuple[int, float, str, str, str], tuple[int, int, int]] = field(default_factory=dict)
    # Panels whose dashboard query reads raw series only (no recorded series): recorded == raw form
    raw_panels: set[tuple[str, str]] = field(default_factory=set)
    # (pods, range_h, uid) -> Cost of the llm-d reference dashboard of that uid, and per panel
    reference: dict[tuple[int, float, str], Cost] = field(default_factory=dict)
    reference_panels: dict[tuple[int, float, str, str], tuple[int, int, int]] = field(default_factory=dict)
    samples_written: int = 0
    backfill_s: float = 0.0
    rules_backfill_s: float = 0.0
    compaction_s: float = 0.0
    compacted: bool = True
    query_s: float = 0.0


def fleet_scenario(pods: int, hours: float) -> scenarios.Scenario:
    prefill = pods // 2
    decode = pods - prefill
    return scenarios.get("scale", prefill_pods=prefill, decode_pods=decode, rps=10.0 * decode,
                         duration_min=hours * 60, namespace=f"fleet-{pods}", vllm_version="0.12.0",
                         epp_family="llm_d_router")  # fmt: skip


def reference_queries(uid: str) -> list[PanelQuery]:
    """llm-d's own dashboard for `uid`'s purpose, as panel queries (both forms the same)."""
    return [PanelQuery("llm-d", p.title, "A", p.width, False, p.expr, p.expr) for p in REFERENCES[uid]]


def panel_queries(cfg: dict[str, Any], uids: Sequence[str] | None = None) -> Iterator[PanelQuery]:
    """Every target of every panel, recorded (as in the dashboard JSON) and raw."""
    ctx = builder.dashboard_context(cfg)
    raw_ctx = ctx.inlined()
    built = render.build_all(cfg)
    for spec in render.specs(cfg):
        if uids and spec.uid not in uids:
            continue
        by_id = {p["id"]: p for p in built[spec.uid].json["panels"]}
        for row in spec.rows:
            for panel in row.panels:
                data = by_id[built[spec.uid].panels[panel.ident].id]
                for q, target in zip(panel.queries, data["targets"], strict=True):
                    recorded = signals.query(ctx, q.signal, **q.variant)
                    if recorded != target["expr"]:
                        raise AssertionError(f"{spec.uid} / {panel.title}: JSON target differs from the catalog")
                    yield PanelQuery(spec.uid, panel.title, target["refId"], data["gridPos"]["w"],
                                     bool(target.get("instant")), recorded,
                                     signals.query(raw_ctx, q.signal, **q.variant))


class Client:
    """Prometheus' query API with stats, timed from the client's side."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def run(self, expr: str, *, start: float, end: float, step: float, instant: bool) -> dict[str, Any]:
        if instant:
            path, params = "/api/v1/query", {"query": expr, "time": repr(end), "stats": "all"}
        else:
            path = "/api/v1/query_range"
            params = {"query": expr, "start": repr(start), "end": repr(end), "step": repr(step), "stats": "all"}
        began = time.perf_counter()
        resp = self.session.post(self.url + path, data=params, timeout=600)
        wall = time.perf_counter() - began
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}\n  query: {expr[:2000]}")
        data = body["data"]
        stats = data["stats"]
        result = data["result"] if data["resultType"] in ("matrix", "vector") else [data["result"]]
        points = sum(len(s["values"]) if "values" in s else 1 for s in result)
        return {"samples": int(stats["samples"]["totalQueryableSamples"]),
                "peak": int(stats["samples"]["peakSamples"]), "series": len(result), "points": points,
                "wall_s": wall, "eval_s": float(stats["timings"]["evalTotalTime"])}

    def close(self) -> None:
        self.session.close()


def grafana_values(namespace: str, rate_interval: str, interval: str, range_s: float) -> dict[str, str]:
    """The namespace picked, model and cluster on All (Grafana's allValue `.*`)."""
    return {"namespace": regex_value([namespace]), "model_name": ".*", "cluster": ".*",
            "__rate_interval": rate_interval, "__interval": interval,
            "__range": f"{int(range_s)}s", "__range_s": str(int(range_s))}


def measure_refresh(client: Client, queries: Sequence[PanelQuery], form: str, namespace: str,
                    range_end: float, range_s: float, scrape_s: float) -> tuple[Cost, dict[str, tuple[int, int, int]]]:
    cost = Cost()
    per_panel: dict[str, tuple[int, int, int]] = {}
    for q in queries:
        req = grafana_request(range_end - range_s, range_end, q.width, scrape_s)
        expr = interpolate(q.recorded if form == "recorded" else q.raw,
                           grafana_values(namespace, req.rate_interval, req.interval, range_s))
        r = client.run(expr, start=req.start, end=req.end, step=req.step_s, instant=q.instant)
        cost.add(r)
        samples, series, points = per_panel.get(q.panel, (0, 0, 0))
        per_panel[q.panel] = (samples + r["samples"], series + r["series"], points + r["points"])
    return cost, per_panel


def rules_cost(client: Client, cfg: dict[str, Any], namespace: str, at: float) -> tuple[int, int]:
    """Samples one evaluation of every recording rule touches for one namespace, and the series
    it writes: the standing cost that buys cheap refreshes."""
    ctx = signals.context(cfg, scope={"namespace": ("=", namespace)})
    samples = series = 0
    for name, sig in signals.signals(cfg).items():
        if sig.record is None:
            continue
        for variant in sig.variants:
            r = client.run(signals.expression(ctx, name, **variant), start=at, end=at, step=1, instant=True)
            samples += r["samples"]
            series += r["series"]
    return samples, series


def serve(cfg: dict[str, Any], pods: Sequence[int], hours: float, work: Path,
          compact: bool = True) -> tuple[ScenarioPrometheus, float, float]:
    fleets = [fleet_scenario(n, hours) for n in pods]
    combined = scenarios.combine(*fleets, name="fleets")
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "recording-rules.yaml"
    rules.write_text(make.build(cfg)[rules_render.RULE_FILE])
    prom = cfg["prometheus"]
    return backfill.serve(combined, work, [rules], interval_s=promql.duration_seconds(prom["scrape_interval"]),
                          evaluation_interval_s=promql.duration_seconds(prom["evaluation_interval"]),
                          compact=compact)


def run(cfg: dict[str, Any], work: Path, *, pods: Sequence[int] = (8, 64, 128), hours: float = 6.0,
        ranges_h: Sequence[float] = (6.0, 1.0), uids: Sequence[str] | None = None,
        compact: bool = True) -> QueryCost:
    ranges = [r for r in ranges_h if r <= hours]
    queries = list(panel_queries(cfg, uids))
    titles = {spec.uid: spec.title for spec in render.specs(cfg) if not uids or spec.uid in uids}
    result = QueryCost(hours, ranges, [Fleet(n, f"fleet-{n}") for n in pods], titles)
    mixed = {(q.dashboard, q.panel) for q in queries if q.recorded != q.raw}
    result.raw_panels = {(q.dashboard, q.panel) for q in queries} - mixed
    scrape_s = promql.duration_seconds(cfg["prometheus"]["scrape_interval"])
    served, result.rules_backfill_s, result.compaction_s = serve(cfg, pods, hours, work, compact)
    result.compacted = compact
    client = Client(served.url)
    try:
        result.backfill_s = served.backfill.seconds
        result.samples_written = served.backfill.samples
        end = served.end_time
        measuring = time.monotonic()
        for fleet in result.fleets:
            ns = fleet.namespace
            fleet.series = int(served.server.query_value(f'count({{namespace="{ns}", job!=""}})', end) or 0)
            fleet.rules_samples, fleet.rules_series = rules_cost(client, cfg, ns, end)
            for range_h in ranges:
                for uid in titles:
                    mine = [q for q in queries if q.dashboard == uid]
                    for form in FORMS:
                        cost, per_panel = measure_refresh(client, mine, form, ns, end, range_h * 3600, scrape_s)
                        result.costs[(fleet.pods, range_h, uid, form)] = cost
                        for panel, figures in per_panel.items():
                            result.panels[(fleet.pods, range_h, uid, panel, form)] = figures
                    if uid in REFERENCES:
                        cost, per_panel = measure_refresh(client, reference_queries(uid), "recorded", ns, end,
                                                          range_h * 3600, scrape_s)
                        result.reference[(fleet.pods, range_h, uid)] = cost
                        for panel, figures in per_panel.items():
                            result.reference_panels[(fleet.pods, range_h, uid, panel)] = figures
        result.query_s = time.monotonic() - measuring
    finally:
        client.close()
        served.stop()
    return result


def totals(result: QueryCost, pods: int, range_h: float, form: str) -> Cost:
    out = Cost()
    for uid in result.dashboards:
        c = result.costs[(pods, range_h, uid, form)]
        out.queries += c.queries
        out.samples += c.samples
        out.peak = max(out.peak, c.peak)
        out.series += c.series
        out.points += c.points
        out.wall_s += c.wall_s
        out.eval_s += c.eval_s
    return out


def as_dict(result: QueryCost) -> Mapping[str, Any]:
    return {
        "hours": result.hours, "ranges_h": result.ranges_h,
        "fleets": [vars(f) for f in result.fleets], "dashboards": result.dashboards,
        "costs": [{"pods": k[0], "range_h": k[1], "dashboard": k[2], "form": k[3], **vars(v)}
                  for k, v in result.costs.items()],
        "panels": [{"pods": k[0], "range_h": k[1], "dashboard": k[2], "panel": k[3], "form": k[4],
                    "samples": v[0], "series": v[1], "points": v[2]} for k, v in result.panels.items()],
        "reference": [{"pods": k[0], "range_h": k[1], "dashboard": k[2], **vars(v)}
                      for k, v in result.reference.items()],
        "reference_panels": [{"pods": k[0], "range_h": k[1], "dashboard": k[2], "panel": k[3], "samples": v[0],
                              "series": v[1], "points": v[2]} for k, v in result.reference_panels.items()],
        "reference_source": llmd_reference.SOURCE,
        "raw_panels": sorted(result.raw_panels), "samples_written": result.samples_written,
        "backfill_s": result.backfill_s,
        "rules_backfill_s": result.rules_backfill_s, "compaction_s": result.compaction_s,
        "query_s": result.query_s,
    }
