"""Detection latency and accuracy of every alert on every simulator scenario, with promtool.

Method (exact, no sampling): each scenario is rendered as promtool ``input_series`` at the
config's scrape interval, the rendered recording and alert rules are loaded, and one
``promql_expr_test`` per rule evaluation asks ``count by (alertname) (ALERTS{alertstate="firing"})``
at that time, expecting nothing. promtool evaluates every rule group at every evaluation step into
its test storage (ALERTS included) before it checks expressions, so each failure it prints is
exactly the set of alerts firing at that evaluation. Both Prometheus lines run the same files.

Which alert is meant to fire when comes from the simulator's truth, minute by minute
(`simulator.scenarios.signals_at`), through `harness.truth.EXPECT`. A maximal run of evaluations
where an alert's condition holds is an *episode*:

* an episode shorter than `harness.truth.QUIET_BELOW` (2 minutes) is *quiet*: any firing on it
  is a false positive;
* an episode at least as long as the alert's goal (`page_within`: 3 minutes for the collapse
  alerts, 5 for KV transfer failures) or, for an alert without a goal, as its design floor
  (``for + warm-up + scrape + evaluation``) must be detected: latency = first firing minus the
  episode's start; none at all is a *miss*; a latency above the goal is reported;
* an episode in between is a *transient*: firing on it is reported, not counted as false;
* a firing is *justified* from ``start + for`` to the episode's end plus ``rate window +
  keep_firing_for + scrape + evaluation`` of an episode that is not quiet (a rate stays high
  for a window after the fault ends, then ``keep_firing_for`` holds the alert). Any other firing
  is a *false positive*; a benign scenario (the condition never holds) can only have those.

Honest floor: ``scrape + evaluation``, the least any rule needs to see a fault (one scrape to
sample it, one evaluation to read it), with nothing of this project's design in it: no `for`,
no rate window. Latency is reported against it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts import definitions
from harness.truth import EXPECT, QUIET_BELOW, Expectation
from pdobs.build import make
from pdobs.core import promql
from pdobs.servers import tools
from pdobs.signals import fast
from simulator import render_promtool, scenarios

FIRING = 'count by (alertname) (ALERTS{alertstate="firing"})'
_FAILURE = re.compile(r"time: ([0-9a-z]+),\s*\n\s*exp:[^\n]*\n\s*got: ([^\n]*)")
_ALERTNAME = re.compile(r'alertname="([^"]+)"')


def _seconds(text: str) -> float:
    """Seconds in a time promtool prints, e.g. ``10m30s``."""
    return promql.duration_seconds(text)


@dataclass(frozen=True)
class Timing:
    scrape_s: float
    eval_s: float
    window_s: float


@dataclass(frozen=True)
class AlertTiming:
    name: str
    for_s: float
    keep_s: float
    expect: Expectation
    quiet_below_s: float = promql.duration_seconds(QUIET_BELOW)

    @property
    def goal_s(self) -> float | None:
        """A fault at least this long must page within this much of its start (None: no goal)."""
        return None if self.expect.page_within is None else promql.duration_seconds(self.expect.page_within)

    def warmup_s(self, t: Timing) -> float:
        return t.window_s if self.expect.warmup == "drain" else 0.0

    def honest_floor_s(self, t: Timing) -> float:
        """One scrape to sample the fault, one evaluation to read it: nothing of our design."""
        return t.scrape_s + t.eval_s

    def design_floor_s(self, t: Timing) -> float:
        return t.scrape_s + t.eval_s + self.for_s + self.warmup_s(t)

    def required_s(self, t: Timing) -> float:
        """Episodes at least this long must be detected."""
        goal = self.goal_s
        return self.design_floor_s(t) if goal is None else goal

    def allowance_s(self, t: Timing) -> float:
        return t.window_s + self.keep_s + t.scrape_s + t.eval_s


@dataclass
class Episode:
    start_s: float
    end_s: float | None  # None: still holding when the scenario ends
    length_s: float
    required: bool
    quiet: bool = False  # shorter than QUIET_BELOW: must not fire
    detected_s: float | None = None  # first firing time

    @property
    def latency_s(self) -> float | None:
        return None if self.detected_s is None else self.detected_s - self.start_s


@dataclass
class Cell:
    """One alert on one scenario on one Prometheus line."""

    alert: str
    scenario: str
    line: str
    firing_s: list[float]
    episodes: list[Episode] = field(default_factory=list)
    false_s: list[float] = field(default_factory=list)  # unjustified firing evaluations

    @property
    def benign(self) -> bool:
        return not self.episodes

    @property
    def missed(self) -> int:
        return sum(1 for e in self.episodes if e.required and e.detected_s is None)

    @property
    def transients(self) -> list[Episode]:
        """Episodes that need not fire (the quiet ones must not)."""
        return [e for e in self.episodes if not e.required]


@dataclass
class Detection:
    timing: Timing
    lines: dict[str, str]  # line -> promtool version text
    alerts: list[AlertTiming]
    scenarios: list[dict[str, Any]]  # name, duration_min, fault_start_min, description
    cells: list[Cell]
    depth: dict[str, int] = field(default_factory=dict)  # alert -> recording groups it waits on
    # alert -> recording groups its short-window path waits on (alerts that have one)
    fast_depth: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    agree: bool = True  # every line saw the same firing times


def alert_timings(cfg: Mapping[str, Any]) -> list[AlertTiming]:
    out = []
    for alert in definitions.ALERTS:
        settings = cfg["alerts"][alert.name]
        if not settings["enabled"]:
            continue
        if alert.name not in EXPECT:
            raise KeyError(f"harness/truth.py has no expectation for {alert.name}")
        out.append(AlertTiming(alert.name, promql.duration_seconds(settings["for"]),
                               promql.duration_seconds(settings.get("keep_firing_for", "0s")),
                               EXPECT[alert.name]))
    return out


def timing(cfg: Mapping[str, Any]) -> Timing:
    prom = cfg["prometheus"]
    return Timing(promql.duration_seconds(prom["scrape_interval"]),
                  promql.duration_seconds(prom["evaluation_interval"]),
                  promql.duration_seconds(prom["rate_window"]))


def write_rules(cfg: dict[str, Any], folder: Path) -> list[Path]:
    files = make.build(cfg)
    out = []
    for rel in ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml"):
        path = folder / Path(rel).name
        path.write_text(files[rel])
        out.append(path)
    return out


def group_names(rule_file: Path) -> list[str]:
    return [g["name"] for g in yaml.safe_load(rule_file.read_text())["groups"]]


def chain_depth(rule_files: Sequence[Path], only: set[str] | None = None) -> dict[str, int]:
    """alert -> how many recording groups lie between the raw series and it (the group of the
    deepest record its expression reads, counting from 1); with `only`, among those records."""
    depth: dict[str, int] = {}
    records: dict[str, int] = {}
    for f in rule_files:
        for i, g in enumerate(yaml.safe_load(f.read_text())["groups"], start=1):
            for rule in g["rules"]:
                if "record" in rule:
                    records[rule["record"]] = i
                elif "alert" in rule:
                    used = [n for n, gi in records.items() if only is None or n in only
                            if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", rule["expr"])]
                    depth[rule["alert"]] = max((records[n] for n in used), default=0)
    return depth


def fast_records(cfg: Mapping[str, Any]) -> set[str]:
    """The short-window evidence's records (pdobs/signals/fast.py)."""
    prom = cfg["prometheus"]
    return {s.record for s in fast.signals(tuple(cfg["signals"]["quantiles"]), prom["rate_window"],
                                           prom["fast_window"]) if s.record}


def eval_times(duration_s: float, eval_s: float) -> list[float]:
    n = int(duration_s // eval_s + 1e-9)
    return [k * eval_s for k in range(n + 1)]


def write_test_file(sc: scenarios.Scenario, rule_files: Sequence[Path], t: Timing, path: Path) -> None:
    times = eval_times(sc.duration_min * 60, t.eval_s)
    tests = [{"expr": FIRING, "eval_time": promql.format_duration(s), "exp_samples": []}
             for s in times]
    group = render_promtool.rule_test_group(sc, interval_s=t.scrape_s, name=sc.name, promql_expr_tests=tests)
    doc = render_promtool.rule_test_file([group], rule_files=rule_files, evaluation_interval_s=t.eval_s)
    # Without an explicit order promtool evaluates the groups in Go map order (random per run),
    # so a chained record could lag a step or not; the file order is the dependency order.
    doc["group_eval_order"] = [g for f in rule_files for g in group_names(f)]
    render_promtool.write_rule_test_file(path, doc)


def parse_firing(output: str, n_tests: int) -> dict[str, list[float]]:
    """alertname -> evaluation times (s) it was firing, from promtool's failure report."""
    firing: dict[str, list[float]] = {}
    failures = _FAILURE.findall(output)
    if len(failures) != output.count("expr: ") or len(failures) > n_tests:
        raise RuntimeError(f"cannot read promtool's report:\n{output[-3000:]}")
    for when, got in failures:
        for name in _ALERTNAME.findall(got):
            firing.setdefault(name, []).append(_seconds(when))
    return {k: sorted(v) for k, v in firing.items()}


def run_promtool(binary: Path, test_file: Path, n_tests: int) -> dict[str, list[float]]:
    proc = subprocess.run([str(binary), "test", "rules", test_file.name], cwd=test_file.parent,
                          capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0:
        if "SUCCESS" not in output:
            raise RuntimeError(f"{binary.name} {test_file.name}: no verdict\n{output[-3000:]}")
        return {}
    if "got:" not in output:  # a broken rule file or test file, not an alert firing
        raise RuntimeError(f"{binary.name} {test_file.name} failed:\n{output[-3000:]}")
    return parse_firing(output, n_tests)


def truth_timeline(sc: scenarios.Scenario, times: Sequence[float]) -> list[dict[str, Any]]:
    if len(sc.runs) != 1:
        raise ValueError(f"{sc.name}: the detection benchmark takes single-deployment scenarios")
    return [scenarios.signals_at(sc.runs[0], s / 60) for s in times]


def episodes(holds: Sequence[bool], times: Sequence[float], duration_s: float, required_s: float,
             quiet_below_s: float = 0.0) -> list[Episode]:
    """Maximal runs of evaluations where the condition holds. An open episode (still holding at
    the end) is never quiet: the fault did not end."""
    out: list[Episode] = []
    start: float | None = None
    for held, s in zip(holds, times, strict=True):
        if held and start is None:
            start = s
        elif not held and start is not None:
            length = s - start
            out.append(Episode(start, s, length, length >= required_s, length < quiet_below_s))
            start = None
    if start is not None:
        out.append(Episode(start, None, duration_s - start, duration_s - start >= required_s))
    return out


def judge(cell: Cell, at: AlertTiming, t: Timing, duration_s: float) -> None:
    """Match firing evaluations to episodes: detections, misses and unjustified firings."""
    allowance = at.allowance_s(t)
    for ep in cell.episodes:
        end = duration_s if ep.end_s is None else ep.end_s
        hits = [s for s in cell.firing_s if ep.start_s <= s <= end + allowance]
        ep.detected_s = hits[0] if hits else None
    for s in cell.firing_s:
        justified = any(not ep.quiet and
                        ep.start_s + at.for_s <= s <= (duration_s if ep.end_s is None else ep.end_s) + allowance
                        for ep in cell.episodes)
        if not justified:
            cell.false_s.append(s)


def scenario_list(names: Sequence[str] | None = None, duration_min: float | None = None) -> list[scenarios.Scenario]:
    """Every named scenario at its default parameters (faults at their default minute), lasting
    `duration_min` when given."""
    params = {} if duration_min is None else {"duration_min": duration_min}
    return [scenarios.get(n, **params) for n in (names or list(scenarios.ALL))]


def run(cfg: dict[str, Any], scenario_names: Sequence[str] | None = None, *,
        duration_min: float | None = None, workers: int = 2) -> Detection:
    import time

    began = time.monotonic()
    t = timing(cfg)
    timings = alert_timings(cfg)
    lines = {line: tools.tool_path(binary) for line, binary in sorted(tools.PROMTOOLS.items())}
    versions = {line: _version(path) for line, path in lines.items()}
    built = scenario_list(scenario_names, duration_min)
    cells: list[Cell] = []
    agree = True
    with tempfile.TemporaryDirectory(prefix="pdobs-bench-detect-") as tmp:
        work = Path(tmp)
        rule_files = write_rules(cfg, work)
        depth = chain_depth(rule_files)
        fast_depth = {k: v for k, v in chain_depth(rule_files, fast_records(cfg)).items() if v}
        files = {}
        for sc in built:
            path = work / f"{sc.name}.yaml"
            write_test_file(sc, rule_files, t, path)
            files[sc.name] = path
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {(sc.name, line): pool.submit(run_promtool, binary, files[sc.name],
                                                    len(eval_times(sc.duration_min * 60, t.eval_s)))
                       for sc in built for line, binary in lines.items()}
            firing = {key: f.result() for key, f in futures.items()}
    for sc in built:
        duration = sc.duration_min * 60
        times = eval_times(duration, t.eval_s)
        truth = truth_timeline(sc, times)
        per_line = [firing[(sc.name, line)] for line in lines]
        agree = agree and all(p == per_line[0] for p in per_line)
        for at in timings:
            settings = cfg["alerts"][at.name]
            holds = [bool(at.expect.holds(tr, settings)) for tr in truth]
            for line in lines:
                cell = Cell(at.name, sc.name, line, firing[(sc.name, line)].get(at.name, []))
                cell.episodes = episodes(holds, times, duration, at.required_s(t), at.quiet_below_s)
                judge(cell, at, t, duration)
                cells.append(cell)
    described = [{"name": sc.name, "duration_min": sc.duration_min,
                  "fault_start_min": sc.truth.get("fault_start_min"),
                  "fault_end_min": sc.truth.get("fault_end_min"),
                  "description": " ".join((sc.description or "").split())} for sc in built]
    return Detection(t, versions, timings, described, cells, depth, fast_depth, time.monotonic() - began, agree)


def _version(binary: Path) -> str:
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else "?"
    return first.replace("promtool, ", "")
