"""The rule files and dashboards on the engines a fleet grows into: multi-cluster aggregation, the
fields Thanos/Mimir/Cortex rulers and vmalert accept, the Mimir namespace file, and per-pod
records kept to the dashboards' rates and out of every alert path. Static checks plus vmalert's
own parser; the engines themselves run in test_scale_out_engines.py and test_vmalert_rules.py."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards import render as dashboard_render
from harness.victoriametrics import vmalert_dry_run
from pdobs import signals
from pdobs.build import make
from pdobs.core import config
from pdobs.servers import tools
from recording_rules import render as recording_render
from scaleout import mimir, rulers
from tests.dashboard_helpers import targets

MULTI = {"multi_cluster": True, "labels": {"cluster": "k8s_cluster"}}
CONFIGS = {"single cluster": {}, "multi-cluster": MULTI}
GROUPING = re.compile(r"\b(by|on|without|ignoring)\s*\(([^)]*)\)")


@pytest.fixture(params=sorted(CONFIGS), scope="module")
def cfg(request) -> dict:
    return config.load(overrides=CONFIGS[request.param])


@pytest.fixture(scope="module")
def files(cfg) -> dict[str, str]:
    """What build.py writes for the config (rendered once per config: it takes seconds)."""
    return make.build(cfg)


@pytest.fixture(scope="module")
def multi() -> dict:
    return config.load(overrides=MULTI)


def _rule_groups(cfg: dict) -> list[dict]:
    return [g.as_dict() for g in make.model(cfg).rule_groups]


def _alert_rules(cfg: dict) -> list[dict]:
    return [r.as_dict() for r in make.model(cfg).alerts]


def _clauses(text: str) -> list[tuple[str, list[str]]]:
    return [(kind, [x.strip() for x in labels.split(",") if x.strip()]) for kind, labels in GROUPING.findall(text)]


# --- multi-cluster: every aggregation and match keeps the cluster ------------------------------------


def test_multi_cluster_alerts_aggregate_and_match_by_cluster(multi):
    checked = 0
    for rule in _alert_rules(multi):
        # The expression and the queries its description runs through the template `query` function.
        for text in (rule["expr"], *rule["annotations"].values()):
            for kind, labels in _clauses(text):
                assert kind in ("by", "on"), f"{rule['alert']}: {kind}() would keep or drop labels blindly"
                assert "k8s_cluster" in labels, f"{rule['alert']}: {kind}({', '.join(labels)}) lacks the cluster"
                checked += 1
    assert checked > 20


def test_multi_cluster_alert_text_names_the_cluster(multi):
    for rule in _alert_rules(multi):
        assert "of cluster {{ $labels.k8s_cluster }}" in rule["annotations"]["description"], rule["alert"]


def test_multi_cluster_panels_aggregate_and_match_by_cluster(multi):
    # With $cluster on All, a `sum by (namespace)` would add up two clusters' namespaces of one name.
    checked = 0
    for uid, board in dashboard_render.build_all(multi).items():
        for panel, target in targets(board.json):
            for kind, labels in _clauses(target["expr"]):
                assert kind in ("by", "on") and "k8s_cluster" in labels, f"{uid} / {panel['title']}: {kind}({labels})"
                checked += 1
    assert checked > 30


def test_single_cluster_never_names_a_cluster():
    cfg = config.load()
    text = yaml.safe_dump(_rule_groups(cfg))
    assert cfg["labels"]["cluster"] + "=" not in text and f"({cfg['labels']['cluster']}," not in text


# --- rulers: nothing a ruler rejects or drops ------------------------------------------------------


@pytest.mark.parametrize("ruler", rulers.RULERS, ids=[r.name for r in rulers.RULERS])
def test_rule_files_use_only_fields_every_ruler_accepts(cfg, ruler):
    groups = _rule_groups(cfg) + mimir.document(cfg, make.model(cfg))["groups"]
    assert list(rulers.unsupported(groups, ruler)) == []


def test_a_prometheus_only_field_is_caught():
    # The check is not vacuous: query_offset and limit (Prometheus 2.53+) are lost on Cortex.
    group = {"name": "g", "interval": "30s", "query_offset": "1m", "limit": 10,
             "rules": [{"record": "a:b:c", "expr": "1"}]}
    cortex = next(r for r in rulers.RULERS if r.name == "Cortex ruler")
    assert sorted(rulers.unsupported([group], cortex)) == ["g: group field 'limit'", "g: group field 'query_offset'"]
    portable_groups, portable_rules = rulers.portable_fields()
    assert portable_groups == {"name", "interval", "rules"}
    assert "keep_firing_for" in portable_rules


def test_keep_firing_for_at_zero_leaves_the_field_out_for_older_rulers():
    off = {name: {"keep_firing_for": "0s"} for name in config.load()["alerts"]}
    rules = _alert_rules(config.load(overrides={"alerts": off}))
    assert rules and not [r["alert"] for r in rules if "keep_firing_for" in r]
    default = _alert_rules(config.load())
    assert any("keep_firing_for" in r for r in default)


def _write(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    out = []
    for rel in ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml"):
        path = tmp_path / rel.replace("/", "-")
        path.write_text(files[rel])
        out.append(path)
    return out


def test_vmalert_parses_every_rule_and_template(files, tmp_path):
    proc = vmalert_dry_run(_write(tmp_path, files))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_vmalert_dry_run_rejects_what_it_cannot_run(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 1", "annotations": {"d": "{{ $value | no_such_function }}"}}]}]}))
    proc = vmalert_dry_run([bad])
    assert proc.returncode != 0 and "no_such_function" in proc.stdout + proc.stderr


# --- the Mimir/Cortex namespace file -----------------------------------------------------------------


def test_mimir_namespace_file_holds_the_prometheus_groups(cfg, files):
    doc = yaml.safe_load(files[f"mimir/rules-{cfg['mimir']['namespace']}.yaml"])
    assert list(doc) == ["namespace", "groups"] and doc["namespace"] == cfg["mimir"]["namespace"]
    prometheus = [g for rel in ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml")
                  for g in yaml.safe_load(files[rel])["groups"]]
    assert doc["groups"] == prometheus
    names = [g["name"] for g in doc["groups"]]
    assert len(set(names)) == len(names), "group names must be unique within a ruler namespace"


def test_mimir_namespace_comes_from_the_config(tmp_path):
    cfg = config.load(overrides={"mimir": {"namespace": "team-a.llm-d"}})
    assert mimir.path(cfg) == "mimir/rules-team-a.llm-d.yaml"
    assert yaml.safe_load(make.build(cfg)[mimir.path(cfg)])["namespace"] == "team-a.llm-d"
    with pytest.raises(config.ConfigError, match=r"mimir\.namespace"):
        config.load(overrides={"mimir": {"namespace": "../x"}})


# --- cardinality: per-pod records only for dashboards, alerts read namespace-level records --------

# The dashboards' per-pod rates, recorded so a refresh reads one sample per pod (issue 8). Nothing
# else may keep the pod: a new per-pod record must be added here on purpose.
PER_POD_RECORDED = {"pod_work_tokens", "pod_preemptions", "pod_prefix_hit_ratio"}
RECORD_NAME = re.compile(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+")


def _per_pod_records(cfg) -> set[str]:
    return {s.record for s in signals.signals(cfg).values() if s.record and "pod" in s.level}


def test_only_the_dashboards_per_pod_rates_keep_the_pod(cfg):
    recorded = {s.name: s for s in signals.signals(cfg).values() if s.record}
    assert recorded
    assert {name for name, sig in recorded.items() if "pod" in sig.level} == PER_POD_RECORDED
    for name, sig in recorded.items():
        assert sig.level[0] == "namespace", f"{name}: recorded below the namespace level {sig.level}"
        if name in PER_POD_RECORDED:
            assert sig.record.startswith("namespace_model_pod:"), sig.record
            assert sig.variants == signals.ROLE_VARIANTS, f"{name}: one record per role, no role-less copy"
    per_pod = _per_pod_records(cfg)
    pod = cfg["labels"]["pod"]
    for group in recording_render.rule_groups(cfg):
        for rule in group.as_dict()["rules"]:
            # The outermost aggregation names its labels; the pod may only appear in an inner one.
            outer = [labels for kind, labels in _clauses(rule["expr"]) if kind == "by"]
            keeps = any(pod in labels for labels in outer[:1])
            assert keeps == (rule["record"] in per_pod), f"{rule['record']}: keeps {pod} is {keeps}"


def _reads(cfg) -> dict[str, set[str]]:
    """Record name -> the records its rules read."""
    reads: dict[str, set[str]] = {}
    for group in recording_render.rule_groups(cfg):
        for rule in group.as_dict()["rules"]:
            reads.setdefault(rule["record"], set()).update(RECORD_NAME.findall(rule["expr"]))
    return reads


def test_alerts_read_only_namespace_level_records(cfg):
    levels = {s.record: s.level for s in signals.signals(cfg).values() if s.record}
    pod = cfg["labels"]["pod"]
    reads = _reads(cfg)
    per_pod = _per_pod_records(cfg)
    assert per_pod, "no per-pod record to keep out of the alerts: the check below would prove nothing"
    alerts = _alert_rules(cfg)
    assert alerts
    for rule in alerts:
        used = set(RECORD_NAME.findall(rule["expr"]))
        assert used and used <= set(levels), f"{rule['alert']} reads {used - set(levels)}"
        assert all("pod" not in levels[r] for r in used), rule["alert"]
        assert f"{pod}=" not in rule["expr"] and f"{pod}," not in rule["expr"], rule["alert"]
        # Through the records it reads too: no per-pod record anywhere in an alert's path.
        seen, todo = set(), list(used)
        while todo:
            record = todo.pop()
            if record not in seen:
                seen.add(record)
                todo.extend(reads.get(record, ()))
        assert not seen & per_pod, f"{rule['alert']} depends on per-pod records {sorted(seen & per_pod)}"


def test_no_namespace_level_record_reads_a_per_pod_record(cfg):
    per_pod = _per_pod_records(cfg)
    for record, read in _reads(cfg).items():
        if record not in per_pod:
            assert not read & per_pod, f"{record} reads per-pod records {sorted(read & per_pod)}"


# The field lists agree with the parsers we can run: a group using every listed field loads.
SAMPLE_GROUP = {"name": "g", "interval": "1m", "query_offset": "30s", "limit": 10, "labels": {"team": "x"},
                "eval_offset": "10s", "eval_alignment": True, "type": "prometheus",
                "concurrency": 1, "params": {"nocache": ["1"]}, "headers": ["X-A: b"],
                "notifier_headers": ["X-A: b"], "debug": False}
SAMPLE_RULE = {"record": "job:up:sum", "expr": "sum by (job) (up)", "labels": {"a": "b"}, "debug": False,
               "update_entries_limit": 5}
PARSERS = {"Prometheus 3.5": "promtool", "Prometheus 2.53": "promtool-2", "vmalert": "vmalert"}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_field_lists_agree_with_the_real_parsers(tmp_path, name):
    ruler = next(r for r in rulers.RULERS if r.name == name)

    def loads(group: dict) -> bool:
        path = tmp_path / "g.yaml"
        path.write_text(yaml.safe_dump({"groups": [group]}))
        if PARSERS[name] == "vmalert":
            return vmalert_dry_run([path]).returncode == 0
        tool = tools.tool_path(PARSERS[name])
        return subprocess.run([str(tool), "check", "rules", str(path)], capture_output=True).returncode == 0

    rule = {k: v for k, v in SAMPLE_RULE.items() if k in ruler.rule_fields}
    group = {k: v for k, v in SAMPLE_GROUP.items() if k in ruler.group_fields} | {"rules": [rule]}
    assert loads(group), f"{name} rejects a field its list claims"
    for extra in sorted(set(SAMPLE_GROUP) - ruler.group_fields):
        assert not loads(group | {extra: SAMPLE_GROUP[extra]}), f"{name} accepts {extra!r}, missing from its list"
