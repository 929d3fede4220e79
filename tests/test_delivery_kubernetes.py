"""Kubernetes manifests: each resource checked against the fields its API documents.

The schemas below are minimal: the fields we emit, written from the published CRDs
(prometheus-operator `monitoring.coreos.com_prometheusrules.yaml`, v1; grafana-operator
`grafana.integreatly.org_grafanadashboards.yaml`, v1beta1) and the core ConfigMap API, with
`additionalProperties: false` so a misspelt field fails instead of being pruned silently by the
API server.
"""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from delivery_support import DASHBOARD_UIDS, fixture_json, render, with_fixture

from delivery import RenderError, grafana, kubernetes
from pdobs.core import config
from pdobs.servers import tools

DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
             r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "propertyNames": {"pattern": LABEL_KEY},
                   "additionalProperties": {"type": "string", "pattern": LABEL_VALUE}},
        "annotations": {"type": "object", "propertyNames": {"pattern": LABEL_KEY},
                        "additionalProperties": {"type": "string"}},
    },
}

RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": {"type": "string"},
        "alert": {"type": "string"},
        "expr": {"type": ["string", "integer"]},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "minLength": 1, "pattern": DURATION},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}

PROMETHEUS_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {"type": "object", "additionalProperties": False, "properties": {"groups": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
                "name": {"type": "string", "minLength": 1},
                "interval": {"type": "string", "pattern": DURATION},
                "query_offset": {"type": "string", "pattern": DURATION},
                "limit": {"type": "integer"},
                "labels": STRING_MAP,
                "rules": {"type": "array", "items": RULE},
            }},
        }}},
    },
}

CONFIG_MAP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "data"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "ConfigMap"},
        "metadata": METADATA,
        "data": {"type": "object", "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$", "maxLength": 253},
                 "additionalProperties": {"type": "string"}},
    },
}

GRAFANA_DASHBOARD = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "grafana.integreatly.org/v1beta1"},
        "kind": {"const": "GrafanaDashboard"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["instanceSelector"],
            "properties": {
                "instanceSelector": {"type": "object", "additionalProperties": False, "properties": {
                    "matchLabels": STRING_MAP,
                    "matchExpressions": {"type": "array"},
                }},
                "folder": {"type": "string"},
                "folderUID": {"type": "string"},
                "folderRef": {"type": "string"},
                "json": {"type": "string"},
                "configMapRef": {"type": "object", "required": ["key"], "additionalProperties": False,
                                 "properties": {"key": {"type": "string"}, "name": {"type": "string"},
                                                "optional": {"type": "boolean"}}},
                "datasources": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["datasourceName", "inputName"],
                    "properties": {"datasourceName": {"type": "string"}, "inputName": {"type": "string"}}}},
                "resyncPeriod": {"type": "string"},
                "allowCrossNamespaceImport": {"type": "boolean"},
            },
            # The CRD's CEL rules: folder excludes folderUID/folderRef, which exclude each other.
            "not": {"anyOf": [{"required": ["folder", "folderUID"]}, {"required": ["folder", "folderRef"]},
                              {"required": ["folderUID", "folderRef"]}]},
        },
    },
}

SCHEMAS = {"PrometheusRule": PROMETHEUS_RULE, "ConfigMap": CONFIG_MAP, "GrafanaDashboard": GRAFANA_DASHBOARD}
KUBERNETES_OBJECT_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, Any], dict[str, str]]:
    return render()


def _manifests(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for rel, text in files.items():
        if rel.startswith("kubernetes/"):
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
            assert len(docs) == 1, rel
            out[rel] = docs[0]
    return out


def test_every_manifest_matches_its_resource_schema(built):
    cfg, files = built
    manifests = _manifests(files)
    kinds = sorted(m["kind"] for m in manifests.values())
    assert kinds == sorted(["PrometheusRule"] + ["ConfigMap", "GrafanaDashboard"] * len(DASHBOARD_UIDS))
    for rel, doc in manifests.items():
        jsonschema.validate(doc, SCHEMAS[doc["kind"]])
        assert doc["metadata"]["namespace"] == cfg["kubernetes"]["namespace"], rel


def test_the_schemas_reject_what_the_api_would_reject():
    _cfg, files = render()
    rule = yaml.safe_load(files[kubernetes.PROMETHEUS_RULE_FILE])
    rule["spec"]["groups"][0]["rules"][0]["for "] = "5m"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE)
    gd = yaml.safe_load(files[f"{kubernetes.OPERATOR_DIR}{DASHBOARD_UIDS[0]}.yaml"])
    gd["spec"]["folderUID"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(gd, GRAFANA_DASHBOARD)


def test_prometheus_rule_holds_every_rule_group_and_promtool_accepts_them(built, tmp_path: Path):
    _cfg, files = built
    rule = yaml.safe_load(files[kubernetes.PROMETHEUS_RULE_FILE])
    expected = []
    for rel in ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml"):
        if rel in files:
            expected += yaml.safe_load(files[rel])["groups"]
    assert rule["spec"]["groups"] == expected
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names)), "the CRD keys groups by name"
    assert rule["metadata"]["labels"]["release"] == "llmd"
    extracted = tmp_path / "rules.yaml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = subprocess.run([str(tools.tool_path("promtool")), "check", "rules", str(extracted)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_labels_namespace_and_sidecar_settings_come_from_the_config():
    cfg, files = render({"kubernetes": {
        "namespace": "observability", "name_prefix": "pd", "labels": {"team": "serving"},
        "prometheus_rule_labels": {"release": "kube-prometheus-stack"},
        "grafana_sidecar": {"label": "dashboards", "label_value": "llm-d",
                            "folder_annotation": "k8s-sidecar-target-directory"},
        "grafana_operator": {"instance_selector": "grafana=main"}}})
    manifests = _manifests(files)
    rule = manifests[kubernetes.PROMETHEUS_RULE_FILE]
    assert rule["metadata"]["name"] == "pd-rules"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for doc in manifests.values():
        assert doc["metadata"]["namespace"] == "observability"
        assert doc["metadata"]["labels"]["team"] == "serving"
    for uid in DASHBOARD_UIDS:
        cm = manifests[f"{kubernetes.SIDECAR_DIR}{uid}.yaml"]
        assert cm["metadata"]["labels"]["dashboards"] == "llm-d"
        assert cm["metadata"]["annotations"] == {"k8s-sidecar-target-directory": cfg["grafana"]["folder"]["title"]}
        gd = manifests[f"{kubernetes.OPERATOR_DIR}{uid}.yaml"]
        assert gd["spec"]["instanceSelector"] == {"matchLabels": {"grafana": "main"}}


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_sidecar_configmap_carries_the_dashboard_under_the_size_limit(built, uid):
    cfg, files = built
    cm = _manifests(files)[f"{kubernetes.SIDECAR_DIR}{uid}.yaml"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", "the sidecar compares label values as strings"
    assert cm["metadata"]["annotations"] == {"grafana_folder": cfg["grafana"]["folder"]["title"]}
    assert cm["data"] == {f"{uid}.json": files[f"dashboards/{uid}.json"]}
    assert sum(len(v.encode()) for v in cm["data"].values()) < KUBERNETES_OBJECT_LIMIT
    assert len(json.dumps(cm).encode()) < KUBERNETES_OBJECT_LIMIT


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_grafana_operator_dashboard_imports_with_the_datasource_mapping(built, uid):
    cfg, files = built
    gd = _manifests(files)[f"{kubernetes.OPERATOR_DIR}{uid}.yaml"]
    spec = gd["spec"]
    assert spec["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
    assert spec["folder"] == cfg["grafana"]["folder"]["title"]
    assert json.loads(spec["json"]) == json.loads(files[f"{grafana.IMPORT_DIR}{uid}.json"])
    name = cfg["grafana"]["datasource"]["name"]
    assert spec["datasources"] == [{"inputName": "DS_PROMETHEUS", "datasourceName": name}]
    # The operator substitutes ${inputName} by the datasource name in the JSON text.
    resolved = spec["json"].replace("${DS_PROMETHEUS}", spec["datasources"][0]["datasourceName"])
    assert not re.search(r"\$\{DS_[A-Z_]+\}", resolved)
    assert json.loads(resolved)["uid"] == uid
    assert len(json.dumps(gd).encode()) < KUBERNETES_OBJECT_LIMIT


def test_a_dashboard_over_the_object_limit_fails_the_build():
    cfg = config.load()

    huge = fixture_json()
    huge["description"] = "x" * KUBERNETES_OBJECT_LIMIT
    from pdobs.build import make

    with pytest.raises(RenderError, match="1 MiB"):
        make.files(cfg, with_fixture(cfg, huge))
