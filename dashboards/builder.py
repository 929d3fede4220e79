"""Dashboard specs (dashboards/spec.py) -> the JSON model a current Grafana (10.4 to 12) saves.

The JSON is written here, once, in the current model. grafanalib 0.7.1 still emits the Grafana
6/7 model for panels, targets, variables and the dashboard itself (schemaVersion 12, string
datasources, `maxDataPoints: 100`, legacy bar-gauge `fieldOptions`, `span`/`height`/`rows`/
`__inputs`), so building those with it would mean rewriting every field afterwards. It is used
where its output already is the current model: grid positions, the time range, dashboard links,
panel type ids and the dashboard defaults (tooltip mode, refresh intervals). Kept keys are the
ones the project's schema (dashboards/schema/dashboard.schema.json) allows.
"""

import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import grafanalib.core as G

from dashboards.features import FEATURES
from dashboards.spec import GRID_WIDTH, KINDS, SCOPE_VARS, TITLE_PREFIX, Dashboard, Panel, Row, Step
from pdobs import signals
from pdobs.build.model import DashboardModel, PanelRef
from pdobs.core.context import Ctx

Config = dict[str, Any]
JSON = dict[str, Any]

# Grafana 11.0's model version; Grafana 10.4 to 12 load it (newer ones migrate it on load).
SCHEMA_VERSION = 39
DS_VAR = "datasource"
DATASOURCE: JSON = {"type": "prometheus", "uid": "${" + DS_VAR + "}"}
RATE_INTERVAL = "$__rate_interval"
PANEL_TYPES = {"timeseries": G.TIMESERIES_TYPE, "stat": G.STAT_TYPE, "table": G.TABLE_TYPE,
               "bargauge": G.BARGAUGE_TYPE}
# Panel links are data links: Grafana ignores keepTime/includeVars there, so the URL carries them.
PANEL_LINK_QUERY = "?${__url_time_range}&${__all_variables}"
_VAR_LABELS = {"cluster": "Cluster", "namespace": "Namespace", "model_name": "Model"}


def dashboard_context(cfg: Config) -> Ctx:
    """The scope every panel query is written in: the dashboard variables and Grafana's rate range."""
    scope = {key: ("=~", f"${var}") for key, var in SCOPE_VARS.items()}
    return signals.context(cfg, scope=scope, rate_range=RATE_INTERVAL)


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
        pos[row.ident] = (0, y, GRID_WIDTH, 1)
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


def _grid(pos: tuple[int, int, int, int]) -> JSON:
    return G.GridPos(x=pos[0], y=pos[1], w=pos[2], h=pos[3]).to_json_data()


# --- variables -------------------------------------------------------------------------------------


def variable_queries(cfg: Config) -> dict[str, str]:
    """`label_values()` of each query variable, chained: each lists only what exists under the
    variables before it. They read recorded series, which exist only where our rules see data."""
    out: dict[str, str] = {}
    scope: dict[str, tuple[str, str]] = {}
    base = signals.context(cfg)
    if cfg["multi_cluster"]:
        out["cluster"] = f"label_values({signals.query(base, 'vllm_pods_ns')}, {base.label('cluster')})"
        scope["cluster"] = ("=~", "$cluster")
    ns_ctx = base.scoped(**scope)
    out["namespace"] = f"label_values({signals.query(ns_ctx, 'vllm_pods_ns')}, {base.label('namespace')})"
    model_ctx = ns_ctx.scoped(namespace=("=~", "$namespace"))
    out["model_name"] = f"label_values({signals.query(model_ctx, 'vllm_pods')}, {base.label('model')})"
    return out


def variables(cfg: Config) -> list[JSON]:
    ds = cfg["grafana"]["datasource"]
    common: JSON = {"hide": 0, "skipUrlSync": False, "options": [], "regex": ""}
    out: list[JSON] = [{
        **common, "type": "datasource", "name": DS_VAR, "label": "Data source", "query": "prometheus",
        "refresh": 1, "multi": False, "includeAll": False,
        "current": {"selected": True, "text": ds["name"], "value": ds["uid"]},
    }]
    for name, query in variable_queries(cfg).items():
        out.append({
            **common, "type": "query", "name": name, "label": _VAR_LABELS[name], "query": query, "refresh": 2,
            "multi": True, "includeAll": True, "datasource": dict(DATASOURCE), "definition": query, "sort": 1,
            "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        })
    return out


# --- links ---------------------------------------------------------------------------------------


def dashboard_link(uid: str, title: str, tooltip: str, *, panel: bool = False) -> JSON:
    # keepTime/includeVars carry the time range and every variable (datasource, namespace, model).
    uri = f"/d/{uid}" + (PANEL_LINK_QUERY if panel else "")
    return G.DashboardLink(title=title, uri=uri, type="link", icon="dashboard", tooltip=tooltip,
                           keepTime=True, includeVars=True).to_json_data()


# --- panels ----------------------------------------------------------------------------------------


def _targets(ctx: Ctx, panel: Panel) -> list[JSON]:
    # Tables, bar gauges and stat tiles show only the latest value: an instant query reads one rate
    # window per series instead of one per step of the range (bench/: 60% of the Drill-Down refresh at
    # 128 pods). For a stat tile it is also the only honest value: lastNotNull over a range skips the
    # newest NaN points (a prefill leg that stopped) and shows the stale value from before.
    instant = panel.kind in ("table", "bargauge", "stat")
    out = []
    for i, q in enumerate(panel.queries):
        target: JSON = {"datasource": dict(DATASOURCE), "editorMode": "code",
                        "expr": signals.query(ctx, q.signal, **q.variant), "legendFormat": q.legend or "__auto",
                        "range": not instant, "instant": instant, "refId": chr(ord("A") + i)}
        if panel.kind == "table":
            target["format"] = "table"
        out.append(target)
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
        return {"reduceOptions": dict(_REDUCE), "colorMode": "background" if panel.states else "value",
                # One instant value: no sparkline to draw.
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


def panel_json(ctx: Ctx, panel: Panel, pid: int, pos: tuple[int, int, int, int], links: list[JSON]) -> JSON:
    if panel.kind not in KINDS:
        raise AssertionError(f"panel {panel.title!r}: kind {panel.kind!r} is not one of {KINDS}")
    unit = panel.unit or signals.signals(ctx.cfg)[panel.queries[0].signal].unit
    out: JSON = {
        "type": PANEL_TYPES[panel.kind], "id": pid, "title": panel.title, "description": panel.description,
        "datasource": dict(DATASOURCE), "gridPos": _grid(pos), "targets": _targets(ctx, panel),
        "fieldConfig": {"defaults": _field_defaults(panel, unit), "overrides": []},
        "options": _options(panel),
    }
    transformations = _transformations(panel)
    if transformations:
        out["transformations"] = transformations
    if links:
        out["links"] = links
    return out


def row_json(row: Row, pid: int, pos: tuple[int, int, int, int]) -> JSON:
    return {"type": G.ROW_TYPE, "id": pid, "title": row.title, "collapsed": False, "gridPos": _grid(pos),
            "panels": []}


# --- the dashboard -----------------------------------------------------------------------------


def canonical(data: Any) -> Any:
    """`data` with every mapping's keys in sorted order: the order the written files have, so each
    form made from the model (provisioning, import, ConfigMaps) lists keys the same way."""
    if isinstance(data, dict):
        return {k: canonical(data[k]) for k in sorted(data)}
    if isinstance(data, list):
        return [canonical(v) for v in data]
    return data


def build(cfg: Config, spec: Dashboard, others: Iterable[Dashboard]) -> DashboardModel:
    """The dashboard's JSON and the index of its panels by stable key (id and title)."""
    ctx = dashboard_context(cfg)
    ids = stable_ids(spec.panel_keys(), spec.uid)
    pos = layout(spec.rows)
    graf = cfg["grafana"]
    titles = {d.uid: d.title for d in (spec, *others)}

    panels: list[JSON] = []
    for row in spec.rows:
        panels.append(row_json(row, ids[row.ident], pos[row.ident]))
        for panel in row.panels:
            links = [dashboard_link(panel.link, f"Open {titles[panel.link]}",
                                    f"{titles[panel.link]} for the same selection", panel=True)] if panel.link else []
            panels.append(panel_json(ctx, panel, ids[panel.ident], pos[panel.ident], links))

    out: JSON = {
        "uid": spec.uid, "title": TITLE_PREFIX + spec.title, "description": spec.description, "tags": graf["tags"],
        "timezone": graf["timezone"], "editable": True, "graphTooltip": G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        "refresh": graf["refresh"], "time": G.Time(graf["time_from"], "now").to_json_data(),
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "timepicker": {"refresh_intervals": list(G.DEFAULT_TIME_PICKER.refreshIntervals)},
        "schemaVersion": SCHEMA_VERSION, "version": 1,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": variables(cfg)},
        "links": [dashboard_link(uid, title, f"Open {title}, keeping the time range and variables")
                  for uid, title in titles.items() if uid != spec.uid],
        "panels": panels,
    }
    titles_by_key = {row.ident: row.title for row in spec.rows}
    titles_by_key.update({p.ident: p.title for row in spec.rows for p in row.panels})
    index = {key: PanelRef(key, ids[key], titles_by_key[key]) for key in spec.panel_keys()}
    return DashboardModel(spec.uid, out["title"], canonical(out), index)


def render_json(data: JSON) -> str:
    """Deterministic text: sorted keys, two-space indent, trailing newline; NaN and Infinity are
    not JSON, so they raise instead of producing a file Grafana cannot read."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
