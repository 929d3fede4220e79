"""`doctor --report FILE.html` on a real Prometheus holding simulated scenarios and their ALERTS.

One server holds four deployments, one namespace each: collapsed for the whole run (the
post-mortem's vLLM, no NIXL series), healthy then collapsing mid-run (a vLLM with NIXL series),
healthy, and healthy on a vLLM too old to show KV transfers. The recording rules are backfilled and
the alert rules replayed (simulator.alert_replay), as a live Prometheus would have them. Each
report's embedded data must match the simulator's ground truth minute by minute (verdict, every
signal's PASS/FAIL, the alerts that fired), and Chromium must draw every chart without a script
error.
"""

import contextlib
import html as html_lib
import io
import json
import re

import browser
import pytest
from doctor_helpers import write_rule_files
from test_doctor_scenarios import expected_exit, expected_status

from harness.truth import EXPECT
from pdobs import checks, cli, signals
from pdobs.core import config, promql
from pdobs.demo.story import TRUTH_VERDICT
from pdobs.doctor import history
from simulator import scenarios

DURATION_MIN = 30
ONSET_MIN = 12
NAMESPACES = ("collapsed", "onset", "healthy", "old-vllm")
CFG = config.load()
WINDOW_MIN = promql.duration_seconds(CFG["prometheus"]["rate_window"]) / 60
# A verdict follows the truth once the rate window holds only the new state, plus a scrape and an
# evaluation; minutes closer than this to a change of the truth are not judged.
SETTLE_MIN = WINDOW_MIN + 1.0
MAX_BYTES = 2 * 1024 * 1024


def _scenario() -> scenarios.Scenario:
    return scenarios.combine(
        scenarios.get("collapsed", namespace="collapsed", duration_min=DURATION_MIN, fault_start_min=0),
        scenarios.get("collapsed", namespace="onset", duration_min=DURATION_MIN, fault_start_min=ONSET_MIN,
                      vllm_version="0.12.0"),
        scenarios.get("healthy_pd", namespace="healthy", duration_min=DURATION_MIN),
        scenarios.get("old_vllm", namespace="old-vllm", duration_min=DURATION_MIN),
        name="doctor-report")


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory):
    return write_rule_files(CFG, tmp_path_factory.mktemp("report-rules"))


@pytest.fixture(scope="module")
def served(prometheus_for_scenario, rule_files):
    return prometheus_for_scenario(_scenario(), rule_files, backfill_alert_rules=True)


@pytest.fixture(autouse=True)
def no_credentials_from_the_outside(monkeypatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["doctor", *args])
    return code, out.getvalue(), err.getvalue()


def embedded(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert found, "no embedded report data"
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def reports(served, tmp_path_factory):
    """namespace -> (exit code, path, embedded data, html, stderr), one doctor run each."""
    out = tmp_path_factory.mktemp("reports")
    made = {}
    for ns in NAMESPACES:
        path = out / f"{ns}.html"
        code, _, err = run("--prometheus", served.url, "--namespace", ns, "--time", f"{served.end_time:.0f}",
                           "--since", f"{DURATION_MIN}m", "--report", str(path))
        html = path.read_text()
        made[ns] = (code, path, embedded(html), html, err)
    return made


# --- ground truth -------------------------------------------------------------------------------


def _run_of(served, ns: str):
    return next(r for r in served.scenario.runs if r.deployment.namespace == ns)


def truth_at(served, ns: str, minute: float) -> dict:
    return scenarios.signals_at(_run_of(served, ns), minute)


def settled(served, ns: str, key) -> list[float]:
    """Minutes (every half minute) at which `key(truth)` has not changed for SETTLE_MIN."""
    minutes = [i / 2 for i in range(int(DURATION_MIN * 2) + 1)]
    values = {m: key(truth_at(served, ns, m)) for m in minutes}
    return [m for m in minutes if m >= SETTLE_MIN
            and len({values[x] for x in minutes if m - SETTLE_MIN <= x <= m}) == 1]


def state_at(spans: list[dict], t: float, field: str) -> str:
    found = [s[field] for s in spans if s["start"] <= t <= s["end"]]
    assert found, f"no span holds {t}"
    return found[-1]


def visible_text(page: str) -> str:
    """The page without its scripts, entities decoded (the embedded JSON would match anything)."""
    return html_lib.unescape(re.sub(r"<script.*?</script>", "", page, flags=re.S))


def _deployment(data: dict) -> dict:
    (dep,) = data["deployments"]
    return dep


# --- what the report says ----------------------------------------------------------------------------


@pytest.mark.parametrize("ns", NAMESPACES)
def test_report_is_written_with_the_doctors_exit_code(served, reports, ns):
    code, path, data, _, err = reports[ns]
    truth = served.scenario.truth["parts"][ns]
    assert code == expected_exit(truth) == data["exit_code"]
    assert err.strip().splitlines() == [f"wrote the HTML report to {path}"]
    assert path.stat().st_size < MAX_BYTES
    assert not list(path.parent.glob(".*.tmp")), "the temporary file was left beside the report"
    w = data["window"]
    assert w["end"] == served.end_time and w["end"] - w["start"] >= DURATION_MIN * 60


@pytest.mark.parametrize("ns", NAMESPACES)
def test_verdict_timeline_follows_the_truth(served, reports, ns):
    data = reports[ns][2]
    dep = _deployment(data)
    assert dep["verdict"]["now"] == TRUTH_VERDICT[served.scenario.truth["parts"][ns]["expected_verdict"]]
    judged = settled(served, ns, lambda t: t["expected_verdict"])
    assert len(judged) > 20
    for minute in judged:
        want = TRUTH_VERDICT[truth_at(served, ns, minute)["expected_verdict"]]
        assert state_at(dep["timeline"], served.time_at(minute), "verdict") == want, minute
    assert dep["timeline"][-1]["verdict"] == dep["verdict"]["now"]


def test_timeline_shows_when_it_collapsed(served, reports):
    dep = _deployment(reports["onset"][2])
    states = [s["verdict"] for s in dep["timeline"] if s["end"] - s["start"] > 60]
    assert states == ["DISAGGREGATED", "COLLAPSED TO AGGREGATED"]
    start = next(s["start"] for s in dep["timeline"] if s["verdict"] == "COLLAPSED TO AGGREGATED")
    minute = (start - served.start_time) / 60
    assert ONSET_MIN < minute <= ONSET_MIN + SETTLE_MIN
    # The latency comparison is drawn from the same window: decode TTFT is worse while collapsed.
    (ttft,) = [p for p in dep["latency"] if p["key"] == "latency-ttft"]
    decode = next(c for c in ttft["comparisons"] if c["label"] == "decode pods")
    assert decode["factor"] > 1.2


@pytest.mark.parametrize("ns", NAMESPACES)
def test_every_signal_over_time_follows_the_truth(served, reports, ns):
    dep = _deployment(reports[ns][2])
    assert [c["signal"] for c in dep["checks"]] == [c.name for c in checks.CHECKS]
    end_truth = served.scenario.truth["parts"][ns]
    for check in dep["checks"]:
        signal = check["signal"]
        assert check["status"] == expected_status(end_truth, signal)
        assert check["timeline"][-1]["status"] == check["status"]
        for minute in settled(served, ns, lambda t, s=signal: expected_status(t, s)):
            want = expected_status(truth_at(served, ns, minute), signal)
            assert state_at(check["timeline"], served.time_at(minute), "status") == want, (signal, minute)


def _episodes(served, ns: str, alert: str) -> list[tuple[float, float]]:
    settings = CFG["alerts"][alert]
    minutes = [i / 2 for i in range(int(DURATION_MIN * 2) + 1)]
    out: list[tuple[float, float]] = []
    for m in minutes:
        if EXPECT[alert].holds(truth_at(served, ns, m), settings):
            if out and out[-1][1] == m - 0.5:
                out[-1] = (out[-1][0], m)
            else:
                out.append((m, m))
    return out


@pytest.mark.parametrize("ns", NAMESPACES)
def test_alerts_in_the_range_are_the_ones_the_truth_expects(served, reports, ns):
    dep = _deployment(reports[ns][2])
    fired = {a["name"]: a for a in dep["alerts"]}
    expected = set()
    for alert, settings in CFG["alerts"].items():
        episodes = _episodes(served, ns, alert)
        if not episodes:
            assert alert not in fired, f"{alert} fired, but its condition never holds in {ns}"
            continue
        first, last = episodes[0]
        for_min = promql.duration_seconds(settings["for"]) / 60
        floor = for_min + (WINDOW_MIN if EXPECT[alert].warmup == "drain" else 0) + 1.0
        if last - first < floor:
            continue  # too short to be sure it fires
        expected.add(alert)
        assert alert in fired, f"{alert} holds from minute {first} in {ns} but did not fire"
        started = (fired[alert]["start"] - served.start_time) / 60
        assert first + for_min <= started <= first + floor + 0.5, (alert, first, started)
    assert set(fired) == expected
    for a in dep["alerts"]:
        assert a["runbook"].endswith(f"/{a['name']}.md")
        assert a["dashboard"] is None  # no grafana.url in the default config
        assert a["labels"]["namespace"] == ns


def test_alert_and_signal_links_open_grafana_when_its_url_is_set(served, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("grafana: {url: 'https://grafana.example/'}\n")
    path = tmp_path / "onset.html"
    code, _, _ = run("--prometheus", served.url, "--namespace", "onset", "--time", f"{served.end_time:.0f}",
                     "--since", f"{DURATION_MIN}m", "--report", str(path), "--config", str(cfg))
    assert code == 1
    dep = _deployment(embedded(path.read_text()))
    assert dep["alerts"]
    for a in dep["alerts"]:
        assert re.fullmatch(r"https://grafana\.example/d/pd-[a-z-]+\?viewPanel=\d+&var-namespace=onset.*",
                            a["dashboard"]), a["dashboard"]
    assert dep["verdict"]["dashboard"].startswith("https://grafana.example/d/pd-diagnostic-drilldown?")


def test_a_plot_without_data_says_why_in_words(reports):
    _, _, data, html, _ = reports["collapsed"]  # vLLM 0.11.0: no NIXL series at all
    nixl = next(c for c in _deployment(data)["checks"] if c["signal"] == "nixl_transfers_absent")
    assert not nixl["plot"]["has_data"]
    assert 'data-nodata="check-nixl_transfers_absent"' in html
    assert 'data-chart="check-nixl_transfers_absent"' not in html
    assert "No KV evidence: no transfer series" in html
    # Healthy on vLLM 0.12: every check has data but KV delivery, which 0.12 does not count.
    healthy = _deployment(reports["healthy"][2])
    assert [c["signal"] for c in healthy["checks"] if not c["plot"]["has_data"]] == ["kv_not_delivered"]
    assert reports["healthy"][3].count('data-nodata="check-') == 1
    why = "No prompt tokens by source in the range: vLLM older than 0.16.0 does not count them"
    assert why in reports["healthy"][3]


def test_every_query_is_the_catalogs_and_is_on_the_page(reports):
    _, _, data, html, _ = reports["onset"]
    ctx = signals.context(CFG, scope={"namespace": ("=", "onset")}, inline=True)
    dep = _deployment(data)
    for check in dep["checks"]:
        spec = history.PLOTS[check["signal"]]
        assert [q["promql"] for q in check["plot"]["queries"]] == [
            signals.query(ctx, line.signal, **line.variant) for line in spec.lines]
        assert check["status_query"] == signals.query(ctx, "checklist", signal=check["signal"])
    for plot in dep["latency"]:
        _, lines = history.LATENCY[plot["key"].removeprefix("latency-")]
        assert [q["promql"] for q in plot["queries"]] == [signals.query(ctx, ln.signal, **ln.variant) for ln in lines]
    assert data["verdict_query"] == signals.query(ctx, "verdict")
    shown = visible_text(html)
    for check in dep["checks"]:
        for q in check["plot"]["queries"]:
            assert q["promql"] in shown


def test_findings_before_the_metrics_are_in_the_report(reports):
    data = reports["old-vllm"][2]
    areas = {f["area"] for f in data["findings"]}
    assert {"vllm", "epp", "rules", "roles"} <= areas
    vllm = next(f for f in data["findings"] if f["area"] == "vllm")
    assert vllm["message"] in visible_text(reports["old-vllm"][3])


# --- in a browser ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ns", ["onset", "collapsed"])
def test_chromium_draws_every_chart_without_a_script_error(reports, tmp_path, tmp_path_factory, ns):
    _, path, data, _, _ = reports[ns]
    seen = browser.inspect(path, tmp_path)
    assert seen["errors"] == []
    assert seen["external"] == 0, "the page loads something from outside"
    dep = _deployment(data)
    plots = [c["plot"] for c in dep["checks"]] + dep["latency"]
    expected = ["verdict", *(p["key"] for p in plots if p["has_data"]), *(["alerts"] if dep["alerts"] else [])]
    assert sorted(c["key"] for c in seen["charts"]) == sorted(expected)
    for chart in seen["charts"]:
        assert chart["width"] > 500 and chart["height"] > 60, chart
        assert chart["drawn"] >= 1, f"{chart['key']} drew no data"
    no_alerts = [] if dep["alerts"] else ["alerts"]
    assert sorted(seen["nodata"]) == sorted([p["key"] for p in plots if not p["has_data"]] + no_alerts)
    if ns == "onset":
        folder = tmp_path_factory.mktemp("report-artefacts")
        png = browser.screenshot(path, folder / "onset-report.png", seen["height"], tmp_path)
        assert png.stat().st_size > 50_000
        print(f"screenshot: {png}")


# --- bad input ----------------------------------------------------------------------------------------


def test_bad_range_and_report_flags_are_one_line_errors(served, tmp_path):
    url, end = served.url, f"{served.end_time:.0f}"
    target = tmp_path / "r.html"
    cases = [
        (("--since", "6h"), "--since: only with --report FILE.html"),
        (("--report", str(target), "--since", "soon"), "--since 'soon': expected a duration"),
        (("--report", str(target), "--since", "0s"), "--since '0s': expected a duration above 0"),
        (("--report", str(target), "--since", "1h", "--start", end), "--since and --start: give one"),
        (("--report", str(target), "--start", end, "--end", end), f"--start {end!r} is not before"),
        (("--report", str(target), "--end", end, "--time", "1"), "--time and --end differ"),
        (("--report", str(tmp_path / "no" / "r.html")), "does not exist"),
        (("--report", str(tmp_path)), "is a folder"),
    ]
    for args, message in cases:
        timed = args if {"--time", "--end"} & set(args) else ("--time", end, *args)
        code, out, err = run("--prometheus", url, *timed)
        assert code == 2, (args, err)
        assert out == ""
        assert len(err.strip().splitlines()) == 1 and message in err, (args, err)
    assert not target.exists()


def test_a_failed_run_leaves_an_existing_report_untouched(tmp_path):
    from doctor_helpers import free_port

    target = tmp_path / "r.html"
    target.write_text("the previous report")
    code, _, err = run("--prometheus", f"http://127.0.0.1:{free_port()}", "--report", str(target))
    assert code == 2 and "cannot reach Prometheus" in err
    assert target.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_the_step_keeps_six_hours_small():
    w = history.window(1_800_000_000.0, 6 * 3600, 30.0)
    assert w.end == 1_800_000_000.0 and w.end - w.start >= 6 * 3600
    assert len(w.times) <= history.MAX_POINTS + 1
    assert history.window(1_800_000_000.0, 3600, 30.0).step == 30.0  # never finer than a scrape

