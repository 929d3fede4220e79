"""The Alertmanager routing config, checked by the real amtool: config, routes and templates."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_support import ALERTS, render

from delivery import alertmanager
from pdobs.servers import tools

NAMESPACE = "llm-d-pd"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _write(files: dict[str, str], folder: Path) -> Path:
    for rel in (alertmanager.CONFIG_FILE, alertmanager.TEMPLATE_FILE):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
    return folder / alertmanager.CONFIG_FILE


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.tool_path("amtool")), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str], Path]:
    cfg, files = render({"grafana": {"url": "https://grafana.example.com"}})
    return cfg, files, _write(files, tmp_path_factory.mktemp("am"))


def test_amtool_accepts_the_config_and_its_templates(default_config):
    _cfg, _files, path = default_config
    proc = _amtool("check-config", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 templates" in proc.stdout and "3 receivers" in proc.stdout


def test_amtool_rejects_a_broken_template(tmp_path: Path):
    _cfg, files = render()
    files = {**files, alertmanager.TEMPLATE_FILE: files[alertmanager.TEMPLATE_FILE] + '{{ define "x" }}{{ .Oops'}
    proc = _amtool("check-config", str(_write(files, tmp_path)))
    assert proc.returncode != 0, "check-config must parse the templates, or the test above proves nothing"


def test_no_secret_sits_in_the_config(default_config):
    cfg, _files, path = default_config
    doc = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in doc["receivers"]}
    pd = receivers[cfg["alertmanager"]["pagerduty"]["receiver"]]["pagerduty_configs"][0]
    slack = receivers[cfg["alertmanager"]["slack"]["receiver"]]["slack_configs"][0]
    assert pd["routing_key_file"] == cfg["alertmanager"]["pagerduty"]["routing_key_file"]
    assert slack["api_url_file"] == cfg["alertmanager"]["slack"]["api_url_file"]
    assert not {"routing_key", "service_key"} & set(pd) and "api_url" not in slack
    assert "global" not in doc, "a merged-in config must not override the user's globals"
    assert (slack["send_resolved"], pd["send_resolved"]) == (True, True)
    assert slack["channel"] == cfg["alertmanager"]["slack"]["channel"]
    assert doc["route"]["group_by"] == ["alertname", "namespace", "cluster"]


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_each_alert_reaches_the_receiver_of_its_severity(default_config, alert):
    cfg, _files, path = default_config
    expected = alertmanager.receivers_for(cfg, alert.severity)
    labels = [f"alertname={alert.name}", f"severity={alert.severity}", f"namespace={NAMESPACE}",
              f"model_name={MODEL}"]
    proc = _amtool("config", "routes", "test", f"--config.file={path}",
                   f"--verify.receivers={','.join(expected)}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wrong = "pd-slack" if expected == ["pd-pagerduty"] else "pd-pagerduty"
    proc = _amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={wrong}", *labels)
    assert proc.returncode != 0, "verify.receivers must be able to fail"


def test_severity_routing_follows_the_config(tmp_path: Path):
    cfg, files = render({"alertmanager": {"routing": {"critical": ["pagerduty", "slack"], "warning": ["slack"],
                                                      "info": []}}})
    path = _write(files, tmp_path)
    cases = {"critical": "pd-pagerduty,pd-slack", "warning": "pd-slack", "info": "pd-null"}
    for severity, receivers in cases.items():
        assert alertmanager.receivers_for(cfg, severity) == receivers.split(",")
        proc = _amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receivers}",
                       "alertname=PDKVTransferAbsent", f"severity={severity}", f"namespace={NAMESPACE}")
        assert proc.returncode == 0, (severity, proc.stdout + proc.stderr)
    proc = _amtool("config", "routes", "test", f"--config.file={path}", "--verify.receivers=pd-null",
                   "alertname=KubePodCrashLooping", "severity=critical")
    assert proc.returncode == 0, "alerts that are not ours stay with the root receiver"


def test_collapse_inhibits_exactly_the_components_it_explains(default_config):
    cfg, _files, path = default_config
    from alerts.definitions import ALERTS as DEFS  # what each alert's labels really are

    keys = {d.name: ("cluster", *d.keys) for d in DEFS}
    rules = yaml.safe_load(path.read_text())["inhibit_rules"]
    names = {a.name for a in ALERTS}
    targets = set()
    for rule in rules:
        assert rule["source_matchers"] == ['alertname="PDDisaggregationCollapsed"']
        (matcher,) = rule["target_matchers"]
        group = matcher.split('"')[1].split("|")
        targets |= set(group)
        for target in group:
            shared = [cfg["labels"][k] for k in keys[target] if k in keys["PDDisaggregationCollapsed"]]
            # Alertmanager compares `equal` labels as strings, missing = "": match on exactly the
            # labels both alerts carry, or a component never matches its verdict.
            assert sorted(rule["equal"]) == sorted(shared), target
    assert targets == set(alertmanager.explained_by_collapse()) & names


BLIND = ("PDPodRolesUnresolved", "PDEPPMetricsAbsent", "PDRecordingRulesAbsent")


def test_the_collapse_verdict_never_silences_the_blind_monitoring_alerts(default_config):
    """They say the verdict cannot be trusted here: the verdict holding them back would hide that."""
    _cfg, _files, path = default_config
    doc = yaml.safe_load(path.read_text())
    assert set(BLIND) <= {a.name for a in ALERTS}
    assert doc["inhibit_rules"], "no inhibition at all: the check below would prove nothing"
    for rule in doc["inhibit_rules"]:
        named = " ".join(rule["source_matchers"] + rule["target_matchers"])
        assert not [n for n in BLIND if n in named], rule
    (ours,) = doc["route"]["routes"]
    explained = ours["routes"][0]["matchers"][0]
    assert not [n for n in BLIND if n in explained], "nor do they wait for a verdict"


def test_explained_components_wait_longer_for_the_verdict(default_config):
    cfg, _files, path = default_config
    (ours,) = yaml.safe_load(path.read_text())["route"]["routes"]
    first = ours["routes"][0]
    names = {a.name for a in ALERTS}
    explained = "|".join(n for n in alertmanager.explained_by_collapse() if n in names)
    assert first["matchers"] == [f'alertname=~"{explained}"']
    assert first["group_wait"] == cfg["alertmanager"]["explained_group_wait"]
    assert first["routes"] == ours["routes"][1:], "same receivers as every other alert of ours"
    assert "&id" not in path.read_text(), "no YAML anchors: people merge this file by hand"


def _notification(alert: Any, status: str, cfg: dict[str, Any]) -> dict[str, Any]:
    labels = {"alertname": alert.name, "severity": alert.severity, "namespace": NAMESPACE, "model_name": MODEL}
    annotations = {"summary": alert.annotations["summary"],
                   "description": f"Measured on {NAMESPACE}: 0 transfers/s for 5m.",
                   "runbook_url": alert.annotations["runbook_url"],
                   "dashboard_url": f"https://grafana.example.com/d/pd-diagnostic-drilldown?var-namespace={NAMESPACE}"}
    item = {"status": status, "labels": labels, "annotations": annotations, "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T00:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": "0123456789abcdef"}
    return {"receiver": "pd-slack", "status": status, "alerts": [item],
            "groupLabels": {"alertname": alert.name, "namespace": NAMESPACE},
            "commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://alertmanager"}


@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_messages_show_summary_description_runbook_and_dashboard(default_config, tmp_path: Path, alert, status):
    cfg, _files, path = default_config
    data = _notification(alert, status, cfg)
    (tmp_path / "data.json").write_text(json.dumps(data))
    sep = "\n@@@\n"
    text = sep.join(['{{ template "pd.slack.title" . }}', '{{ template "pd.slack.text" . }}',
                     '{{ template "pd.pagerduty.description" . }}', '{{ template "pd.slack.color" . }}'])
    proc = _amtool("template", "render", f"--template.glob={path.parent / 'templates' / '*.tmpl'}",
                   f"--template.data={tmp_path / 'data.json'}", f"--template.text={text}")
    assert proc.returncode == 0, proc.stderr
    title, slack, pd, color = proc.stdout.split(sep)
    note = data["alerts"][0]["annotations"]
    assert title.startswith(f"[{status.upper()}") and alert.name in title and NAMESPACE in title
    assert note["summary"] in slack and note["description"] in slack
    assert f"<{note['runbook_url']}|{alert.name}>" in slack
    assert f"<{note['dashboard_url']}|open in Grafana>" in slack
    assert MODEL in slack
    assert pd.strip().endswith(note["summary"]) and alert.name in pd and "\n" not in pd.strip()
    assert color.strip() == ("good" if status == "resolved" else
                             "danger" if alert.severity == "critical" else "warning")
