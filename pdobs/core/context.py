"""Query context: turns the config into selectors, grouping clauses and references to signals.

A `Ctx` is what every PromQL builder in the catalog receives. It knows
- which label names the user's series carry (config `labels`),
- how a pod's role is found (config `roles`),
- an optional scope (dashboard variables, or the doctor's `--namespace`), and
- whether a reference to another signal is rendered as its recorded series or inlined as raw
  PromQL (the doctor inlines, so it works on a Prometheus without our recording rules).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pdobs.core import promql

Config = dict[str, Any]
Variant = Mapping[str, str]

ROLES = ("prefill", "decode")

# Keys of a signal's aggregation level, mapped to configured label names by `Ctx.label`.
# `pool` is the InferencePool name the EPP reports as `name`; `le`, `decision` are fixed.
_FIXED_LABELS = {"pool": "name", "le": "le", "decision": "decision_type", "pod": None}


@dataclass(frozen=True)
class Ctx:
    cfg: Config
    # label key ("cluster", "namespace", "model") -> (operator, value); applied to every selector
    # whose series carry that label.
    scope: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    inline: bool = False
    # Range of raw rate() calls; dashboards pass "$__rate_interval", the rules use the config's.
    rate_range: str | None = None
    # Set by the signal engine (pdobs.core.engine) so refs resolve without it being imported here.
    resolve: Callable[["Ctx", str, Variant], str] | None = None

    # --- labels -------------------------------------------------------------------------
    def label(self, key: str) -> str:
        if key in ("cluster", "namespace", "pod", "model"):
            return self.cfg["labels"][key]
        fixed = _FIXED_LABELS.get(key)
        if fixed is None:
            raise KeyError(f"unknown label key {key!r}")
        return fixed

    def keys(self, *keys: str) -> list[str]:
        """Label keys of a level, with the cluster first when the deployment is multi-cluster."""
        prefix = ["cluster"] if self.cfg["multi_cluster"] else []
        return prefix + list(keys)

    def by(self, *keys: str, extra: tuple[str, ...] = ()) -> str:
        """A grouping list such as ``cluster, namespace, model_name``."""
        return ", ".join([self.label(k) for k in self.keys(*keys)] + list(extra))

    def on(self, *keys: str) -> str:
        return f"on({self.by(*keys)})"

    # --- selectors ----------------------------------------------------------------------
    def _scope_matchers(self, keys: tuple[str, ...]) -> str:
        parts = []
        for key in ("cluster", "namespace", "model"):
            if key in keys and key in self.scope:
                if key == "cluster" and not self.cfg["multi_cluster"]:
                    continue
                op, value = self.scope[key]
                parts.append(promql.matcher(self.label(key), op, value))
        return promql.join(*parts)

    def role_matcher(self, role: str) -> str:
        roles = self.cfg["roles"]
        if roles["mode"] == "label":
            return promql.matcher(roles["label"]["name"], "=", roles["label"][role])
        return promql.matcher(self.label("pod"), "=~", roles["pod_regex"][role])

    def vllm(self, metric: str, role: str | None = None, *extra: str) -> str:
        """Selector for a vLLM series, optionally restricted to one role."""
        return promql.selector(
            metric,
            promql.canonical_matchers(self.cfg["selectors"]["vllm"]),
            self.role_matcher(role) if role else "",
            self._scope_matchers(("cluster", "namespace", "model")),
            *extra,
        )

    def epp(self, metric: str, *, per_model: bool = False, extra: str = "") -> str:
        """Selector for an EPP series; pool gauges carry no model label, request metrics do."""
        keys = ("cluster", "namespace", "model") if per_model else ("cluster", "namespace")
        return promql.selector(
            metric, promql.canonical_matchers(self.cfg["selectors"]["epp"]), self._scope_matchers(keys), extra
        )

    def recorded(self, record: str, level: tuple[str, ...], variant: Variant) -> str:
        labels = [promql.matcher(k, "=", v) for k, v in variant.items()]
        # Levels never name the cluster (keys() adds it), yet recorded series carry it when
        # multi-cluster, so the cluster scope applies to every recorded series.
        return promql.selector(record, *labels, self._scope_matchers(("cluster", *level)))

    def series(self, metric: str, keys: tuple[str, ...], *extra: str) -> str:
        """Selector for a series outside the vLLM/EPP families (e.g. Prometheus' ALERTS), scoped
        by the keys it carries."""
        return promql.selector(metric, *extra, self._scope_matchers(("cluster", *keys)))

    # --- config shortcuts ---------------------------------------------------------------
    @property
    def window(self) -> str:
        return self.rate_range or self.cfg["prometheus"]["rate_window"]

    def threshold(self, name: str) -> float:
        return self.cfg["signals"][name]

    # --- references -----------------------------------------------------------------------
    def ref(self, name: str, **variant: str) -> str:
        """Another catalog signal, recorded or inlined depending on this context."""
        if self.resolve is None:
            raise RuntimeError("Ctx.ref needs a context made by the signal engine (pdobs.signals.context())")
        return self.resolve(self, name, variant)

    def scoped(self, **scope: tuple[str, str]) -> "Ctx":
        return replace(self, scope={**self.scope, **scope})

    def unscoped(self, *keys: str) -> "Ctx":
        """This context without the scope on `keys`, for a signal whose level lacks them."""
        return replace(self, scope={k: v for k, v in self.scope.items() if k not in keys})

    def inlined(self) -> "Ctx":
        return replace(self, inline=True)
