"""The benchmark harness (bench/, `make bench`): its pieces on synthetic input, and one run in a
tiny configuration (2 pods, 30 minutes, one dashboard, one scenario) to prove it works end to
end. No timing asserts: speed is what the harness reports, not what the tests judge."""

import json
from pathlib import Path

import pytest

from alerts import definitions
from bench import detection, llmd_reference, run
from bench.query_cost import panel_queries
from dashboards import render
from harness.grafana_query import interpolate, request
from harness.truth import EXPECT
from pdobs import signals
from pdobs.core import config
from simulator import scenarios


def test_every_alert_says_when_it_must_fire():
    assert set(EXPECT) == {a.name for a in definitions.ALERTS}


def test_truth_maps_the_post_mortem_collapse_to_the_collapse_alerts():
    sc = scenarios.get("collapsed", duration_min=30)
    cfg = config.load()
    before, during = (scenarios.signals_at(sc.runs[0], m) for m in (5, 20))
    fires = {name for name, e in EXPECT.items() if e.holds(during, cfg["alerts"][name])}
    assert {"PDKVTransferAbsent", "PDPrefillIdle", "PDDisaggregationCollapsed", "PDEPPReadyPodsMismatch"} <= fires
    assert "PDKVTransferFailures" not in fires
    assert not any(EXPECT[n].holds(before, cfg["alerts"][n]) for n in fires)


def test_grafana_step_follows_panel_width_and_range():
    six_h = request(0, 6 * 3600, 12, 30)
    assert (six_h.step_s, six_h.rate_interval) == (30, "120s")  # 21600 s / 900 px = 24 s -> 20 s -> scrape
    narrow = request(0, 6 * 3600, 4, 30)
    assert (narrow.step_s, narrow.rate_interval) == (60, "120s")  # 72 s rounds to 1 m
    week = request(0, 7 * 86400, 24, 30)
    assert week.step_s == 300 and week.rate_interval == "330s"
    assert request(95, 3695, 24, 30).start == 90  # aligned to the step


def test_parse_firing_reads_promtool_failures():
    output = (
        '  FAILED:\n    expr: "count by (alertname) (ALERTS{alertstate=\\"firing\\"})", time: 1h0m30s,\n'
        '        exp: nil\n        got: {alertname="A"} 1E+00, {alertname="B"} 1E+00\n\n'
        '    expr: "count by (alertname) (ALERTS{alertstate=\\"firing\\"})", time: 10m,\n'
        '        exp: nil\n        got: {alertname="A"} 1E+00\n')
    assert detection.parse_firing(output, 200) == {"A": [600.0, 3630.0], "B": [3630.0]}
    with pytest.raises(RuntimeError):
        detection.parse_firing(output.replace("got:", "gave:"), 200)


def test_episodes_and_judgement():
    t = detection.Timing(scrape_s=30, eval_s=30, window_s=300)
    at = detection.AlertTiming("X", for_s=90, keep_s=300, expect=EXPECT["PDKVTransferAbsent"])
    # The honest floor holds nothing of the design; a collapse must page within 3 minutes.
    assert (at.honest_floor_s(t), at.goal_s, at.required_s(t), at.quiet_below_s) == (60, 180, 180, 120)
    times = detection.eval_times(3600, 30)
    holds = [600 <= s < 2400 for s in times]  # a 30-minute fault from minute 10
    cell = detection.Cell("X", "s", "3.5", firing_s=[120.0, *[s for s in times if 720 <= s <= 2700]])
    cell.episodes = detection.episodes(holds, times, 3600, at.required_s(t), at.quiet_below_s)
    detection.judge(cell, at, t, 3600)
    assert [(e.start_s, e.end_s, e.required, e.quiet, e.latency_s) for e in cell.episodes] == [
        (600, 2400, True, False, 120)]
    assert cell.false_s == [120.0]  # minute 2: nothing held; the tail to minute 45 is justified

    def judged(length_s: float, firing: list[float]) -> detection.Cell:
        c = detection.Cell("X", "s", "3.5", firing_s=firing)
        c.episodes = detection.episodes([600 <= s < 600 + length_s for s in times], times, 3600,
                                        at.required_s(t), at.quiet_below_s)
        detection.judge(c, at, t, 3600)
        return c

    # Shorter than 2 minutes: quiet, so a firing on it is a false positive.
    quiet = judged(90, [720.0])
    assert [(e.required, e.quiet) for e in quiet.episodes] == [(False, True)] and quiet.false_s == [720.0]
    # Between quiet and the goal: a transient, which may fire after its `for`.
    transient = judged(150, [720.0])
    assert [(e.required, e.quiet) for e in transient.episodes] == [(False, False)] and not transient.false_s
    assert transient.missed == 0 and judged(150, []).missed == 0
    # As long as the goal: required, so no firing at all is a miss.
    assert judged(180, []).missed == 1


def test_raw_form_of_every_panel_reads_no_recorded_series():
    cfg = config.load()
    queries = list(panel_queries(cfg))
    built = render.build_all(cfg)
    assert len(queries) == sum(len(p.get("targets", [])) for b in built.values() for p in b.json["panels"])
    records = {s.record for s in signals.signals(cfg).values() if s.record}
    for q in queries:
        assert not any(r in q.raw for r in records), f"{q.dashboard} / {q.panel}: {q.raw[:200]}"
    assert sum(q.raw != q.recorded for q in queries) > len(queries) / 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    code = run.main(["--pods", "2", "--hours", "0.5", "--ranges", "0.5",
                     "--dashboards", "pd-coordinator,pd-diagnostic-drilldown",
                     "--scenarios", "collapsed", "--build-runs", "1", "--no-suite", "--no-compaction-wait",
                     "--out", str(out / "benchmarks.md"), "--json", str(out / "benchmarks.json"),
                     "--workdir", str(out / "work")])
    assert code == 0
    return {"md": (out / "benchmarks.md").read_text(), "json": json.loads((out / "benchmarks.json").read_text())}


def test_tiny_run_writes_every_section(tiny):
    md = tiny["md"]
    for heading in ("## Machine and tools", "## 1. Alert detection latency and accuracy",
                    "## 2. Dashboard query cost", "## 3. Build and test cost"):
        assert heading in md
    assert "nproc" in md and "promtool-2" in md


def test_tiny_run_detects_the_collapse_on_both_lines_without_false_positives(tiny):
    det = tiny["json"]["detection"]
    cells = [c for c in det["cells"] if c["scenario"] == "collapsed" and c["alert"] == "PDDisaggregationCollapsed"]
    assert sorted(c["line"] for c in cells) == ["2.53", "3.5"]
    for c in cells:
        (episode,) = c["episodes"]
        assert episode["start_s"] == 600 and episode["required"]
        assert 90 <= episode["detected_s"] - episode["start_s"] <= 180  # after `for`, within the goal
    assert not any(c["false_s"] for c in det["cells"])


def test_tiny_run_costs_recorded_below_raw_with_the_same_series(tiny):
    q = tiny["json"]["query"]
    costs = {c["form"]: c for c in q["costs"] if c["dashboard"] == "pd-coordinator"}
    assert costs["recorded"]["queries"] == costs["raw"]["queries"] > 20
    assert costs["raw"]["samples"] > 10 * costs["recorded"]["samples"] > 0
    panels: dict[tuple[str, str], dict[str, int]] = {}
    for p in q["panels"]:
        panels.setdefault((p["dashboard"], p["panel"]), {})[p["form"]] = p["series"]
    assert all(v["recorded"] == v["raw"] for v in panels.values()), panels
    (fleet,) = q["fleets"]
    assert fleet["pods"] == 2 and fleet["rules_series"] > 0 and fleet["series"] > 500


def test_tiny_run_measures_the_drilldown_against_llm_ds_own(tiny):
    q = tiny["json"]["query"]
    (ref,) = q["reference"]
    ours = next(c for c in q["costs"] if c["dashboard"] == ref["dashboard"] == "pd-diagnostic-drilldown"
                and c["form"] == "recorded")
    assert ref["queries"] == len(llmd_reference.DRILLDOWN) and ref["series"] > 0
    assert ref["samples"] > ours["samples"] > 0
    assert q["reference_source"]["commit"] == llmd_reference.SOURCE["commit"]
    assert "Against llm-d's own dashboards" in tiny["md"]


def test_llm_d_reference_queries_take_the_dashboards_variables():
    for panel in llmd_reference.DRILLDOWN:
        assert "$namespace" in panel.expr and 1 <= panel.width <= 24, panel.title
        assert "{{" not in interpolate(panel.expr, {"namespace": "ns", "model_name": ".*"})


def test_tiny_run_measures_the_build(tiny):
    build = tiny["json"]["build"]
    assert build["files"] > 10 and len(build["peak_rss_mib"]) == 1 and build["peak_rss_mib"][0] > 0
    assert build["suite_note"].startswith("not run")


def test_bad_part_is_a_one_line_error(capsys):
    assert run.main(["--parts", "nope"]) == 2
    assert "--parts" in capsys.readouterr().err


def test_default_output_is_the_committed_document():
    assert run.parser().parse_args([]).out == Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
