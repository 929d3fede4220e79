"""Grafana delivery: file provisioning and the import-by-hand form of each dashboard.

File provisioning reads dashboard JSON as is: `${DS_...}` placeholders are never resolved there (a
well-known breakage), so the provisioning copies must be free of them. The import form is what
Grafana's "Export for sharing externally" produces, so the import dialog asks for the Prometheus
datasource and substitutes it everywhere.
"""

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from dashboards.builder import render_json
from delivery import RenderError
from pdobs.build.model import BuildModel
from pdobs.core import yamlio

Config = dict[str, Any]

PROVIDER_NAME = "llm-d-pd-observability"
PROVISIONING_FILE = "grafana/provisioning/dashboards/pd-observability.yaml"
# Mounted at cfg grafana.provisioning.path; the folder name says what it holds.
PROVISIONED_DIR = "grafana/dashboards/pd-observability/"
IMPORT_DIR = "dashboards-import/"

DS_INPUT = "DS_PROMETHEUS"
DS_PLACEHOLDER = "${" + DS_INPUT + "}"
PLUGIN_ID = "prometheus"
PLUGIN_NAME = "Prometheus"
# Grafana's exporter records its own version; ours is the oldest the dashboards are made for
# (schemaVersion 39: Grafana 10.4, as the README says).
REQUIRES_GRAFANA = "10.4.0"
# Display names Grafana's panel plugins report (their `name` in __requires); core panels have no version.
PANEL_NAMES = {
    "alertlist": "Alert list",
    "bargauge": "Bar gauge",
    "barchart": "Bar chart",
    "gauge": "Gauge",
    "heatmap": "Heatmap",
    "logs": "Logs",
    "piechart": "Pie chart",
    "stat": "Stat",
    "state-timeline": "State timeline",
    "status-history": "Status history",
    "table": "Table",
    "text": "Text",
    "timeseries": "Time series",
}
# Grafana's own variable syntaxes: $var, ${var}, ${var:format}, [[var]].
_VARIABLE = re.compile(r"^\$(\w+)$|^\$\{(\w+)(?::[^}]*)?\}$|^\[\[(\w+)\]\]$")
_PLACEHOLDER = re.compile(r"\$\{(DS|VAR)_[A-Z0-9_]+\}")


def provider(cfg: Config) -> dict[str, Any]:
    g = cfg["grafana"]
    prov = g["provisioning"]
    return {
        "apiVersion": 1,
        "providers": [{
            "name": PROVIDER_NAME,
            "orgId": 1,
            "folder": g["folder"]["title"],
            "folderUid": g["folder"]["uid"],
            "type": "file",
            "disableDeletion": prov["disable_deletion"],
            "allowUiUpdates": prov["allow_ui_updates"],
            "updateIntervalSeconds": prov["update_interval_seconds"],
            "options": {"path": prov["path"], "foldersFromFilesStructure": False},
        }],
    }


def _check_provisionable(uid: str, text: str) -> None:
    model = json.loads(text)
    if "__inputs" in model or _PLACEHOLDER.search(text):
        raise RenderError(f"dashboard {uid}: has __inputs or ${{DS_...}} placeholders, which file "
                          "provisioning leaves unresolved; render datasources through the datasource variable")


def _panels(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows (Grafana's exporter walks both)."""
    out = []
    for panel in model.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []) if panel.get("collapsed") else [])
    return out


def _variable_name(uid: str) -> str | None:
    m = _VARIABLE.match(uid)
    return next((g for g in m.groups() if g), None) if m else None


class _Exporter:
    """Grafana's DashboardExporter.makeExportable, for what our dashboards contain."""

    def __init__(self, cfg: Config, model: dict[str, Any]) -> None:
        ds = cfg["grafana"]["datasource"]
        self.concrete = {ds["uid"], ds["name"]}
        self.label = ds["name"]
        self.model = model
        self.variables = {v["name"]: v for v in model.get("templating", {}).get("list", [])}
        self.uses_input = False
        self.uses_prometheus = False

    def templatize(self, obj: dict[str, Any], fallback: Any = None) -> None:
        """Replace a concrete Prometheus datasource by the input; leave variables and built-ins."""
        if "datasource" not in obj:
            if fallback is not None:
                obj["datasource"] = copy.deepcopy(fallback)
            return
        ref = obj["datasource"]
        uid = ref.get("uid") if isinstance(ref, dict) else ref
        kind = ref.get("type") if isinstance(ref, dict) else None
        if not isinstance(uid, str):
            return
        name = _variable_name(uid)
        if name is not None:
            var = self.variables.get(name, {})
            if var.get("type") == "datasource" and var.get("query") == PLUGIN_ID:
                self.uses_prometheus = True
            return
        if uid in self.concrete and kind in (None, PLUGIN_ID):
            obj["datasource"] = {"type": PLUGIN_ID, "uid": DS_PLACEHOLDER}
            self.uses_input = self.uses_prometheus = True

    def export(self) -> dict[str, Any]:
        model = self.model
        model["id"] = None
        panel_types = set()
        for panel in _panels(model):
            if panel.get("type") == "row":
                continue
            self.templatize(panel)
            for target in panel.get("targets", []):
                self.templatize(target, panel.get("datasource"))
            panel_types.add(panel["type"])
        inputs_: list[dict[str, Any]] = []
        for var in model.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                self.templatize(var)
                var["options"] = []
                var["current"] = {}
                var["refresh"] = var.get("refresh") or 1
            elif var.get("type") == "datasource":
                # Grafana empties it (the instance's default datasource wins on import); we make the
                # datasource picked in the import dialog its default instead, through the input.
                var["current"] = {"selected": False, "text": DS_PLACEHOLDER, "value": DS_PLACEHOLDER}
                if var.get("query") == PLUGIN_ID:
                    self.uses_input = self.uses_prometheus = True
        for annotation in model.get("annotations", {}).get("list", []):
            self.templatize(annotation)
        if self.uses_input:
            inputs_.append({"name": DS_INPUT, "label": self.label, "description": "",
                            "type": "datasource", "pluginId": PLUGIN_ID, "pluginName": PLUGIN_NAME})
        for var in model.get("templating", {}).get("list", []):
            if var.get("type") == "constant":
                ref = "VAR_" + var["name"].replace(" ", "_").upper()
                inputs_.append({"name": ref, "type": "constant", "label": var.get("label") or var["name"],
                                "value": var.get("query", ""), "description": ""})
                var["query"] = "${" + ref + "}"
                var["current"] = {"value": var["query"], "text": var["query"], "selected": False}
                var["options"] = [var["current"]]
        requires = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": REQUIRES_GRAFANA}]
        if self.uses_prometheus:
            requires.append({"type": "datasource", "id": PLUGIN_ID, "name": PLUGIN_NAME, "version": "1.0.0"})
        requires += [{"type": "panel", "id": t, "name": PANEL_NAMES.get(t, t), "version": ""}
                     for t in panel_types]
        head = {"__inputs": inputs_, "__elements": {}, "__requires": sorted(requires, key=lambda r: r["id"])}
        return {**head, **{k: v for k, v in model.items() if k not in head}}


def import_form(cfg: Config, model: Mapping[str, Any]) -> dict[str, Any]:
    """The dashboard as "Export for sharing externally" writes it."""
    return _Exporter(cfg, copy.deepcopy(dict(model))).export()


def _json(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def render(cfg: Config, model: BuildModel) -> dict[str, str]:
    out = {PROVISIONING_FILE: "# Generated by build.py: Grafana file provisioning of the llm-d P/D dashboards.\n"
                              + yamlio.dump(provider(cfg))}
    for uid, board in sorted(model.dashboards.items()):
        text = render_json(dict(board.json))
        _check_provisionable(uid, text)
        out[f"{PROVISIONED_DIR}{uid}.json"] = text
        out[f"{IMPORT_DIR}{uid}.json"] = _json(import_form(cfg, board.json))
    return out
