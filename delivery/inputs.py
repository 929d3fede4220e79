"""Read the artefacts other renderers produced: dashboards, rule files, alerts."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

DASHBOARDS_DIR = "dashboards/"
RULES_DIR = "prometheus/"
ALERTS_FILE = "prometheus/alerts.yaml"


class RenderError(Exception):
    """Rendered content that cannot be delivered (too large, placeholders left); one line."""


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def dashboards(files: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """uid -> dashboard model, for every build/dashboards/<uid>.json, in uid order."""
    out: dict[str, dict[str, Any]] = {}
    for rel in sorted(files):
        if rel.startswith(DASHBOARDS_DIR) and rel.endswith(".json") and rel.count("/") == 1:
            model = json.loads(files[rel])
            uid = model.get("uid")
            if uid != rel[len(DASHBOARDS_DIR):-len(".json")]:
                raise RenderError(f"{rel}: its uid is {uid!r}; the file name must be <uid>.json")
            out[uid] = model
    return out


def dashboard_text(files: Mapping[str, str], uid: str) -> str:
    return files[f"{DASHBOARDS_DIR}{uid}.json"]


def rule_files(files: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Rule files under prometheus/, parsed, in path order (recording rules before alerts)."""
    out = {}
    for rel in sorted(files, key=lambda r: (r != "prometheus/recording-rules.yaml", r)):
        if rel.startswith(RULES_DIR) and rel.endswith((".yaml", ".yml")):
            doc = yaml.safe_load(files[rel])
            if isinstance(doc, dict) and isinstance(doc.get("groups"), list):
                out[rel] = doc
    return out


def alerts(files: Mapping[str, str]) -> list[Alert]:
    """Every alerting rule in the rendered rule files, in file order."""
    found = []
    for doc in rule_files(files).values():
        for group in doc["groups"]:
            for rule in group.get("rules", []):
                if "alert" in rule:
                    labels = rule.get("labels", {})
                    found.append(Alert(rule["alert"], labels.get("severity", ""), labels,
                                       rule.get("annotations", {})))
    return found
