"""What a dashboard is, as data: rows of panels whose queries name catalog signals.

The dashboard modules (performance.py, coordinator.py, drilldown.py) write `Dashboard`s with
these dataclasses and helpers; dashboards/builder.py turns them into Grafana JSON.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from pdobs import signals

Config = dict[str, Any]

TITLE_PREFIX = "llm-d P/D / "
# The variables a panel query may use, by label key of the catalog's scope. Fixed names, whatever
# the labels are called: links into the dashboards (alerts, the doctor) set them.
SCOPE_VARS = {"cluster": "cluster", "namespace": "namespace", "model": "model_name"}
KINDS = ("timeseries", "stat", "table", "bargauge")
GRID_WIDTH = 24  # Grafana's dashboard grid is 24 columns wide


@dataclass(frozen=True)
class Query:
    """One target: a catalog signal (with its variant labels), shown with a legend."""
    signal: str
    variant: Mapping[str, str] = field(default_factory=dict)
    legend: str = ""
    needs: tuple[str, ...] = ()  # FEATURES keys without which this query is legitimately empty


class Step(NamedTuple):
    """A threshold step: from `value` upwards the colour is `color` (None = from -infinity)."""
    value: float | None
    color: str


class State(NamedTuple):
    """A value mapping: the integer code a status signal returns, its text and colour."""
    code: int
    text: str
    color: str


@dataclass(frozen=True)
class Panel:
    kind: str  # one of KINDS
    title: str
    description: str  # what it shows and what healthy looks like
    queries: tuple[Query, ...]
    unit: str | None = None  # default: the first query's catalog unit
    key: str = ""  # stable identity for ids and links; default: slug of the title
    thresholds: tuple[Step, ...] = ()
    states: tuple[State, ...] = ()
    no_value: str = ""  # shown instead of "No Data"; default: built from the queries' needs
    width: int = 8
    height: int = 8
    stack: bool = False
    min: float | None = None
    max: float | None = None
    link: str = ""  # uid of a dashboard this panel drills into

    @property
    def ident(self) -> str:
        return self.key or slug(self.title)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]

    @property
    def ident(self) -> str:
        return "row:" + slug(self.title)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str  # without the shared prefix
    description: str
    rows: tuple[Row, ...]

    def panel_keys(self) -> list[str]:
        """Every row's and panel's stable key, in layout order."""
        return [key for row in self.rows for key in (row.ident, *(p.ident for p in row.panels))]


# --- small helpers for the data modules -----------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def above(value: float, color: str = "red", base: str = "green") -> tuple[Step, ...]:
    """Healthy below `value`."""
    return (Step(None, base), Step(value, color))


def below(value: float, color: str = "red", base: str = "green") -> tuple[Step, ...]:
    """Healthy from `value` upwards."""
    return (Step(None, color), Step(value, base))


def outside(low: float, high: float, color: str = "red", base: str = "green") -> tuple[Step, ...]:
    """Healthy outside [low, high)."""
    return (Step(None, base), Step(low, color), Step(high, base))


class Coded(Protocol):
    """A status code with its text and colour (the enums of pdobs/checks.py)."""
    code: int
    text: str
    color: str


def states(members: Iterable[Coded]) -> tuple[State, ...]:
    """The value mappings of a status enum, by code."""
    return tuple(State(m.code, m.text, m.color) for m in sorted(members, key=lambda m: m.code))


def quantiles(cfg: Config, signal: str) -> list[str]:
    """The quantile labels a catalog quantile signal is recorded with, in config order."""
    seen: list[str] = []
    for variant in signals.signals(cfg)[signal].variants:
        if variant["quantile"] not in seen:
            seen.append(variant["quantile"])
    return seen


def nearest_quantile(cfg: Config, signal: str, want: float) -> str:
    return min(quantiles(cfg, signal), key=lambda q: abs(float(q) - want))


def legend(cfg: Config, key: str) -> str:
    """A legend template showing a label by its catalog key (role is the rules' own label)."""
    name = "role" if key == "role" else signals.context(cfg).label(key)
    return "{{" + name + "}}"


def pname(q: str) -> str:
    """0.95 -> p95."""
    return f"p{float(q) * 100:g}"
