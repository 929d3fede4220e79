"""Symbolic values for reading Python source without running it.

The vLLM extractor evaluates the arguments of metric constructors (names, label lists, buckets)
from the source alone. Whatever it cannot know stays symbolic instead of being guessed:
``Unknown`` carries the reason, ``Param`` a function parameter (resolved later from the call
sites that forward it), ``Tail`` a list whose first items are unknown but whose last items are
known (``labelnames + ["reason"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unknown:
    """A value the source does not determine; ``reason`` says why (shown in the contract)."""

    reason: str


@dataclass(frozen=True)
class Param:
    """The value of parameter ``name`` of the function being read."""

    name: str


@dataclass(frozen=True)
class Tail:
    """A list: ``head`` (Unknown or Param) spliced before the known ``items``."""

    head: Unknown | Param
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Alternatives:
    """One of ``options``, depending on ``test`` (a variable bound differently in two branches)."""

    options: tuple[Any, ...]
    test: str


@dataclass(frozen=True)
class ModuleRef:
    """A module imported by name."""

    module: str


@dataclass(frozen=True)
class External:
    """A name imported from outside the package (``prometheus_client.Counter``)."""

    qualname: str


@dataclass(frozen=True)
class ClassRef:
    """A class defined in the package (for class attributes, enum members, ``__str__``)."""

    module: str
    qualname: str


@dataclass(frozen=True)
class FunctionRef:
    """A function defined in the package (only a few known helpers are evaluated)."""

    module: str
    name: str


@dataclass(frozen=True)
class EnumMember:
    """One member of an enum class read from the source."""

    cls: ClassRef
    name: str
    value: Any


@dataclass(frozen=True)
class MetricRef:
    """The object a metric constructor returns; ``index`` into the extractor's records."""

    index: int


@dataclass(frozen=True)
class Symbolic:
    """A value with a known meaning but no literal form, e.g. vLLM's 1-2-5 token buckets."""

    text: str


def is_known(value: Any) -> bool:
    """Whether ``value`` is fully concrete (no symbolic part anywhere inside)."""
    if isinstance(value, Unknown | Param | Tail | Alternatives | ModuleRef | FunctionRef | MetricRef | External):
        return False
    if isinstance(value, list | tuple | set | frozenset):
        return all(is_known(v) for v in value)
    if isinstance(value, dict):
        return all(is_known(k) and is_known(v) for k, v in value.items())
    return True
