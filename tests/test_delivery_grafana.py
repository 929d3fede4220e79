"""Grafana file provisioning and the import-by-hand form ("Export for sharing externally")."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from delivery_support import DASHBOARD_UIDS, FIXTURE_UID, fixture_dashboard, fixture_json, render

from delivery import RenderError, grafana
from pdobs import cli
from pdobs.build import make
from pdobs.build.model import BuildModel
from pdobs.core import config, paths

# The file provider's fields as Grafana documents them (administration/provisioning, "Dashboards").
PROVIDER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "providers"],
    "properties": {
        "apiVersion": {"const": 1},
        "providers": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "type", "options"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "orgId": {"type": "integer"},
                "folder": {"type": "string"},
                "folderUid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
                "type": {"const": "file"},
                "disableDeletion": {"type": "boolean"},
                "allowUiUpdates": {"type": "boolean"},
                "updateIntervalSeconds": {"type": "integer", "minimum": 1},
                "options": {"type": "object", "additionalProperties": False, "required": ["path"],
                            "properties": {"path": {"type": "string", "pattern": "^/"},
                                           "foldersFromFilesStructure": {"type": "boolean"}}},
            },
        }},
    },
}

_VARIABLE_REF = re.compile(r"^\$\{?\w+\}?$")
_PLACEHOLDER = re.compile(r"\$\{((?:DS|VAR)_[A-Z0-9_]+)\}")


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, Any], dict[str, str]]:
    return render()


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _datasource_refs(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [r for v in node.values() for r in _datasource_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _datasource_refs(v)]
    return []


def _targets_inherit(model: dict[str, Any]) -> dict[str, Any]:
    """A target without a datasource uses its panel's; Grafana's exporter writes that out."""
    for top in model.get("panels", []):
        for panel in [top, *top.get("panels", [])]:
            for target in panel.get("targets", []):
                if "datasource" not in target and "datasource" in panel:
                    target["datasource"] = panel["datasource"]
    return model


def grafana_import(exported: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """What POST /api/dashboards/import does with the import dialog's answers (Grafana's
    DashTemplateEvaluator): every ${NAME} of a declared input is replaced in every string, and
    __inputs is dropped."""
    declared = {i["name"] for i in exported["__inputs"]}
    assert declared == set(values), "the import dialog answers exactly the declared inputs"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k != "__inputs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), node)
        return node

    return walk(exported)


# --- file provisioning -------------------------------------------------------------------------


def test_provider_follows_the_documented_fields_and_the_config():
    _cfg, files = render({"grafana": {"folder": {"title": "Serving", "uid": "serving"},
                                     "provisioning": {"disable_deletion": True, "allow_ui_updates": True,
                                                      "path": "/srv/grafana/pd", "update_interval_seconds": 60}}})
    doc = yaml.safe_load(files[grafana.PROVISIONING_FILE])
    jsonschema.validate(doc, PROVIDER_SCHEMA)
    (prov,) = doc["providers"]
    assert (prov["folder"], prov["folderUid"]) == ("Serving", "serving")
    assert (prov["disableDeletion"], prov["allowUiUpdates"]) == (True, True)
    assert prov["updateIntervalSeconds"] == 60
    assert prov["options"]["path"] == "/srv/grafana/pd"


def test_default_provider_points_where_the_readme_mounts_the_dashboards(built):
    _cfg, files = built
    (prov,) = yaml.safe_load(files[grafana.PROVISIONING_FILE])["providers"]
    assert prov["options"]["path"] == "/var/lib/grafana/dashboards/pd-observability"
    assert (prov["disableDeletion"], prov["allowUiUpdates"]) == (False, False)
    # The README mounts build/grafana/dashboards/pd-observability at that path.
    assert grafana.PROVISIONED_DIR.rstrip("/").rsplit("/", 1)[-1] == prov["options"]["path"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_provisioned_copy_is_the_dashboard_and_has_no_placeholders(built, uid):
    _cfg, files = built
    text = files[f"{grafana.PROVISIONED_DIR}{uid}.json"]
    assert text == files[f"dashboards/{uid}.json"]
    model = json.loads(text)
    assert "__inputs" not in model and "__requires" not in model
    assert not _PLACEHOLDER.search(text), "file provisioning would leave ${DS_...} unresolved"
    assert model["uid"] == uid


def test_every_rendered_dashboard_is_provisioned(built):
    _cfg, files = built
    provisioned = {p.rsplit("/", 1)[-1] for p in files if p.startswith(grafana.PROVISIONED_DIR)}
    assert provisioned == {f"{uid}.json" for uid in DASHBOARD_UIDS}
    assert FIXTURE_UID in DASHBOARD_UIDS


def test_a_dashboard_with_import_placeholders_fails_the_build_and_writes_nothing(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    real = make.model

    def exported(cfg: dict[str, Any]) -> BuildModel:
        return real(cfg).with_dashboards(fixture_dashboard(grafana.import_form(cfg, fixture_json())))

    monkeypatch.setattr(make, "model", exported)
    out = tmp_path / "out"
    assert cli.main(["--out", str(out)]) == 2
    assert not out.exists()
    with pytest.raises(RenderError, match="placeholders"):
        make.build(config.load())


# --- import by hand ------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_import_form_is_what_export_for_sharing_externally_writes(built, uid):
    cfg, files = built
    exported = json.loads(files[f"{grafana.IMPORT_DIR}{uid}.json"])
    assert list(exported)[:3] == ["__inputs", "__elements", "__requires"]
    assert exported["id"] is None and exported["uid"] == uid
    assert exported["__elements"] == {}

    ds_inputs = [i for i in exported["__inputs"] if i["type"] == "datasource"]
    assert ds_inputs == [{"name": "DS_PROMETHEUS", "label": cfg["grafana"]["datasource"]["name"],
                          "description": "", "type": "datasource", "pluginId": "prometheus",
                          "pluginName": "Prometheus"}]

    requires = exported["__requires"]
    assert [r["id"] for r in requires] == sorted(r["id"] for r in requires)
    by_id = {r["id"]: r for r in requires}
    assert by_id["grafana"]["type"] == "grafana"
    # The oldest Grafana the README promises (10.4-12), which schemaVersion 39 needs.
    readme = (paths.ROOT / "README.md").read_text()
    oldest = re.search(r"Grafana (\d+\.\d+)[\u2013-]\d+", readme).group(1)
    assert by_id["grafana"]["version"] == f"{oldest}.0" == "10.4.0"
    assert by_id["prometheus"] == {"type": "datasource", "id": "prometheus", "name": "Prometheus",
                                   "version": "1.0.0"}
    panels = [p for top in exported["panels"] for p in [top, *top.get("panels", [])]]
    types = {p["type"] for p in panels} - {"row"}
    assert {r["id"] for r in requires if r["type"] == "panel"} == types

    concrete = {cfg["grafana"]["datasource"]["uid"], cfg["grafana"]["datasource"]["name"]}
    for ref in _datasource_refs(exported):
        uid_ = ref.get("uid") if isinstance(ref, dict) else ref
        assert uid_ not in concrete, f"datasource {ref} is not templated"
        assert uid_ == "${DS_PROMETHEUS}" or _VARIABLE_REF.match(uid_) or ref.get("type") == "grafana", ref

    for var in exported["templating"]["list"]:
        if var["type"] == "query":
            assert (var["options"], var["current"]) == ([], {})
            assert var["refresh"] in (1, 2)
        if var["type"] == "datasource":
            assert var["current"]["value"] == "${DS_PROMETHEUS}"

    used = set(_PLACEHOLDER.findall(json.dumps({k: v for k, v in exported.items() if k != "__inputs"})))
    assert used == {i["name"] for i in exported["__inputs"]}, "every input used, every placeholder declared"


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_importing_with_the_configured_datasource_gives_back_the_provisioned_dashboard(built, uid):
    cfg, files = built
    exported = json.loads(files[f"{grafana.IMPORT_DIR}{uid}.json"])
    values = {i["name"]: (cfg["grafana"]["datasource"]["uid"] if i["type"] == "datasource" else i["value"])
              for i in exported["__inputs"]}
    imported = grafana_import(exported, values)
    original = _targets_inherit(json.loads(files[f"dashboards/{uid}.json"]))
    assert not _PLACEHOLDER.search(json.dumps(imported))
    for key in set(original) | set(imported):
        if key in ("id", "templating", "__elements", "__requires"):
            continue
        assert imported.get(key) == original.get(key), key
    before = {v["name"]: v for v in original["templating"]["list"]}
    after = {v["name"]: v for v in imported["templating"]["list"]}
    assert before.keys() == after.keys()
    for name, var in after.items():
        assert var.get("query") == before[name].get("query")
        assert var.get("datasource") == before[name].get("datasource")
        if var["type"] == "datasource":
            assert var["current"]["value"] == cfg["grafana"]["datasource"]["uid"]


def test_fixture_panel_pinned_to_the_datasource_is_templated_and_the_constant_becomes_an_input(built):
    _cfg, files = built
    exported = json.loads(files[f"{grafana.IMPORT_DIR}{FIXTURE_UID}.json"])
    pinned = next(p for p in exported["panels"] if p["title"] == "Verdict")
    assert pinned["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    assert pinned["targets"][0]["datasource"] == pinned["datasource"], "targets inherit the panel's datasource"
    (const,) = [i for i in exported["__inputs"] if i["type"] == "constant"]
    assert const == {"name": "VAR_RELEASE", "type": "constant", "label": "release", "value": "llm-d",
                     "description": ""}
    row = next(p for p in exported["panels"] if p["type"] == "row")
    assert row["panels"][0]["datasource"]["uid"] == "${datasource}"
    assert "bargauge" in {r["id"] for r in exported["__requires"]}, "panels inside collapsed rows count"
