"""`build.py doctor`: the post-mortem's checklist, run live against a Prometheus.

Every query is the signal catalog's, inlined, so it works on a Prometheus without our recording
rules. Exit codes: 0 disaggregated or aggregated by design; 1 collapsed or a failing check; 2 bad
input or Prometheus unreachable; 3 undecided (no traffic, or cannot tell).
"""

import argparse
import sys
import time as _time
from datetime import datetime
from pathlib import Path
from typing import Any

from pdobs import signals
from pdobs.build import make
from pdobs.core import config, promql
from pdobs.doctor import checklist, history, html_report, preflight, report
from pdobs.doctor.client import CredentialsError, Prometheus, PrometheusError, QueryError, credentials
from pdobs.doctor.model import EXIT_BAD_INPUT, EXIT_FAILING, Report
from pdobs.doctor.queries import Reader
from pdobs.errors import CommandError

Config = dict[str, Any]


DEFAULT_RANGE = "1h"  # of --report without --since/--start


class ScopeError(Exception):
    """Nothing to diagnose in the scope asked for (exit 2)."""


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor", parents=parents, help="is this P/D deployment actually disaggregated? (queries a live Prometheus)",
        description="Run the post-mortem's checklist against a Prometheus. Credentials come from the "
                    "environment (PROMETHEUS_TOKEN, or PROMETHEUS_USERNAME/PROMETHEUS_PASSWORD) or from "
                    "files, never from the command line.",
        epilog="exit codes: 0 disaggregated or aggregated by design; 1 collapsed or a failing check; "
               "2 bad input or Prometheus unreachable; 3 undecided (no traffic, or cannot tell)")
    p.add_argument("--prometheus", required=True, metavar="URL", help="base URL of the Prometheus HTTP API")
    p.add_argument("--namespace", help="only this namespace (default: every namespace with vLLM series)")
    p.add_argument("--model", help="only this model_name (default: every model)")
    p.add_argument("--cluster", help="only this cluster (multi_cluster configs)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--time", help="evaluate at this time (RFC 3339 or Unix seconds; default: now)")
    p.add_argument("--token-file", type=Path, help="file holding a bearer token (default: $PROMETHEUS_TOKEN)")
    p.add_argument("--username-file", type=Path, help="file holding the basic-auth user "
                   "(default: $PROMETHEUS_USERNAME)")
    p.add_argument("--password-file", type=Path, help="file holding the basic-auth password "
                   "(default: $PROMETHEUS_PASSWORD)")
    p.add_argument("--ca-file", type=Path, help="CA bundle that signed the server's certificate")
    p.add_argument("--insecure-skip-verify", action="store_true",
                   help="do not verify the server's TLS certificate (not recommended)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds each request may take in all (default: 30)")
    r = p.add_argument_group("HTML report", "one self-contained file with the signals, verdict, latencies and "
                             "alerts over a time range, to attach to a ticket")
    r.add_argument("--report", type=Path, metavar="FILE.html", help="also write the report to this file")
    r.add_argument("--since", metavar="DURATION",
                   help=f"range ending at --time/--end, e.g. 30m, 6h, 1d (default: {DEFAULT_RANGE})")
    r.add_argument("--start", help="start of the range (RFC 3339 or Unix seconds)")
    r.add_argument("--end", help="end of the range, where 'now' is evaluated (default: --time, else now)")


def parse_time(text: str | None, flag: str = "--time") -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ScopeError(f"{flag} {text!r}: expected RFC 3339 (2025-06-01T12:00:00Z) or Unix seconds") from None


def _range(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """(evaluation time, range seconds) from --time/--start/--end/--since; None: the defaults."""
    if args.report is None:
        given = [f for f, v in (("--since", args.since), ("--start", args.start), ("--end", args.end)) if v]
        if given:
            raise ScopeError(f"{'/'.join(given)}: only with --report FILE.html")
        return parse_time(args.time), None
    if args.since and args.start:
        raise ScopeError("--since and --start: give one (--since counts back from --end)")
    end = parse_time(args.end, "--end")
    at = parse_time(args.time)
    if end is not None and at is not None and end != at:
        raise ScopeError("--time and --end differ: the report's 'now' is the end of its range; give one")
    end = end if end is not None else at if at is not None else _time.time()
    start = parse_time(args.start, "--start")
    if start is not None:
        if start >= end:
            raise ScopeError(f"--start {args.start!r} is not before the end of the range")
        return end, end - start
    text = args.since or DEFAULT_RANGE
    try:
        seconds = promql.duration_seconds(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ScopeError(f"--since {text!r}: expected a duration above 0 such as 30m, 6h or 1d")
    return end, seconds


def _scope(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    given = {"namespace": args.namespace, "model": args.model, "cluster": args.cluster}
    return {k: ("=", v) for k, v in given.items() if v}


def _check_scope(cfg: Config, prom: Prometheus, reader: Reader, scope: dict[str, tuple[str, str]]) -> None:
    """Exit 2 with a useful list when the scope holds no vLLM series at all."""
    if reader.by(("namespace", "model"), "vllm_deployments"):
        return
    everywhere = Reader(prom, signals.context(cfg, inline=True)).by(("namespace", "model"), "vllm_deployments")
    selector = cfg["selectors"]["vllm"]
    sel = f" matching selectors.vllm {selector!r}" if selector else ""
    when = report.when(prom.time)
    if not everywhere:
        raise ScopeError(f"no vLLM metrics{sel} in Prometheus at {prom.shown} at {when}: is it scraping the "
                         "model-server pods (PodMonitor on the port named metrics), and are labels.* right in "
                         "the config?")
    wanted = ", ".join(f"{k}={v}" for k, (_, v) in scope.items())
    found = sorted({" / ".join(k) for k in everywhere})
    raise ScopeError(f"{wanted}: no vLLM series there in Prometheus at {prom.shown} at {when}; "
                     f"{' / '.join(reader.keys('namespace', 'model'))} with vLLM series: {', '.join(found[:10])}")


def diagnose(cfg: Config, prom: Prometheus, scope: dict[str, tuple[str, str]]) -> Report:
    info = prom.buildinfo()
    reader = Reader(prom, signals.context(cfg, scope=scope, inline=True))
    _check_scope(cfg, prom, reader, scope)
    findings, versions = preflight.run(cfg, reader)
    return Report(prometheus=prom.shown, time=prom.time, server_version=info.get("version"),
                  scope={k: v for k, (_, v) in scope.items()}, findings=findings,
                  deployments=checklist.deployments(cfg, reader, versions, make.model(cfg)))


def write_report(cfg: Config, prom: Prometheus, scope: dict[str, tuple[str, str]], result: Report,
                 path: Path, seconds: float | None) -> None:
    """The HTML report of `result` over the range ending at the doctor's evaluation time."""
    span = seconds if seconds is not None else promql.duration_seconds(DEFAULT_RANGE)
    w = history.window(prom.time, span, promql.duration_seconds(cfg["prometheus"]["scrape_interval"]))
    reader = Reader(prom, signals.context(cfg, scope=scope, inline=True))
    html_report.write(path, html_report.render(result, history.gather(cfg, reader, w, result, make.model(cfg))))


def command(args: argparse.Namespace) -> int:
    cfg = config.load(getattr(args, "config", None))
    try:
        if args.cluster and not cfg["multi_cluster"]:
            raise ScopeError(f"--cluster {args.cluster}: multi_cluster is off in the config, so no query selects "
                             "by cluster; set multi_cluster: true (and labels.cluster) or drop --cluster")
        if args.timeout <= 0:
            raise ScopeError(f"--timeout {args.timeout:g}: expected seconds above 0")
        at, seconds = _range(args)
        if args.report is not None:
            html_report.check_target(args.report)
        creds = credentials(token_file=args.token_file, username_file=args.username_file,
                            password_file=args.password_file)
        prom = Prometheus(args.prometheus, creds, ca_file=args.ca_file, insecure=args.insecure_skip_verify,
                          timeout=args.timeout, time=at)
        if args.insecure_skip_verify:
            print(f"warning: not verifying the TLS certificate of {prom.shown} (--insecure-skip-verify)",
                  file=sys.stderr)
        try:
            result = diagnose(cfg, prom, _scope(args))
            if args.report is not None:
                write_report(cfg, prom, _scope(args), result, args.report, seconds)
        finally:
            prom.close()
    except (PrometheusError, CredentialsError, ScopeError, html_report.ReportWriteError) as exc:
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    except QueryError as exc:
        raise CommandError(f"{exc} (a bug in the doctor, or a backend that is not PromQL-compatible)",
                           EXIT_FAILING) from None
    print(report.as_json(result) if args.output == "json" else report.text(result), end="")
    if args.report is not None:
        print(f"wrote the HTML report to {args.report}", file=sys.stderr)
    return result.exit_code
