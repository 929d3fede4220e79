"""The signal engine: resolves references between signal definitions into PromQL.

A signal has a name, a unit, help text and a builder that turns the config (through a `Ctx`) into
PromQL. Signals with a `record` name become recording rules; others are fragments that are always
inlined. A builder refers to other signals with `ctx.ref(name, **variant)`, which renders as the
recorded series, or as the inlined raw expression when the context asks for it (the doctor).

The engine knows nothing of which signals exist: it is built from a list of definitions
(pdobs/signals/ assembles the project's), so a test can build one from its own.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pdobs.core.context import Ctx, Variant

Config = dict[str, Any]
Builder = Callable[[Ctx, Variant], str]


@dataclass(frozen=True)
class Signal:
    name: str
    record: str | None  # level:metric:operations, or None for a fragment that is always inlined
    level: tuple[str, ...]  # label keys the result keeps (besides the variant's static labels)
    unit: str  # Grafana unit id
    help: str
    build: Builder
    variants: tuple[Variant, ...] = ({},)
    # Scope keys that never filter this signal: its label of that name means something else than
    # the scope's (the EPP labels requests with the client's model name, not the model server's).
    unscoped: tuple[str, ...] = ()


class Engine:
    """Signal definitions by name, and the operations that read them through a context."""

    def __init__(self, signals: Iterable[Signal]) -> None:
        listed = list(signals)
        self.signals: Mapping[str, Signal] = {s.name: s for s in listed}
        if len(self.signals) != len(listed):
            dupes = sorted({s.name for s in listed if [t.name for t in listed].count(s.name) > 1})
            raise AssertionError(f"duplicate signal names: {dupes}")

    def context(self, cfg: Config, scope: Mapping[str, tuple[str, str]] | None = None,
                inline: bool = False, rate_range: str | None = None) -> Ctx:
        """A query context. `scope` filters by label key ("cluster", "namespace", "model");
        `inline` renders references as raw PromQL; `rate_range` replaces the range of raw rates."""
        return Ctx(cfg=cfg, scope=dict(scope or {}), inline=inline, rate_range=rate_range, resolve=self._resolve)

    def _check_variant(self, sig: Signal, variant: Variant) -> None:
        keys = set().union(*(v.keys() for v in sig.variants))
        if not set(variant) <= keys:
            raise KeyError(f"signal {sig.name!r} has no variant labels {sorted(set(variant) - keys)}")
        for key, value in variant.items():
            if value not in {v.get(key) for v in sig.variants}:
                raise KeyError(f"signal {sig.name!r} has no {key}={value!r}")

    def _resolve(self, ctx: Ctx, name: str, variant: Variant) -> str:
        sig = self.signals[name]
        self._check_variant(sig, variant)
        ctx = ctx.unscoped(*sig.unscoped)
        if ctx.inline or sig.record is None:
            return self._inlined(ctx, sig, variant)
        return ctx.recorded(sig.record, sig.level, variant)

    @staticmethod
    def _inlined(ctx: Ctx, sig: Signal, variant: Variant) -> str:
        if sig.record is None or any(dict(variant) == dict(v) for v in sig.variants):
            return f"(\n{sig.build(ctx, variant)}\n)"
        # A partial variant selects several recorded variants at once (e.g. both roles, as a
        # dashboard's `{quantile="0.95"}` does): inline each, labelled as its recording rule labels
        # it, so the raw form returns the very series the recorded selector would.
        parts = []
        for v in sig.variants:
            if all(v.get(k) == value for k, value in variant.items()):
                expr = sig.build(ctx, v)
                for key, value in v.items():
                    expr = f'label_replace(\n{expr}\n, "{key}", "{value}", "", "")'
                parts.append(f"(\n{expr}\n)")
        return "(\n" + "\nor\n".join(parts) + "\n)"

    def query(self, ctx: Ctx, name: str, **variant: str) -> str:
        """The PromQL a consumer uses for a signal: the recorded series, or raw when inlined."""
        return self._resolve(ctx, name, variant)

    def expression(self, ctx: Ctx, name: str, **variant: str) -> str:
        """The expression that computes a signal (what its recording rule evaluates)."""
        sig = self.signals[name]
        self._check_variant(sig, variant)
        return sig.build(ctx.unscoped(*sig.unscoped), variant)

    def dependencies(self, cfg: Config, name: str) -> set[str]:
        """Recorded signals a signal's expression reads, looking through inlined fragments."""
        found: set[str] = set()

        def trace(ctx: Ctx, dep: str, variant: Variant) -> str:
            sig = self.signals[dep]
            # A reference rendered inline (a builder may inline on purpose) reads no record.
            if sig.record is None or ctx.inline:
                for v in sig.variants:
                    sig.build(ctx, {**v, **variant})
            else:
                found.add(dep)
            return "x"

        tracer = Ctx(cfg=cfg, resolve=trace)
        sig = self.signals[name]
        for v in sig.variants:
            sig.build(tracer, v)
        return found

    def stages(self, cfg: Config) -> dict[str, int]:
        """Recording group index of each recorded signal: one more than the deepest one it reads."""
        memo: dict[str, int] = {}

        def stage(name: str) -> int:
            if name not in memo:
                memo[name] = 1 + max((stage(d) for d in self.dependencies(cfg, name)), default=0)
            return memo[name]

        return {name: stage(name) for name, sig in self.signals.items() if sig.record}
