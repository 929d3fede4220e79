"""Read the committed contract (contract/): versions, EPP builds, and what a server exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
KINDS = ("default", "hidden", "kv_consumer", "opt_in")


class ContractError(Exception):
    """The contract files disagree with themselves or with conditions.yaml."""


def version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


@cache
def sources() -> dict[str, Any]:
    return yaml.safe_load((CONTRACT / "sources.yaml").read_text(encoding="utf-8"))


@cache
def conditions() -> dict[str, Any]:
    return yaml.safe_load((CONTRACT / "conditions.yaml").read_text(encoding="utf-8"))


def vllm_versions() -> list[str]:
    return sorted((str(v) for v in sources()["vllm"]["versions"]), key=version_key)


@cache
def vllm(version: str) -> dict[str, Any]:
    return json.loads((CONTRACT / "vllm" / f"{version}.json").read_text(encoding="utf-8"))


def epp_keys() -> list[str]:
    return [e["key"] for e in sources()["epp"]]


@cache
def epp(key: str) -> dict[str, Any]:
    return json.loads((CONTRACT / "epp" / f"{key}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ServerConfig:
    """What a vLLM server runs with, as far as its metric families go."""

    connector: str | None = None  # "nixl" | "mooncake" | None (conditions.yaml connectors)
    kv_consumer: bool = False
    show_hidden: bool = False


def classify(metric: dict[str, Any]) -> str:
    """default / hidden / kv_consumer / opt_in for one definition (the strictest of its tests)."""
    table = conditions()["conditions"]
    kinds = []
    for cond in metric.get("conditions", []):
        if cond not in table:
            raise ContractError(f"{metric['file']}:{metric['line']} {metric['name']}: condition "
                                f"{cond!r} is not classified in contract/conditions.yaml")  # fmt: skip
        kinds.append(table[cond])
    for kind in ("opt_in", "hidden", "kv_consumer"):
        if kind in kinds:
            return kind
    return "default"


def _in_server(metric: dict[str, Any]) -> bool:
    return any(metric["file"] == s["file"] and metric.get("class") == s["class"]
               for s in conditions()["server"])  # fmt: skip


def connector_of(metric: dict[str, Any]) -> str | None:
    for name, classes in conditions()["connectors"].items():
        if metric.get("class") in classes:
            return name
    return None


def server_families(version: str, cfg: ServerConfig) -> dict[str, dict[str, Any]]:
    """Families (by name) a V1 server of ``version`` registers under ``cfg``, opt-ins aside."""
    out: dict[str, dict[str, Any]] = {}
    for m in vllm(version)["metrics"]:
        conn = connector_of(m)
        if conn is None and not _in_server(m):
            continue
        if conn is not None and conn != cfg.connector:
            continue
        kind = classify(m)
        if kind == "opt_in" or (kind == "hidden" and not cfg.show_hidden):
            continue
        if kind == "kv_consumer" and not cfg.kv_consumer:
            continue
        if m["name"] in out:
            raise ContractError(f"vLLM {version}: {m['name']} defined twice for one server")
        out[m["name"]] = m
    return out


def epp_families(key: str, binary: str = "epp") -> dict[str, dict[str, Any]]:
    """Families (by exposed family name) of an EPP build's ``binary``."""
    out: dict[str, dict[str, Any]] = {}
    for m in epp(key)["metrics"]:
        if m.get("binary", "epp") == binary:
            out.setdefault(m["name"], m)
    return out


@dataclass(frozen=True)
class Exposed:
    """One sample name as some contract source exposes it."""

    sample: str
    source: str  # "vllm 0.33.0" or "epp llm-d-router-v0.10.0"
    metric: dict[str, Any]


@cache
def sample_index() -> dict[str, tuple[Exposed, ...]]:
    """Every exposed sample name -> where it is defined (V1 vLLM definitions and EPP builds)."""
    index: dict[str, list[Exposed]] = {}

    def add(source: str, metrics: Iterable[dict[str, Any]]) -> None:
        for m in metrics:
            for sample in m["samples"]:
                index.setdefault(sample, []).append(Exposed(sample, source, m))

    for version in vllm_versions():
        add(f"vllm {version}", (m for m in vllm(version)["metrics"]
                                if not m["file"].startswith("vllm/engine/")))  # fmt: skip
    for key in epp_keys():
        add(f"epp {key}", epp(key)["metrics"])
    return {k: tuple(v) for k, v in index.items()}
