"""Mechanics shared by the three dashboards: specs, variables, layout, ids, links, JSON.

The dashboard modules hold data only (rows of `Panel`s whose queries name catalog signals); this
module turns them into grafanalib objects and then into the JSON a current Grafana (10 to 12)
saves. grafanalib 0.7.1 still emits the Grafana 6/7 model (schemaVersion 12, string datasources,
`maxDataPoints: 100`, legacy bar-gauge `fieldOptions`, `span`/`height`/`rows`/`__inputs`), so its
output is rewritten by `modern_*` into the current model: kept keys are the ones the project's
schema (dashboards/schema/dashboard.schema.json) allows, legacy ones are dropped.
"""

import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grafanalib.core as G
from grafanalib._gen import DashboardEncoder

from dashboards.features import FEATURES
from pdobs import catalog
from pdobs.core.context import Ctx

Config = dict[str, Any]
JSON = dict[str, Any]

# Grafana 11.0's model version; Grafana 10.4 to 12 load it (newer ones migrate it on load).
SCHEMA_VERSION = 39
TITLE_PREFIX = "llm-d P/D / "
GRID_WIDTH = 24
DS_VAR = "datasource"
DATASOURCE: JSON = {"type": "prometheus", "uid": "${" + DS_VAR + "}"}
# The variables a panel query may use, by label key of the catalog's scope.
SCOPE_VARS = {"cluster": "cluster", "namespace": "namespace", "model": "model_name"}
RATE_INTERVAL = "$__rate_interval"
NEUTRAL = "#8e8e8e"  # grey: "does not apply", neither good nor bad
KINDS = ("timeseries", "stat", "table", "bargauge")


# --- specs (what the dashboard modules write) ---------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One target: a catalog signal (with its variant labels), shown with a legend."""
    signal: str
    variant: Mapping[str, str] = field(default_factory=dict)
    legend: str = ""
    needs: tuple[str, ...] = ()  # FEATURES keys without which this query is legitimately empty


@dataclass(frozen=True)
class Step:
    """A threshold step: from `value` upwards the colour is `color` (None = from -infinity)."""
    value: float | None
    color: str


@dataclass(frozen=True)
class State:
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


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str  # without the shared prefix
    description: str
    rows: tuple[Row, ...]


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


def states(texts: Mapping[int, str], colors: Mapping[int, str]) -> tuple[State, ...]:
    if set(texts) != set(colors):
        raise AssertionError(f"colours for codes {sorted(colors)} but texts for {sorted(texts)}")
    return tuple(State(code, texts[code], colors[code]) for code in sorted(texts))


def quantiles(cfg: Config, signal: str) -> list[str]:
    """The quantile labels a catalog quantile signal is recorded with, in config order."""
    seen: list[str] = []
    for variant in catalog.signals(cfg)[signal].variants:
        if variant["quantile"] not in seen:
            seen.append(variant["quantile"])
    return seen


def nearest_quantile(cfg: Config, signal: str, want: float) -> str:
    return min(quantiles(cfg, signal), key=lambda q: abs(float(q) - want))


def legend(cfg: Config, key: str) -> str:
    """A legend template showing a label by its catalog key (role is the rules' own label)."""
    name = "role" if key == "role" else catalog.context(cfg).label(key)
    return "{{" + name + "}}"


def pname(q: str) -> str:
    """0.95 -> p95."""
    return f"p{float(q) * 100:g}"


def dashboard_context(cfg: Config) -> Ctx:
    """The scope every panel query is written in: the dashboard variables and Grafana's rate range."""
    scope = {key: ("=~", f"${var}") for key, var in SCOPE_VARS.items()}
    return catalog.context(cfg, scope=scope, rate_range=RATE_INTERVAL)


def needs_of(panel: Panel) -> list[str]:
    out: list[str] = []
    for q in panel.queries:
        out += [n for n in q.needs if n not in out]
    return out


def no_value_text(panel: Panel) -> str:
    if panel.no_value:
        return panel.no_value
    needs = needs_of(panel)
    if needs:
        return "No data: needs " + "; ".join(FEATURES[n] for n in needs)
    return "No data for this selection: check the namespace and model filters"


# --- ids and layout ------------------------------------------------------------------------------


def stable_ids(keys: Sequence[str], salt: str) -> dict[str, int]:
    """Panel ids derived from each panel's key, so adding a panel elsewhere keeps the others' ids
    (and links such as ?viewPanel= stay valid). Collisions probe forward deterministically."""
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if list(keys).count(k) > 1})
        raise AssertionError(f"dashboard {salt}: duplicate panel keys {dupes}")
    used: set[int] = set()
    ids: dict[str, int] = {}
    for key in keys:
        pid = 1 + zlib.crc32(f"{salt}/{key}".encode()) % 99_991
        while pid in used:
            pid = pid % 99_991 + 1
        used.add(pid)
        ids[key] = pid
    return ids


def layout(rows: Sequence[Row]) -> dict[str, tuple[int, int, int, int]]:
    """Grid positions (x, y, w, h) by panel key, rows first, panels packed left to right. Each
    panel starts a new line when it does not fit, so nothing ever overlaps."""
    pos: dict[str, tuple[int, int, int, int]] = {}
    y = 0
    for row in rows:
        pos["row:" + slug(row.title)] = (0, y, GRID_WIDTH, 1)
        y += 1
        x, line_h = 0, 0
        for panel in row.panels:
            if not 0 < panel.width <= GRID_WIDTH or panel.height <= 0:
                raise AssertionError(f"panel {panel.title!r}: bad size {panel.width}x{panel.height}")
            if x + panel.width > GRID_WIDTH:
                y, x, line_h = y + line_h, 0, 0
            pos[panel.ident] = (x, y, panel.width, panel.height)
            x += panel.width
            line_h = max(line_h, panel.height)
        y += line_h
    return pos


# --- variables -------------------------------------------------------------------------------------


def variable_queries(cfg: Config) -> dict[str, str]:
    """`label_values()` of each query variable, chained: each lists only what exists under the
    variables before it. They read recorded series, which exist only where our rules see data."""
    out: dict[str, str] = {}
    scope: dict[str, tuple[str, str]] = {}
    base = catalog.context(cfg)
    if cfg["multi_cluster"]:
        out["cluster"] = f"label_values({catalog.query(base, 'vllm_pods_ns')}, {base.label('cluster')})"
        scope["cluster"] = ("=~", "$cluster")
    ns_ctx = base.scoped(**scope)
    out["namespace"] = f"label_values({catalog.query(ns_ctx, 'vllm_pods_ns')}, {base.label('namespace')})"
    model_ctx = ns_ctx.scoped(namespace=("=~", "$namespace"))
    out["model_name"] = f"label_values({catalog.query(model_ctx, 'vllm_pods')}, {base.label('model')})"
    return out


_VAR_LABELS = {"cluster": "Cluster", "namespace": "Namespace", "model_name": "Model"}


def templates(cfg: Config) -> list[G.Template]:
    ds = cfg["grafana"]["datasource"]
    out = [G.Template(name=DS_VAR, type="datasource", query="prometheus", label="Data source",
                      default=ds["uid"], refresh=1, sort=0)]
    for name, query in variable_queries(cfg).items():
        out.append(G.Template(name=name, query=query, label=_VAR_LABELS[name], dataSource=DS_VAR,
                              includeAll=True, multi=True, allValue=".*", refresh=2, sort=1))
    return out


def modern_variable(raw: JSON, cfg: Config) -> JSON:
    out: JSON = {
        "type": raw["type"], "name": raw["name"], "label": raw["label"], "hide": 0,
        "skipUrlSync": False, "options": [], "query": raw["query"], "refresh": raw["refresh"],
        "regex": "", "multi": raw["multi"], "includeAll": raw["includeAll"],
    }
    if raw["type"] == "datasource":
        ds = cfg["grafana"]["datasource"]
        out["current"] = {"selected": True, "text": ds["name"], "value": ds["uid"]}
        return out
    out.update(datasource=dict(DATASOURCE), definition=raw["query"], sort=raw["sort"],
               allValue=raw["allValue"], current={"selected": True, "text": ["All"], "value": ["$__all"]})
    return out


# --- links ---------------------------------------------------------------------------------------


# Panel links are data links: Grafana ignores keepTime/includeVars there, so the URL carries them.
PANEL_LINK_QUERY = "?${__url_time_range}&${__all_variables}"


def dashboard_link(uid: str, title: str, tooltip: str, *, panel: bool = False) -> G.DashboardLink:
    # keepTime/includeVars carry the time range and every variable (datasource, namespace, model).
    uri = f"/d/{uid}" + (PANEL_LINK_QUERY if panel else "")
    return G.DashboardLink(title=title, uri=uri, type="link", icon="dashboard", tooltip=tooltip,
                           keepTime=True, includeVars=True)


def modern_link(raw: JSON) -> JSON:
    keep = ("title", "type", "url", "icon", "tooltip", "tags", "asDropdown", "targetBlank",
            "includeVars", "keepTime")
    return {k: raw[k] for k in keep}


def panel_path(uid: str, panel_id: int) -> str:
    return f"/d/{uid}?viewPanel={panel_id}"


# --- panels ----------------------------------------------------------------------------------------


def _grafanalib_panel(panel: Panel, targets: list[G.Target], pos: tuple[int, int, int, int],
                      pid: int) -> G.Panel:
    grid = G.GridPos(x=pos[0], y=pos[1], w=pos[2], h=pos[3])
    common: JSON = dict(title=panel.title, description=panel.description, targets=targets,
                        gridPos=grid, id=pid)
    if panel.kind == "timeseries":
        return G.TimeSeries(**common)
    if panel.kind == "stat":
        return G.Stat(**common)
    if panel.kind == "table":
        return G.Table(**common)
    if panel.kind == "bargauge":
        return G.BarGauge(**common)
    raise AssertionError(f"panel {panel.title!r}: kind {panel.kind!r} is not one of {KINDS}")


def _targets(cfg: Config, ctx: Ctx, panel: Panel) -> list[G.Target]:
    table = panel.kind == "table"
    # Tables, bar gauges and stat tiles show only the latest value: an instant query reads one rate
    # window per series instead of one per step of the range (bench/: 60% of the Drill-Down refresh at
    # 128 pods). For a stat tile it is also the only honest value: lastNotNull over a range skips the
    # newest NaN points (a prefill leg that stopped) and shows the stale value from before.
    instant = panel.kind in ("table", "bargauge", "stat")
    return [G.Target(expr=catalog.query(ctx, q.signal, **q.variant), legendFormat=q.legend or "__auto",
                     refId=chr(ord("A") + i), format="table" if table else "time_series", instant=instant)
            for i, q in enumerate(panel.queries)]


def modern_target(raw: JSON) -> JSON:
    out: JSON = {"datasource": dict(DATASOURCE), "editorMode": "code", "expr": raw["expr"],
                 "legendFormat": raw["legendFormat"], "range": not raw["instant"],
                 "instant": raw["instant"], "refId": raw["refId"]}
    if raw["format"] != "time_series":
        out["format"] = raw["format"]
    return out


def _thresholds(panel: Panel) -> JSON:
    steps = panel.thresholds or (Step(None, "green"),)
    if steps[0].value is not None:
        raise AssertionError(f"panel {panel.title!r}: the first threshold step must start at -infinity")
    return {"mode": "absolute", "steps": [{"color": s.color, "value": s.value} for s in steps]}


def _mappings(panel: Panel) -> list[JSON]:
    if not panel.states:
        return []
    options = {str(s.code): {"color": s.color, "index": i, "text": s.text} for i, s in enumerate(panel.states)}
    return [{"type": "value", "options": options}]


def _field_defaults(panel: Panel, unit: str) -> JSON:
    coloured = bool(panel.thresholds or panel.states)
    out: JSON = {
        "unit": unit,
        "color": {"mode": "thresholds" if coloured and panel.kind != "timeseries" else "palette-classic"},
        "thresholds": _thresholds(panel),
        "mappings": _mappings(panel),
        "noValue": no_value_text(panel),
    }
    if panel.min is not None:
        out["min"] = panel.min
    if panel.max is not None:
        out["max"] = panel.max
    if panel.kind == "timeseries":
        out["custom"] = {
            "drawStyle": "line", "lineInterpolation": "linear", "lineWidth": 1,
            "fillOpacity": 30 if panel.stack else 10, "gradientMode": "none", "showPoints": "never",
            "pointSize": 4, "spanNulls": False, "axisPlacement": "auto", "axisLabel": "",
            "scaleDistribution": {"type": "linear"},
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    elif panel.kind == "table":
        # No cellOptions: Grafana defaults to "auto", and {"type": "auto"} is ambiguous in the
        # upstream schema (it matches two cell-option kinds of its oneOf).
        out["custom"] = {"align": "auto", "inspect": False}
    return out


_REDUCE: JSON = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _options(panel: Panel) -> JSON:
    if panel.kind == "timeseries":
        return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    if panel.kind == "stat":
        # One instant value: no sparkline to draw.
        return {"reduceOptions": dict(_REDUCE), "colorMode": "background" if panel.states else "value",
                "graphMode": "none", "justifyMode": "auto",
                "textMode": "auto", "wideLayout": True, "showPercentChange": False,
                "percentChangeColorMode": "standard", "orientation": "auto"}
    if panel.kind == "bargauge":
        return {"reduceOptions": dict(_REDUCE), "displayMode": "gradient", "valueMode": "color",
                "namePlacement": "auto", "showUnfilled": True, "sizing": "auto", "minVizWidth": 8,
                "minVizHeight": 16, "maxVizHeight": 300, "orientation": "horizontal",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False, "calcs": []}}
    return {"showHeader": True, "frameIndex": 0, "cellHeight": "sm"}


def _transformations(panel: Panel) -> list[JSON]:
    if panel.kind != "table":
        return []
    # An instant table of label sets: show the labels, not the sample's time and value.
    hidden = {"Time": True, "Value": True, "__name__": True}
    return [{"id": "organize", "options": {"excludeByName": hidden, "indexByName": {}, "renameByName": {}}}]


def modern_panel(raw: JSON, panel: Panel, unit: str, links: list[JSON]) -> JSON:
    out: JSON = {
        "type": raw["type"], "id": raw["id"], "title": raw["title"], "description": raw["description"],
        "datasource": dict(DATASOURCE), "gridPos": raw["gridPos"],
        "targets": [modern_target(t) for t in raw["targets"]],
        "fieldConfig": {"defaults": _field_defaults(panel, unit), "overrides": []},
        "options": _options(panel),
    }
    transformations = _transformations(panel)
    if transformations:
        out["transformations"] = transformations
    if links:
        out["links"] = links
    return out


def modern_row(raw: JSON) -> JSON:
    return {"type": "row", "id": raw["id"], "title": raw["title"], "collapsed": False,
            "gridPos": raw["gridPos"], "panels": []}


# --- the dashboard -----------------------------------------------------------------------------


def to_json(obj: Any) -> JSON:
    """grafanalib object -> plain JSON data, through grafanalib's own encoder."""
    return json.loads(json.dumps(obj.to_json_data(), cls=DashboardEncoder))


@dataclass(frozen=True)
class Built:
    """A rendered dashboard and the panel ids by key (for links into panels)."""
    json: JSON
    ids: dict[str, int]


def panel_keys(spec: Dashboard) -> list[str]:
    keys: list[str] = []
    for row in spec.rows:
        keys.append("row:" + slug(row.title))
        keys += [p.ident for p in row.panels]
    return keys


def build(cfg: Config, spec: Dashboard, others: Iterable[Dashboard]) -> Built:
    ctx = dashboard_context(cfg)
    sigs = catalog.signals(cfg)
    ids = stable_ids(panel_keys(spec), spec.uid)
    pos = layout(spec.rows)
    graf = cfg["grafana"]
    titles = {d.uid: d.title for d in (spec, *others)}

    panels: list[tuple[JSON, Panel | None]] = []
    g_panels: list[G.Panel] = []
    for row in spec.rows:
        key = "row:" + slug(row.title)
        x, y, w, h = pos[key]
        row_obj = G.RowPanel(title=row.title, gridPos=G.GridPos(x=x, y=y, w=w, h=h), id=ids[key])
        g_panels.append(row_obj)
        panels.append((to_json(row_obj), None))
        for panel in row.panels:
            obj = _grafanalib_panel(panel, _targets(cfg, ctx, panel), pos[panel.ident], ids[panel.ident])
            g_panels.append(obj)
            panels.append((to_json(obj), panel))

    links = [dashboard_link(uid, title, f"Open {title}, keeping the time range and variables")
             for uid, title in titles.items() if uid != spec.uid]
    dash = G.Dashboard(
        title=TITLE_PREFIX + spec.title, uid=spec.uid, description=spec.description, tags=graf["tags"],
        timezone=graf["timezone"], refresh=graf["refresh"], time=G.Time(graf["time_from"], "now"),
        templating=G.Templating(templates(cfg)), links=links, panels=g_panels,
        graphTooltip=G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR, editable=True,
    )
    raw = to_json(dash)

    out_panels: list[JSON] = []
    for raw_panel, panel in panels:
        if panel is None:
            out_panels.append(modern_row(raw_panel))
            continue
        unit = panel.unit or sigs[panel.queries[0].signal].unit
        plinks = []
        if panel.link:
            plinks.append(modern_link(to_json(dashboard_link(
                panel.link, f"Open {titles[panel.link]}", f"{titles[panel.link]} for the same selection",
                panel=True))))
        out_panels.append(modern_panel(raw_panel, panel, unit, plinks))

    out: JSON = {
        "uid": raw["uid"], "title": raw["title"], "description": raw["description"], "tags": raw["tags"],
        "timezone": raw["timezone"], "editable": raw["editable"], "graphTooltip": raw["graphTooltip"],
        "refresh": raw["refresh"], "time": raw["time"], "fiscalYearStartMonth": 0, "liveNow": False,
        "weekStart": "", "timepicker": {"refresh_intervals": raw["timepicker"]["refresh_intervals"]},
        "schemaVersion": SCHEMA_VERSION, "version": 1,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": [modern_variable(v, cfg) for v in raw["templating"]["list"]]},
        "links": [modern_link(link) for link in raw["links"]],
        "panels": out_panels,
    }
    return Built(out, ids)


def render_json(data: JSON) -> str:
    """Deterministic text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
