"""Adding a checklist check is a check record plus the signal its condition reads, nothing else.

A test-only check ("decode_queue_backed_up": decode pods keep more requests waiting than running)
is registered with its own signal definition; the build and the doctor then show it everywhere a
check appears: the checklist recording rule, the Collapsed alert's list, the drill-down's top
row, the doctor's rows (against a real Prometheus) and the Alertmanager inhibition.
"""

import json
import types
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from dashboards import ids
from delivery import alertmanager
from pdobs import checks, cli, signals
from pdobs.build import make
from pdobs.build.model import BuildModel, RecordingRule
from pdobs.checks import Check, Measured, Reading
from pdobs.core import config
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from simulator import scenarios

NAME = "decode_queue_backed_up"
TITLE = "Decode queue vs running"
SIGNAL = "decode_waiting_per_running"
RECORD = "namespace_model:vllm_decode_waiting_per_running:ratio"
NS_MODEL = ("namespace", "model")


def _ratio(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    return (f"sum by ({by}) ({ctx.ref('waiting', role='decode')})\n/ {on}\n"
            f"(sum by ({by}) ({ctx.ref('running', role='decode')}) > 0)")


# The signal, as a domain module of pdobs/signals/ would define it.
EXTRA_DOMAIN = types.ModuleType("extra_signals")
EXTRA_DOMAIN.signals = lambda quantiles, window: [  # type: ignore[attr-defined]
    Signal(SIGNAL, RECORD, NS_MODEL, "short", "Requests waiting per request running on decode.", _ratio),
]


def _measure(cfg: dict[str, Any], v: checks.Values, failing: bool) -> Measured:
    value = v["ratio"]
    text = f"{value:.2f} waiting per running" if checks.finite(value) else "nothing running"
    return Measured(text, value, "<= 1 waiting per running", "decode is backed up" if failing else "decode keeps up")


# The check record, as pdobs/checks.py would hold it.
EXTRA = Check(
    name=NAME,
    title=TITLE,
    text="decode queue backed up",
    fails=lambda c: f"and {c.on(*NS_MODEL)} ({c.ref(SIGNAL)} > 1)",
    description=lambda cfg: "Does decode keep up? PASS: at most one request waits per request running. FAIL: more.",
    readings=(Reading("ratio", SIGNAL),),
    measure=_measure,
    alert="PDKVTransferSlow",  # decode waits on slow KV pulls; the collapse verdict explains it too
    inhibited=True,
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(checks, "CHECKS", (*checks.CHECKS, EXTRA))
    monkeypatch.setattr(signals, "DOMAINS", (*signals.DOMAINS, EXTRA_DOMAIN))
    yield


@pytest.fixture
def model(registered) -> BuildModel:
    return make.model(config.load(overrides={"grafana": {"url": "https://grafana.example.com"}}))


def test_the_checklist_recording_rule_has_the_check(model):
    rules = {(r.record, tuple(sorted(r.labels.items()))): (i, r) for i, g in enumerate(model.recording_groups)
             for r in g.rules if isinstance(r, RecordingRule)}
    index, rule = rules[("namespace_model:pd_signal:failing", (("signal", NAME),))]
    assert RECORD in rule.expr
    signal_index, _ = rules[(RECORD, ())]
    assert signal_index < index, "the check's signal is recorded in an earlier group than the checklist"


def test_the_collapsed_alert_lists_it(model):
    collapsed = next(r for r in model.alerts if r.name == "PDDisaggregationCollapsed")
    assert f'"{NAME}"' in collapsed.annotations["description"]
    assert "decode queue backed up" in collapsed.annotations["description"]
    assert f"of the {len(checks.CHECKS)} 'not disaggregated' signals" in collapsed.annotations["description"]


def test_the_drilldown_shows_it_in_the_top_row(model):
    board = model.dashboards[ids.DRILLDOWN]
    ref = board.panel(EXTRA.panel_key)
    assert ref.title == TITLE
    panel = next(p for p in board.json["panels"] if p["id"] == ref.id)
    assert f'signal="{NAME}"' in panel["targets"][0]["expr"]
    assert {o["text"] for o in panel["fieldConfig"]["defaults"]["mappings"][0]["options"].values()} == {
        s.text for s in checks.CheckState}


def test_the_collapse_inhibits_its_alert(model):
    cfg = config.load()
    am = yaml.safe_load(make.files(cfg, model)[alertmanager.CONFIG_FILE])
    targets = " ".join(m for rule in am["inhibit_rules"] for m in rule["target_matchers"])
    assert "PDKVTransferSlow" in targets
    explained = am["route"]["routes"][0]["routes"][0]
    assert "PDKVTransferSlow" in explained["matchers"][0] and explained["group_wait"]


def test_the_doctor_reports_it(registered, prometheus_for_scenario, capsys):
    # The doctor inlines every query, so no rules need to be loaded.
    served = prometheus_for_scenario(scenarios.get("healthy_pd", namespace="extra-check", duration_min=25),
                                     backfill_recording_rules=False)
    code = cli.main(["doctor", "--prometheus", served.url, "--time", str(served.end_time), "--output", "json"])
    (deployment,) = json.loads(capsys.readouterr().out)["deployments"]
    row = next(c for c in deployment["checks"] if c["signal"] == NAME)
    # A healthy deployment: decode keeps up, measured from the series the simulator exports.
    assert (row["title"], row["status"], row["reason"]) == (TITLE, "PASS", "decode keeps up")
    assert 0 <= row["value"] < 1 and row["measured"] == f"{row['value']:.2f} waiting per running"
    assert [c["signal"] for c in deployment["checks"]] == [c.name for c in checks.CHECKS]
    assert code == 0


def test_the_registration_is_undone():
    # The engine is cached per set of definitions: the real build never sees the test's check.
    cfg = config.load()
    assert SIGNAL not in signals.signals(cfg)
    assert NAME not in {v["signal"] for v in signals.signals(cfg)["checklist"].variants}
