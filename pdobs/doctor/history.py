"""The doctor's signals over a time range: what `doctor --report` draws. Data only, no HTML.

Every query is a catalog signal sent through the doctor's `Reader` (inlined, so no recording rule
is needed), as a range query on one step grid that ends at the doctor's evaluation time: the last
point of every series is the value the checklist shows "now".

`PLOTS` says which quantities show each checklist signal and where its threshold lies; it is the
one place to re-point at the checklist's records once the catalog has them.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts import definitions as alert_definitions
from dashboards import ids
from dashboards.spec import SCOPE_VARS
from pdobs import checks
from pdobs.build.model import BuildModel
from pdobs.checks import Verdict
from pdobs.doctor.model import FAIL, NOT_APPLICABLE, PASS, Report
from pdobs.doctor.queries import Key, Reader, project

Config = dict[str, Any]
Points = list[tuple[float, float]]

NS_MODEL = ("namespace", "model")
NS = ("namespace",)
NO_DATA = "NO DATA"

# About this many points per line: 6 h at one a minute keeps a report small enough to attach.
MAX_POINTS = 360
NICE_STEPS_S = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    step: float

    @property
    def times(self) -> list[float]:
        n = round((self.end - self.start) / self.step)
        return [self.start + i * self.step for i in range(n + 1)]


def window(end: float, seconds: float, scrape_interval_s: float) -> Window:
    """A grid ending exactly at `end` (the doctor's evaluation time) and covering `seconds`,
    with a step no finer than a scrape and coarse enough for about MAX_POINTS points."""
    wanted = max(seconds / MAX_POINTS, scrape_interval_s)
    step = next((s for s in NICE_STEPS_S if s >= wanted), math.ceil(wanted))
    n = max(1, math.ceil(seconds / step))
    return Window(end - n * step, end, float(step))


# --- what each checklist signal plots --------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    signal: str
    label: str
    variant: Mapping[str, str] = field(default_factory=dict)
    level: tuple[str, ...] = NS_MODEL


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    fails: str  # "below" | "above" | "inside" (a band up to `upper`) | "at" (fails at the value)
    upper: float | None = None


@dataclass(frozen=True)
class PlotSpec:
    lines: tuple[Line, ...]
    unit: str  # "ops" (per second) | "ratio" | "percent" | "count" | "seconds"
    thresholds: Callable[[Config], list[Threshold]]
    empty: str  # said instead of an empty chart
    note: str = ""  # how to read the chart


def _pct(v: float) -> str:
    return f"{v:.0%}" if round(v * 100) == v * 100 else f"{v:.1%}"


PLOTS: dict[str, PlotSpec] = {
    "nixl_transfers_absent": PlotSpec(
        (Line("kv_transfers", "KV transfers/s (NIXL or Mooncake)"),
         Line("kv_delivered_tokens", "prompt tokens/s delivered to decode")), "ops",
        lambda cfg: [Threshold(0.0, "FAIL at 0: no KV moved", "at")],
        f"no KV evidence: no transfer series (NIXL older than vLLM {checks.NIXL_MIN_VLLM}, Mooncake older "
        f"than {checks.MOONCAKE_MIN_VLLM}, other connectors) and no prompt tokens by source (older than "
        f"{checks.DELIVERY_MIN_VLLM}), or no KV cache moved at all",
        "KV transfers completed per second and prompt tokens decode received by KV transfer; the signal "
        "fails where neither moves in the rate window"),
    "prefill_idle": PlotSpec(
        (Line("prefill_work_ratio", "prefill requests per decode request"),), "ratio",
        lambda cfg: [Threshold(cfg["signals"]["prefill_idle_ratio"],
                               f"FAIL below {cfg['signals']['prefill_idle_ratio']:g}", "below")],
        "no requests finished on decode pods in the range: the ratio has no denominator",
        "about 1 when every request is prefilled on a prefill pod, about 0 when prefill is idle"),
    "decode_does_all_work": PlotSpec(
        (Line("decode_work_share", "decode share of processed tokens"),), "percent",
        lambda cfg: [Threshold(cfg["signals"]["decode_work_share"],
                               f"FAIL above {_pct(cfg['signals']['decode_work_share'])}", "above")],
        "no engine-step tokens in the range: no pod processed any work",
        "well below 100 % when prefill pods compute the prompts"),
    "ttft_roles_equal": PlotSpec(
        (Line("ttft_decode_over_prefill", "TTFT decode / TTFT prefill"),), "ratio",
        lambda cfg: [Threshold(1 - cfg["signals"]["ttft_equal_tolerance"],
                               f"FAIL inside 1 ± {_pct(cfg['signals']['ttft_equal_tolerance'])}", "inside",
                               1 + cfg["signals"]["ttft_equal_tolerance"])],
        "no TTFT ratio in the range: prefill pods record no TTFT (they compute no prompts), which "
        "counts as equal",
        "differs from 1 when decode waits for the KV pull rather than computing the prompt; a gap "
        "means prefill recorded no TTFT"),
    "epp_ready_lt_pods": PlotSpec(
        (Line("epp_ready_pods_ns", "EPP ready pods", level=NS),
         Line("vllm_pods_ns", "model-server pods up", level=NS)), "count",
        lambda cfg: [],
        "no EPP ready-pod series in this namespace: nothing to compare (is the EPP scraped?)",
        "the signal fails where the EPP sees fewer ready pods than are up"),
    "kv_not_delivered": PlotSpec(
        (Line("kv_delivery_ratio", "share of uncached prompt tokens delivered by KV transfer"),), "percent",
        lambda cfg: [Threshold(0.0, "FAIL at 0: nothing delivered", "at")],
        f"no prompt tokens by source in the range: vLLM older than {checks.DELIVERY_MIN_VLLM} does not count "
        "them",
        "about 100 % when decode receives every prompt's KV cache from prefill, 0 when it computes them"),
}

# The headline latencies: per role from vLLM, and the client's view from the EPP where it has one.
LATENCY: dict[str, tuple[str, tuple[Line, ...]]] = {
    "ttft": ("Time to first token", (
        Line("ttft_mean", "prefill pods", {"role": "prefill"}),
        Line("ttft_mean", "decode pods", {"role": "decode"}),
        Line("epp_ttft_mean_ns", "client (EPP, streaming, namespace)", level=NS))),
    "itl": ("Inter-token latency", (  # decode only: prefill pods generate one token per request
        Line("itl_mean", "decode pods", {"role": "decode"}),)),
    "e2e": ("End-to-end request latency", (
        Line("e2e_mean", "prefill pods", {"role": "prefill"}),
        Line("e2e_mean", "decode pods", {"role": "decode"}),
        Line("epp_duration_mean_ns", "client (EPP, namespace)", level=NS))),
}
LATENCY_EMPTY = "no latency samples in the range: no request finished"


# --- gathered data -----------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    points: Points  # finite values on the window's grid, in time order

    @property
    def has_data(self) -> bool:
        return bool(self.points)


@dataclass
class Query:
    label: str
    promql: str


@dataclass
class Span:
    start: float
    end: float
    state: str


@dataclass
class Plot:
    key: str
    title: str
    unit: str
    series: list[Series]
    queries: list[Query]
    thresholds: list[Threshold]
    empty: str
    note: str = ""

    @property
    def has_data(self) -> bool:
        return any(s.has_data for s in self.series)


@dataclass
class CheckHistory:
    signal: str
    status: list[Span]  # PASS / FAIL / N/A over the range
    plot: Plot
    status_query: str


@dataclass
class Comparison:
    """A latency line while collapsed against the same line while disaggregated."""
    label: str
    collapsed: float
    disaggregated: float

    @property
    def factor(self) -> float | None:
        return self.collapsed / self.disaggregated if self.disaggregated > 0 else None


@dataclass
class AlertSpan:
    name: str
    severity: str
    labels: dict[str, str]
    start: float
    end: float | None  # None: still firing at the end of the range
    runbook: str | None
    dashboard: str | None


@dataclass
class DeploymentHistory:
    labels: dict[str, str]
    key: Key
    verdicts: list[Span]
    checks: list[CheckHistory]
    latency: list[Plot]
    comparisons: dict[str, list[Comparison]]
    alerts: list[AlertSpan]

    @property
    def collapse(self) -> list[Span]:
        return [s for s in self.verdicts if s.state == Verdict.COLLAPSED.text]


@dataclass
class History:
    window: Window
    verdict_query: str
    alerts_query: str
    deployments: list[DeploymentHistory]


# --- sampling helpers -------------------------------------------------------------------------------


def _finite(points: Iterable[tuple[float, float]]) -> Points:
    return [(t, v) for t, v in points if math.isfinite(v)]


def spans(w: Window, states: Mapping[float, str], missing: str) -> list[Span]:
    """Runs of one state on the grid; a point stands for half a step either side of it (the
    first and last for half a step inside the window), so the state at the end is never lost."""
    out: list[Span] = []
    half = w.step / 2
    for t in w.times:
        state = states.get(t, missing)
        lo, hi = max(t - half, w.start), min(t + half, w.end)
        if out and out[-1].state == state:
            out[-1].end = hi
        else:
            out.append(Span(lo, hi, state))
    return out


def _on_grid(w: Window, points: Points) -> dict[float, float]:
    # Prometheus answers on start + k*step; rounding absorbs the float text round trip.
    return {w.start + round((t - w.start) / w.step) * w.step: v for t, v in points}


def _inside(t: float, windows: list[Span]) -> bool:
    return any(s.start <= t <= s.end for s in windows)


def compare(series: Series, collapsed: list[Span], disaggregated: list[Span]) -> Comparison | None:
    """Mean of the line while the verdict said collapsed and while it said disaggregated (the
    minutes between, e.g. while a rate window drains, count in neither)."""
    bad = [v for t, v in series.points if _inside(t, collapsed)]
    good = [v for t, v in series.points if _inside(t, disaggregated)]
    if not bad or not good:
        return None
    return Comparison(series.label, sum(bad) / len(bad), sum(good) / len(good))


# --- gathering ----------------------------------------------------------------------------------------


class _Gatherer:
    def __init__(self, cfg: Config, r: Reader, w: Window) -> None:
        self.cfg, self.r, self.w = cfg, r, w
        self.level = r.keys(*NS_MODEL)
        self.ns_level = r.keys(*NS)
        self._cache: dict[tuple[Any, ...], dict[Key, Points]] = {}

    def matrix(self, line: Line) -> dict[Key, Points]:
        k = (line.signal, line.level, tuple(sorted(line.variant.items())))
        if k not in self._cache:
            w = self.w
            got = self.r.matrix(line.level, line.signal, w.start, w.end, w.step, **line.variant)
            self._cache[k] = {key: _finite(p) for key, p in got.items()}
        return self._cache[k]

    def points(self, line: Line, key: Key) -> Points:
        if line.level == NS_MODEL:
            return self.matrix(line).get(key, [])
        return self.matrix(line).get(project(key, self.level, self.r.keys(*line.level)), [])

    def plot(self, key: Key, ident: str, title: str, spec_lines: tuple[Line, ...], unit: str,
             thresholds: list[Threshold], empty: str, note: str = "") -> Plot:
        series = [Series(line.label, self.points(line, key)) for line in spec_lines]
        queries = [Query(line.label, self.r.promql(line.signal, **line.variant)) for line in spec_lines]
        return Plot(ident, title, unit, series, queries, thresholds, empty, note)


def _status_states(points: Points, w: Window) -> dict[float, str]:
    return {t: FAIL if v >= 1 else PASS for t, v in _on_grid(w, points).items()}


def _verdict_states(points: Points, w: Window) -> dict[float, str]:
    return {t: _verdict_text(v) for t, v in _on_grid(w, points).items()}


def _readings_plot(check: checks.Check) -> PlotSpec:
    """A check without a tailored chart plots what the doctor reads for it, so a new check record
    shows up in the report without an entry here."""
    return PlotSpec(tuple(Line(r.signal, r.name, r.variant, r.level) for r in check.readings), "count",
                    lambda cfg: [], f"no data for {check.title} in the range", check.text)


def _verdict_text(code: float) -> str:
    verdict = Verdict.from_code(int(code)) if math.isfinite(code) else None
    return verdict.text if verdict else NO_DATA


def _alert_links(cfg: Config, model: BuildModel) -> Callable[[str, dict[str, str]], tuple[str | None, str | None]]:
    defs = {a.name: a for a in alert_definitions.ALERTS}
    base = cfg["grafana"]["url"].rstrip("/")
    ctx_labels = {key: cfg["labels"][key] for key in ("cluster", "namespace", "model")}

    def links(name: str, labels: dict[str, str]) -> tuple[str | None, str | None]:
        alert = defs.get(name)
        if alert is None:
            return None, None
        runbook = model.runbook_urls.get(name)
        if not base:
            return runbook, None
        params = {f"var-{SCOPE_VARS[k]}": labels[ctx_labels[k]]
                  for k in SCOPE_VARS if ctx_labels.get(k) in labels}
        query = "".join(f"&{k}={v}" for k, v in params.items())
        return runbook, base + model.dashboards[alert.link.dashboard].path(alert.link.panel) + query

    return links


def _alerts(cfg: Config, rows: list[tuple[dict[str, str], Points]], w: Window, labels: dict[str, str],
            links: Callable[[str, dict[str, str]], tuple[str | None, str | None]]) -> list[AlertSpan]:
    names = {key: cfg["labels"][key] for key in labels}
    out = []
    for alert_labels, points in rows:
        # An alert without a model label (a namespace-wide one) belongs to every model there.
        if any(alert_labels.get(names[k], v) != v for k, v in labels.items()):
            continue
        name = alert_labels.get("alertname", "?")
        runbook, dashboard = links(name, alert_labels)
        shown = {k: v for k, v in alert_labels.items() if k not in ("__name__", "alertname", "alertstate")}
        for s in spans(w, {t: "firing" for t in _on_grid(w, _finite(points))}, ""):
            if s.state == "firing":
                end = None if s.end >= w.end else s.end
                out.append(AlertSpan(name, alert_labels.get("severity", ""), shown, s.start, end, runbook, dashboard))
    return sorted(out, key=lambda a: (a.start, a.name))


def gather(cfg: Config, r: Reader, w: Window, report: Report, model: BuildModel) -> History:
    """The history of every deployment the doctor's report covers, over `w`."""
    g = _Gatherer(cfg, r, w)
    verdicts = g.matrix(Line("verdict", "verdict"))
    status = {s: g.matrix(Line("checklist", s, {"signal": s})) for s in (c.name for c in checks.CHECKS)}
    alert_rows = r.series("pd_alerts_firing", w.start, w.end, w.step)
    links = _alert_links(cfg, model)
    panels = model.dashboards[ids.DRILLDOWN].panels
    out = []
    for dep in report.deployments:
        key = tuple(dep.labels[k] for k in r.ctx.keys(*NS_MODEL))
        histories = []
        for check in checks.CHECKS:
            signal = check.name
            spec = PLOTS.get(signal) or _readings_plot(check)
            title = panels[check.panel_key].title if check.panel_key in panels else check.title
            plot = g.plot(key, f"check-{signal}", title, spec.lines, spec.unit, spec.thresholds(cfg),
                          spec.empty, spec.note)
            histories.append(CheckHistory(signal, spans(w, _status_states(status[signal].get(key, []), w),
                                                     NOT_APPLICABLE),
                                       plot, r.promql("checklist", signal=signal)))
        verdict_spans = spans(w, _verdict_states(verdicts.get(key, []), w), NO_DATA)
        collapse = [s for s in verdict_spans if s.state == Verdict.COLLAPSED.text]
        healthy = [s for s in verdict_spans if s.state == Verdict.DISAGGREGATED.text]
        latency = [g.plot(key, f"latency-{ident}", title, lines, "seconds", [], LATENCY_EMPTY)
                   for ident, (title, lines) in LATENCY.items()]
        comparisons = {p.key: [c for s in p.series if (c := compare(s, collapse, healthy))] for p in latency}
        out.append(DeploymentHistory(dep.labels, key, verdict_spans, histories, latency, comparisons,
                                     _alerts(cfg, alert_rows, w, dep.labels, links)))
    return History(w, r.promql("verdict"), r.promql("pd_alerts_firing"), out)
