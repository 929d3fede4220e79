"""What the dashboard tests share: walking the JSON, Grafana's variable interpolation, and how
Grafana shows a stat panel's value (reducer, value mappings, thresholds, noValue)."""

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from harness.grafana_query import (  # noqa: F401  (re-exported for the dashboard tests)
    BUILTIN_VARS,
    VAR_REF,
    grafana_rate_interval,
    interpolate,
    regex_value,
    variable_refs,
)
from pdobs.core import paths

JSON = dict[str, Any]
# Grafana's published schemas, vendored with their licence and source (see its README.md).
UPSTREAM_SCHEMAS = paths.ROOT / "tests" / "vendor" / "grafana-schema"
PROJECT_SCHEMA = paths.ROOT / "dashboards" / "schema" / "dashboard.schema.json"


def panels(dashboard: JSON) -> Iterator[JSON]:
    """Every non-row panel."""
    for p in dashboard["panels"]:
        if p["type"] != "row":
            yield p


def targets(dashboard: JSON) -> Iterator[tuple[JSON, JSON]]:
    for p in panels(dashboard):
        for t in p["targets"]:
            yield p, t


def load_schema(path: Path) -> JSON:
    return json.loads(path.read_text())


def upstream_validator(file: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    schema = load_schema(UPSTREAM_SCHEMAS / file)
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return jsonschema.Draft7Validator(schema)


def grafana_result(prom: Any, target: JSON, expr: str, start: float, end: float, step: float) -> list[JSON]:
    """What Grafana gets for a panel target over [start, end]: a range query, or for an instant
    target (stat tiles, tables, bar gauges) the value at `end` alone, as a one-point series."""
    if target.get("instant"):
        return [{"metric": s["metric"], "values": [s["value"]]} for s in prom.query(expr, end)]
    return prom.query_range(expr, start, end, step)


def last_values(result: list[JSON]) -> list[float]:
    """lastNotNull of each series of a range-query result (NaN counts as null, as in Grafana)."""
    out = []
    for series in result:
        finite = [float(v) for _, v in series["values"] if not math.isnan(float(v))]
        if finite:
            out.append(finite[-1])
    return out


def threshold_color(panel: JSON, value: float) -> str:
    color = ""
    for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]:
        if step["value"] is None or value >= step["value"]:
            color = step["color"]
    return color


def stat_display(panel: JSON, result: list[JSON]) -> list[tuple[str, str]]:
    """(text, colour) of each value a stat panel shows for a range-query result: value mappings
    first, else the number coloured by thresholds; noValue when nothing is left."""
    defaults = panel["fieldConfig"]["defaults"]
    values = last_values(result)
    if not values:
        return [(defaults["noValue"], "")]
    mapping = defaults["mappings"][0]["options"] if defaults["mappings"] else {}
    shown = []
    for value in values:
        key = f"{value:g}"
        if key in mapping:
            shown.append((mapping[key]["text"], mapping[key]["color"]))
        else:
            shown.append((f"{value:g}", threshold_color(panel, value)))
    return shown
