"""End to end with real servers: the simulator's live endpoint, scraped by Prometheus 3.5 running the
project's rules, alerting a real Alertmanager whose PagerDuty and Slack URLs point at a local
receiver.

Two namespaces: `pd-collapsed` plays the post-mortem (PDDisaggregationCollapsed plus the component
alerts it explains) and `pd-epp-gap` a healthy P/D whose EPP misses one decode pod (a warning that
nothing explains). Durations are shortened through the config passed to `build.py --config`,
exactly as a user would; no generated file is edited. Then both turn healthy and the resolutions
must arrive.
"""

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdobs import checks
from pdobs.core import paths
from pdobs.servers.alertmanager import AlertmanagerServer
from pdobs.servers.receivers import Receiver
from simulator import scenarios

COLLAPSED_NS = "pd-collapsed"
EPP_NS = "pd-epp-gap"
ROUTING_KEY = "R0UTINGKEYe2e0123456789abcdef012"
GRAFANA = "http://grafana.e2e.test:3000"
COMPONENTS = ("PDKVTransferAbsent", "PDPrefillIdle", "PDEPPReadyPodsMismatch")
DEADLINE_S = 60.0  # per phase; the whole test takes about 40 s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def alertmanager_factory() -> Iterator[Callable[[Path, Path], AlertmanagerServer]]:
    started: list[AlertmanagerServer] = []

    def factory(config_file: Path, workdir: Path) -> AlertmanagerServer:
        started.append(AlertmanagerServer(config_file, workdir).start())
        return started[-1]

    try:
        yield factory
    finally:
        for am in started:
            am.stop()


def _wait(check: Callable[[], Any], timeout_s: float, what: str, diagnose: Callable[[], Any] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{diagnose()}")


def _user_config(tmp: Path, receiver: Receiver) -> Path:
    """The shortened timings a user would give in their own config file."""
    (tmp / "pagerduty-routing-key").write_text(ROUTING_KEY + "\n")
    (tmp / "slack-webhook-url").write_text(receiver.slack_url + "\n")
    # A missed scrape on a loaded machine must not make the EPP gap flap, hence its keep_firing_for.
    short = {"for": "4s", "keep_firing_for": "0s"}
    cfg = {
        "prometheus": {"scrape_interval": "1s", "evaluation_interval": "1s", "rate_window": "4s",
                       "fast_window": "3s"},
        "grafana": {"url": GRAFANA},
        "alerts": {
            **{name: short for name in COMPONENTS},
            "PDEPPReadyPodsMismatch": {"for": "4s", "keep_firing_for": "2s"},
            # The verdict outlives the components it explains, so none of them can slip out while
            # the collapse resolves.
            "PDDisaggregationCollapsed": {"for": "4s", "keep_firing_for": "5s"},
        },
        "alertmanager": {
            "group_wait": "1s", "explained_group_wait": "5s", "group_interval": "2s", "repeat_interval": "1h",
            "pagerduty": {"routing_key_file": str(tmp / "pagerduty-routing-key"),
                          "url": receiver.pagerduty_url},
            "slack": {"api_url_file": str(tmp / "slack-webhook-url"), "channel": "#pd-e2e"},
        },
    }
    path = tmp / "e2e.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _alert(rule_file: Path, name: str) -> dict[str, Any]:
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return rule
    raise AssertionError(f"no alert {name} in {rule_file}")


def _mentions(body: dict[str, Any], name: str, namespace: str) -> bool:
    text = json.dumps(body)
    return name in text and namespace in text


def test_collapse_pages_once_warnings_reach_slack_and_both_resolve(
        tmp_path: Path, receiver: Receiver, live_endpoint, prometheus_server, alertmanager_factory):
    config_file = _user_config(tmp_path, receiver)
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, str(paths.ROOT / "build.py"), "--config", str(config_file),
                           "--out", str(out)], capture_output=True, text=True, cwd=paths.ROOT)
    assert proc.returncode == 0, proc.stderr

    am = alertmanager_factory(out / "alertmanager" / "alertmanager.yaml", tmp_path)
    broken = scenarios.combine(
        scenarios.collapsed(namespace=COLLAPSED_NS, vllm_version="0.12.0", fault_start_min=0),
        scenarios.epp_mismatch_persistent(namespace=EPP_NS, fault_start_min=0))
    endpoint = live_endpoint(broken, speed=60, step_s=15)
    prom = prometheus_server(
        rule_files=[out / "prometheus" / "recording-rules.yaml", out / "prometheus" / "alerts.yaml"],
        evaluation_interval="1s", scrape_interval="1s",
        scrape_configs=endpoint.scrape_configs(scrape_interval_s=1.0), alertmanager_url=am.url)

    def diagnose() -> str:
        firing = [(a["labels"]["alertname"], a["labels"].get("namespace"), a["state"]) for a in prom.alerts()]
        in_am = [(a["labels"]["alertname"], a["labels"].get("namespace"), a["status"]["state"]) for a in am.alerts()]
        return f"prometheus: {firing}\nalertmanager: {in_am}\nreceived: {json.dumps(receiver.events)[:3000]}"

    def page(action: str) -> dict[str, Any] | None:
        return next((e for e in receiver.pagerduty() if e["event_action"] == action
                     and _mentions(e, "PDDisaggregationCollapsed", COLLAPSED_NS)), None)

    def slack(status: str) -> dict[str, Any] | None:
        return next((m for m in receiver.slack() if m["attachments"][0]["title"].startswith(f"[{status}")
                     and _mentions(m, "PDEPPReadyPodsMismatch", EPP_NS)), None)

    # --- firing ----------------------------------------------------------------------------
    trigger = _wait(lambda: page("trigger"), DEADLINE_S, "the PagerDuty trigger", diagnose)
    message = _wait(lambda: slack("FIRING"), DEADLINE_S, "the Slack message", diagnose)

    collapsed_rule = _alert(out / "prometheus" / "alerts.yaml", "PDDisaggregationCollapsed")
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"
    summary = trigger["payload"]["summary"]
    assert summary.startswith(f"[FIRING:1] PDDisaggregationCollapsed (namespace {COLLAPSED_NS})")
    assert collapsed_rule["annotations"]["summary"] in summary
    links = {link["text"]: link["href"] for link in trigger["links"]}
    assert links["Runbook"] == collapsed_rule["annotations"]["runbook_url"]
    assert links["Grafana dashboard"].startswith(f"{GRAFANA}/d/pd-diagnostic-drilldown?")
    assert f"var-namespace={COLLAPSED_NS}" in links["Grafana dashboard"]
    firing = trigger["payload"]["custom_details"]["firing"]  # the description, measured by Prometheus
    assert f"In namespace {COLLAPSED_NS}" in firing
    assert f"of the {len(checks.CHECKS)} 'not disaggregated' signals hold" in firing
    assert "no KV transfer" in firing and "prefill workers idle" in firing

    epp_rule = _alert(out / "prometheus" / "alerts.yaml", "PDEPPReadyPodsMismatch")
    assert message["channel"] == "#pd-e2e"
    (attachment,) = message["attachments"]
    assert attachment["title"] == f"[FIRING:1] PDEPPReadyPodsMismatch (namespace {EPP_NS})"
    assert attachment["color"] == "warning"
    assert epp_rule["annotations"]["summary"] in attachment["text"]
    assert f"<{epp_rule['annotations']['runbook_url']}|PDEPPReadyPodsMismatch>" in attachment["text"]
    assert f"{GRAFANA}/d/" in attachment["text"] and f"var-namespace={EPP_NS}" in attachment["text"]

    # The components fired in Prometheus and reached Alertmanager, which holds them back.
    def components_suppressed() -> bool:
        state = {(a["labels"]["alertname"], a["labels"].get("namespace")): a["status"] for a in am.alerts()}
        return all(state.get((name, COLLAPSED_NS), {}).get("state") == "suppressed"
                   and state[(name, COLLAPSED_NS)]["inhibitedBy"] for name in COMPONENTS)

    _wait(components_suppressed, DEADLINE_S, "the component alerts to be inhibited in Alertmanager", diagnose)
    time.sleep(6)  # past explained_group_wait and a group_interval: anything not inhibited would be out

    # --- healthy again -----------------------------------------------------------------------
    endpoint.switch(scenarios.combine(
        scenarios.healthy_pd(namespace=COLLAPSED_NS, vllm_version="0.12.0"),
        scenarios.healthy_pd(namespace=EPP_NS, decode_pods=2)))
    resolve = _wait(lambda: page("resolve"), DEADLINE_S, "the PagerDuty resolve", diagnose)
    resolved = _wait(lambda: slack("RESOLVED"), DEADLINE_S, "the Slack resolution", diagnose)
    assert resolve["dedup_key"] == trigger["dedup_key"] and resolve["routing_key"] == ROUTING_KEY
    assert resolved["attachments"][0]["color"] == "good"
    assert "(resolved)" in resolved["attachments"][0]["text"]

    # Nothing the verdict explains was ever sent, nor anything from the wrong severity.
    for path, body in receiver.events:
        for name in COMPONENTS:
            assert not _mentions(body, name, COLLAPSED_NS), f"{name} in {COLLAPSED_NS} reached {path}"
    pages, messages = receiver.pagerduty(), receiver.slack()
    assert all(_mentions(e, "PDDisaggregationCollapsed", COLLAPSED_NS) for e in pages), diagnose()
    assert all(_mentions(m, "PDEPPReadyPodsMismatch", EPP_NS) for m in messages), diagnose()
    assert (pages[0]["event_action"], pages[-1]["event_action"]) == ("trigger", "resolve")
    assert {e["dedup_key"] for e in pages} == {trigger["dedup_key"]}
