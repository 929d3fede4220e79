"""docs/benchmarks.md from one harness run: figures beside the machine and tools they came from."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import llmd_reference
from bench.build_cost import BuildCost
from bench.detection import AlertTiming, Cell, Detection
from bench.query_cost import FORMS, REFERENCES, Cost, QueryCost, totals

# Issue 15's goals for the dashboards' refresh cost.
REFERENCE_GOAL = 50.0  # our Drill-Down against llm-d's own, fewer samples by at least this
REFERENCE_GOAL_PODS = 64
RAW_GOAL = 100.0  # Performance and Coordinator: raw form against recorded


@dataclass
class Results:
    machine: dict[str, Any]
    command: str
    wall_s: float
    load_at_end: tuple[float, float, float]
    detection: Detection | None = None
    query: QueryCost | None = None
    build: BuildCost | None = None


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _min(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:g}"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(num: float, den: float) -> str:
    return "—" if not den else f"{num / den:,.1f}"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


# --- machine -------------------------------------------------------------------------------------


def machine_section(r: Results) -> list[str]:
    m = r.machine
    rows = [
        ("CPU", f"{m['cpu']}, {m['nproc']} cores (nproc)"),
        ("Memory", f"{m['memory_gib']} GiB"),
        ("Kernel / Python", f"{m['kernel']} / {m['python']}"),
        *((name, f"`{version}`") for name, version in m["tools"].items()),
        ("Load average (1/5/15 min) at start", _load(m["load_at_start"])),
        ("Load average at end", _load(r.load_at_end)),
        ("Harness wall time", f"{r.wall_s / 60:.1f} min"),
    ]
    return ["## Machine and tools", "", *_table(("", ""), rows),
            "Wall times depend on what else the machine runs (see the load averages); sample and "
            "series counts do not.", ""]


# --- detection -------------------------------------------------------------------------------------


def _cells(d: Detection, alert: str, line: str) -> list[Cell]:
    return [c for c in d.cells if c.alert == alert and c.line == line]


def _lines(d: Detection) -> list[str]:
    return sorted(d.lines, key=lambda v: [int(x) for x in v.split(".")], reverse=True)


def _latencies(d: Detection, at: AlertTiming) -> list[tuple[str, float, float, list[float | None]]]:
    """(scenario, episode start, episode length, latency per line) of every required episode."""
    lines = _lines(d)
    by_line = {line: _cells(d, at.name, line) for line in lines}
    out = []
    for i, cell in enumerate(by_line[lines[0]]):
        for j, ep in enumerate(cell.episodes):
            if ep.required:
                lat = [by_line[line][i].episodes[j].latency_s for line in lines]
                out.append((cell.scenario, ep.start_s, ep.length_s, lat))
    return out


def detection_section(d: Detection) -> list[str]:
    t = d.timing
    lines = _lines(d)
    head = " / ".join(lines)
    out = [
        "## 1. Alert detection latency and accuracy", "",
        f"Every alert ({len(d.alerts)}) on every simulator scenario ({len(d.scenarios)}), at the "
        f"config's {t.scrape_s:g} s scrape interval and {t.eval_s:g} s rule evaluation interval, "
        f"with the rate window {t.window_s / 60:g} min, on promtool {head} "
        f"({'; '.join(f'{k}: `{v}`' for k, v in d.lines.items())}). Took {d.seconds:.0f} s.", "",
        "**Method (exact).** Each scenario is rendered as promtool `input_series`; the rendered "
        "recording and alert rules are loaded with `group_eval_order` set to the rule files' "
        "order (promtool otherwise evaluates groups in random order) and one `promql_expr_test` "
        "per evaluation asks `count by (alertname) (ALERTS{alertstate=\"firing\"})` expecting "
        "nothing. promtool evaluates every group at every step before checking expressions, so "
        "each failure it reports is exactly the set of alerts firing at that evaluation.", "",
        "**Which alert should fire when** comes from the simulator's truth at every evaluation "
        "(`simulator.scenarios.signals_at`, derived from the scenario's conditions) through "
        "`harness/truth.py`, never from a table of scenario names. A run of evaluations where an "
        "alert's condition holds is an episode. An episode shorter than "
        f"{_min(d.alerts[0].quiet_below_s) if d.alerts else '2'} min is *quiet*: no alert may fire on "
        "it, and a firing there is a **false positive**. An episode at least as long as the alert's "
        "goal (*page within*: the time by which a fault must page) must be detected, and so must one "
        "at least as long as the design floor (`for` + warm-up + scrape + evaluation) for an alert "
        "without a goal (latency = first firing - episode start; none = **missed**); an episode in "
        "between is a transient, which may fire. A firing is justified from `start + for` to the "
        "end of an episode that is not quiet + rate window + `keep_firing_for` + scrape + "
        "evaluation; any other firing is a **false positive**. A scenario where the condition "
        "never holds is benign for that alert.", "",
        "**Honest floor** = scrape interval + evaluation interval: one scrape to sample the fault, "
        "one evaluation to read it, nothing of this project's design (no `for`, no rate window). "
        "*Latency / honest floor* says how many times that minimum an alert takes. In the "
        "simulation the fault starts on a scrape and the rules evaluate on the scrape grid. "
        "Latency on 3.5 can be one scrape shorter than on 2.53: Prometheus 3 range selectors "
        "exclude the sample at the window's left edge, so a window holds one sample less. The "
        "alerts read recorded series through a chain of recording groups; promtool evaluates the "
        "chain in one step, a live Prometheus schedules each group on its own phase and can add up "
        "to one evaluation interval per group in the chain (column *chain*; `1 / 4`: the "
        "short-window path waits on one group, the rate-window path on four).", "",
    ]
    total_fp = sum(1 for c in d.cells if c.false_s)
    total_missed = sum(c.missed for c in d.cells)
    out += [f"**Totals:** false positives (alert x scenario x line with an unjustified firing): "
            f"**{total_fp}** (goal 0); missed faults: **{total_missed}** (goal 0).", ""]
    out += _line_differences(d)

    rows = []
    for at in d.alerts:
        lats = _latencies(d, at)
        floor = at.honest_floor_s(t)
        first = [c for c in _cells(d, at.name, lines[0])]
        benign = [c for c in first if c.benign]
        fp_benign = sorted({c.scenario for c in d.cells if c.alert == at.name and c.benign and c.false_s})
        fp_fault = sorted({c.scenario for c in d.cells if c.alert == at.name and not c.benign and c.false_s})
        missed = sorted({c.scenario for c in d.cells if c.alert == at.name and c.missed})
        transients = [(c.scenario, e) for c in first for e in c.transients if not e.quiet]
        fired_t = sorted({s for s, e in transients if e.detected_s is not None})
        worst = _worst_latency(d, at)
        if lats:
            lat_text = "; ".join(f"{sc} (from min {_min(start)}) " + "/".join(_min(x) for x in lat)
                                 + " = " + "/".join("—" if x is None else f"{x / floor:.1f}x" for x in lat)
                                 for sc, start, _, lat in lats)
            ratio = "—" if worst is None else f"{worst / floor:.1f}"
        else:
            lat_text, ratio = "not exercised", "—"
        rows.append((
            f"`{at.name}`", _min(at.for_s), _min(at.goal_s), _min(floor), _chain(d, at.name),
            lat_text, _min(worst), ratio, _goal_text(at, worst),
            f"{len(fp_benign)} of {len(benign)}" + (f" ({', '.join(fp_benign)})" if fp_benign else ""),
            ", ".join(fp_fault) or "0", ", ".join(missed) or "0",
            f"{len(fired_t)} of {len(transients)}" + (f" ({', '.join(fired_t)})" if fired_t else ""),
        ))
    out += ["### Per alert", "",
            f"Latencies in minutes, per line ({head}), then as multiples of the honest floor. *goal*: "
            "a fault lasting at least this long "
            "must page within this many minutes of its start. *benign FP*: benign scenarios in "
            "which it fired. *fault FP*: fault scenarios with a firing outside any justified window "
            "(a quiet episode included). *transients fired*: episodes longer than quiet yet shorter "
            "than the goal or floor that still fired (not an error).", ""]
    out += _table(("Alert", "for", "goal (page within)", "honest floor", "chain", "latency by scenario",
                   "worst latency", "worst latency / honest floor", "goal met", "benign FP", "fault FP",
                   "missed", "transients fired"), rows)

    # The scenario x alert matrix.
    short = {at.name: at.name.removeprefix("PD") for at in d.alerts}
    grid = []
    for sc in d.scenarios:
        row = [f"`{sc['name']}`", _min(None if sc["fault_start_min"] is None else sc["fault_start_min"] * 60)]
        for at in d.alerts:
            per = {line: next(c for c in d.cells if c.alert == at.name and c.scenario == sc["name"]
                              and c.line == line) for line in lines}
            row.append(_cell_text(per, lines))
        grid.append(row)
    out += ["### Scenario x alert", "",
            "`9/9.5`: detected, latency in minutes per line; `—`: condition never held and nothing "
            "fired; `t`: a transient episode that did not fire, `t!` one that fired; `FP n`: n "
            "unjustified firing evaluations; `MISS`: a fault at least as long as the goal (or the "
            "floor) that never fired.", ""]
    out += _table(("Scenario", "fault at (min)", *short.values()), grid)
    out += _transients(d)
    unexercised = [at.name for at in d.alerts if not _latencies(d, at)]
    if unexercised:
        out += [f"Not exercised by any scenario: {', '.join(f'`{n}`' for n in unexercised)} "
                "(no scenario in this run makes its condition in `harness/truth.py` hold).", ""]
    return out


def _chain(d: Detection, alert: str) -> str:
    deepest = d.depth.get(alert, 0)
    fast = d.fast_depth.get(alert)
    return str(deepest) if fast is None else f"{fast} / {deepest}"


def _worst_latency(d: Detection, at: AlertTiming) -> float | None:
    lats = [x for _, _, _, lat in _latencies(d, at) for x in lat if x is not None]
    return max(lats) if lats else None


def _goal_text(at: AlertTiming, worst: float | None) -> str:
    if at.goal_s is None:
        return "no goal"
    if worst is None:
        return "not exercised"
    return "met" if worst <= at.goal_s else "**not met**"


def _line_differences(d: Detection) -> list[str]:
    lines = _lines(d)
    if len(lines) < 2:
        return []
    notes = []
    for at in d.alerts:
        diffs = set()
        for sc in d.scenarios:
            first = {line: next(c for c in d.cells if c.alert == at.name and c.scenario == sc["name"]
                                and c.line == line).firing_s for line in lines}
            a, b = first[lines[0]], first[lines[1]]
            if a != b:
                diffs.add((sc["name"], (b[0] - a[0]) / 60 if a and b else None, len(b) - len(a)))
        if diffs:
            parts = [f"{sc}: first firing {lines[1]} minus {lines[0]} = {_min(None if x is None else x * 60)} min, "
                     f"{n:+d} firing evaluations" for sc, x, n in sorted(diffs)]
            notes.append(f"- `{at.name}`: " + "; ".join(parts))
    if not notes:
        return [f"Both lines ({' and '.join(lines)}) fired at identical evaluations.", ""]
    return [f"Where the lines differ ({lines[0]} vs {lines[1]}):", "", *notes, ""]


def _transients(d: Detection) -> list[str]:
    lines = _lines(d)
    rows = []
    for c in d.cells:
        if c.line != lines[0]:
            continue
        for e in c.transients:
            if e.detected_s is not None:
                rows.append((f"`{c.alert}`", c.scenario, _min(e.start_s), _min(e.length_s), _min(e.detected_s)))
    if not rows:
        return []
    return ["### Transient episodes that fired", "",
            "Shorter than the goal (or the floor), so not required to fire; listed so a reader can "
            "judge them. A quiet episode that fired is a false positive and is counted as one.", "",
            *_table(("Alert", "Scenario", "Condition from (min)", "Held for (min)", f"First firing ({lines[0]}, min)"),
                    rows)]


def _cell_text(per: dict[str, Cell], lines: list[str]) -> str:
    first = per[lines[0]]
    parts = []
    required = [j for j, e in enumerate(first.episodes) if e.required]
    if required:
        lat = ["MISS" if per[line].episodes[j].latency_s is None else _min(per[line].episodes[j].latency_s)
               for j in required[:1] for line in lines]
        parts.append("/".join(lat) if len(set(lat)) > 1 else lat[0])
    if first.transients:
        fired = any(e.detected_s is not None and not e.quiet for e in first.transients)
        parts.append("t!" if fired else "t")
    fp = max(len(per[line].false_s) for line in lines)
    if fp:
        parts.append(f"FP {fp}")
    return " ".join(parts) or "—"


# --- query cost -------------------------------------------------------------------------------------


def query_section(q: QueryCost) -> list[str]:
    pods = [f.pods for f in q.fleets]
    small, big = pods[0], pods[-1]
    out = [
        "## 2. Dashboard query cost", "",
        f"One Prometheus 3.5 holds {len(pods)} healthy P/D fleets of "
        f"{', '.join(map(str, pods))} model-server pods (half prefill, half decode, 10 requests/s "
        f"per decode pod, vLLM 0.12, llm-d-router EPP), each in its own namespace, over {q.hours:g} h "
        f"at the 30 s scrape interval: {_n(q.samples_written)} samples backfilled with "
        f"`promtool tsdb create-blocks-from openmetrics` in {q.backfill_s:.0f} s, then the recording "
        f"rules with `promtool tsdb create-blocks-from rules` in {q.rules_backfill_s:.0f} s; "
        + (f"then {q.compaction_s:.0f} s waiting for Prometheus to compact the hundreds of small blocks "
           "that leaves, so queries run on the few blocks a running server has. " if q.compacted else
           "queries then ran at once on the hundreds of small blocks that leaves (--no-compaction-wait), "
           "which slows them. ")
        + f"Queries took {q.query_s:.0f} s.", "",
        "Every panel query of each dashboard runs as Grafana sends it: namespace variable on one "
        "fleet, model and cluster on All, the panel's step and `$__rate_interval` from its width "
        "(a 1800-pixel dashboard; Grafana's interval rounding, never below the 30 s scrape "
        "interval), range queries (tables: instant), `stats=all`. *Samples* is "
        "`stats.samples.totalQueryableSamples` summed over a refresh; *series* the series the "
        "panels return; *wall* the client round trips summed, one query after another. "
        "*Recorded* is the dashboard as built; *raw* is the same catalog signals inlined "
        "(`signals.context(..., inline=True)`): rates and `histogram_quantile` over the per-pod "
        "histograms, as upstream llm-d dashboards query, over `$__rate_interval` (shorter than "
        "the rules' 5 m window, so the raw figures are if anything low). Both forms run on the "
        "same server in the same run and return the same series.", "",
    ]
    rows = []
    for f in q.fleets:
        rows.append((f.pods, _n(f.series), _n(f.rules_series), _n(f.rules_samples)))
    out += ["### Fleets", "",
            "*Recording rules per evaluation*: series the recording rules write and samples they "
            "touch in one evaluation for that namespace (every 30 s, watched or not): the "
            "standing cost that makes refreshes cheap.", ""]
    out += _table(("Pods", "Raw series", "Recorded series per evaluation",
                   "Samples per rule evaluation"), rows)
    for range_h in q.ranges_h:
        rows = []
        for uid, title in [*q.dashboards.items(), ("*", "All three")]:
            for n in pods:
                rec = _cost(q, n, range_h, uid, "recorded")
                raw = _cost(q, n, range_h, uid, "raw")
                rows.append((title, n, rec.queries, _n(rec.series), _n(rec.points), _n(rec.samples),
                             _n(raw.samples), _ratio(raw.samples, rec.samples), _ratio(rec.samples, rec.points),
                             f"{rec.wall_s:.2f}", f"{raw.wall_s:.2f}", _ratio(raw.wall_s, rec.wall_s)))
        out += [f"### Refresh over the last {range_h:g} h", ""]
        out += _table(("Dashboard", "Pods", "Queries", "Series returned", "Points returned",
                       "Samples (recorded)", "Samples (raw)", "Raw / recorded", "Samples per point (recorded)",
                       "Wall s (recorded)", "Wall s (raw)", "Wall raw / recorded"), rows)
    out += _goals(q, small, big)
    out += _reference_section(q)
    out += _raw_in_recorded(q, small, big)
    out += _heaviest(q, big)
    return out


def _cost(q: QueryCost, pods: int, range_h: float, uid: str, form: str) -> Cost:
    return totals(q, pods, range_h, form) if uid == "*" else q.costs[(pods, range_h, uid, form)]


def _goals(q: QueryCost, small: int, big: int) -> list[str]:
    range_h = q.ranges_h[0]
    rows = []
    for uid, title in [*q.dashboards.items(), ("*", "All three")]:
        a, b = _cost(q, small, range_h, uid, "recorded"), _cost(q, big, range_h, uid, "recorded")
        raw = _cost(q, big, range_h, uid, "raw")
        g_series = b.series / a.series if a.series else 0
        g_points = b.points / a.points if a.points else 0
        g_samples = b.samples / a.samples if a.samples else 0
        below = raw.samples / b.samples if b.samples else 0
        rows.append((title, f"{g_series:.2f}", f"{g_points:.2f}", f"{g_samples:.2f}",
                     "met" if g_samples <= g_series else "**not met**",
                     "met" if g_samples <= g_points else "**not met**",
                     f"{below:.1f}", "met" if below >= 10 else "**not met**"))
    return [f"### Goals ({range_h:g} h range, {small} -> {big} pods)", "",
            "Growth: samples touched per refresh should grow no faster than the series the panels "
            "return. Panels differ in step (a 4-column stat panel gets half the points of a "
            "12-column graph), so growth is also given against the points returned (series x "
            f"steps). Raw: at {big} pods the recorded form should touch at least 10x fewer samples.", "",
            *_table(("Dashboard", "Series growth", "Points growth", "Samples growth", "Goal (vs series)",
                     "Goal (vs points)", f"Raw / recorded at {big} pods", "10x goal"), rows)]


def _goal_pods(q: QueryCost) -> int:
    pods = [f.pods for f in q.fleets]
    return REFERENCE_GOAL_PODS if REFERENCE_GOAL_PODS in pods else pods[-1]


def reference_ratio(q: QueryCost, pods: int, range_h: float, uid: str) -> float:
    ours = q.costs[(pods, range_h, uid, "recorded")].samples
    return q.reference[(pods, range_h, uid)].samples / ours if ours else 0.0


def _reference_section(q: QueryCost) -> list[str]:
    uids = [uid for uid in REFERENCES if uid in q.dashboards and any(k[2] == uid for k in q.reference)]
    if not uids:
        return []
    src = llmd_reference.SOURCE
    goal_pods = _goal_pods(q)
    out = ["### Against llm-d's own dashboards", "",
           f"llm-d's Diagnostic Drill-Down (`{src['repo']}`, `{src['path']}` at `{src['commit'][:12]}`, "
           f"read from the fork `{src['read_from']}`; its {len(llmd_reference.DRILLDOWN)} queries are "
           "restated in bench/llmd_reference.py) refreshed the same way on the same fleets: namespace "
           "variable on one fleet, every model, Grafana's step for each panel's width. Goal: at "
           f"{REFERENCE_GOAL_PODS} pods ours touches at least {REFERENCE_GOAL:g}x fewer samples.", ""]
    rows = []
    for uid in uids:
        for range_h in q.ranges_h:
            for f in q.fleets:
                ref = q.reference[(f.pods, range_h, uid)]
                ours = q.costs[(f.pods, range_h, uid, "recorded")]
                ratio = reference_ratio(q, f.pods, range_h, uid)
                goal = ("met" if ratio >= REFERENCE_GOAL else "**not met**") if f.pods == goal_pods else ""
                rows.append((q.dashboards[uid], f"{range_h:g} h", f.pods, ref.queries, _n(ref.series), _n(ref.samples),
                             ours.queries, _n(ours.series), _n(ours.samples), f"{ratio:,.1f}", goal))
    out += _table(("Ours", "Range", "Pods", "llm-d queries", "llm-d series", "llm-d samples", "Our queries",
                   "Our series", "Our samples", "llm-d / ours", f"{REFERENCE_GOAL:g}x goal"), rows)
    range_h = q.ranges_h[0]
    heavy = sorted(((k[3], v) for k, v in q.reference_panels.items() if k[0] == goal_pods and k[1] == range_h),
                   key=lambda kv: -kv[1][0])
    out += [f"llm-d's panels at {goal_pods} pods, {range_h:g} h:", "",
            *_table(("Panel", "Samples", "Series", "Points", "Samples per point"),
                    [(panel, _n(v[0]), _n(v[1]), _n(v[2]), _ratio(v[0], v[2])) for panel, v in heavy])]
    return out


def _raw_panels(q: QueryCost, pods: int, range_h: float) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Panels whose dashboard query reads raw series only, with (samples, series, points)."""
    return {(k[2], k[3]): v for k, v in q.panels.items()
            if k[0] == pods and k[1] == range_h and k[4] == "recorded" and (k[2], k[3]) in q.raw_panels}


def _if_recorded(q: QueryCost, pods: int, range_h: float) -> int:
    """Samples of the three refreshes if every panel listed by _raw_panels read one sample per point."""
    heavy = _raw_panels(q, pods, range_h)
    total = totals(q, pods, range_h, "recorded").samples
    return total - sum(v[0] for v in heavy.values()) + sum(v[2] for v in heavy.values())


def _raw_in_recorded(q: QueryCost, small: int, pods: int) -> list[str]:
    range_h = q.ranges_h[0]
    heavy = sorted(_raw_panels(q, pods, range_h).items(), key=lambda kv: -kv[1][0])
    total = totals(q, pods, range_h, "recorded")
    share = sum(v[0] for _, v in heavy) / (total.samples or 1)
    rows = [(q.dashboards[uid], panel, _n(v[0]), _n(v[2]), _ratio(v[0], v[2])) for (uid, panel), v in heavy]
    small_total = totals(q, small, range_h, "recorded")
    after_small, after_big = _if_recorded(q, small, range_h), _if_recorded(q, pods, range_h)
    growth_after = after_big / (after_small or 1)
    growth_points = total.points / (small_total.points or 1)
    if not heavy:
        effect = "No panel reads raw series only."
    else:
        effect = (f"Together they are {100 * share:.0f}% of the samples the three refreshes touch. Derived from "
                  "the same figures: if each read one recorded sample per point, the three refreshes would "
                  f"touch {_n(after_big)} samples at {pods} pods and {_n(after_small)} at {small} "
                  f"(growth {growth_after:.2f} against points growth {growth_points:.2f}).")
    return [f"### Panels that read raw series in the recorded form ({pods} pods, {range_h:g} h)", "",
            "A panel reading one recorded series costs one sample per point returned (status panels "
            "combining two or three recorded series, two or three). The panels below read raw series "
            "only: a raw gauge costs one sample per point, a raw rate one per raw sample in "
            "`$__rate_interval`. The dashboards' per-pod rates are recorded (`namespace_model_pod:` "
            "records, one series per pod and signal, never read by an alert: "
            f"tests/test_scale_out_rules.py), so they read one sample per point. {effect}", "",
            *_table(("Dashboard", "Panel", "Samples", "Points", "Samples per point"), rows)]


def _heaviest(q: QueryCost, pods: int, top: int = 8) -> list[str]:
    range_h = q.ranges_h[0]
    rec = {(k[2], k[3]): v[0] for k, v in q.panels.items()
           if k[0] == pods and k[1] == range_h and k[4] == "recorded"}
    raw = {(k[2], k[3]): v[0] for k, v in q.panels.items()
           if k[0] == pods and k[1] == range_h and k[4] == "raw"}
    rows = [(q.dashboards[uid], panel, _n(raw[(uid, panel)]), _n(rec[(uid, panel)]),
             _ratio(raw[(uid, panel)], rec[(uid, panel)]))
            for (uid, panel), _ in sorted(raw.items(), key=lambda kv: -kv[1])[:top]]
    return [f"### Heaviest panels in the raw form ({pods} pods, {range_h:g} h)", "",
            *_table(("Dashboard", "Panel", "Samples (raw)", "Samples (recorded)", "Raw / recorded"), rows)]


# --- build ---------------------------------------------------------------------------------------------


def build_section(b: BuildCost) -> list[str]:
    rows = [
        ("`python build.py` wall time (median of runs)",
         f"{b.wall_median_s:.2f} s ({', '.join(f'{w:.2f}' for w in b.wall_s)})"),
        ("`python build.py` peak memory (max RSS of runs)", f"{max(b.peak_rss_mib):.0f} MiB"),
        ("Files `build.py` writes", b.files),
    ]
    if b.suite_wall_s is not None:
        rows.append((f"promtool suite (`pytest {b.suite}`) wall time", f"{b.suite_wall_s:.1f} s"))
        rows.append(("promtool suite tests passed / failed", f"{b.suite_passed} / {b.suite_failed}"))
    if b.suite_note:
        rows.append(("promtool suite note", b.suite_note))
    return ["## 3. Build and test cost", "", *_table(("", ""), rows)]


# --- the document ------------------------------------------------------------------------------------


def headline(r: Results) -> list[str]:
    out = ["## Headline", ""]
    if r.detection:
        d = r.detection
        fp = sum(1 for c in d.cells if c.false_s)
        missed = sum(c.missed for c in d.cells)
        out.append(f"- Alerts: {len(d.alerts)} alerts x {len(d.scenarios)} scenarios x "
                   f"{len(d.lines)} Prometheus lines: {fp} false positives, {missed} missed faults.")
        for at in d.alerts:
            if at.goal_s is None:
                continue
            worst = _worst_latency(d, at)
            ratio = "" if worst is None else f", {worst / at.honest_floor_s(d.timing):.1f}x the honest floor"
            out.append(f"  - `{at.name}`: worst latency {_min(worst)} min after onset (goal "
                       f"{_min(at.goal_s)}: {_goal_text(at, worst)}){ratio}.")
    if r.query:
        q = r.query
        big, range_h = q.fleets[-1].pods, q.ranges_h[0]
        rec, raw = totals(q, big, range_h, "recorded"), totals(q, big, range_h, "raw")
        small = q.fleets[0].pods
        low = totals(q, small, range_h, "recorded")
        out.append(f"- Dashboards at {big} pods, {range_h:g} h range, all three refreshed: "
                   f"{_n(rec.samples)} samples touched recorded vs {_n(raw.samples)} raw "
                   f"({_ratio(raw.samples, rec.samples)}x fewer; goal 10x), {rec.wall_s:.2f} s vs "
                   f"{raw.wall_s:.2f} s of query wall time. From {small} to {big} pods samples grew "
                   f"{rec.samples / (low.samples or 1):.2f}x while the series returned grew "
                   f"{rec.series / (low.series or 1):.2f}x (goal: no faster): "
                   + ("met." if rec.samples * low.series <= low.samples * rec.series else
                      "**not met** (see 2.: the panels that read raw series)."))
        goal_pods = _goal_pods(q)
        for uid in REFERENCES:
            if (goal_pods, range_h, uid) in q.reference:
                ratios = ", ".join(f"{reference_ratio(q, goal_pods, rh, uid):,.1f}x over {rh:g} h" for rh in q.ranges_h)
                worst = min(reference_ratio(q, goal_pods, rh, uid) for rh in q.ranges_h)
                out.append(f"- {q.dashboards[uid]} at {goal_pods} pods against llm-d's own drill-down on the same "
                           f"data: {ratios} fewer samples (goal {REFERENCE_GOAL:g}x: "
                           + ("met)." if worst >= REFERENCE_GOAL else "**not met**)."))
        others = []
        for uid, title in q.dashboards.items():
            if uid in REFERENCES or (goal_pods, range_h, uid, "raw") not in q.costs:
                continue
            raw, rec = (q.costs[(goal_pods, range_h, uid, form)].samples for form in ("raw", "recorded"))
            ratio = raw / (rec or 1)
            others.append(f"{title} {ratio:,.1f}x" + ("" if ratio >= RAW_GOAL else " (**not met**)"))
        if others:
            out.append(f"- Raw form / recorded at {goal_pods} pods, {range_h:g} h: {', '.join(others)} "
                       f"(goal {RAW_GOAL:g}x).")
    if r.build:
        b = r.build
        suite = f"; promtool suite {b.suite_wall_s:.0f} s" if b.suite_wall_s is not None else ""
        out.append(f"- `python build.py`: {b.wall_median_s:.2f} s, {max(b.peak_rss_mib):.0f} MiB peak{suite}.")
    return [*out, ""]


def render(r: Results) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Benchmarks", "",
           f"Generated by `make bench` (`{r.command}`) on {stamp}. Do not edit by hand: every "
           "figure below is a count or a ratio measured in that one run; rerun to refresh.", ""]
    out += headline(r)
    out += machine_section(r)
    if r.detection:
        out += detection_section(r.detection)
    if r.query:
        out += query_section(r.query)
    if r.build:
        out += build_section(r.build)
    return "\n".join(out).rstrip() + "\n"


__all__ = ["FORMS", "Results", "render"]
