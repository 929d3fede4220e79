"""Invariants of the signal catalog and the recording rules rendered from it."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pdobs import signals
from pdobs.build import make
from pdobs.core import config, paths
from pdobs.servers import tools
from recording_rules import render

RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
METRIC_PREFIXES = re.compile(
    r"\b(vllm:[a-z0-9_]+|inference_(?:pool|model|objective|extension)_[a-z0-9_]+|llm_d_[a-z0-9_]+)"
)
# Packages that must take every metric name from the catalog. The simulator is deliberately not here:
# it models vLLM and the EPP independently so that a wrong name in the catalog fails a test.
CONSUMERS = ("alerts", "dashboards", "recording_rules", "pdobs", "scaleout")


def _groups(cfg: dict) -> list[dict]:
    return [g.as_dict() for g in render.rule_groups(cfg)]


def test_record_names_follow_level_metric_operations():
    for group in _groups(config.load()):
        for rule in group["rules"]:
            assert RECORD_NAME.match(rule["record"]), rule["record"]


def test_no_rule_reads_a_rule_of_its_own_or_a_later_group():
    groups = _groups(config.load())
    recorded_in = {}
    for index, group in enumerate(groups):
        for rule in group["rules"]:
            recorded_in.setdefault(rule["record"], index)
    for index, group in enumerate(groups):
        for rule in group["rules"]:
            for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["expr"]):
                if name in recorded_in:
                    assert recorded_in[name] < index, f"{rule['record']} reads {name} of group {recorded_in[name]}"


def test_metric_names_live_only_in_the_catalog():
    offenders = []
    for package in CONSUMERS:
        for path in (paths.ROOT / package).rglob("*.py"):
            if path.parent == paths.ROOT / "pdobs" / "signals":
                continue
            for match in METRIC_PREFIXES.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(paths.ROOT)}: {match.group(0)}")
    assert not offenders, "metric names outside the catalog:\n" + "\n".join(offenders)


def test_counters_are_queried_with_their_total_suffix():
    cfg = config.load()
    exprs = "\n".join(r["expr"] for g in _groups(cfg) for r in g["rules"])
    for metric in set(re.findall(r"rate\((vllm:[a-z0-9_]+|inference_[a-z0-9_]+|llm_d_[a-z0-9_]+)", exprs)):
        assert metric.endswith(("_total", "_bucket", "_sum", "_count")), metric


def test_multi_cluster_groups_every_aggregation_by_cluster():
    cfg = config.load(overrides={"multi_cluster": True, "labels": {"cluster": "k8s_cluster"}})
    for group in _groups(cfg):
        for rule in group["rules"]:
            for clause in re.findall(r"(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
                assert "k8s_cluster" in clause, f"{rule['record']}: ({clause}) lacks the cluster label"


def test_label_role_mode_selects_by_the_role_label():
    cfg = config.load(overrides={"roles": {"mode": "label", "label": {"name": "role_x", "prefill": "p"}}})
    expr = signals.expression(signals.context(cfg), "requests", role="prefill")
    assert 'role_x="p"' in expr and "pod=~" not in expr


def test_selectors_and_thresholds_come_from_the_config():
    cfg = config.load(overrides={"selectors": {"vllm": 'job=~".*ms.*"'}, "signals": {"min_request_rate": 0.7}})
    ctx = signals.context(cfg, inline=True)
    expr = signals.query(ctx, "checklist", signal="prefill_idle")
    assert 'job=~".*ms.*"' in expr and "> 0.7" in expr


def test_inlined_queries_read_no_recorded_series():
    cfg = config.load()
    ctx = signals.context(cfg, inline=True, scope={"namespace": ("=", "ns1")})
    for name, sig in signals.signals(cfg).items():
        for variant in sig.variants:
            expr = signals.query(ctx, name, **variant)
            assert not re.search(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", expr.replace("vllm:", "")), name


@pytest.mark.parametrize("line", sorted(tools.PROMTOOLS))
def test_promtool_accepts_the_recording_rules(line: str, tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(make.build(config.load())[render.RULE_FILE])
    proc = subprocess.run([str(tools.tool_path(tools.PROMTOOLS[line])), "check", "rules", str(rules)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = sum(len(g["rules"]) for g in yaml.safe_load(rules.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in proc.stdout


def test_namespace_level_signals_ignore_the_model_scope_when_inlined():
    cfg = config.load()
    scope = {"namespace": ("=", "ns1"), "model": ("=", "m1")}
    inlined = signals.query(signals.context(cfg, scope=scope, inline=True), "vllm_pods_ns")
    recorded = signals.query(signals.context(cfg, scope=scope), "vllm_pods_ns")
    assert 'namespace="ns1"' in inlined and "m1" not in inlined
    assert "m1" not in recorded
