"""ALERTS history for a backfilled Prometheus: the series a live server would have written.

``promtool tsdb create-blocks-from rules`` backfills recording rules only (alerting rules are
skipped), so a backfilled scenario has no ``ALERTS`` series and nothing that reads alerts over a
past range can be tested on it. Here the real Prometheus evaluates each alerting rule's
expression over the range (a range query at the group's evaluation interval is one instant
evaluation per step, as the rule manager makes), Prometheus' alert state machine is replayed over
the answers, and the ``ALERTS`` samples it emits are backfilled as OpenMetrics.

The state machine is Prometheus' (rules/alerting.go, ``AlertingRule.Eval``, 2.x and 3.x): a new
match is pending from that evaluation; it fires at the first evaluation at least ``for`` after it
became active; a pending alert whose match ends is dropped; a firing one whose match ends keeps
firing while less than ``keep_firing_for`` has passed since its match ended, and is resolved after.
``ALERTS`` carries the match's labels, the rule's labels and ``alertname``/``alertstate``; rule
label templates are not expanded (this project's labels are static).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pdobs.core.promql import duration_seconds
from pdobs.servers.prometheus import PrometheusServer
from simulator.render_openmetrics import _promtool, _run_checked

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_s: float
    keep_firing_for_s: float
    labels: dict[str, str]
    interval_s: float


def alert_rules(rule_files: Iterable[str | Path], default_interval_s: float) -> list[AlertRule]:
    out = []
    for path in rule_files:
        data = yaml.safe_load(Path(path).read_text()) or {}
        for group in data.get("groups", []):
            interval = duration_seconds(group["interval"]) if group.get("interval") else default_interval_s
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                out.append(AlertRule(
                    name=rule["alert"], expr=str(rule["expr"]),
                    for_s=duration_seconds(str(rule.get("for", "0"))),
                    keep_firing_for_s=duration_seconds(str(rule.get("keep_firing_for", "0"))),
                    labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                    interval_s=interval,
                ))
    return out


@dataclass
class _Active:
    active_at: float
    firing: bool = False
    keep_firing_since: float | None = None


def replay(rule: AlertRule, matches: dict[Labels, set[float]], times: Sequence[float]) -> dict[Labels, list[float]]:
    """{ALERTS label set: [evaluation times it was written]} for one rule, given the evaluation
    times at which each of its expression's series matched."""
    active: dict[Labels, _Active] = {}
    out: dict[Labels, list[float]] = {}
    for ts in times:
        present = {labels for labels, when in matches.items() if ts in when}
        for labels in present:
            alert = active.get(labels)
            if alert is None:
                alert = active[labels] = _Active(active_at=ts)
            alert.keep_firing_since = None
        for labels in list(active):
            alert = active[labels]
            if labels not in present:
                keep = False
                if alert.firing and rule.keep_firing_for_s > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = ts
                    keep = ts - alert.keep_firing_since < rule.keep_firing_for_s
                if not keep:
                    del active[labels]  # pending: dropped; firing: resolved (no longer written)
                    continue
            if not alert.firing and ts - alert.active_at >= rule.for_s:
                alert.firing = True
            state = "firing" if alert.firing else "pending"
            key = tuple(sorted({**dict(labels), "alertstate": state}.items()))
            out.setdefault(key, []).append(ts)
    return out


def _matches(rule: AlertRule, result: list[dict[str, Any]]) -> dict[Labels, set[float]]:
    out: dict[Labels, set[float]] = {}
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        labels.update(rule.labels)
        labels["alertname"] = rule.name
        out.setdefault(tuple(sorted(labels.items())), set()).update(float(t) for t, _ in series["values"])
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(series: dict[Labels, list[float]]) -> str:
    lines = ["# TYPE ALERTS gauge"]
    for labels, times in sorted(series.items()):
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        lines += [f"ALERTS{{{text}}} 1 {t:.3f}" for t in sorted(times)]
    return "\n".join([*lines, "# EOF"]) + "\n"


def alerts_history(server: PrometheusServer, rule_files: Sequence[str | Path], *, start: float, end: float,
                   default_interval_s: float = 30.0) -> dict[Labels, list[float]]:
    """Every ALERTS series (pending and firing) the rules would have written over [start, end]."""
    out: dict[Labels, list[float]] = {}
    for rule in alert_rules(rule_files, default_interval_s):
        n = int((end - start) // rule.interval_s)
        times = [start + i * rule.interval_s for i in range(n + 1)]
        result = server.query_range(rule.expr, times[0], times[-1], rule.interval_s)
        for labels, when in replay(rule, _matches(rule, result), times).items():
            out.setdefault(labels, []).extend(when)
    return out


def backfill_alerts(server: PrometheusServer, rule_files: Sequence[str | Path], tsdb_dir: str | Path, *,
                    start: float, end: float, default_interval_s: float = 30.0,
                    workdir: str | Path | None = None, promtool: Path | None = None) -> int:
    """Write the replayed ALERTS series into ``tsdb_dir``; returns how many series. The server
    must be restarted to see them (and must already hold the recorded series the rules read)."""
    series = alerts_history(server, rule_files, start=start, end=end, default_interval_s=default_interval_s)
    if not series:
        return 0
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="pdsim-alerts-")) if own_tmp else Path(workdir)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    try:
        path = work / "alerts.om"
        path.write_text(openmetrics(series))
        _run_checked([_promtool(promtool), "tsdb", "create-blocks-from", "openmetrics", path, tsdb_dir],
                     "promtool create-blocks-from openmetrics (ALERTS)")
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    return len(series)
