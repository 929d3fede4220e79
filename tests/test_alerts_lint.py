"""The generated alert file follows the monitoring-mixins rules, and the config drives it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts import definitions, render
from pdobs import checks, signals
from pdobs.build import make
from pdobs.core import config, paths, promql
from pdobs.servers import tools
from recording_rules import render as recording

SEVERITIES = {"critical", "warning", "info"}
CAMEL_PD = re.compile(r"^PD(?:[A-Z][a-z0-9]+|[A-Z]{2,}(?=[A-Z][a-z]|$))+$")
RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
# An expression that can hold because something is missing: absent(), or `unless` over a series
# that may vanish; it must wait two scrapes so one lost scrape cannot fire it.
ABSENCE = re.compile(r"\babsent(?:_over_time)?\s*\(|\bunless\b")


def _rules(cfg: dict) -> list[dict]:
    doc = yaml.safe_load(make.build(cfg)[render.RULE_FILE])
    return [r for g in doc["groups"] for r in g["rules"]]


def _by_name(cfg: dict) -> dict[str, dict]:
    return {r["alert"]: r for r in _rules(cfg)}


CONFIGS = {
    "default": {},
    "multi-cluster, grafana": {"multi_cluster": True, "labels": {"cluster": "k8s_cluster"},
                               "grafana": {"url": "https://grafana.example.com"}},
}


@pytest.fixture(params=sorted(CONFIGS), scope="module")
def cfg(request) -> dict:
    return config.load(overrides=CONFIGS[request.param])


def test_every_defined_alert_is_rendered_once(cfg):
    names = [r["alert"] for r in _rules(cfg)]
    assert names == [a.name for a in definitions.ALERTS]
    assert set(names) == set(cfg["alerts"]), "config and definitions list different alerts"


def test_names_are_camel_case_with_the_pd_prefix(cfg):
    for rule in _rules(cfg):
        assert CAMEL_PD.match(rule["alert"]), rule["alert"]


def test_severity_is_a_known_level_and_the_only_static_label(cfg):
    for rule in _rules(cfg):
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert set(rule["labels"]) == {"severity"}, rule["alert"]


def test_summary_is_static_and_ends_with_a_period(cfg):
    for rule in _rules(cfg):
        summary = rule["annotations"]["summary"]
        assert "{{" not in summary and "$" not in summary, rule["alert"]
        assert summary.endswith("."), rule["alert"]


def test_description_is_templated_with_a_measured_value_and_where(cfg):
    ns = cfg["labels"]["namespace"]
    for rule in _rules(cfg):
        text = rule["annotations"]["description"]
        assert "$value" in text or "| query" in text, f"{rule['alert']}: no measured value"
        assert f"{{{{ $labels.{ns} }}}}" in text, f"{rule['alert']}: does not say which namespace"
        if cfg["multi_cluster"]:
            assert f"{{{{ $labels.{cfg['labels']['cluster']} }}}}" in text, rule["alert"]
        assert text.endswith("."), rule["alert"]


def test_runbook_url_is_present_and_follows_the_pattern(cfg):
    for rule in _rules(cfg):
        assert rule["annotations"]["runbook_url"] == cfg["runbook_url"].replace("{alert}", rule["alert"])


def test_for_is_at_least_two_scrapes_where_absence_can_fire_it(cfg):
    scrape = promql.duration_seconds(cfg["prometheus"]["scrape_interval"])
    checked = 0
    for rule in _rules(cfg):
        # The checklist's recorded "failing" signals are themselves built with `unless`.
        if ABSENCE.search(rule["expr"]) or "pd_signal:failing" in rule["expr"]:
            checked += 1
            assert promql.duration_seconds(rule["for"]) >= 2 * scrape, rule["alert"]
    assert checked >= 4  # Absent, MetricsMissing, PrefillIdle, Collapsed at least


def test_alerts_read_only_recorded_namespace_level_series(cfg):
    """Alerts read the recording rules (no raw metric, no per-pod series in an alert path), but
    for the one that watches whether the recording rules run at all."""
    recorded = {r.record for g in recording.rule_groups(cfg) for r in g.rules}
    level_of = {s.record: s.level for s in signals.signals(cfg).values() if s.record}
    for rule in _rules(cfg):
        used = set(RECORDED.findall(rule["expr"]))
        assert used, f"{rule['alert']} reads no recorded series"
        assert used <= recorded, f"{rule['alert']} reads unrecorded {used - recorded}"
        for name in used:
            assert "pod" not in level_of[name], f"{rule['alert']} reads per-pod {name}"
        assert "rate(" not in rule["expr"], rule["alert"]
        raw = "vllm:" in rule["expr"]
        assert raw == definitions.BY_NAME[rule["alert"]].reads_raw, f"{rule['alert']} reads raw series: {raw}"


def test_only_the_recording_rules_watch_reads_raw_series():
    assert [a.name for a in definitions.ALERTS if a.reads_raw] == ["PDRecordingRulesAbsent"]


def test_dashboard_link_only_when_grafana_is_configured(cfg):
    for rule in _rules(cfg):
        link = rule["annotations"].get("dashboard_url")
        if not cfg["grafana"]["url"]:
            assert link is None
            continue
        alert = definitions.BY_NAME[rule["alert"]]
        assert link.startswith(f"{cfg['grafana']['url']}/d/{alert.link.dashboard}?viewPanel=")
        # Dashboard variables have fixed names; the label they take their value from is configured.
        assert f"&var-namespace={{{{ $labels.{cfg['labels']['namespace']} | urlquery }}}}" in link
        if cfg["multi_cluster"]:
            assert f"&var-cluster={{{{ $labels.{cfg['labels']['cluster']} | urlquery }}}}" in link


def test_dashboard_links_use_the_dashboards_variables_and_panels():
    cfg = config.load(overrides={"grafana": {"url": "https://g.example"}, "multi_cluster": True})
    model = make.model(cfg)
    for rule in _rules(cfg):
        alert = definitions.BY_NAME[rule["alert"]]
        board = model.dashboards[alert.link.dashboard].json
        names = {v["name"] for v in board["templating"]["list"]}
        link = rule["annotations"]["dashboard_url"]
        assert set(re.findall(r"[?&]var-([a-z_]+)=", link)) <= names, rule["alert"]
        panel_id = int(re.search(r"viewPanel=(\d+)", link).group(1))
        titles = {p["id"]: p["title"] for p in _flat(board["panels"])}
        assert titles.get(panel_id) == model.dashboards[alert.link.dashboard].panel(alert.link.panel).title


def _flat(panels: list[dict]) -> list[dict]:
    out = []
    for p in panels:
        out += [p, *_flat(p.get("panels", []))]
    return out


def test_every_check_names_an_alert_that_exists():
    for check in checks.CHECKS:
        assert check.alert in definitions.BY_NAME, check.name
    for verdict in checks.Verdict:
        assert verdict.alert is None or verdict.alert in definitions.BY_NAME, verdict


@pytest.mark.parametrize("line", sorted(tools.PROMTOOLS))
def test_promtool_check_rules_passes(line: str, tmp_path: Path):
    every = make.build(config.load())
    files = {rel: every[rel] for rel in (recording.RULE_FILE, render.RULE_FILE)}
    written = []
    for rel, text in files.items():
        path = tmp_path / Path(rel).name
        path.write_text(text)
        written.append(str(path))
    proc = subprocess.run([str(tools.tool_path(tools.PROMTOOLS[line])), "check", "rules", *written],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(definitions.ALERTS)} rules found" in proc.stdout


# --- the config drives the rules --------------------------------------------------------------


def _build_with(tmp_path: Path, user_config: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """build.py run with a user config file, as a user runs it."""
    user = tmp_path / "my.yaml"
    user.write_text(user_config)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(paths.ROOT / "build.py"), "--config", str(user), "--out", str(out)],
                          capture_output=True, text=True, cwd=paths.ROOT)
    return proc, out


def test_changing_for_in_a_user_config_changes_the_rendered_rule(tmp_path: Path):
    proc, out = _build_with(tmp_path, "alerts:\n  PDKVTransferAbsent: {for: 7m, keep_firing_for: 0s}\n")
    assert proc.returncode == 0, proc.stderr
    rules = {r["alert"]: r for g in yaml.safe_load((out / render.RULE_FILE).read_text())["groups"]
             for r in g["rules"]}
    assert rules["PDKVTransferAbsent"]["for"] == "7m"
    assert "keep_firing_for" not in rules["PDKVTransferAbsent"]
    default = _by_name(config.load())["PDKVTransferAbsent"]
    assert default["for"] != "7m" and default["keep_firing_for"]


def test_severity_thresholds_and_switches_come_from_the_config():
    cfg = config.load(overrides={"alerts": {
        "PDKVTransferFailures": {"threshold": 0.2, "severity": "critical"},
        "PDKVTransferSlow": {"mean_seconds": 0.25, "p95_seconds": 3},
        "PDKVTransferExpiredRequests": {"threshold": 0.07},
        "PDPrefillIdle": {"enabled": False},
    }, "prometheus": {"evaluation_interval": "15s"}, "runbook_url": "https://wiki/{alert_lower}"})
    rules = _by_name(cfg)
    assert "PDPrefillIdle" not in rules
    assert rules["PDKVTransferFailures"]["labels"]["severity"] == "critical"
    assert rules["PDKVTransferFailures"]["expr"].endswith("> 0.2")
    assert "threshold 20%" in rules["PDKVTransferFailures"]["annotations"]["description"]
    assert "> 0.25" in rules["PDKVTransferSlow"]["expr"] and "> 3" in rules["PDKVTransferSlow"]["expr"]
    assert "(bound 3s)" in rules["PDKVTransferSlow"]["annotations"]["description"]
    assert "(bound 250ms)" in rules["PDKVTransferSlow"]["annotations"]["description"]
    assert rules["PDKVTransferExpiredRequests"]["expr"].endswith("> 0.07")
    assert rules["PDKVTransferAbsent"]["annotations"]["runbook_url"] == "https://wiki/pdkvtransferabsent"
    doc = yaml.safe_load(make.build(cfg)[render.RULE_FILE])
    assert doc["groups"][0]["interval"] == "15s"


def test_shared_signal_thresholds_reach_the_alerts():
    cfg = config.load(overrides={"signals": {"prefill_idle_ratio": 0.2}})
    rules = _by_name(cfg)
    assert "idle below 20%" in rules["PDPrefillIdle"]["annotations"]["description"]
    assert ">= 0.2" in rules["PDKVTransferMetricsMissing"]["expr"]


def test_all_alerts_disabled_renders_an_empty_file():
    cfg = config.load(overrides={"alerts": {a.name: {"enabled": False} for a in definitions.ALERTS}})
    assert yaml.safe_load(make.build(cfg)[render.RULE_FILE]) == {"groups": []}


def test_slow_alert_without_a_recorded_p95_is_a_config_error(tmp_path: Path):
    proc, out = _build_with(tmp_path, "signals: {quantiles: [0.5, 0.99]}\n")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "alerts.PDKVTransferSlow" in proc.stderr and "0.95" in proc.stderr
    assert not out.exists()
    # Config validation says so, before anything renders.
    with pytest.raises(config.ConfigError, match=r"alerts\.PDKVTransferSlow.*0\.95"):
        config.load(overrides={"signals": {"quantiles": [0.5, 0.99]}})
    # Disabling the alert is the other way out.
    cfg = config.load(overrides={"signals": {"quantiles": [0.5, 0.99]},
                                 "alerts": {"PDKVTransferSlow": {"enabled": False}}})
    assert "PDKVTransferSlow" not in _by_name(cfg)
