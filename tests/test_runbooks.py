"""Every alert has a runbook its URL resolves to, and the runbook's PromQL cannot drift."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts import definitions, render, runbooks
from pdobs.build import make
from pdobs.core import config
from pdobs.servers import tools

SECTIONS = ("## What it means", "## Dashboard and how to confirm", "## Likely causes", "## How to fix",
            "## How to silence")
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)\n```", re.S)


def _rules_by_name() -> dict[str, dict]:
    doc = yaml.safe_load(make.build(config.load())[render.RULE_FILE])
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


@pytest.mark.parametrize("name", [a.name for a in definitions.ALERTS])
def test_runbook_url_resolves_to_an_existing_runbook(name: str):
    url = _rules_by_name()[name]["annotations"]["runbook_url"]
    target = runbooks.runbook_file(config.load(), name)
    assert target is not None, f"{url} does not point into docs/runbooks/"
    assert target.is_file(), f"{url} -> {target} does not exist"
    assert target.read_text().startswith(f"# {name}\n")


@pytest.mark.parametrize("name", [a.name for a in definitions.ALERTS])
def test_runbook_has_every_section(name: str):
    text = runbooks.path(name).read_text()
    positions = [text.find(s) for s in SECTIONS]
    assert -1 not in positions, f"{name}: missing {[s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]}"
    assert positions == sorted(positions), f"{name}: sections out of order"


def test_runbooks_are_in_step_with_the_catalog():
    assert runbooks.stale() == [], "run `python build.py docs` to regenerate the runbooks' PromQL"


def test_generated_section_holds_the_alert_expression_and_its_panel():
    cfg = config.load()
    model = make.model(cfg)
    for alert in definitions.ALERTS:
        text = runbooks.path(alert.name).read_text()
        blocks = PROMQL_BLOCK.findall(text)
        assert len(blocks) == 1 + len(alert.confirm), alert.name
        assert 'namespace="<namespace>"' in blocks[0], alert.name
        panel = model.dashboards[alert.link.dashboard].panel(alert.link.panel)
        assert f"panel *{panel.title}*" in text and f"viewPanel={panel.id}`" in text, alert.name
        assert f"fires after `{cfg['alerts'][alert.name]['for']}`" in text, alert.name


def test_a_changed_catalog_makes_the_runbooks_stale():
    cfg = config.load(overrides={"prometheus": {"rate_window": "10m"}})
    assert set(runbooks.stale(cfg)) >= {"PDKVTransferAbsent", "PDPrefillIdle"}


def test_a_runbook_without_its_markers_is_refused():
    with pytest.raises(runbooks.RunbookError, match="generated section"):
        runbooks.updated("# PDPrefillIdle\nprose only\n", definitions.BY_NAME["PDPrefillIdle"], config.load())


def test_a_brace_in_the_runbook_url_is_kept_as_written():
    # One implementation fills the pattern for the alerts and the doctor; other braces stay.
    cfg = config.load(overrides={"runbook_url": "https://wiki.example/{space}/{alert}?x={alert_lower}"})
    model = make.model(cfg)
    assert model.runbook_urls["PDPrefillIdle"] == "https://wiki.example/{space}/PDPrefillIdle?x=pdprefillidle"
    for rule in model.alerts:
        assert rule.annotations["runbook_url"] == model.runbook_urls[rule.name]


def test_kv_transfer_runbook_names_the_known_causes():
    text = runbooks.path("PDKVTransferAbsent").read_text().lower()
    for cause in ("rdma", "one gpu", "kv-transfer-config", "0.11.1", "epp does not see the prefill pod"):
        assert cause in text, cause


@pytest.mark.parametrize("line", sorted(tools.PROMTOOLS))
def test_runbook_promql_parses(line: str, tmp_path: Path):
    """Each PromQL block, with the placeholder filled in, is valid on both Prometheus lines."""
    rules = []
    for alert in definitions.ALERTS:
        for i, block in enumerate(PROMQL_BLOCK.findall(runbooks.path(alert.name).read_text())):
            rules.append({"record": f"runbook:{alert.name.lower()}:q{i}",
                          "expr": block.replace("<namespace>", "llm-d")})
    path = tmp_path / "runbook-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}))
    proc = subprocess.run([str(tools.tool_path(tools.PROMTOOLS[line])), "check", "rules", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout
