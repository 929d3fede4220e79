"""What the dashboard tests share: walking the JSON, Grafana's variable interpolation, and how
Grafana shows a stat panel's value (reducer, value mappings, thresholds, noValue)."""

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from pdobs import paths

JSON = dict[str, Any]
# CI checks out shared/ beside the clone; the upstream schemas live there, not in the repo.
UPSTREAM_SCHEMAS = paths.ROOT / ".." / "shared" / "reference" / "grafana-schema"
PROJECT_SCHEMA = paths.ROOT / "dashboards" / "schema" / "dashboard.schema.json"
BUILTIN_VARS = ("__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__all",
                "__url_time_range", "__all_variables")
VAR_REF = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)")


def panels(dashboard: JSON) -> Iterator[JSON]:
    """Every non-row panel."""
    for p in dashboard["panels"]:
        if p["type"] != "row":
            yield p


def targets(dashboard: JSON) -> Iterator[tuple[JSON, JSON]]:
    for p in panels(dashboard):
        for t in p["targets"]:
            yield p, t


def variable_refs(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in VAR_REF.finditer(text)}


def load_schema(path: Path) -> JSON:
    return json.loads(path.read_text())


def upstream_validator(file: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    schema = load_schema(UPSTREAM_SCHEMAS / file)
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return jsonschema.Draft7Validator(schema)


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
