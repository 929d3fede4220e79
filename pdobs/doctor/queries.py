"""Run catalog signals (inlined) against Prometheus and index the answers by deployment key."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pdobs import signals
from pdobs.core.context import Ctx
from pdobs.doctor.client import Prometheus

Key = tuple[str, ...]


@dataclass
class Reader:
    """Asks for catalog signals by name, always inlined so no recording rule is needed. Each
    query is sent once per reader: the checks and the verdict read some of the same signals."""
    prom: Prometheus
    ctx: Ctx
    _answers: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[dict[str, str], float]]] = field(
        default_factory=dict, init=False, repr=False)

    def keys(self, *level: str) -> list[str]:
        """Label names of a level such as ("namespace", "model"), with the cluster when multi-cluster."""
        return [self.ctx.label(k) for k in self.ctx.keys(*level)]

    def vector(self, name: str, **variant: str) -> list[tuple[dict[str, str], float]]:
        asked = (name, tuple(sorted(variant.items())))
        if asked not in self._answers:
            self._answers[asked] = self.prom.query(self.promql(name, **variant))
        return self._answers[asked]

    def by(self, level: tuple[str, ...], name: str, **variant: str) -> dict[Key, float]:
        """{label values of `level`: value}; several series on one key keep the first."""
        names = self.keys(*level)
        out: dict[Key, float] = {}
        for labels, value in self.vector(name, **variant):
            out.setdefault(tuple(labels.get(n, "") for n in names), value)
        return out

    def promql(self, name: str, **variant: str) -> str:
        """The query `vector` and `matrix` send for a signal (what a report shows to copy)."""
        return signals.query(self.ctx, name, **variant)

    def matrix(self, level: tuple[str, ...], name: str, start: float, end: float, step: float,
               **variant: str) -> dict[Key, list[tuple[float, float]]]:
        """{label values of `level`: [(time, value), ...]} over a range; several series on one
        key keep the first, as `by` does."""
        names = self.keys(*level)
        out: dict[Key, list[tuple[float, float]]] = {}
        for labels, points in self.prom.query_range(self.promql(name, **variant), start, end, step):
            out.setdefault(tuple(labels.get(n, "") for n in names), points)
        return out

    def series(self, name: str, start: float, end: float, step: float,
               **variant: str) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Every series of a signal over a range, with all its labels (alerts, per-pod views)."""
        return self.prom.query_range(self.promql(name, **variant), start, end, step)

    def rows(self, name: str, **variant: str) -> list[dict[str, Any]]:
        return [{**labels, "value": value} for labels, value in self.vector(name, **variant)]


def project(key: Key, from_level: list[str], to_level: list[str]) -> Key:
    """A (cluster, namespace, model) key cut down to (cluster, namespace)."""
    pos = {name: i for i, name in enumerate(from_level)}
    return tuple(key[pos[name]] for name in to_level)


def label_dict(names: list[str], key: Key, aliases: Mapping[str, str]) -> dict[str, str]:
    """{"namespace": "llm-d", "model": "Qwen/..."} using the level keys rather than label names."""
    return {aliases[n]: v for n, v in zip(names, key, strict=True)}
