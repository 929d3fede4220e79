"""The config: defaults validate, and every kind of bad input fails with one line naming the field."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdobs.core import config, paths

BAD = [
    # (override, field named in the message, words the fix needs)
    ({"alerts": {"PDPrefillIdle": {"for": "-5m"}}}, "alerts.PDPrefillIdle.for", "duration"),
    ({"alerts": {"PDPrefillIdle": {"for": 300}}}, "alerts.PDPrefillIdle.for", "duration"),
    ({"alerts": {"PDPrefillIdle": {"keep_firing_for": "5 minutes"}}}, "alerts.PDPrefillIdle.keep_firing_for",
     "duration"),
    ({"unknown_top": 1}, "unknown_top", "unknown key"),
    ({"alerts": {"PDKVTransferFailures": {"treshold": 0.1}}}, "alerts.PDKVTransferFailures.treshold", "threshold"),
    ({"alerts": {"PDNoSuchAlert": {"enabled": True}}}, "alerts.PDNoSuchAlert", "unknown key"),
    ({"selectors": {"epp": 'job=~"("'}}, "selectors.epp", "matchers"),
    ({"selectors": {"vllm": "job=foo"}}, "selectors.vllm", "matchers"),
    ({"selectors": {"vllm": 'job="a",'}}, "selectors.vllm", "matchers"),
    ({"roles": {"mode": "annotation"}}, "roles.mode", "pod_regex, label"),
    ({"roles": {"pod_regex": {"prefill": "(["}}}, "roles.pod_regex.prefill", "regular expression"),
    ({"roles": {"label": {"name": "llm-d.ai/role"}}}, "roles.label.name", "label name"),
    ({"labels": {"namespace": "1ns"}}, "labels.namespace", "label name"),
    ({"multi_cluster": "yes"}, "multi_cluster", "boolean"),
    ({"alerts": {"PDKVTransferAbsent": {"severity": "page"}}}, "alerts.PDKVTransferAbsent.severity",
     "critical, warning, info"),
    ({"alerts": {"PDKVTransferSlow": {"p95_seconds": -1}}}, "alerts.PDKVTransferSlow.p95_seconds", "above 0"),
    ({"alerts": {"PDKVTransferFailures": {"threshold": 2}}}, "alerts.PDKVTransferFailures.threshold", "0 to 1"),
    ({"signals": {"quantiles": [0.5, 1.5]}}, "signals.quantiles[1]", "between 0 and 1"),
    ({"signals": {"quantiles": []}}, "signals.quantiles", "non-empty"),
    ({"signals": {"min_request_rate": 0}}, "signals.min_request_rate", "above 0"),
    ({"prometheus": {"scrape_interval": "0s"}}, "prometheus.scrape_interval", "positive"),
    ({"prometheus": {"rate_window": "1m"}}, "prometheus.rate_window", "four scrape intervals"),
    ({"prometheus": {"fast_window": "1m"}}, "prometheus.fast_window", "three scrape intervals"),
    ({"prometheus": {"fast_window": "5m"}}, "prometheus.fast_window", "less than rate_window"),
    ({"signals": {"fast_min_requests": 0}}, "signals.fast_min_requests", "above 0"),
    ({"grafana": {"folder": {"uid": "has space"}}}, "grafana.folder.uid", "uid"),
    ({"grafana": {"timezone": "Europe/Paris"}}, "grafana.timezone", "browser, utc"),
    ({"grafana": {"url": "grafana.local"}}, "grafana.url", "http"),
    ({"runbook_url": "https://example.com/runbooks"}, "runbook_url", "{alert}"),
]


def test_default_config_validates():
    cfg = config.load()
    assert cfg["roles"]["mode"] == "pod_regex"
    assert set(cfg["alerts"]) >= {"PDKVTransferAbsent", "PDEPPReadyPodsMismatch", "PDDisaggregationCollapsed"}


@pytest.mark.parametrize(("override", "field", "hint"), BAD, ids=[b[1] for b in BAD])
def test_bad_config_names_the_field(override, field, hint):
    with pytest.raises(config.ConfigError) as err:
        config.load(overrides=override)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"config error: {field}")
    assert hint in message


def test_user_file_merges_over_defaults(tmp_path: Path):
    user = tmp_path / "my.yaml"
    user.write_text(yaml.safe_dump({"alerts": {"PDPrefillIdle": {"for": "7m"}}, "multi_cluster": True}))
    cfg = config.load(user)
    assert cfg["alerts"]["PDPrefillIdle"]["for"] == "7m"
    assert cfg["alerts"]["PDPrefillIdle"]["severity"] == "warning"  # untouched sibling kept
    assert cfg["multi_cluster"] is True


@pytest.mark.parametrize(("content", "hint"), [
    ("alerts: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_unreadable_user_file(tmp_path: Path, content: str, hint: str):
    user = tmp_path / "my.yaml"
    user.write_text(content)
    with pytest.raises(config.ConfigError, match=hint):
        config.load(user)


def test_missing_user_file(tmp_path: Path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.yaml")


def test_config_reference_is_generated_from_the_schema():
    from pdobs import config_docs

    assert (paths.DOCS / "config-reference.md").read_text() == config_docs.render(), (
        "docs/config-reference.md is stale: run `python build.py docs`"
    )


def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path):
    user = tmp_path / "bad.yaml"
    user.write_text("roles: {mode: guess}\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(paths.ROOT / "build.py"), "--config", str(user), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "roles.mode" in proc.stderr
    assert not out.exists()
