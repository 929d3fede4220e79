"""`make demo`: the real demo in a subprocess, live, paging the local PagerDuty and Slack stand-ins,
and leaving nothing behind however it is stopped.

Each run starts the demo in its own session with its own TMPDIR, so "nothing left" is checkable:
no process in that session (read from /proc, every process' session id) and an empty TMPDIR.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdobs import cli
from pdobs.core import paths
from pdobs.demo import DEFAULT_SCENARIO, scenario_list

DEADLINE_S = 180.0  # the whole default story takes about a minute


def session_members(sid: int) -> list[str]:
    """Processes (other than the leader) whose session id is `sid`: '<pid> <command>'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == sid:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid:
            found.append(f"{entry.name} {comm}")
    return found


class Demo:
    """`python build.py demo ...` in a new session, its output collected line by line."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.tmpdir = tmp / "tmpdir"
        self.tmpdir.mkdir()
        env = {**os.environ, "TMPDIR": str(self.tmpdir), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, str(paths.ROOT / "build.py"), "demo", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=tmp, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = DEADLINE_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text, re.M)
            if match:
                return match
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                match = re.search(pattern, self.text, re.M)
                if match:
                    return match
                raise AssertionError(f"demo exited with {self.proc.returncode} before {pattern!r}:\n{self.text}")
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout_s:.0f}s:\n{self.text}")

    def finish(self, timeout_s: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[type]:
    started: list[Demo] = []

    def start(*args: str) -> Demo:
        started.append(Demo(tmp_path, *args))
        return started[-1]

    try:
        yield start
    finally:
        for demo in started:  # a failed test must not leave the stack running either
            leftovers = session_members(demo.proc.pid)
            demo.kill()
            for member in leftovers:
                os.kill(int(member.split()[0]), signal.SIGKILL)


def _assert_nothing_left(demo: Demo) -> None:
    assert session_members(demo.proc.pid) == [], demo.text
    assert list(demo.tmpdir.iterdir()) == [], "the demo left its temporary folder"
    assert re.search(r"^Stopped Prometheus, Alertmanager, the simulator and the receivers; removed ", demo.text,
                     re.M), demo.text


def test_demo_pages_pagerduty_and_slack_resolves_and_keeps_the_stack_live(start_demo):
    demo = start_demo("--keep")
    demo.wait_for(r"The stack stays up until Ctrl-C")
    text = demo.text
    assert "Time is compressed" in text
    assert f"Scenario {DEFAULT_SCENARIO}:" in text
    # The story in order: healthy, fault, pending -> firing, both notifications, inhibition, heal, resolved.
    order = [r"== 1\. Healthy", r"verdict: DISAGGREGATED", r"== 2\. Fault injected",
             r"alert PDDisaggregationCollapsed \(namespace llm-d\) inactive -> pending",
             r"alert PDDisaggregationCollapsed \(namespace llm-d\) pending -> firing",
             r"== 3\. Healed", r"== What happened"]
    positions = [re.search(p, text).start() for p in order]
    assert positions == sorted(positions), text
    trigger = re.search(r"PagerDuty received an event: trigger.*\n(( {11}.*\n)+)", text)
    assert trigger and "[FIRING:1] PDDisaggregationCollapsed (namespace llm-d)" in trigger.group(1), text
    assert "severity:  critical" in trigger.group(1) and "link:      Runbook: " in trigger.group(1)
    # vLLM 0.12 counts no prompt tokens by source, so the KV-delivery check has nothing to hold.
    assert "5 of the 6 'not disaggregated' signals hold" in trigger.group(1)
    assert re.search(r"Slack received a message: \[FIRING:1\] PDDisaggregationCollapsed \(namespace llm-d\)", text)
    assert re.search(r"PagerDuty received an event: resolve", text)
    assert re.search(r"Slack received a message: \[RESOLVED\] PDDisaggregationCollapsed \(namespace llm-d\)", text)
    for component in ("PDKVTransferAbsent", "PDPrefillIdle", "PDEPPReadyPodsMismatch"):
        assert f"Alertmanager: {component} (namespace llm-d) inhibited by PDDisaggregationCollapsed" in text
        assert not re.search(rf"received .*{component}", text), f"{component} was notified"
    assert "COLLAPSED TO AGGREGATED; the scenario's ground truth is COLLAPSED TO AGGREGATED: matches" in text
    assert "every step happened as the scenario's ground truth says" in text
    assert "routing_key" not in text and "pdobsdemo0routingkey" not in text  # a secret stays out of output
    # The HTML report of the run, from the live Prometheus: its alerts are the ones that really fired.
    report = Path(re.search(r"the HTML report of the whole run \(open it in a browser\): (\S+)", text).group(1))
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                report.read_text(), re.S).group(1))
    states = {span["verdict"] for dep in data["deployments"] for span in dep["timeline"]}
    assert {"DISAGGREGATED", "COLLAPSED TO AGGREGATED"} <= states, states
    fired = {a["name"] for dep in data["deployments"] for a in dep["alerts"]}
    assert "PDDisaggregationCollapsed" in fired, fired

    # Kept live, in the fault again: the doctor works against it without --time.
    url = re.search(r"^ {2}Prometheus +(http://127\.0\.0\.1:\d+)", text, re.M).group(1)
    config_file = re.search(r"--config (\S+demo-config\.yaml)", text).group(1)
    assert session_members(demo.proc.pid), "the stack's processes run in the demo's session"

    def doctor() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(paths.ROOT / "build.py"), "doctor", "--prometheus", url,
                               "--config", config_file], capture_output=True, text=True, timeout=60)

    deadline = time.monotonic() + 60
    while "COLLAPSED TO AGGREGATED" not in (proc := doctor()).stdout and time.monotonic() < deadline:
        time.sleep(2)
    assert proc.returncode == 1 and "Verdict:   COLLAPSED TO AGGREGATED" in proc.stdout, proc.stdout + proc.stderr

    os.killpg(demo.proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    assert demo.finish() == 0, demo.text
    _assert_nothing_left(demo)


def test_sigterm_mid_run_stops_every_child_and_removes_the_temp_folder(start_demo):
    demo = start_demo()
    demo.wait_for(r"^== 1\. Healthy")
    members = session_members(demo.proc.pid)
    assert any("prometheus" in m for m in members) and any("alertmanager" in m for m in members), members
    demo.proc.send_signal(signal.SIGTERM)  # only the demo: it must stop its children itself
    assert demo.finish() == 143, demo.text
    _assert_nothing_left(demo)


def test_demo_list_prints_whole_descriptions_without_markup(capsys):
    assert cli.main(["demo", "--list"]) == 0
    listed = capsys.readouterr().out
    assert listed == scenario_list() + "\n"
    block = listed.split("\ncollapsed\n", 1)[1].split("\n\n", 1)[0]
    text = " ".join(block.split())
    assert text.endswith("(see collapsed_nixl_flat).") and "``" not in listed and "fault_start_min" in text
    assert f"{DEFAULT_SCENARIO} (default)" in listed


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--scenario", "no_such_scenario"], "--scenario 'no_such_scenario': unknown; one of: healthy_pd"),
    (["demo", "--duration-min", "0"], "--duration-min: the demo runs live now"),
    (["demo", "--tools-dir", "/nonexistent"], "--tools-dir /nonexistent: no bin/ folder there"),
])
def test_demo_mistakes_are_one_line_errors(capsys, argv, message):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured.err


def test_demo_without_the_tools_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PDOBS_TOOLS_DIR", str(tmp_path))  # undone after the test: --tools-dir sets it
    (tmp_path / "bin").mkdir()
    assert cli.main(["demo", "--tools-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"'prometheus' is not installed in {tmp_path / 'bin'}: run `make tools`" in err
    assert "PDOBS_TOOLS_DIR" in err and "--tools-dir" in err


def test_make_demo_runs_the_demo_command():
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "demo", *args], cwd=paths.ROOT, capture_output=True, text=True,
                              check=True).stdout

    assert "build.py demo" in dry() and "--scenario" not in dry()
    assert "build.py demo --scenario healthy_pd" in dry("SCENARIO=healthy_pd")
    assert "--keep" in dry("KEEP=1") and "--keep" not in dry()
