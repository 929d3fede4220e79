"""`doctor --report FILE.html`: one self-contained HTML file a person can attach to a ticket.

Mechanics only: the doctor's report (now) and its history (the range) come in, charts are drawn
inline as SVG and the page is filled from templates/report.html.j2. Nothing is fetched when the
file is opened (no script, font or style from elsewhere); the data behind the page is embedded as
JSON (`<script type="application/json" id="report-data">`) for tools and tests.
"""

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pdobs.doctor import charts
from pdobs.doctor.history import DeploymentHistory, History, Plot, Span, Window
from pdobs.doctor.model import Deployment, Report
from pdobs.doctor.report import AREAS, EXIT_MEANING

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
SCHEMA_VERSION = 1


class ReportWriteError(Exception):
    """The report file cannot be written where asked (exit 2)."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def shown(ts: float | None) -> str:
    return "still firing" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(ts: float | None, w: Window) -> str:
    """A time in the page: the clock alone when the whole range is within one UTC day."""
    if ts is None:
        return "still firing"
    day = datetime.fromtimestamp(w.start, UTC).date() == datetime.fromtimestamp(w.end, UTC).date()
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S" if day else "%Y-%m-%d %H:%M")


def duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _spans(spans: list[Span], key: str) -> list[dict[str, Any]]:
    return [{"start": s.start, "end": s.end, "start_iso": iso(s.start), "end_iso": iso(s.end), key: s.state}
            for s in spans]


def _plot_data(p: Plot) -> dict[str, Any]:
    return {"key": p.key, "title": p.title, "has_data": p.has_data,
            "series": [{"label": s.label, "points": len(s.points)} for s in p.series],
            "queries": [{"label": q.label, "promql": q.promql} for q in p.queries]}


def data(report: Report, history: History) -> dict[str, Any]:
    """Everything the page shows, as plain data (the embedded JSON)."""
    w = history.window
    deployments = []
    for dep, hist in zip(report.deployments, history.deployments, strict=True):
        now = {c.signal: c for c in dep.checks}
        deployments.append({
            "labels": dep.labels,
            "name": dep.name,
            "verdict": {"now": dep.verdict, "code": dep.verdict_code, "reason": dep.reason,
                        "runbook": dep.runbook, "dashboard": dep.dashboard, "exit_code": dep.exit_code},
            "timeline": _spans(hist.verdicts, "verdict"),
            "checks": [{"signal": c.signal, "title": now[c.signal].title, "status": now[c.signal].status,
                        "measured": now[c.signal].measured, "expected": now[c.signal].expected,
                        "reason": now[c.signal].reason, "timeline": _spans(c.status, "status"),
                        "status_query": c.status_query, **{"plot": _plot_data(c.plot)}} for c in hist.checks],
            "latency": [{**_plot_data(p), "comparisons": [
                {"label": c.label, "collapsed": c.collapsed, "disaggregated": c.disaggregated, "factor": c.factor}
                for c in hist.comparisons[p.key]]} for p in hist.latency],
            "alerts": [{"name": a.name, "severity": a.severity, "labels": a.labels, "start": a.start,
                        "end": a.end, "start_iso": iso(a.start), "end_iso": iso(a.end) if a.end else None,
                        "runbook": a.runbook, "dashboard": a.dashboard} for a in hist.alerts],
        })
    return {
        "schema": SCHEMA_VERSION,
        "prometheus": report.prometheus,
        "server_version": report.server_version,
        "scope": report.scope,
        "window": {"start": w.start, "end": w.end, "step": w.step, "start_iso": iso(w.start), "end_iso": iso(w.end)},
        "exit_code": report.exit_code,
        "findings": [{"area": f.area, "level": f.level, "namespace": f.namespace, "message": f.message}
                     for f in report.findings],
        "verdict_query": history.verdict_query,
        "alerts_query": history.alerts_query,
        "deployments": deployments,
    }


def _charts(index: int, dep: Deployment, hist: DeploymentHistory, history: History) -> dict[str, Markup | None]:
    """Every chart of one deployment by key; None where the plot has no data (text instead)."""
    w = history.window
    out: dict[str, Markup | None] = {
        "verdict": Markup(charts.bands(f"d{index}-verdict", [("verdict", hist.verdicts, charts.VERDICT_COLORS)], w))}
    for c in hist.checks:
        out[c.plot.key] = (Markup(charts.line_chart(f"d{index}-{c.plot.key}", c.plot, w, hist.collapse, c.status))
                           if c.plot.has_data else None)
    for p in hist.latency:
        out[p.key] = Markup(charts.line_chart(f"d{index}-{p.key}", p, w, hist.collapse)) if p.has_data else None
    if hist.alerts:
        names = sorted({a.name for a in hist.alerts})
        rows = [(name, [Span(a.start, a.end or w.end, a.severity) for a in hist.alerts if a.name == name],
                 charts.ALERT_COLORS) for name in names]
        out["alerts"] = Markup(charts.bands(f"d{index}-alerts", rows, w, hist.collapse))
    return out


def _environment(w: Window) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html", "j2")),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = shown
    env.filters["clock"] = lambda ts: clock(ts, w)
    env.filters["duration"] = duration
    env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    return env


def render(report: Report, history: History, *, generated: float | None = None) -> str:
    page = data(report, history)
    drawn = [_charts(i, dep, hist, history)
             for i, (dep, hist) in enumerate(zip(report.deployments, history.deployments, strict=True))]
    return _environment(history.window).get_template(TEMPLATE).render(
        page=page, report=report, history=history, charts=drawn, areas=AREAS,
        exit_meaning=EXIT_MEANING[report.exit_code], verdict_colors=charts.VERDICT_COLORS,
        status_colors=charts.STATUS_COLORS,
        generated=shown(generated if generated is not None else datetime.now(UTC).timestamp()),
        json_text=Markup(json.dumps(page, allow_nan=False, sort_keys=False)
                         .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")))


def check_target(path: Path) -> None:
    """Refuse before any query a report file that could not be written."""
    if path.is_dir():
        raise ReportWriteError(f"--report {path}: is a folder; give a file name such as incident.html")
    if not path.parent.is_dir():
        raise ReportWriteError(f"--report {path}: folder {path.parent} does not exist; create it or choose another")


def write(path: Path, text: str) -> None:
    """Atomically: a temporary file beside the target, renamed over it, so a reader never sees half."""
    check_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ReportWriteError(f"--report {path}: cannot write in {path.parent} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportWriteError(f"--report {path}: cannot write it ({exc.strerror})") from None
