"""The demo's story, live: healthy, fault injected, signals fail, alerts fire, who got told, what
was inhibited, heal, resolved. Every step waits for the real thing to happen (with a deadline)
and prints it on the timeline as it does.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pdobs.checks import Verdict
from pdobs.demo.stack import SPEED, Stack
from pdobs.demo.timeline import Timeline, Watcher
from pdobs.doctor import diagnose, report, write_report
from pdobs.doctor.client import Credentials, Prometheus
from pdobs.doctor.model import Report
from simulator import scenarios
from simulator.scenarios import Scenario

Config = dict[str, Any]
# A fault start no demo reaches: the scenario's healthy phase, for as long as it plays.
NEVER_MIN = 1e9
# The doctor's verdict text for each scenario truth's `expected_verdict` (the simulator names
# verdicts as the Verdict enum does).
TRUTH_VERDICT = {v.name: v.text for v in Verdict}
# Deadlines per step, in wall seconds (the whole default run takes about a minute).
HEALTHY_S, NOTIFY_S, RESOLVE_S, QUIET_S = 60.0, 90.0, 90.0, 20.0
# A hook the caller may pass to see each doctor report as it is made: (phase, report).
ReportHook = Callable[[str, Report], None]


class DemoError(Exception):
    """A scenario name that does not exist, or missing tools (exit 2)."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every `finally` runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Plan:
    """The scenario's healthy form, its fault, and what its ground truth expects of each."""
    name: str
    healthy: Scenario
    faulty: Scenario
    has_fault: bool

    @property
    def fault_start_min(self) -> float:
        return float(self.faulty.truth.get("fault_start_min") or 0.0)

    @property
    def healthy_verdict(self) -> str:
        return TRUTH_VERDICT[self.healthy.truth["expected_verdict"]]

    @property
    def fault_verdict(self) -> str:
        during = self.faulty.truth.get("during_fault") or self.faulty.truth
        return TRUTH_VERDICT[during["expected_verdict"]]

    @property
    def namespace(self) -> str:
        return self.faulty.deployment.namespace


def plan(name: str) -> Plan:
    factory = scenarios.ALL.get(name)
    if factory is None:
        raise DemoError(f"--scenario {name!r}: unknown; one of: {', '.join(scenarios.ALL)} (demo --list says more)")
    faulty = factory()
    if "fault_start_min" not in inspect.signature(factory).parameters:
        return Plan(name, faulty, faulty, has_fault=False)
    return Plan(name, factory(fault_start_min=NEVER_MIN), faulty, has_fault=True)


def describe(scenario: Scenario) -> str:
    """The scenario's description on one line, without reST markup."""
    return " ".join(scenario.description.replace("``", "").split())


@dataclass
class Result:
    exit_code: int = 0
    problems: list[str] = field(default_factory=list)
    reports: dict[str, Report] = field(default_factory=dict)
    report: Path | None = None  # the HTML report of the run, once written

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        self.exit_code = 1


class Story:
    def __init__(self, stack: Stack, the_plan: Plan, timeline: Timeline, out: TextIO,
                 hooks: tuple[ReportHook, ...] = ()) -> None:
        self.stack, self.plan, self.timeline, self.out = stack, the_plan, timeline, out
        self.watch = Watcher(stack, the_plan.namespace, timeline)
        self.hooks = hooks
        self.result = Result()

    # --- the doctor, as a user would run it -------------------------------------------------------
    def doctor(self, phase: str, expected: str, full: bool) -> None:
        prom = Prometheus(self.stack.prometheus.url, Credentials())
        try:
            made = diagnose(self.stack.cfg, prom, {})
        finally:
            prom.close()
        self.result.reports[phase] = made
        for hook in self.hooks:
            hook(phase, made)
        verdicts = {d.verdict for d in made.deployments}
        mark = "matches" if verdicts == {expected} else "DOES NOT MATCH"
        self.timeline.say(f"doctor: {', '.join(sorted(verdicts)) or 'no deployment'}; the scenario's ground "
                          f"truth is {expected}: {mark}")
        if full:
            print("", file=self.out)
            print("\n".join("    " + line for line in report.text(made).splitlines()), file=self.out)
            print("", file=self.out, flush=True)
        else:
            for dep in made.deployments:
                details = [f"{c.title}: {c.status} ({c.measured})" for c in dep.checks]
                self.timeline.say(f"doctor on {dep.name}:", details)
        if mark != "matches":
            self.result.fail(f"the doctor said {', '.join(sorted(verdicts))} {phase}, the truth is {expected}")

    # --- the steps -----------------------------------------------------------------------------
    def healthy(self) -> None:
        self.timeline.heading(f"1. Healthy: {self.plan.name}" + (" before its fault" if self.plan.has_fault else ""))
        expected = self.plan.healthy_verdict
        prom = self.stack.cfg["prometheus"]
        # Warm-up: the recorded signals fill their rate windows; settled once nothing changes for a
        # window and two evaluations.
        settle = _seconds(prom["rate_window"]) + 2 * _seconds(prom["evaluation_interval"])
        self.timeline.say(f"waiting for the recording rules to fill their {prom['rate_window']} windows")
        if not self.watch.wait(lambda: self.watch.settled(expected, settle), HEALTHY_S,
                               f"the recorded verdict to settle on {expected}"):
            self.result.fail(f"the recorded verdict did not settle on {expected} in {HEALTHY_S:.0f}s")
        self.watch.quiet = False
        self.timeline.say("the recorded checklist (what the dashboards and alerts read):",
                          self.watch.checklist_lines())
        self.timeline.say("alerts pending or firing in Prometheus: "
                          + ("none" if not self.watch.alerts else ""), self.watch.alert_lines())
        self.doctor("healthy", expected, full=False)

    def fault(self) -> None:
        at = self.plan.fault_start_min
        self.timeline.heading("2. Fault injected")
        self.stack.endpoint.switch(self.plan.faulty, at_minute=at)
        self.timeline.say(f"the simulator now plays {self.plan.name} from its simulated minute {at:g}: "
                          f"{describe(self.plan.faulty)}")
        self.watch.wait(lambda: self.watch.received > 0, NOTIFY_S, "a notification at PagerDuty or Slack")
        if self.watch.received == 0:
            self.timeline.say(f"nothing reached PagerDuty or Slack within {NOTIFY_S:.0f}s")
        else:
            # Long enough for an alert the verdict explains to be sent if it were not inhibited.
            am = self.stack.cfg["alertmanager"]
            settle = _seconds(am["explained_group_wait"]) + 2 * _seconds(am["group_interval"]) + 1
            self.watch.wait(lambda: False, settle, "the explained alerts to settle")
        failing = self.watch.failing()
        self.timeline.say("failing signals: " + (", ".join(failing) if failing else "none"))
        self.doctor("during the fault", self.plan.fault_verdict, full=True)

    def heal(self) -> None:
        self.timeline.heading("3. Healed")
        self.stack.endpoint.switch(self.plan.healthy)
        self.timeline.say("the simulator plays the healthy deployment again (counters carry on, as after a real fix)")
        if self.watch.received:
            done = self.watch.wait(lambda: not self.watch.unresolved() and not self.watch.alerts, RESOLVE_S,
                                   "every notified alert to resolve")
            if not done:
                self.result.fail("never resolved: " + ", ".join(self.watch.unresolved() or ["alerts still active"]))
        else:
            self.watch.wait(lambda: not self.watch.alerts, RESOLVE_S, "every alert to clear")
        self.watch.wait(lambda: self.watch.verdict == self.plan.healthy_verdict, HEALTHY_S,
                        f"the recorded verdict to read {self.plan.healthy_verdict}")
        self.doctor("after the heal", self.plan.healthy_verdict, full=False)

    def quiet(self) -> None:
        self.timeline.heading(f"2. No fault in {self.plan.name}: nothing should page")
        self.watch.wait(lambda: False, QUIET_S, f"{QUIET_S:.0f}s to pass; nothing should fire")
        if self.watch.received:
            self.result.fail(f"{self.plan.name} has no fault, yet {self.watch.received} notification(s) went out")
        self.doctor("while running", self.plan.healthy_verdict, full=False)

    def write_report(self, started: float) -> None:
        """The HTML incident report of the whole run, from the live Prometheus (its ALERTS are real)."""
        # Beside the build `make demo` made, else in the current folder: it outlives the demo's temp folder.
        folder = Path("build") if Path("build").is_dir() else Path()
        path = folder / f"demo-report-{self.plan.name}.html"
        prom = Prometheus(self.stack.prometheus.url, Credentials())
        try:
            made = diagnose(self.stack.cfg, prom, {})
            write_report(self.stack.cfg, prom, {}, made, path, max(time.time() - started, 60.0))
        finally:
            prom.close()
        self.result.report = path.resolve()
        self.timeline.say(f"the HTML report of the whole run (open it in a browser): {self.result.report}")

    def summary(self) -> None:
        self.timeline.heading("What happened")
        w = self.watch
        pages, slack = w.stack.receiver.pagerduty(), w.stack.receiver.slack()
        self.timeline.say(f"PagerDuty received {len(pages)} event(s): "
                          + (", ".join(e.get("event_action", "?") for e in pages) or "none"))
        self.timeline.say(f"Slack received {len(slack)} message(s): "
                          + (", ".join((m.get("attachments") or [{}])[0].get("title", "?") for m in slack) or "none"))
        if w.inhibited:
            held = ", ".join(f"{name} (by {by})" for (name, _), by in sorted(w.inhibited.items()))
            self.timeline.say(f"inhibited in Alertmanager, never sent: {held}")
            sent = w.sent_text()
            leaked = [name for name, ns in w.inhibited if name in sent and ns in sent]
            if leaked:
                self.result.fail(f"inhibited alerts still reached a receiver: {', '.join(leaked)}")
        for problem in self.result.problems:
            self.timeline.say(f"PROBLEM: {problem}")
        if not self.result.problems:
            self.timeline.say("every step happened as the scenario's ground truth says")

    def keep(self) -> None:
        """Leave everything running, in the fault, until Ctrl-C or SIGTERM."""
        s = self.stack
        if self.plan.has_fault:
            s.endpoint.switch(self.plan.faulty, at_minute=self.plan.fault_start_min)
            self.timeline.say(f"fault injected again: {self.plan.name} stays in its fault until you stop the demo")
        print(f"\nThe stack stays up until Ctrl-C:\n"
              f"  Prometheus    {s.prometheus.url}   (try the query ALERTS, or /alerts)\n"
              f"  Alertmanager  {s.alertmanager.url}\n"
              f"  simulator     {s.endpoint.url}/metrics\n"
              f"  the doctor:   pdobs doctor --prometheus {s.prometheus.url} --config {s.config_file}\n"
              f"                (that config holds the demo's {s.cfg['prometheus']['rate_window']} windows)\n",
              file=self.out, flush=True)
        while True:
            self.watch.poll()
            time.sleep(1.0)


def _seconds(duration: str) -> float:
    from pdobs.core.promql import duration_seconds

    return duration_seconds(duration)


def intro(the_plan: Plan, cfg_note: str, out: TextIO) -> None:
    print(f"Scenario {the_plan.name}: {describe(the_plan.faulty)}", file=out)
    print(f"\nTime is compressed: the simulator plays {SPEED / 60:g} simulated minute per wall-clock second, "
          f"and {cfg_note} shortens every duration to match (rate windows, alert `for`, Alertmanager waits). "
          "The alert rules, routing, inhibition and message templates are the real ones, rendered from "
          "the config; rates read 60x what the simulated pods serve.", file=out, flush=True)


def run_story(stack: Stack, the_plan: Plan, timeline: Timeline, out: TextIO, keep: bool,
              hooks: tuple[ReportHook, ...] = ()) -> Result:
    story = Story(stack, the_plan, timeline, out, hooks)
    started = time.time()
    story.healthy()
    if the_plan.has_fault:
        story.fault()
        story.heal()
    else:
        story.quiet()
    story.write_report(started)
    story.summary()
    if keep:
        try:
            story.keep()
        except (KeyboardInterrupt, Stopped):
            pass  # the way out of --keep, not a failure
    return story.result


def workdir_note(path: Path) -> str:
    return f"working folder {path} (removed when the demo stops)"
