"""The signal catalog: every PromQL building block, written once, split by domain.

Recording rules, alerts, dashboards and the doctor all take their queries from here. Each domain
module defines its signals (pdobs.core.engine.Signal) in a `signals(quantiles, window)` function;
this package assembles them into one engine per config and is what consumers import:

    builders.py     aggregation levels and the builders many signals share
    vllm.py         model-server pods, requests, tokens, scheduler state, caches
    kv_transfer.py  KV-cache transfer over any connector (NIXL, Mooncake)
    kv_delivery.py  prompt tokens decode received by KV transfer (any connector, vLLM 0.16+)
    epp.py          the EPP (inference scheduler): pools, client requests, P/D decisions
    histograms.py   every histogram family: bucket/sum/count rates, quantiles, means
    pd.py           derived P/D signals: work split between the roles, when P/D applies
    checklist.py    the checklist signals (one per record of pdobs/checks.py), the verdict
    per_pod.py      per-pod signals for the dashboards
    doctor.py       the doctor's fragments, metric families, version markers, renames
    alerting.py     what the alerts read besides the checklist
    coverage.py     whether the package can see what it watches (roles, EPP, our own rules)
    fast.py         short-window evidence the collapse and KV-failure alerts page on

`fast.signals` also takes the fast window (`prometheus.fast_window`), which names its records.

Signals with a record name become recording rules (recording_rules/README.md says how they are
named and grouped); the order of DOMAINS is the order rules appear within their group.
"""

from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any

from pdobs import checks
from pdobs.core.context import Ctx
from pdobs.core.engine import Engine, Signal
from pdobs.signals import (
    alerting,
    checklist,
    coverage,
    doctor,
    epp,
    fast,
    histograms,
    kv_delivery,
    kv_transfer,
    pd,
    per_pod,
    vllm,
)
from pdobs.signals.alerting import ALERT_NAME_PREFIX
from pdobs.signals.builders import ROLE_VARIANTS

Config = dict[str, Any]

DOMAINS: tuple[ModuleType, ...] = (vllm, kv_transfer, kv_delivery, epp, histograms, pd, checklist, per_pod, doctor,
                                   alerting, coverage)

__all__ = ["ALERT_NAME_PREFIX", "DOMAINS", "ROLE_VARIANTS", "Signal", "context", "dependencies", "engine",
           "expression", "query", "signals", "stages"]


@cache
def _engine(quantiles: tuple[float, ...], window: str, fast_window: str, domains: tuple[ModuleType, ...],
            records: tuple[checks.Check, ...]) -> Engine:
    # `records` is only part of the key: the checklist's definitions read checks.CHECKS themselves.
    return Engine([*(s for domain in domains for s in domain.signals(quantiles, window)),
                   *fast.signals(quantiles, window, fast_window)])


def engine(cfg: Config) -> Engine:
    """The engine for a config: signal record names and variants depend on the rate windows and
    the quantiles, so there is one per set, and per set of definitions in force (the checklist's
    variants are the check records)."""
    prom = cfg["prometheus"]
    return _engine(tuple(cfg["signals"]["quantiles"]), prom["rate_window"], prom["fast_window"], DOMAINS,
                   checks.CHECKS)


def signals(cfg: Config) -> Mapping[str, Signal]:
    return engine(cfg).signals


def context(cfg: Config, scope: Mapping[str, tuple[str, str]] | None = None,
            inline: bool = False, rate_range: str | None = None) -> Ctx:
    """A query context. `scope` filters by label key ("cluster", "namespace", "model");
    `inline` renders references as raw PromQL; `rate_range` replaces the range of raw rates."""
    return engine(cfg).context(cfg, scope, inline, rate_range)


def query(ctx: Ctx, name: str, **variant: str) -> str:
    """The PromQL a consumer uses for a signal: the recorded series, or raw when inlined."""
    return engine(ctx.cfg).query(ctx, name, **variant)


def expression(ctx: Ctx, name: str, **variant: str) -> str:
    """The expression that computes a signal (what its recording rule evaluates)."""
    return engine(ctx.cfg).expression(ctx, name, **variant)


def dependencies(cfg: Config, name: str) -> set[str]:
    return engine(cfg).dependencies(cfg, name)


def stages(cfg: Config) -> dict[str, int]:
    return engine(cfg).stages(cfg)
