"""The doctor's report as a terminal table or as JSON for CI."""

import json
from datetime import UTC, datetime

from pdobs.doctor.model import EXIT_FAILING, EXIT_OK, EXIT_UNDECIDED, Deployment, Report

AREAS = {"vllm": "vLLM", "epp": "EPP", "rules": "rules", "roles": "roles", "clusters": "clusters",
         "targets": "targets", "gotcha": "gotcha"}
EXIT_MEANING = {
    EXIT_OK: "disaggregated or aggregated by design",
    EXIT_FAILING: "collapsed or failing checks",
    EXIT_UNDECIDED: "undecided: no traffic, or cannot tell",
}


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
            for r in rows]


def _deployment(dep: Deployment) -> list[str]:
    head = (f"{dep.name}  ({dep.prefill_pods} prefill pod{'s' * (dep.prefill_pods != 1)}, "
            f"{dep.decode_pods} decode pod{'s' * (dep.decode_pods != 1)})")
    rows = [["SIGNAL", "MEASURED", "EXPECTED", "RESULT", "REASON"]]
    rows += [[c.title, c.measured, c.expected, c.status, c.reason] for c in dep.checks]
    lines = [head, *_table(rows), f"  Verdict:   {dep.verdict}: {dep.reason}"]
    if dep.runbook:
        lines.append(f"  Runbook:   {dep.runbook}")
    lines.append(f"  Dashboard: {dep.dashboard}")
    return lines


def text(report: Report) -> str:
    version = f" (Prometheus {report.server_version})" if report.server_version else ""
    lines = [f"llm-d P/D doctor: {report.prometheus}{version}, evaluated at {when(report.time)}"]
    if report.scope:
        lines.append("Scope: " + ", ".join(f"{k}={v}" for k, v in report.scope.items()))
    lines += ["", "Before the metrics"]
    rows = [[f"[{f.level}]", AREAS[f.area], (f"{f.namespace}: " if f.namespace else "") + f.message]
            for f in report.findings]
    lines += _table(rows) if rows else ["  nothing to report"]
    for dep in report.deployments:
        lines += ["", *_deployment(dep)]
    code = report.exit_code
    n = len(report.deployments)
    lines += ["", f"Result: {n} deployment{'s' * (n != 1)}; exit {code} ({EXIT_MEANING[code]})"]
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    data = report.as_dict()
    data["time_iso"] = datetime.fromtimestamp(report.time, UTC).isoformat()
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"
