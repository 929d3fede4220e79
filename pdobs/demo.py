"""`make demo`: the whole package at work with no cluster.

Backfills a simulator scenario into a real Prometheus on 127.0.0.1 (with the built rule files
loaded when `make build` has run), runs the doctor against it (and writes its HTML report), shows
where the dashboards and rules are, and stops everything. `--keep` leaves Prometheus up until Ctrl-C for exploring.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from pdobs.checks import Verdict
from pdobs.core import config, paths
from pdobs.doctor import diagnose, report, write_report
from pdobs.doctor.client import Credentials, Prometheus
from pdobs.doctor.model import Report
from pdobs.servers.tools import ToolMissingError
from simulator import scenarios
from simulator.serve import ScenarioPrometheus, serve_scenario

Config = dict[str, Any]
DEFAULT_SCENARIO = "collapsed"
# The doctor's verdict text for each scenario truth's `expected_verdict` (the simulator names
# verdicts as the Verdict enum does).
TRUTH_VERDICT = {v.name: v.text for v in Verdict}
RULE_FILES = ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml")


class DemoError(Exception):
    """A scenario name or a tool that is not there (exit 2)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the doctor against a local Prometheus loaded with a simulated scenario",
                       description="Start Prometheus on 127.0.0.1 with a scenario from the simulator, run the "
                                   "doctor against it, show where the built artefacts are, stop everything.")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"simulator scenario (default: {DEFAULT_SCENARIO}); --list shows them")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--duration-min", type=float, default=None, help="minutes of data (default: the scenario's)")
    p.add_argument("--keep", action="store_true", help="keep Prometheus running until Ctrl-C")


def scenario_list() -> str:
    lines = []
    for name, factory in scenarios.ALL.items():
        doc = " ".join((factory.__doc__ or "").split()).split(". ")[0]
        lines.append(f"  {name:32} {doc}")
    return "\n".join(lines)


def build_files(build_dir: Path) -> dict[str, list[Path]]:
    """The built artefacts a newcomer looks for, by kind; empty when nothing is built."""
    kinds = {
        "Grafana dashboards": "dashboards/*.json",
        "Grafana dashboards, import by hand": "dashboards-import/*.json",
        "Grafana file provisioning": "grafana/provisioning/dashboards/*.yaml",
        "Prometheus rules": "prometheus/*.yaml",
        "Kubernetes manifests": "kubernetes/*/*.yaml",
        "Alertmanager routing": "alertmanager/*.yaml",
    }
    return {kind: sorted(build_dir.glob(pattern)) for kind, pattern in kinds.items() if any(build_dir.glob(pattern))}


def _artefacts(build_dir: Path, out: TextIO) -> None:
    found = build_files(build_dir)
    if not found:
        print(f"\nNothing built in {build_dir} yet: run `make build` to render the dashboards and rules.", file=out)
        return
    print(f"\nWhat `make build` rendered into {build_dir}:", file=out)
    for kind, files in found.items():
        names = ", ".join(str(f.relative_to(build_dir)) for f in files[:7]) + (" ..." if len(files) > 7 else "")
        print(f"  {kind:36} {names}", file=out)
    print("  Docs: README.md, docs/runbooks/, docs/config-reference.md", file=out)


def _serve(scenario: scenarios.Scenario, workdir: Path, build_dir: Path) -> ScenarioPrometheus:
    rules = [build_dir / f for f in RULE_FILES if (build_dir / f).is_file()]
    # The doctor inlines every query, but the alerts read recorded series: both are backfilled so
    # the HTML report shows the alerts that would have fired.
    return serve_scenario(scenario, workdir=workdir, rule_files=rules, backfill_alert_rules=True)


def report_path(build_dir: Path, scenario: str) -> Path:
    """Where the demo's HTML report goes: beside the build (replaced by the next one), else /tmp."""
    return (build_dir if build_dir.is_dir() else Path(tempfile.gettempdir())) / f"demo-report-{scenario}.html"


def run(name: str, *, out: TextIO = sys.stdout, build_dir: Path | None = None, duration_min: float | None = None,
        keep: bool = False, cfg: Config | None = None) -> tuple[Report, str]:
    """Run the demo; returns the doctor's report and the verdict the scenario's truth expects."""
    cfg = cfg or config.load()
    build_dir = build_dir or paths.ROOT / "build"
    try:
        scenario = scenarios.get(name, **({"duration_min": duration_min} if duration_min else {}))
    except KeyError:
        raise DemoError(f"--scenario {name!r}: unknown; one of: {', '.join(scenarios.ALL)}") from None
    expected = TRUTH_VERDICT[scenario.truth["expected_verdict"]]
    about = " ".join(scenario.description.replace("``", "").split())
    print(f"Scenario {scenario.name}: {about}", file=out)
    print(f"Backfilling {scenario.duration_min:g} minutes of simulated series into a local Prometheus...",
          file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="pdobs-demo-") as tmp:
        served = _serve(scenario, Path(tmp), build_dir)
        try:
            print(f"Prometheus {served.url} (data up to {report.when(served.end_time)})\n", file=out)
            print(f"$ python build.py doctor --prometheus {served.url} --time {served.end_time:.0f}\n", file=out)
            prom = Prometheus(served.url, Credentials(), time=served.end_time)
            try:
                result = diagnose(cfg, prom, {})
                print(report.text(result), end="", file=out)
                html = report_path(build_dir, scenario.name)
                write_report(cfg, prom, {}, result, html, served.end_time - served.start_time)
            finally:
                prom.close()
            print(f"\nThe HTML report of the whole run (open it in a browser): {html}", file=out)
            verdicts = {d.verdict for d in result.deployments}
            mark = "matches" if verdicts == {expected} else "DOES NOT MATCH"
            print(f"\nThe scenario's ground truth is {expected}: the doctor's verdict {mark} it.", file=out)
            _artefacts(build_dir, out)
            if keep:
                print(f"\nPrometheus stays up at {served.url} (query at {served.end_time:.0f} or earlier); "
                      "Ctrl-C stops it.", file=out, flush=True)
                try:
                    while served.server.running:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
        finally:
            served.stop()
    print("\nStopped Prometheus and removed its data.", file=out)
    return result, expected


def command(args: argparse.Namespace) -> int:
    if args.list:
        print(scenario_list())
        return 0
    try:
        result, expected = run(args.scenario, duration_min=args.duration_min, keep=args.keep,
                               cfg=config.load(getattr(args, "config", None)))
    except (DemoError, ToolMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The demo succeeds when the doctor tells the truth, whatever the scenario's verdict is.
    return 0 if {d.verdict for d in result.deployments} == {expected} else 1
