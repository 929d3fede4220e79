"""Config that loads but would mean "never", or that promtool/amtool would reject, fails at load
with one short line naming the field; hostile YAML (bombs, huge or binary files) fails fast.

promtool and amtool are the judges: what the config accepts builds into files they accept, and the
values it refuses are the ones they refuse too."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import builder as dashboard_builder
from pdobs import output
from pdobs.build import make
from pdobs.core import config, paths, promql
from pdobs.servers import tools

# (user file text, field named in the message, words the fix needs)
REFUSED = [
    ("alerts: {PDKVTransferFailures: {threshold: .nan}}", "alerts.PDKVTransferFailures.threshold", "finite"),
    ("alerts: {PDKVTransferSlow: {p95_seconds: .inf}}", "alerts.PDKVTransferSlow.p95_seconds", "finite"),
    ("alerts: {PDKVTransferSlow: {mean_seconds: 1.0e+400}}", "alerts.PDKVTransferSlow.mean_seconds", "finite"),
    ("grafana: {thresholds: {ttft_seconds: -.inf}}", "grafana.thresholds.ttft_seconds", "finite"),
    ("prometheus: {evaluation_interval: 0m0s}", "prometheus.evaluation_interval", "zero"),
    ("prometheus: {rate_window: 0m0s}", "prometheus.rate_window", "zero"),
    ("alertmanager: {group_interval: 0h0m}", "alertmanager.group_interval", "zero"),
    ("alertmanager: {repeat_interval: '0'}", "alertmanager.repeat_interval", "positive"),
    ("alerts: {PDPrefillIdle: {for: 9999999999999y}}", "alerts.PDPrefillIdle.for", "292 years"),
    ("alerts: {PDKVTransferFailures: {for: 293y}}", "alerts.PDKVTransferFailures.for", "292 years"),
    ("alerts: {PDPrefillIdle: {keep_firing_for: \"5m\\n\"}}", "alerts.PDPrefillIdle.keep_firing_for",
     "line breaks"),
    ("prometheus: {scrape_interval: \"30s\\n\"}", "prometheus.scrape_interval", "line breaks"),
    ("selectors: {vllm: \"job=\\\"a\\nb\\\"\"}", "selectors.vllm", "line breaks"),
    ("selectors: {vllm: 'job=~\"llm-d\\.vllm\"'}", "selectors.vllm", "\\\\."),
    ("selectors: {epp: 'job=~\"(?=epp)\"'}", "selectors.epp", "RE2"),
    ("selectors: {epp: 'job=~\"epp\\\\Z\"'}", "selectors.epp", "RE2"),
    ("selectors: {epp: '__name__=~\"x\"'}", "selectors.epp", "__name__"),
    ("roles: {pod_regex: {prefill: '.*(?=prefill).*'}}", "roles.pod_regex.prefill", "RE2"),
    ("roles: {pod_regex: {decode: 'decode\\Z'}}", "roles.pod_regex.decode", "RE2"),
    ("roles: {pod_regex: {decode: 'decode\\C'}}", "roles.pod_regex.decode", "RE2"),
    ("runbook_url: 'https://wiki/{{ .Labels.x }}/{alert}'", "runbook_url", "templates"),
    ("grafana: {url: 'https://grafana/{{ $labels.x }}'}", "grafana.url", "templates"),
    ("alertmanager: {slack: {channel: '#{{ .CommonLabels.x }}'}}", "alertmanager.slack.channel", "templates"),
    ("mimir: {namespace: \"pd\\n\"}", "mimir.namespace", "line breaks"),
    ("grafana: {datasource: {uid: \"prometheus\\n\"}}", "grafana.datasource.uid", "line breaks"),
    ("labels: {pod: \"pod\\n\"}", "labels.pod", "line breaks"),
    ("kubernetes: {labels: {\"team\\n\": x}}", "kubernetes.labels.team", "line breaks"),
    ("grafana: {url: 'https://alice:hunter2@grafana.example.com'}", "grafana.url", "user:password"),
    ("alertmanager: {pagerduty: {url: 'https://k:hunter2@events.pagerduty.com/v2/enqueue'}}",
     "alertmanager.pagerduty.url", "user:password"),
    ("grafana: {url: 'https://'}", "grafana.url", "no host"),
]


def _load_text(tmp_path: Path, text: str) -> config.Config:
    user = tmp_path / "my.yaml"
    user.write_text(text + "\n")
    return config.load(user)


@pytest.mark.parametrize(("text", "field", "hint"), REFUSED, ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSED)])
def test_refused_with_one_short_line_naming_the_field(tmp_path: Path, text: str, field: str, hint: str):
    with pytest.raises(config.ConfigError) as err:
        _load_text(tmp_path, text)
    message = str(err.value)
    assert "\n" not in message and len(message) <= config.MAX_MESSAGE
    assert message.startswith(f"config error: {field}"), message
    assert hint in message, message
    assert "hunter2" not in message


def _build(tmp_path: Path, text: str) -> Path:
    out = tmp_path / "out"
    output.write_tree(out, make.build(_load_text(tmp_path, text)))
    return out


def _promtool(*args: str, line: str = "3.5") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.tool_path(tools.PROMTOOLS[line])), *args], capture_output=True, text=True,
                          timeout=120)


# Valid RE2 that Python's `re` refuses or reads differently, PromQL string escapes, raw strings,
# and durations at the edge of what Prometheus takes.
EDGE_CASES = """
selectors:
  vllm: 'job=~".*(?i)ModelService.*", namespace=~`\\p{L}[\\p{L}\\d-]*`, pod!~"x\\\\.y", team=\"a\\x2fb\\u00e9\"'
  epp: "job=~'.*epp.*', app!=\\"it's\\""
roles:
  pod_regex:
    prefill: '.*(?i)prefill.*'
    decode: '[\\p{L}\\d-]*decode[\\p{L}\\d-]*'
alerts:
  PDPrefillIdle: {for: 1h30m, keep_firing_for: 292y}
  PDKVTransferSlow: {for: 9223372036854ms}
grafana:
  url: https://grafana.example.com/sub
alertmanager:
  group_interval: 1m30s
"""


@pytest.mark.parametrize("line", sorted(tools.PROMTOOLS))
def test_edge_cases_build_into_rules_promtool_accepts(tmp_path: Path, line: str):
    out = _build(tmp_path, EDGE_CASES)
    rules = sorted(str(p) for p in (out / "prometheus").glob("*.yaml"))
    proc = _promtool("check", "rules", *rules, line=line)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (out / "prometheus" / "recording-rules.yaml").read_text()
    # Config matchers are re-rendered in one canonical double-quoted form.
    assert 'pod!~"x\\\\.y"' in text and 'team="a/bé"' in text and 'app!="it\'s"' in text
    assert 'namespace=~"\\\\p{L}[\\\\p{L}\\\\d-]*"' in text


def test_edge_cases_build_into_an_alertmanager_config_amtool_accepts(tmp_path: Path):
    out = _build(tmp_path, EDGE_CASES)
    proc = subprocess.run([str(tools.tool_path("amtool")), "check-config", str(out / "alertmanager" /
                                                                              "alertmanager.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "group_interval: 1m30s" in (out / "alertmanager" / "alertmanager.yaml").read_text()


def _rule_file(tmp_path: Path, rule: dict[str, Any]) -> str:
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    return str(path)


# What the config refuses, written raw where it would have gone: promtool refuses it too.
JUDGED = [
    {"alert": "A", "expr": "up", "for": "9999999999999y"},
    {"alert": "A", "expr": "up", "for": "293y"},
    {"alert": "A", "expr": "up", "for": "5m\n"},
    {"record": "a:b:c", "expr": 'up{job=~"llm-d\\.vllm"}'},
    {"record": "a:b:c", "expr": 'up{job=~"(?=epp)"}'},
    {"record": "a:b:c", "expr": 'up{job=~"epp\\\\Z"}'},
    {"record": "a:b:c", "expr": 'up{job=~"decode\\\\C"}'},
    {"record": "a:b:c", "expr": 'up{job="a\nb"}'},
]


@pytest.mark.parametrize("rule", JUDGED, ids=[json.dumps(r)[-40:] for r in JUDGED])
def test_promtool_refuses_what_the_config_refuses(tmp_path: Path, rule: dict[str, Any]):
    assert _promtool("check", "rules", _rule_file(tmp_path, rule)).returncode != 0


@pytest.mark.parametrize("rule", [
    {"alert": "A", "expr": "up", "for": "292y"},
    {"alert": "A", "expr": "up", "for": "9223372036854ms"},
    {"record": "a:b:c", "expr": 'up{job=~".*(?i)prefill.*", ns=~"\\\\p{L}+"}'},
], ids=["292y", "max-ms", "re2-only"])
def test_promtool_accepts_what_the_config_accepts(tmp_path: Path, rule: dict[str, Any]):
    proc = _promtool("check", "rules", _rule_file(tmp_path, rule))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_takes_a_zero_interval_silently_so_only_the_config_can_refuse_it(tmp_path: Path):
    path = tmp_path / "zero.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "interval": "0m0s",
                                                "rules": [{"record": "a:b:c", "expr": "up"}]}]}))
    assert _promtool("check", "rules", str(path)).returncode == 0


def test_durations_follow_prometheus_grammar():
    assert promql.duration_ms("1h30m") == 5_400_000
    assert promql.duration_ms("0") == 0
    assert promql.duration_ms("9223372036854ms") == promql.MAX_DURATION_MS
    for bad in ("", "30s5m", "1d1d", "5m\n", " 5m", "5 m", "1.5h", "-5m", "9223372036855ms"):
        with pytest.raises(promql.DurationError):
            promql.duration_ms(bad)


def test_dashboard_json_never_carries_nan_or_infinity():
    assert dashboard_builder.render_json({"a": 1.5}) == '{\n  "a": 1.5\n}\n'
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            dashboard_builder.render_json({"threshold": bad})


# --- hostile YAML -------------------------------------------------------------------------------

# Under 512 bytes, under a known key: 9 levels of 9 aliases expand to 9^9 (387 million) strings.
BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
grafana: {tags: *i}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(paths.ROOT / "build.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=paths.ROOT)


@pytest.mark.parametrize(("content", "hint"), [
    (BOMB.encode(), "values once aliases are expanded"),
    (b"grafana: {tags: &a [x, *a]}\n", "refers to itself"),
    (b"grafana: {tags: " + b"[" * 5000 + b"]" * 5000 + b"}\n", "nested more than"),
    ("grafana: {folder: {title: café}}\n".encode("utf-16"), "UTF-16"),
    ("grafana: {folder: {title: café}}\n".encode("utf-16-le"), "NUL"),
    ("grafana: {folder: {title: café}}\n".encode("latin-1"), "not UTF-8"),
    (b"kubernetes:\n  labels:\n" + b"".join(b"    k%d: v\n" % i for i in range(200_000)), "larger than"),
    (b"kubernetes:\n  labels:\n" + b"".join(b"    k%d: v\n" % i for i in range(6000)), "values"),
    ("runbook_url: '" + "x" * 500_000 + "'\n", "{alert}"),
], ids=["bomb", "recursive-alias", "deep", "utf16", "utf16le", "latin1", "2MiB", "many-nodes", "long-value"])
def test_hostile_yaml_fails_fast_with_one_short_line(tmp_path: Path, content: bytes | str, hint: str):
    user = tmp_path / "hostile.yaml"
    user.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    proc = _cli("--config", str(user), "--out", str(out))
    assert proc.returncode == 2, proc.stderr[-500:]
    assert proc.stderr.count("\n") == 1 and len(proc.stderr) <= config.MAX_MESSAGE + len("error: \n"), proc.stderr
    assert hint in proc.stderr
    assert not out.exists()


def test_the_bomb_is_small_and_real():
    assert len(BOMB) < 512
    # PyYAML builds it lazily (shared lists); walking it, as validation does, is what explodes.
    assert yaml.safe_load(BOMB)["grafana"]["tags"][0][0][0][0][0][0][0][0] == ["lol"] * 9


def test_dev_zero_is_refused_by_size(tmp_path: Path):
    proc = _cli("--config", "/dev/zero", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "/dev/zero: larger than 1024 KiB" in proc.stderr


def test_a_utf8_bom_and_benign_anchors_are_fine(tmp_path: Path):
    user = tmp_path / "my.yaml"
    user.write_bytes(b"\xef\xbb\xbfalerts:\n  PDPrefillIdle: &slow {for: 7m}\n  PDKVTransferSlow: *slow\n")
    cfg = config.load(user)
    assert cfg["alerts"]["PDPrefillIdle"]["for"] == cfg["alerts"]["PDKVTransferSlow"]["for"] == "7m"


def test_a_huge_bad_value_is_never_repeated_in_the_message():
    big = {"alerts": {"PDPrefillIdle": {"for": ["x" * 1000] * 1000}}}
    with pytest.raises(config.ConfigError) as err:
        config.load(overrides=big)
    assert len(str(err.value)) <= config.MAX_MESSAGE and "\n" not in str(err.value)


def _amtool_route(tmp_path: Path, key: str, value: str) -> bool:
    path = tmp_path / "am.yaml"
    path.write_text(yaml.safe_dump({"route": {"receiver": "a", key: value}, "receivers": [{"name": "a"}]}))
    return subprocess.run([str(tools.tool_path("amtool")), "check-config", str(path)], capture_output=True,
                          timeout=60).returncode == 0


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("group_interval", "0h0m", False),
    ("repeat_interval", "0s", False),
    ("group_interval", "293y", False),
    ("group_interval", "5m\n", False),
    ("group_interval", "292y", True),
    ("group_interval", "1m30s", True),
])
def test_amtool_judges_alertmanager_durations_as_the_config_does(tmp_path: Path, key: str, value: str,
                                                                  accepted: bool):
    assert _amtool_route(tmp_path, key, value) is accepted
    try:
        config.load(overrides={"alertmanager": {key: value}})
        ours = True
    except config.ConfigError:
        ours = False
    assert ours is accepted
