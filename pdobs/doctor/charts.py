"""Charts of the report as inline SVG, drawn with matplotlib (no pyplot, no global state).

Text stays text in the SVG (svg.fonttype none): smaller, searchable and copyable; the page's fonts
draw it. Every drawn data artist gets an id ending in `series-N`, and the ids of each chart are
prefixed with the chart's own, so many charts can share one page.
"""

import io
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import matplotlib
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pdobs.doctor.history import Plot, Span, Threshold, Window
from pdobs.doctor.model import FAIL, NOT_APPLICABLE, PASS

WIDTH_IN = 9.0
RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "pdobs-report",  # stable ids: the same data draws the same file
    # Shipped inside matplotlib, so text is measured alike everywhere; the page's CSS names the
    # fallbacks a browser draws it with.
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "timezone": "UTC",
}
FAIL_RED = "#c62828"
COLLAPSE_FILL = "#e53935"
VERDICT_COLORS = {
    "DISAGGREGATED": "#2e7d32",
    "COLLAPSED TO AGGREGATED": FAIL_RED,
    "AGGREGATED BY DESIGN": "#546e7a",
    "NO TRAFFIC": "#9e9e9e",
    "CANNOT TELL": "#ef6c00",
    "NO DATA": "#e0e0e0",
}
STATUS_COLORS = {PASS: "#2e7d32", FAIL: FAIL_RED, NOT_APPLICABLE: "#bdbdbd"}
ALERT_COLORS = {"critical": FAIL_RED, "warning": "#ef6c00"}
LINE_COLORS = ("#1565c0", "#6a1b9a", "#00897b", "#5d4037")
# How each unit is shown: (scale, axis label).
UNITS = {"ops": (1.0, "per second"), "ratio": (1.0, "ratio"), "percent": (100.0, "%"),
         "count": (1.0, "pods"), "seconds": (1000.0, "ms")}


def _dates(times: Sequence[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in times]


def _x(t: float) -> float:
    return float(mdates.date2num(datetime.fromtimestamp(t, UTC)))


def _time_axis(ax: Axes, w: Window) -> None:
    locator = mdates.AutoDateLocator(tz=UTC, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlim(_x(w.start), _x(w.end))


def _shade(ax: Axes, collapse: Sequence[Span], label: bool) -> None:
    for i, s in enumerate(collapse):
        ax.axvspan(_x(s.start), _x(s.end), color=COLLAPSE_FILL, alpha=0.09, lw=0,
                   label="collapsed to aggregated" if label and i == 0 else None)


def _svg(fig: Figure, ident: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # Unique ids across the page: each chart's own prefix on every id and reference.
    text = re.sub(r'id="([^"]+)"', rf'id="{ident}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{ident}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{ident}-\1"', text)
    return text


def bands(ident: str, rows: Sequence[tuple[str, Sequence[Span], dict[str, str]]], w: Window,
          collapse: Sequence[Span] = ()) -> str:
    """One horizontal band per row, coloured by state (verdicts, alerts), with a legend."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 0.7 + 0.32 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        _shade(ax, collapse, label=False)
        seen: dict[str, str] = {}
        n = 0
        for i, (_, row, colors) in enumerate(rows):
            y = len(rows) - 1 - i
            for s in row:
                if s.state not in colors or s.end <= s.start:
                    continue
                bar = ax.broken_barh([(_x(s.start), _x(s.end) - _x(s.start))], (y - 0.35, 0.7),
                                     facecolors=colors[s.state], edgecolor="none")
                bar.set_gid(f"series-{n}")
                n += 1
                seen.setdefault(s.state, colors[s.state])
        ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        _time_axis(ax, w)
        handles = [Patch(color=c, label=s.lower()) for s, c in seen.items()]
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False,
                       fontsize=8)
        return _svg(fig, ident)


def _threshold(ax: Axes, t: Threshold, scale: float, top: float) -> None:
    style = {"color": FAIL_RED, "lw": 1.0, "ls": (0, (4, 3))}
    v = t.value * scale
    if t.fails == "inside" and t.upper is not None:
        ax.axhspan(v, t.upper * scale, color=FAIL_RED, alpha=0.10, lw=0, label=t.label)
        ax.axhline(v, **style)
        ax.axhline(t.upper * scale, **style)
        return
    ax.axhline(v, label=t.label, **style)
    if t.fails == "below":
        ax.axhspan(0, v, color=FAIL_RED, alpha=0.06, lw=0)
    elif t.fails == "above":
        ax.axhspan(v, top, color=FAIL_RED, alpha=0.06, lw=0)


def line_chart(ident: str, plot: Plot, w: Window, collapse: Sequence[Span] = (),
               status: Sequence[Span] = ()) -> str:
    """The plot's series over the window, thresholds drawn, the collapse shaded, and below it a
    strip with the signal's PASS/FAIL over time when `status` is given."""
    scale, unit = UNITS[plot.unit]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.9 if status else 2.5), layout="constrained")
        if status:
            ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=(7, 1))
        else:
            ax, strip = fig.add_subplot(), None
        grid = w.times
        peak = 0.0
        n = 0
        for i, s in enumerate(plot.series):
            if not s.has_data:
                continue
            values = dict(s.points)
            ys = [values.get(t, math.nan) * scale for t in grid]
            peak = max([peak, *(v for v in ys if math.isfinite(v))])
            (line,) = ax.plot(_dates(grid), ys, color=LINE_COLORS[i % len(LINE_COLORS)], lw=1.6, label=s.label,
                              marker="o" if len(s.points) == 1 else None, ms=3)
            line.set_gid(f"series-{n}")
            n += 1
        limits = [t.value * scale for t in plot.thresholds] + [t.upper * scale for t in plot.thresholds if t.upper]
        top = max([peak, *limits, 1e-9]) * 1.18
        for t in plot.thresholds:
            _threshold(ax, t, scale, top)
        _shade(ax, collapse, label=True)
        ax.set_ylim(0, top)
        ax.set_ylabel(unit)
        ax.grid(axis="y", color="#eeeeee", lw=0.8)
        ax.legend(loc="upper left", fontsize=7.5, frameon=False, ncols=4)
        _time_axis(ax, w)
        if strip is not None:
            for s in status:
                if s.end > s.start:
                    strip.broken_barh([(_x(s.start), _x(s.end) - _x(s.start))], (0, 1),
                                      facecolors=STATUS_COLORS.get(s.state, "#bdbdbd"), edgecolor="none")
            strip.set_yticks([0.5], ["status"])
            strip.set_ylim(0, 1)
            strip.tick_params(axis="y", length=0)
            strip.spines["left"].set_visible(False)
            ax.tick_params(axis="x", labelbottom=False)
            _time_axis(strip, w)
        return _svg(fig, ident)
