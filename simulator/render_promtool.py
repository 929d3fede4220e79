"""Rendering 1: promtool ``input_series`` for ``promtool test rules``.

Each series becomes ``{"series": 'name{label="value",...}', "values": "..."}`` in promtool's
expanding notation: ``a+bxn`` (a, then n more samples each b larger), ``axn`` (n+1 times a),
``_`` / ``_xn`` for samples Prometheus did not take (a scrape gap, or before a pod existed) and
``stale`` where a series disappears while its target is still scraped or its scrape fails (what
Prometheus writes as a staleness marker). Runs are detected by replaying promtool's repeated
float addition, so the expanded values are bit-identical to the OpenMetrics rendering's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from pdobs.core.promql import format_duration
from simulator.scenarios import Scenario


class _Stale:
    def __repr__(self) -> str:
        return "STALE"


STALE: Any = _Stale()
Sample = float | None  # None: no sample; STALE: staleness marker


def format_value(v: float) -> str:
    """Shortest exact decimal, never in exponent notation (promtool's series lexer would read
    ``1e-05+2x3`` differently)."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    text = repr(v)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def timelines(scenario: Scenario, interval_s: float = 30.0) -> dict[str, list[Sample]]:
    """Every series of the scenario -> one sample per step (value, None or STALE).

    Keys are PromQL selectors (``name{...}``) with target and metric labels.
    """
    sim = scenario.simulation(interval_s)
    n = scenario.n_steps(interval_s)
    raw: dict[int, list[float | None]] = {}
    missed: list[bool] = []
    for frame in sim.frames(n):
        k = frame.step
        missed.append(frame.missed)
        if frame.missed:
            continue
        for entry in frame.entries:
            t = entry.target
            _put(raw, t.up_sid, k, entry.up, n)
            if entry.up and t.layout is not None:
                for sid, v in zip(t.layout.sids, t.values, strict=True):
                    _put(raw, sid, k, v, n)
    reg = sim.registry
    out: dict[str, list[Sample]] = {}
    for sid in sorted(raw):
        info = reg.series[sid]
        target = sim.targets_by_tid[info.target]
        labels = ",".join(x for x in (target.label_str, info.metric_labels) if x)
        out[f"{info.name}{{{labels}}}"] = _with_staleness(raw[sid], missed)
    return out


def _put(raw: dict[int, list[float | None]], sid: int, k: int, v: float, n: int) -> None:
    row = raw.get(sid)
    if row is None:
        row = raw[sid] = [None] * n
    row[k] = v


def _with_staleness(row: list[float | None], missed: list[bool]) -> list[Sample]:
    """A series absent from a scrape that did happen gets a staleness marker once."""
    out: list[Sample] = []
    live = False
    for v, gap in zip(row, missed, strict=True):
        if gap:
            out.append(None)
        elif v is not None:
            out.append(v)
            live = True
        elif live:
            out.append(STALE)
            live = False
        else:
            out.append(None)
    while out and out[-1] is None:
        out.pop()
    return out


def encode(samples: Sequence[Sample]) -> str:
    """Expanding notation for one series, merging every run promtool can reproduce exactly."""
    tokens: list[str] = []
    i, n = 0, len(samples)
    while i < n:
        v = samples[i]
        if v is STALE:
            tokens.append("stale")
            i += 1
            continue
        if v is None:
            j = i
            while j < n and samples[j] is None:
                j += 1
            tokens.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        j = i + 1
        if j < n and isinstance(samples[j], float | int) and samples[j] is not STALE:
            # promtool builds a+bxn by repeated addition: replay it to find where it diverges.
            delta = samples[j] - v  # type: ignore[operator]
            acc = v
            while j < n:
                nxt = samples[j]
                if nxt is None or nxt is STALE:
                    break
                acc = acc + delta
                if acc != nxt:
                    break
                j += 1
        run = j - i - 1  # further samples covered
        if run >= 2:
            delta = samples[i + 1] - v  # type: ignore[operator]
            if delta == 0:
                tokens.append(f"{format_value(v)}x{run}")
            else:
                sign = "+" if delta > 0 else "-"
                tokens.append(f"{format_value(v)}{sign}{format_value(abs(delta))}x{run}")
            i = j
        else:
            tokens.append(format_value(v))
            i += 1
    return " ".join(tokens)


def input_series(scenario: Scenario, interval_s: float = 30.0) -> list[dict[str, str]]:
    """promtool ``input_series`` for the whole scenario at one sample per ``interval_s``."""
    return [
        {"series": series, "values": encode(samples)}
        for series, samples in timelines(scenario, interval_s).items()
        if samples
    ]


def rule_test_group(
    scenario: Scenario,
    *,
    interval_s: float = 30.0,
    name: str | None = None,
    alert_rule_tests: Iterable[Mapping[str, Any]] = (),
    promql_expr_tests: Iterable[Mapping[str, Any]] = (),
    external_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One ``tests:`` entry: the scenario's series plus the given test cases.

    Eval times in the cases are relative to the scenario's minute 0 (promtool's time 0).
    """
    group: dict[str, Any] = {"interval": format_duration(interval_s)}
    if name:
        group["name"] = name
    if external_labels:
        group["external_labels"] = dict(external_labels)
    group["input_series"] = input_series(scenario, interval_s)
    alerts = [dict(a) for a in alert_rule_tests]
    exprs = [dict(e) for e in promql_expr_tests]
    if alerts:
        group["alert_rule_test"] = alerts
    if exprs:
        group["promql_expr_test"] = exprs
    return group


def rule_test_file(
    groups: Iterable[Mapping[str, Any]],
    *,
    rule_files: Sequence[str | Path] = (),
    evaluation_interval_s: float = 30.0,
) -> dict[str, Any]:
    """A complete ``promtool test rules`` document."""
    return {
        "rule_files": [str(p) for p in rule_files],
        "evaluation_interval": format_duration(evaluation_interval_s),
        "tests": [dict(g) for g in groups],
    }


def write_rule_test_file(path: str | Path, document: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        yaml.safe_dump(dict(document), fh, sort_keys=False, width=10_000)
    return path
