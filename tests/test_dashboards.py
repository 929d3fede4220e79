"""The dashboards' structure: schemas (ours and Grafana's), ids, layout, variables, links, and the
grafana/dashboard-linter rules that apply. Behaviour against a real Prometheus is in
test_dashboards_prometheus.py."""

import json
import re
from collections.abc import Mapping
from dataclasses import replace

import grafanalib.core as G
import jsonschema
import pytest
from grafanalib._gen import DashboardEncoder

from dashboards import builder, coordinator, drilldown, ids, render
from dashboards.features import FEATURES
from dashboards.spec import TITLE_PREFIX, Dashboard, Panel, Query, Row, Step
from pdobs import checks, signals
from pdobs.build import make
from pdobs.build.model import DashboardModel
from pdobs.checks import NEUTRAL
from pdobs.core import config
from tests.dashboard_helpers import (
    BUILTIN_VARS,
    PROJECT_SCHEMA,
    UPSTREAM_SCHEMAS,
    load_schema,
    panels,
    targets,
    upstream_validator,
    variable_refs,
)

UIDS = (ids.PERFORMANCE, ids.COORDINATOR, ids.DRILLDOWN)
MULTI = {"multi_cluster": True, "labels": {"cluster": "k8s_cluster"}}
# Grafana unit ids the dashboards may use (grafana/grafana packages/grafana-data/src/valueFormats/categories.ts).
# Grafana unit ids; "bytes" is IEC (KiB, MiB), "decbytes" SI (kB, MB).
GRAFANA_UNITS = {"s", "ms", "short", "percentunit", "percent", "reqps", "ops", "Bps", "bytes", "decbytes", "none"}
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
RANGE_FUNCTIONS = ("rate", "irate", "increase")


@pytest.fixture(scope="module")
def cfg() -> dict:
    return config.load()


@pytest.fixture(scope="module")
def built(cfg) -> Mapping[str, DashboardModel]:
    return render.build_all(cfg)


@pytest.fixture(scope="module")
def dashboards(built) -> dict[str, dict]:
    return {uid: b.json for uid, b in built.items()}


@pytest.fixture(scope="module")
def multi_dashboards() -> dict[str, dict]:
    return {uid: b.json for uid, b in render.build_all(config.load(overrides=MULTI)).items()}


# --- rendering ----------------------------------------------------------------------------------


def test_build_writes_the_three_dashboards_deterministically(cfg):
    files = make.build(cfg)
    paths = sorted(p for p in files if p.startswith("dashboards/"))
    assert paths == sorted(f"dashboards/{uid}.json" for uid in UIDS)
    again = make.build(cfg)
    for path in paths:
        text = files[path]
        assert text == again[path]
        data = json.loads(text)
        assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert data["title"].startswith("llm-d P/D / ")
        assert path == f"dashboards/{data['uid']}.json"


def test_dashboard_settings_come_from_the_config():
    cfg = config.load(overrides={"grafana": {"tags": ["x-tag"], "refresh": "1m", "timezone": "utc",
                                             "time_from": "now-6h",
                                             "datasource": {"name": "Mimir", "uid": "mimir-1"}}})
    for data in (b.json for b in render.build_all(cfg).values()):
        assert (data["tags"], data["refresh"], data["timezone"], data["time"]) == (
            ["x-tag"], "1m", "utc", {"from": "now-6h", "to": "now"})
        ds = data["templating"]["list"][0]
        assert ds["current"]["value"] == "mimir-1" and ds["current"]["text"] == "Mimir"


# --- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", UIDS)
def test_validates_against_the_project_schema(dashboards, uid):
    schema = load_schema(PROJECT_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message[:160]}"
              for e in jsonschema.Draft202012Validator(schema).iter_errors(dashboards[uid])]
    assert not errors, "\n".join(errors)


def test_project_schema_rejects_what_grafanalib_emits_unchanged(cfg):
    # The reason for the rewrite: grafanalib 0.7.1's own JSON is the Grafana 6/7 model.
    board = render.specs(cfg)[0]
    raw = json.loads(json.dumps(G.Dashboard(
        title=TITLE_PREFIX + board.title, uid=board.uid,
        panels=[G.TimeSeries(title="x", targets=[G.Target(expr="up")])]).to_json_data(), cls=DashboardEncoder))
    assert raw["schemaVersion"] < 39 and raw["panels"][0]["maxDataPoints"] == 100
    validator = jsonschema.Draft202012Validator(load_schema(PROJECT_SCHEMA))
    messages = " ".join(e.message for e in validator.iter_errors(raw))
    assert "schemaVersion" in messages or "39" in messages
    assert "__inputs" in messages


@pytest.mark.parametrize("uid", UIDS)
def test_validates_against_grafanas_upstream_schemas(dashboards, uid):
    assert (UPSTREAM_SCHEMAS / "README.md").is_file(), f"missing {UPSTREAM_SCHEMAS}"
    data = dashboards[uid]
    errors = [f"dashboard {list(e.absolute_path)}: {e.message[:160]}"
              for e in upstream_validator("dashboard.jsonschema.json").iter_errors(data)]
    query = upstream_validator("prometheus.jsonschema.json")
    for panel in panels(data):
        kind = panel["type"]
        for e in upstream_validator(f"{kind}.jsonschema.json", "Options").iter_errors(panel["options"]):
            errors.append(f"{panel['title']} options: {e.message[:160]}")
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if custom is not None:
            for e in upstream_validator(f"{kind}.jsonschema.json", "FieldConfig").iter_errors(custom):
                errors.append(f"{panel['title']} fieldConfig.custom: {e.message[:160]}")
        for target in panel["targets"]:
            for e in query.iter_errors(target):
                errors.append(f"{panel['title']} target {target['refId']}: {e.message[:160]}")
    assert not errors, "\n".join(errors)


def test_modern_model_only(dashboards):
    text = json.dumps(dashboards)
    for legacy in ('"graph"', '"singlestat"', '"maxDataPoints"', '"span"', '"__inputs"', '"rows"',
                   '"fieldOptions"', '"sharedCrosshair"', '"intervalFactor"'):
        assert legacy not in text, f"legacy key or panel type {legacy} in the output"
    for data in dashboards.values():
        assert 39 <= data["schemaVersion"] <= 41
        assert {p["type"] for p in panels(data)} <= {"timeseries", "stat", "table", "bargauge"}


# --- ids and layout -------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", UIDS)
def test_panel_ids_and_titles_are_unique(dashboards, uid):
    found = [p["id"] for p in dashboards[uid]["panels"]]
    assert len(found) == len(set(found))
    titles = [p["title"] for p in panels(dashboards[uid])]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


def test_panel_ids_do_not_move_when_a_panel_is_added(cfg):
    spec = coordinator.dashboard(cfg)
    before = builder.stable_ids(spec.panel_keys(), spec.uid)
    extra = Panel("stat", "A new panel", "Healthy: new.", (Query("verdict"),))
    rows = (Row(spec.rows[0].title, (extra, *spec.rows[0].panels)), *spec.rows[1:])
    after = builder.stable_ids(Dashboard(spec.uid, spec.title, "", rows).panel_keys(), spec.uid)
    assert all(after[k] == v for k, v in before.items())


def test_duplicate_panel_keys_are_refused():
    with pytest.raises(AssertionError, match="duplicate panel keys"):
        builder.stable_ids(["a", "b", "a"], "x")


@pytest.mark.parametrize("uid", UIDS)
def test_grid_positions_never_overlap(dashboards, uid):
    boxes = [(p["title"], p["gridPos"]) for p in dashboards[uid]["panels"]]
    for title, g in boxes:
        assert g["x"] + g["w"] <= 24, title
    for i, (t1, a) in enumerate(boxes):
        for t2, b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{t1!r} overlaps {t2!r}"


def test_layout_wraps_panels_that_do_not_fit():
    row = Row("r", tuple(Panel("stat", f"p{i}", "", (), width=10, height=3 + i) for i in range(3)))
    pos = builder.layout([row])
    assert pos["p0"] == (0, 1, 10, 3) and pos["p1"] == (10, 1, 10, 4) and pos["p2"] == (0, 5, 10, 5)


# --- datasource and variables --------------------------------------------------------------------


@pytest.mark.parametrize("uid", UIDS)
def test_every_panel_and_target_uses_the_datasource_variable(dashboards, uid):
    # dashboard-linter panel-datasource-rule, plus the same for each target
    for panel, target in targets(dashboards[uid]):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.parametrize("uid", UIDS)
def test_template_datasource_rule(dashboards, cfg, uid):
    # dashboard-linter template-datasource-rule: one `datasource` variable of the Prometheus type.
    variables = dashboards[uid]["templating"]["list"]
    ds = [v for v in variables if v["type"] == "datasource"]
    assert len(ds) == 1
    assert (ds[0]["name"], ds[0]["label"], ds[0]["query"]) == ("datasource", "Data source", "prometheus")
    assert ds[0]["current"]["value"] == cfg["grafana"]["datasource"]["uid"]
    for v in variables:
        if v["type"] == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def _uses(data: dict) -> set[str]:
    used: set[str] = set()
    for panel, target in targets(data):
        used |= variable_refs(target["expr"]) | variable_refs(json.dumps(target["datasource"]))
        used |= variable_refs(json.dumps(panel["datasource"]))
    for v in data["templating"]["list"]:
        used |= variable_refs(v["query"]) | variable_refs(json.dumps(v.get("datasource", {})))
    return used


@pytest.mark.parametrize("multi", [False, True], ids=["single-cluster", "multi-cluster"])
def test_every_variable_used_is_defined_and_every_defined_one_used(dashboards, multi_dashboards, multi):
    for uid, data in (multi_dashboards if multi else dashboards).items():
        defined = {v["name"] for v in data["templating"]["list"]}
        expected = {"datasource", "namespace", "model_name"} | ({"cluster"} if multi else set())
        assert defined == expected, uid
        used = _uses(data) - set(BUILTIN_VARS)
        assert used == defined, f"{uid}: used {sorted(used)}, defined {sorted(defined)}"


def test_variables_are_chained(multi_dashboards):
    variables = {v["name"]: v["query"] for v in multi_dashboards[ids.PERFORMANCE]["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "namespace", "model_name"]
    assert "$cluster" not in variables["cluster"]
    assert 'k8s_cluster=~"$cluster"' in variables["namespace"] and variables["namespace"].endswith(", namespace)")
    assert '$namespace' in variables["model_name"] and 'k8s_cluster=~"$cluster"' in variables["model_name"]
    assert variables["model_name"].endswith(", model_name)")


def test_multi_cluster_scopes_every_query_by_cluster(multi_dashboards):
    for data in multi_dashboards.values():
        for panel, target in targets(data):
            assert 'k8s_cluster=~"$cluster"' in target["expr"], f"{panel['title']}: {target['expr'][:120]}"


# --- dashboard-linter rules -------------------------------------------------------------------------


@pytest.mark.parametrize("uid", UIDS)
def test_panel_title_description_rule(dashboards, uid):
    for panel in panels(dashboards[uid]):
        assert panel["title"].strip() and panel["description"].strip()
        assert re.search(r"[Hh]ealthy", panel["description"]), f"{panel['title']}: say what healthy looks like"


@pytest.mark.parametrize("uid", UIDS)
def test_panel_units_rule(dashboards, uid):
    for panel in panels(dashboards[uid]):
        assert panel["fieldConfig"]["defaults"]["unit"] in GRAFANA_UNITS, panel["title"]


def test_units_say_what_the_titles_and_the_doctor_say(dashboards):
    by_title = {p["title"]: p for uid in UIDS for p in panels(dashboards[uid])}
    # "MB" in the title is decimal: Grafana's SI bytes unit, not the IEC one (MiB).
    assert by_title["MB per transfer"]["fieldConfig"]["defaults"]["unit"] == "decbytes"
    assert "1 MB = 1,000,000 bytes" in by_title["MB per transfer"]["description"]
    # A count per count, as the doctor prints it ("1.00 per decode req"), never a percent.
    assert by_title["Prefill requests per decode request"]["fieldConfig"]["defaults"]["unit"] == "none"


def _enclosing_calls(expr: str, pos: int) -> list[str]:
    """Names of the function calls whose parentheses enclose position `pos`."""
    names, depth = [], 0
    for i in range(pos - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth:
                depth -= 1
                continue
            names.append(re.search(r"([a-z_]*)\s*$", expr[:i]).group(1))
    return names


@pytest.mark.parametrize("uid", UIDS)
def test_target_rate_interval_rule(dashboards, uid):
    # Every range selector uses $__rate_interval (test_dashboards_prometheus checks it on the AST too).
    for panel, target in targets(dashboards[uid]):
        ranges = re.findall(r"\[([^\]]+)\]", target["expr"])
        assert all(r == "$__rate_interval" for r in ranges), f"{panel['title']}: {ranges}"


@pytest.mark.parametrize("uid", UIDS)
def test_target_counter_agg_rule(dashboards, uid):
    # A raw counter (or histogram part) is only ever read through rate()/irate()/increase().
    metric = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\{")
    for panel, target in targets(dashboards[uid]):
        for m in metric.finditer(target["expr"]):
            if m.group(1).endswith(COUNTER_SUFFIXES):
                calls = _enclosing_calls(target["expr"], m.start())
                assert calls and calls[0] in RANGE_FUNCTIONS, f"{panel['title']}: {m.group(1)} outside rate()"


def test_counter_agg_checker_catches_a_bare_counter():
    expr = 'sum(vllm_requests_total{a="b"}) + sum(rate(x_total{a="b"}[1m]))'
    first, second = (m.start() for m in re.finditer(r"\w+_total\{", expr))
    assert _enclosing_calls(expr, first) == ["sum"]
    assert _enclosing_calls(expr, second)[0] == "rate"


# --- queries come from the catalog ---------------------------------------------------------------


def test_every_query_is_a_catalog_signal(cfg, dashboards):
    ctx = builder.dashboard_context(cfg)
    for spec in render.specs(cfg):
        rendered = {p["title"]: p for p in panels(dashboards[spec.uid])}
        for row in spec.rows:
            for panel in row.panels:
                exprs = [t["expr"] for t in rendered[panel.title]["targets"]]
                assert exprs == [signals.query(ctx, q.signal, **q.variant) for q in panel.queries]
                for q in panel.queries:
                    assert set(q.needs) <= set(FEATURES), f"{panel.title}: unknown feature in {q.needs}"


def test_label_names_come_from_the_config():
    cfg = config.load(overrides={"labels": {"pod": "kubernetes_pod", "namespace": "k8s_ns"}})
    data = render.build_all(cfg)[ids.PERFORMANCE].json
    per_pod = next(p for p in panels(data) if p["title"] == "KV-cache usage per pod")
    assert per_pod["targets"][0]["legendFormat"] == "{{kubernetes_pod}}"
    assert "by (k8s_ns, model_name, kubernetes_pod)" in per_pod["targets"][0]["expr"]
    ns_var = next(v for v in data["templating"]["list"] if v["name"] == "namespace")
    assert ns_var["query"].endswith(", k8s_ns)")


def test_thresholds_come_from_the_config():
    cfg = config.load(overrides={"grafana": {"thresholds": {"ttft_seconds": 7.5}},
                                 "alerts": {"PDKVTransferSlow": {"p95_seconds": 3.25}}})
    built = render.build_all(cfg)
    ttft = next(p for p in panels(built[ids.PERFORMANCE].json) if p["title"] == "TTFT per role")
    assert [s["value"] for s in ttft["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 7.5]
    kv_time = next(p for p in panels(built[ids.COORDINATOR].json) if p["title"] == "KV transfer time")
    assert kv_time["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 3.25


def test_quantile_panels_follow_the_configured_quantiles():
    # Without a p95 the PDKVTransferSlow alert cannot be rendered, so config validation wants it off.
    cfg = config.load(overrides={"signals": {"quantiles": [0.5, 0.9]},
                                 "alerts": {"PDKVTransferSlow": {"enabled": False}}})
    data = render.build_all(cfg)[ids.PERFORMANCE].json
    ttft = next(p for p in panels(data) if p["title"] == "TTFT per role")
    assert [t["legendFormat"] for t in ttft["targets"]] == ["{{role}} p50", "{{role}} p90"]
    assert any(p["title"] == "TTFT p90 per role" for p in panels(data))


# --- status panels: never a silent "No Data" --------------------------------------------------------


def _mapping(panel: dict) -> dict[str, tuple[str, str]]:
    options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    return {code: (o["text"], o["color"]) for code, o in options.items()}


def test_kv_status_panel_reads_absent_in_red_and_not_deployed_in_grey(dashboards):
    panel = next(p for p in panels(dashboards[ids.COORDINATOR]) if p["title"] == "KV transfer status")
    mapping = _mapping(panel)
    assert set(mapping) == {str(s.code) for s in checks.NixlState}
    by_text = {text: color for text, color in mapping.values()}
    assert by_text["ABSENT"] == "red" and by_text["FLOWING"] == "green"
    assert by_text["NOT DEPLOYED"] == NEUTRAL and by_text["IDLE"] == NEUTRAL
    assert panel["options"]["colorMode"] == "background"
    assert "recording rules" in panel["fieldConfig"]["defaults"]["noValue"]


def test_every_kv_panel_explains_an_empty_result(cfg, dashboards):
    data = dashboards[ids.COORDINATOR]
    kv_row = next(r for r in coordinator.dashboard(cfg).rows if "NIXL" in r.title)
    for spec in kv_row.panels:
        panel = next(p for p in panels(data) if p["title"] == spec.title)
        no_value = panel["fieldConfig"]["defaults"]["noValue"]
        assert "vLLM" in no_value or "recording rules" in no_value, f"{spec.title}: {no_value}"


def test_drilldown_top_row_is_the_checklist_and_the_verdict(cfg, dashboards):
    data = dashboards[ids.DRILLDOWN]
    top = [p for p in panels(data) if p["gridPos"]["y"] == 1]
    n = len(checks.CHECKS)
    assert len(top) == n + 1 and all(p["type"] == "stat" for p in top)
    assert sum(p["gridPos"]["w"] for p in top) == 24  # one line
    found = [re.search(r'signal="(\w+)"', p["targets"][0]["expr"]) for p in top[1:n]]
    assert [m.group(1) for m in found] == [c.name for c in checks.CHECKS[1:]]
    for panel in top[1:n]:
        mapping = _mapping(panel)
        assert mapping["0"] == ("PASS", "green") and mapping["1"] == ("FAIL", "red")
        assert mapping["2"] == ("NOT DEPLOYED", NEUTRAL)
    # The KV-delivery check has nothing to measure before vLLM 0.16: it says so in grey.
    assert _mapping(top[n - 1])[str(checks.CheckState.NOT_EXPORTED.code)] == ("NOT EXPORTED", NEUTRAL)
    assert set(_mapping(top[0])) == {str(s.code) for s in checks.NixlState}
    verdict = _mapping(top[n])
    assert {int(c): text for c, (text, _) in verdict.items()} == {v.code: v.text for v in checks.Verdict}
    assert verdict["1"][1] == "red" and verdict["0"][1] == "green"


def test_firing_alerts_panel_reads_this_projects_alerts(dashboards):
    panel = next(p for p in panels(dashboards[ids.DRILLDOWN]) if p["type"] == "table")
    expr = panel["targets"][0]["expr"]
    assert f'alertname=~"{signals.ALERT_NAME_PREFIX}.*"' in expr and 'alertstate="firing"' in expr
    assert panel["targets"][0]["instant"] and panel["targets"][0]["format"] == "table"


# --- links --------------------------------------------------------------------------------------------


def test_dashboards_link_each_other_keeping_time_and_variables(dashboards):
    for uid, data in dashboards.items():
        urls = {link["url"] for link in data["links"]}
        assert urls == {f"/d/{other}" for other in UIDS if other != uid}
        assert all(link["keepTime"] and link["includeVars"] for link in data["links"])
        for panel in panels(data):
            for link in panel.get("links", []):
                # Panel links are data links: the URL itself must carry time range and variables.
                target, query = link["url"][3:].split("?")
                assert target in UIDS and query == "${__url_time_range}&${__all_variables}"


def test_panel_index_points_at_existing_panels(built, dashboards):
    for uid, board in built.items():
        by_id = {p["id"]: p for p in dashboards[uid]["panels"]}
        assert sorted(ref.id for ref in board.panels.values()) == sorted(by_id)
        for key, ref in board.panels.items():
            assert ref.key == key and by_id[ref.id]["title"] == ref.title, (uid, key)
    path = built[ids.COORDINATOR].path("kv-status")
    pid = int(path.rsplit("=", 1)[1])
    assert path == f"/d/{ids.COORDINATOR}?viewPanel={pid}"
    assert next(p for p in panels(dashboards[ids.COORDINATOR]) if p["id"] == pid)["title"] == "KV transfer status"
    with pytest.raises(KeyError, match="no panel"):
        built[ids.COORDINATOR].path("nope")


def test_spec_errors_are_caught_at_build_time(cfg):
    spec = drilldown.dashboard(cfg)
    bad = replace(spec, rows=(Row("r", (Panel("graph", "old", "Healthy.", (
        Query("verdict"),)),)),))
    with pytest.raises(AssertionError, match="kind"):
        builder.build(cfg, bad, [])
    with pytest.raises(AssertionError, match="first threshold"):
        builder.build(cfg, replace(spec, rows=(Row("r", (Panel(
            "stat", "t", "Healthy.", (Query("verdict"),), thresholds=(Step(1, "red"),)),)),)), [])


def test_every_alert_links_to_a_panel_that_exists(built):
    # Runbooks and alert annotations send people to a panel by dashboard uid and panel key.
    from alerts.definitions import ALERTS

    for alert in ALERTS:
        assert alert.link.panel in built[alert.link.dashboard].panels, f"{alert.name}: no panel {alert.link.panel!r}"
