"""The promtool rule unit tests of tests/rules/ on VictoriaMetrics' vmalert-tool.

The same generated files (tests/alert_rules_gen.py) as test_alert_rules.py, converted by
harness.victoriametrics.vmalert_tool_document (expression tests are `metricsql_expr_test` there) and
run with `vmalert-tool unittest --disableAlertgroupLabel`: alerts fire at the same evaluation with
the same labels and the same text, records hold the same values.

vmalert-tool evaluates every rule at every step through an embedded VictoriaMetrics, several
times slower than promtool, so `make test` runs the groups that matter most for scale-out (the
multi-cluster group, the post-mortem, the config-driven and recorded-value groups);
PDOBS_VMALERT_ALL=1 runs every group (`make test-vmalert`). Last full run: every group passes.
"""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import alert_rules_gen as gen
import pytest
import yaml

from harness.victoriametrics import vmalert_tool_document, vmalert_tool_unittest

RUN_ALL = os.environ.get("PDOBS_VMALERT_ALL") == "1"
# spec file -> group indexes run by default (None: all of them)
DEFAULT = {"multi_cluster": None, "collapse": (0,), "config_overrides": None, "recording": (0,)}
SPECS = [s for s in gen.load_specs() if RUN_ALL or s.stem in DEFAULT]
SELECTED = [gen.slug(s, i) for s in SPECS for i in range(len(s.groups))
            if RUN_ALL or DEFAULT[s.stem] is None or i in DEFAULT[s.stem]]


def _convert(path: Path, out: Path) -> Path:
    doc = vmalert_tool_document(yaml.safe_load(path.read_text()), rule_dir=os.path.relpath(path.parent, out))
    target = out / path.name
    target.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
    return target


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    promtool_dir = tmp_path_factory.mktemp("rule-tests")
    vm_dir = promtool_dir / "vmalert-tool"
    vm_dir.mkdir()
    generated = [g for g in gen.write_suite(promtool_dir, SPECS) if g.path.stem in SELECTED]
    files = [_convert(g.path, vm_dir) for g in generated]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {f.stem: pool.submit(vmalert_tool_unittest, [f.name], cwd=vm_dir) for f in files}
        return {slug: f.result() for slug, f in futures.items()}


def test_the_default_selection_exists():
    assert SELECTED and all(any(s.startswith(stem) for s in SELECTED) for stem in DEFAULT), SELECTED


@pytest.mark.parametrize("slug", SELECTED)
def test_vmalert_tool_passes_the_promtool_unit_tests(results, slug: str):
    proc = results[slug]
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, (proc.stdout + proc.stderr)[-12000:]


# --- the conversion and the runner are not vacuous --------------------------------------------------

RULE = {"groups": [{"name": "g", "interval": "30s", "rules": [{"record": "job:x:sum", "expr": "sum by (job) (x)"}]}]}


def _doc(expected: float) -> dict:
    def case(expr: str, labels: str) -> dict:
        return {"expr": expr, "eval_time": "2m", "exp_samples": [{"labels": labels, "value": expected}]}

    series = [{"series": 'x{job="j", pod="a"}', "values": "1x10"}, {"series": 'x{job="j", pod="b"}', "values": "2x10"}]
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "30s", "tests": [{
        "interval": "30s", "input_series": series,
        "promql_expr_test": [case("job:x:sum", 'job:x:sum{job="j"}'), case("abs(job:x:sum)", '{job="j"}')],
    }]}


def test_conversion_renames_expression_tests_and_drops_names_only_where_promtool_expects_none():
    doc = vmalert_tool_document(_doc(3), rule_dir="../build")
    group = doc["tests"][0]
    assert "promql_expr_test" not in group and doc["rule_files"] == ["../build/rules.yaml"]
    exprs = [c["expr"] for c in group["metricsql_expr_test"]]
    assert exprs == ["job:x:sum", 'label_del((abs(job:x:sum)), "__name__")']
    assert group["input_series"] == _doc(3)["tests"][0]["input_series"]


@pytest.mark.parametrize(("expected", "passes"), [(3, True), (4, False)])
def test_vmalert_tool_checks_the_values(tmp_path, expected: float, passes: bool):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(RULE))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(vmalert_tool_document(_doc(expected))))
    proc = vmalert_tool_unittest(["t.yaml"], cwd=tmp_path)
    assert (proc.returncode == 0) is passes, proc.stdout + proc.stderr
