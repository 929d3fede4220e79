"""`pdobs demo` (`make demo`): the whole package at work, live, with no cluster.

A simulated llm-d P/D deployment serves /metrics on 127.0.0.1; a real Prometheus scrapes it with the
built recording and alert rules; a real Alertmanager runs the built routing; local stand-ins receive
what PagerDuty (Events API v2) and Slack would. The demo injects the scenario's fault, prints what
happens as it happens, heals it, waits for the resolutions, and stops everything (`--keep`: leaves
it running, in the fault, until Ctrl-C). Time is compressed by a demo config (demo.yaml).

Ctrl-C, SIGTERM and SIGHUP stop every process the demo started and remove its temporary folder.
"""

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from pdobs.core import config, paths, yamlio
from pdobs.demo.stack import Stack
from pdobs.demo.story import (
    DemoError,
    ReportHook,
    Result,
    Stopped,
    describe,
    intro,
    plan,
    run_story,
    workdir_note,
)
from pdobs.demo.timeline import Timeline
from pdobs.servers import tools
from simulator import scenarios

Config = dict[str, Any]
DEFAULT_SCENARIO = "collapsed_nixl_flat"
DEMO_CONFIG = Path(__file__).resolve().parent / "demo.yaml"
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}

__all__ = ["DEFAULT_SCENARIO", "DemoError", "add_parser", "command", "run", "scenario_list"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", parents=parents, help="watch a simulated P/D collapse page PagerDuty and Slack, live, on this machine",
        description="Run a simulated llm-d P/D deployment, a real Prometheus with the built rules and a real "
                    "Alertmanager with the built routing on 127.0.0.1; inject the scenario's fault, print what "
                    "fires, what reaches the PagerDuty and Slack stand-ins and what is inhibited; heal it and wait "
                    "for the resolutions. Needs the Prometheus and Alertmanager binaries (`make tools`).",
        epilog="exit codes: 0 everything happened as the scenario's ground truth says; 1 it did not; 2 bad input "
               "or missing tools; 130/143 stopped by Ctrl-C/SIGTERM before the end")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"simulator scenario (default: {DEFAULT_SCENARIO}); --list shows them")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--keep", action="store_true",
                   help="after the story, inject the fault again and keep everything running until Ctrl-C")
    p.add_argument("--tools-dir", type=Path, metavar="DIR",
                   help=f"folder holding bin/prometheus and bin/alertmanager (default: ${paths.TOOLS_ENV}, else the "
                        "checkout's .tools)")


def scenario_list(width: int = 100) -> str:
    blocks = []
    for name, factory in scenarios.ALL.items():
        text = describe(factory())
        marker = "" if name != DEFAULT_SCENARIO else " (default)"
        body = textwrap.fill(text, width=width, initial_indent="    ", subsequent_indent="    ")
        blocks.append(f"{name}{marker}\n{body}")
    return "\n\n".join(blocks)


def demo_overrides() -> Config:
    return yamlio.load(DEMO_CONFIG.read_text())


def _use_tools_dir(folder: Path | None) -> None:
    if folder is not None:
        if not (folder / "bin").is_dir():
            raise DemoError(f"--tools-dir {folder}: no bin/ folder there; give the folder `make tools` fills "
                            "(a clone's .tools)")
        os.environ[paths.TOOLS_ENV] = str(folder.resolve())
    for name in ("prometheus", "alertmanager"):
        try:
            tools.tool_path(name)
        except tools.ToolMissingError as exc:
            raise DemoError(f"the demo runs the real Prometheus and Alertmanager: {exc}") from None


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Stopped in the main thread (SIGINT already raises KeyboardInterrupt)."""
    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(name: str, *, user_config: Path | None = None, keep: bool = False, out: Any = None,
        hooks: tuple[ReportHook, ...] = ()) -> Result:
    """The demo; `hooks` see each doctor report (phase, report) as it is made."""
    out = out or sys.stdout
    the_plan = plan(name)
    overlay = demo_overrides()
    config.load(user_config, overrides=overlay)  # a bad --config fails before anything starts

    def load_config(receivers: Config) -> Config:
        return config.load(user_config, overrides=config.merge(overlay, receivers))

    base = "--config" if user_config else "the defaults"
    intro(the_plan, f"the demo config ({DEMO_CONFIG.name}, merged over {base})", out)
    timeline = Timeline(out)
    workdir = Path(tempfile.mkdtemp(prefix="pdobs-demo-"))
    timeline.heading("0. Starting the stack on 127.0.0.1")
    timeline.say(workdir_note(workdir))
    try:
        with Stack.start(load_config, the_plan.healthy, the_plan.faulty, workdir, on_step=timeline.say) as stack:
            return run_story(stack, the_plan, timeline, out, keep, hooks)
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        with _ignoring_signals():
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"\nStopped Prometheus, Alertmanager, the simulator and the receivers; removed {workdir}.",
                  file=out, flush=True)


@contextlib.contextmanager
def _ignoring_signals() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in EXIT_SIGNAL}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def command(args: argparse.Namespace, hooks: tuple[ReportHook, ...] = ()) -> int:
    if args.list:
        print(scenario_list())
        return 0
    _use_tools_dir(args.tools_dir)
    plan(args.scenario)  # an unknown name fails before anything starts
    try:
        with _signals_unwind():
            result = run(args.scenario, user_config=getattr(args, "config", None), keep=args.keep, hooks=hooks)
    except KeyboardInterrupt:
        return EXIT_SIGNAL[signal.SIGINT]
    except Stopped as stop:
        return EXIT_SIGNAL.get(stop.signum, 143)
    return result.exit_code
