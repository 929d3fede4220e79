"""Turn the extractor's definitions into the contract data of one vLLM version."""

from __future__ import annotations

from typing import Any

from tools.contract.values import Param, Symbolic, Tail, Unknown, is_known
from tools.contract.vllm_metrics import Definition, Extractor

SCHEMA = 1


def sample_names(family: str, kind: str) -> list[str]:
    """Sample names prometheus_client exposes for a family (without ``_created``)."""
    if kind == "counter":
        return [f"{family}_total"]
    if kind == "histogram":
        return [f"{family}_bucket", f"{family}_count", f"{family}_sum"]
    if kind == "summary":
        return [f"{family}_count", f"{family}_sum"]
    if kind == "info":
        return [f"{family}_info"]
    return [family]


def family_name(name: str, kind: str) -> str:
    """prometheus_client drops a counter's ``_total`` (it adds it back to the sample)."""
    if kind == "counter" and name.endswith("_total"):
        return name[: -len("_total")]
    return name


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


class _ParamResolver:
    """Binds a label-list parameter to the one literal list forwarded under its name."""

    def __init__(self, forwards: dict[str, dict[tuple[str, ...], set[str]]]) -> None:
        self.forwards = forwards

    def resolve(self, param: Param) -> tuple[list[str] | None, dict[str, Any]]:
        roots = self.forwards.get(param.name, {})
        if len(roots) == 1:
            (value, sites), = roots.items()
            return list(value), {"parameter": param.name, "bound_at": sorted(sites)}
        return None, {
            "parameter": param.name,
            "candidates": {",".join(v): sorted(s) for v, s in sorted(roots.items())},
        }


def _labels(value: Any, resolver: _ParamResolver) -> tuple[list[str] | None, dict[str, Any]]:
    """Label names, or None with a note saying what is unknown."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value), {}
    head: Any = None
    items: list[Any] = []
    if isinstance(value, Tail):
        head, items = value.head, list(value.items)
    elif isinstance(value, Param):
        head = value
    if isinstance(head, Param) and all(isinstance(i, str) for i in items):
        resolved, note = resolver.resolve(head)
        if resolved is not None:
            return [*resolved, *items], {"labels_via": note}
        return None, {"labels_unresolved": {"reason": "parameter bound to several lists",
                                            "known_suffix": items, **note}}  # fmt: skip
    reason = value.reason if isinstance(value, Unknown) else f"label list {type(value).__name__}"
    if isinstance(head, Unknown):
        reason = head.reason
    note: dict[str, Any] = {"reason": reason}
    if items and all(isinstance(i, str) for i in items):
        note["known_suffix"] = items
    return None, {"labels_unresolved": note}


def _label_values(d: Definition, labels: list[str] | None) -> dict[str, list[str]]:
    """Label values vLLM pre-creates children for (``.labels()`` calls read from the source)."""
    if labels is None:
        return {}
    out: dict[str, set[str]] = {}
    for mode, obs in d.label_obs:
        pairs: list[tuple[str, Any]] = []
        if mode == "kw":
            pairs = [(k, v) for k, v in obs.items() if k in labels]
        elif mode == "left":
            pairs = list(zip(labels, obs, strict=False))
        elif mode == "right" and obs:
            pairs = list(zip(labels[-len(obs) :], obs, strict=False))
        for label, value in pairs:
            if isinstance(value, str):
                out.setdefault(label, set()).add(value)
    return {k: sorted(v) for k, v in sorted(out.items())}


def _buckets(value: Any) -> tuple[Any, dict[str, Any]]:
    if value is None:
        return None, {}
    if isinstance(value, Symbolic):
        return value.text, {}
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value], {}
    reason = value.reason if isinstance(value, Unknown) else "not a literal list"
    return None, {"buckets_unresolved": reason}


def build(ex: Extractor, source: dict[str, Any]) -> dict[str, Any]:
    """The contract document for one vLLM wheel."""
    resolver = _ParamResolver(ex.forwards)
    metrics: list[dict[str, Any]] = []
    unresolved: list[dict[str, Any]] = []
    for d in ex.definitions:
        where = {"file": d.file, "line": d.line}
        if d.cls:
            where["class"] = d.cls
        if d.function:
            where["function"] = d.function
        if d.conditions:
            where["conditions"] = list(d.conditions)
        if not isinstance(d.name, str):
            reason = d.name.reason if isinstance(d.name, Unknown) else repr(d.name)
            unresolved.append({**where, "type": d.kind, "reason": f"metric name: {reason}"})
            continue
        family = family_name(d.name, d.kind)
        labels, notes = _labels(d.labels, resolver)
        entry: dict[str, Any] = {
            "name": family,
            "type": d.kind,
            "samples": sample_names(family, d.kind),
            "labels": labels,
            "help": _text(d.help),
            **where,
            **notes,
        }
        if d.kind == "histogram":
            buckets, bnote = _buckets(d.buckets)
            entry["buckets"] = buckets
            entry.update(bnote)
        values = _label_values(d, labels)
        if values:
            entry["label_values"] = values
        if entry["help"] is None and is_known(d.help):
            entry["help"] = str(d.help)
        metrics.append(entry)
    metrics.sort(key=lambda m: (m["name"], m["file"], m["line"]))
    known = {m["name"] for m in metrics} | {s for m in metrics for s in m["samples"]}
    unmatched: dict[str, set[str]] = {}
    for path, line, text in ex.name_strings:
        if text not in known:
            unmatched.setdefault(text, set()).add(f"{path}:{line}")
    unresolved.sort(key=lambda u: (u["file"], u["line"]))
    return {
        "schema": SCHEMA,
        "component": "vllm",
        "source": source,
        "generator": "tools/refresh_contract.py vllm",
        "notes": [
            "samples: what prometheus_client exposes; it also exposes <name>_created for "
            "counters and histograms unless disable_created_metrics() is called "
            "(disable_created_metrics_called_at).",
            "conditions: the if-tests the definition sits under, as written in the source.",
            "labels null: the label list could not be read statically (labels_unresolved).",
            "label_values: children vLLM creates at start-up, read from .labels() calls.",
            "unmatched_name_strings: vllm:* strings in metric-defining modules that no definition "
            "read here produced (metrics built in ways the reader does not follow, or names "
            "only read or documented there); review them by hand.",
        ],
        "disable_created_metrics_called_at": sorted(set(ex.disable_created)),
        "metrics": metrics,
        "unresolved": unresolved,
        "unmatched_name_strings": {k: sorted(v) for k, v in sorted(unmatched.items())},
        "errors": ex.errors,
    }
