"""How Grafana turns a dashboard panel into a Prometheus request: variable interpolation, the
query step ($__interval) and $__rate_interval. Used by the dashboard tests and the benchmark to
run panel queries exactly as Grafana would send them.

Sources: Grafana's `rangeutil.roundInterval` / `IntervalCalculator` (the step is the range over
the panel's max data points, rounded to a "nice" interval and never below the data source's
scrape interval), the Prometheus data source's `$__rate_interval` (max($__interval + scrape
interval, 4 x scrape interval)) and its time-range alignment (start and end floored to the step).
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

BUILTIN_VARS = ("__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__all",
                "__url_time_range", "__all_variables")
VAR_REF = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)")

GRID_COLUMNS = 24
# Width in pixels of a 24-column dashboard on a 1920-pixel screen with Grafana's side menu docked:
# a panel's default max data points is its width in pixels.
DASHBOARD_WIDTH_PX = 1800
# Grafana's roundInterval table: (upper bound of the raw interval, rounded interval), in ms.
_ROUND_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
    (90000, 60000), (210000, 120000), (450000, 300000), (900000, 600000), (1200000, 900000),
    (2700000, 1200000), (5400000, 1800000), (9000000, 3600000), (16200000, 7200000),
    (32400000, 10800000), (86400000, 21600000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)  # fmt: skip


def variable_refs(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in VAR_REF.finditer(text)}


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """Replace $var / ${var} as Grafana does before sending a query (values already formatted)."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr[:80]!r}")
        return values[name]

    return VAR_REF.sub(sub, expr)


def grafana_rate_interval(step_s: float, scrape_s: float) -> str:
    """$__rate_interval: max($__interval + scrape interval, 4 x scrape interval) (Grafana docs)."""
    return f"{int(max(step_s + scrape_s, 4 * scrape_s))}s"


def regex_value(values: list[str]) -> str:
    """A multi-value variable as Grafana formats it for a Prometheus regex matcher."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def round_interval_ms(interval_ms: float) -> int:
    for bound, rounded in _ROUND_MS:
        if interval_ms < bound:
            return rounded
    return 31536000000  # a year


def max_data_points(grid_width: int, dashboard_px: int = DASHBOARD_WIDTH_PX) -> int:
    """A panel's default max data points: its width in pixels."""
    return max(1, math.floor(dashboard_px * grid_width / GRID_COLUMNS))


@dataclass(frozen=True)
class Request:
    """What Grafana sends for one target of one panel."""

    start: float
    end: float
    step_s: float
    rate_interval: str
    interval: str


def request(range_start: float, range_end: float, grid_width: int, scrape_s: float) -> Request:
    """The step, rate interval and aligned time range Grafana uses for a panel `grid_width`
    columns wide over [range_start, range_end]."""
    span_ms = (range_end - range_start) * 1000
    raw_ms = span_ms / max_data_points(grid_width)
    step_ms = max(round_interval_ms(raw_ms), scrape_s * 1000)
    # Grafana also never asks for more than 11,000 points (its "safe interval").
    step_ms = max(step_ms, round_interval_ms(span_ms / 11000))
    step_s = step_ms / 1000
    start = math.floor(range_start / step_s) * step_s
    end = math.floor(range_end / step_s) * step_s
    return Request(start, end, step_s, grafana_rate_interval(step_s, scrape_s), f"{int(step_s)}s")
