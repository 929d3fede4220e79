"""Prometheus metric definitions in a Go source tree at one git commit (the EPP's metrics).

Reads a git directory (``git cat-file``; nothing is checked out, built or run). A definition is
a call to ``New{Counter,Gauge,Histogram,Summary}[Vec|Func]`` or ``NewDesc`` from
client_golang, promauto or k8s component-base; its options struct gives
``Namespace``/``Subsystem``/``Name`` (joined with ``_`` as client_golang does), ``Help`` and
``Buckets``, its second argument the label names.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.contract.go_source import COMPBASE, PROM, Call, Composite, GoFile, Parser, Ref, Resolver
from tools.contract.values import Unknown

METRIC_IMPORTS = {PROM, COMPBASE, "github.com/prometheus/client_golang/prometheus/promauto"}
CONSTRUCTORS = {
    "NewCounter": "counter", "NewCounterVec": "counter", "NewCounterFunc": "counter",
    "NewGauge": "gauge", "NewGaugeVec": "gauge", "NewGaugeFunc": "gauge",
    "NewHistogram": "histogram", "NewHistogramVec": "histogram",
    "NewSummary": "summary", "NewSummaryVec": "summary", "NewUntypedFunc": "untyped",
    "NewDesc": "desc",
}  # fmt: skip
VALUE_TYPES = {"GaugeValue": "gauge", "CounterValue": "counter", "UntypedValue": "untyped"}


class GitTree:
    """Files of one commit of a git directory, read through one ``git cat-file --batch``."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", f"{ref}^{{commit}}").strip()
        listing = self._git("ls-tree", "-r", "--name-only", self.commit)
        self.paths = sorted(p for p in listing.splitlines() if p)
        self._cache: dict[str, str | None] = {}

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", f"--git-dir={self.git_dir}", *args], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    def read(self, path: str) -> str | None:
        if path not in self._cache:
            proc = subprocess.run(["git", f"--git-dir={self.git_dir}", "show", f"{self.commit}:{path}"],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            self._cache[path] = proc.stdout if proc.returncode == 0 else None
        return self._cache[path]

    def go_files(self, directory: str) -> list[str]:
        prefix = f"{directory}/" if directory else ""
        return [p for p in self.paths if p.startswith(prefix) and p.endswith(".go")
                and "/" not in p[len(prefix):] and not p.endswith("_test.go")]  # fmt: skip


def go_mod(tree: GitTree) -> tuple[str, dict[str, str], dict[str, str]]:
    """Module path, required versions and replace targets from ``go.mod``."""
    text = tree.read("go.mod") or ""
    module = re.search(r"^module\s+(\S+)", text, re.M)
    requires = dict(re.findall(r"^\s*(?:require\s+)?([a-z0-9.\-]+\.[a-z]+/\S+)\s+(v\S+)", text, re.M))
    replaces = dict(re.findall(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\S+(?:\s+v\S+)?)", text, re.M))
    return (module.group(1) if module else ""), requires, replaces


def pseudo_commit(version: str) -> str | None:
    """The commit prefix of a Go pseudo-version (``v0.0.0-20260128123456-abcdef123456``)."""
    m = re.search(r"-\d{14}-([0-9a-f]{12})$", version)
    return m.group(1) if m else None


@dataclass
class Source:
    """One tree to read: a repository at a commit, and the import path it answers for."""

    repo: str
    ref: str
    tree: GitTree
    module: str
    roots: tuple[str, ...]  # directories scanned for definitions
    key: str = ""  # prefix for directories of this tree in a multi-tree resolver
    _files: dict[str, GoFile] = field(default_factory=dict)

    def file(self, path: str) -> GoFile | None:
        if path not in self._files:
            text = self.tree.read(path)
            if text is None:
                return None
            self._files[path] = Parser(path, text).parse_file()
        return self._files[path]


def _binary(path: str) -> str:
    if path.startswith("pkg/sidecar/") or "/sidecar/" in path:
        return "routing-sidecar"
    if path.startswith("pkg/bbr/"):
        return "bbr"
    return "epp"


def extract(sources: list[Source]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Metric records and unresolved definitions from every source's scan roots."""
    by_key = {s.key: s for s in sources}

    def files_in_dir(directory: str) -> list[GoFile]:
        key, _, rest = directory.partition("::") if "::" in directory else ("", "", directory)
        src = by_key.get(key)
        if src is None:
            return []
        out = []
        for path in src.tree.go_files(rest):
            gf = src.file(path)
            if gf is not None:
                out.append(_keyed(gf, key))
        return out

    metrics: list[dict[str, Any]] = []
    unresolved: list[dict[str, Any]] = []
    primary = next(s for s in sources if not s.key)
    resolver = Resolver(files_in_dir, primary.module,
                        {s.module: f"{s.key}::" for s in sources if s.key and s.module})  # fmt: skip
    for src in sources:
        # Files that define metrics, or emit const metrics for a Desc defined elsewhere.
        users: list[GoFile] = []
        for path in src.tree.paths:
            if not path.endswith(".go") or path.endswith("_test.go"):
                continue
            if not any(path.startswith(r + "/") for r in src.roots):
                continue
            text = src.tree.read(path) or ""
            if any(name in text for name in (*CONSTRUCTORS, "ConstMetric", "ConstHistogram")):
                gf = src.file(path)
                if gf is not None:
                    users.append(gf)
        for gf in users:
            for record in _definitions(_keyed(gf, src.key), resolver, users):
                record.update(repo=src.repo, ref=src.ref, commit=src.tree.commit, file=gf.path,
                              binary=_binary(gf.path))  # fmt: skip
                (metrics if "name" in record else unresolved).append(record)
    metrics.sort(key=lambda m: (m["name"], m["repo"], m["file"], m["line"]))
    unresolved.sort(key=lambda u: (u["repo"], u["file"], u["line"]))
    return metrics, unresolved


def _keyed(gf: GoFile, key: str) -> GoFile:
    """The file with its tree key in its path, so its own package's names resolve in its tree."""
    if not key:
        return gf
    return GoFile(f"{key}::{gf.path}", gf.package, gf.imports, gf.decls, gf.tokens)


def _definitions(gf: GoFile, resolver: Resolver, users: list[GoFile]) -> list[dict[str, Any]]:
    toks = gf.tokens
    out: list[dict[str, Any]] = []
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text not in CONSTRUCTORS or i + 1 >= len(toks) or toks[i + 1].text != "(":
            continue
        start = i
        if i >= 2 and toks[i - 1].text == "." and toks[i - 2].kind == "ident":
            if gf.imports.get(toks[i - 2].text) not in METRIC_IMPORTS:
                continue
            start = i - 2
        elif i >= 1 and toks[i - 1].text == "." and toks[i - 2].text == ")":
            pass  # promauto.With(reg).NewCounterVec(...)
        else:
            continue
        p = Parser.__new__(Parser)
        p.path, p.toks, p.i = gf.path, toks, (start if start < i else i)
        call = p.unary()
        if not isinstance(call, Call):
            continue
        var = toks[start - 2].text if start >= 2 and toks[start - 1].text in {"=", ":=", ":"} else None
        out.append(_record(gf, resolver, CONSTRUCTORS[t.text], t.text, call, var, users))
    return out


def _desc_kind(var: str | None, users: list[GoFile]) -> str | None:
    """A Desc's type: the ``XValue`` passed with it to ``MustNewConstMetric`` in any file."""
    if var is None:
        return None
    for gf in users:
        toks = gf.tokens
        for i, t in enumerate(toks):
            if t.text not in {"MustNewConstMetric", "NewConstMetric", "NewLazyConstMetric",
                              "MustNewConstHistogram", "NewConstHistogram"}:  # fmt: skip
                continue
            window = [x.text for x in toks[i + 1 : i + 10]]
            # ( Var , ...  or  ( pkg . Var , ...
            if window[:3] != ["(", var, ","] and window[2:5] != [".", var, ","]:
                continue
            if "Histogram" in t.text:
                return "histogram"
            for text in window:
                if text in VALUE_TYPES:
                    return VALUE_TYPES[text]
    return None


def _record(
    gf: GoFile, resolver: Resolver, kind: str, ctor: str, call: Call, var: str | None,
    users: list[GoFile],
) -> dict[str, Any]:
    args = [resolver.value(a, gf) for a in call.args]
    rec: dict[str, Any] = {"line": call.line, "constructor": ctor}
    if var:
        rec["var"] = var
    if kind == "desc":
        kind = _desc_kind(var, users) or "unknown"
        name = args[0] if args else Unknown("no name")
        help_ = args[1] if len(args) > 1 else None
        labels = args[2] if len(args) > 2 else []
        opts = None
    else:
        opts = args[0] if args else None
        if not isinstance(opts, Composite):
            rec["reason"] = f"options not readable: {opts!r}"
            rec["type"] = kind
            return rec
        parts = [opts.fields.get(k, "") for k in ("Namespace", "Subsystem", "Name")]
        if all(isinstance(p, str) for p in parts):
            name = "_".join(p for p in parts if p)
        else:
            bad = next(p for p in parts if not isinstance(p, str))
            name = Unknown(bad.reason if isinstance(bad, Unknown) else repr(bad))
        help_ = opts.fields.get("Help")
        labels = args[1] if ctor.endswith("Vec") and len(args) > 1 else []
    rec["type"] = kind
    if not isinstance(name, str):
        rec["reason"] = f"metric name: {name.reason if isinstance(name, Unknown) else name!r}"
        return rec
    rec["name"] = name
    rec["samples"] = _samples(name, kind)
    if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
        rec["labels"] = labels
    else:
        rec["labels"] = None
        rec["labels_unresolved"] = labels.reason if isinstance(labels, Unknown) else repr(labels)
    if isinstance(help_, str):
        rec["help"] = help_
    if opts is not None and isinstance(opts.fields.get("StabilityLevel"), str):
        rec["stability"] = opts.fields["StabilityLevel"]
        if isinstance(help_, str) and not help_.startswith("["):  # component-base prefixes it
            rec["help"] = f"[{opts.fields['StabilityLevel']}] {help_}"
    if kind == "histogram":
        buckets = opts.fields.get("Buckets") if opts is not None else None
        if buckets is None:
            rec["buckets"] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
            rec["buckets_default"] = True
        elif isinstance(buckets, list) and all(isinstance(b, int | float) for b in buckets):
            rec["buckets"] = [float(b) for b in buckets]
        else:
            rec["buckets"] = None
            rec["buckets_unresolved"] = buckets.reason if isinstance(buckets, Unknown) else repr(buckets)
    return rec


def _samples(name: str, kind: str) -> list[str]:
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_count", f"{name}_sum"]
    if kind == "summary":
        return [name, f"{name}_count", f"{name}_sum"]
    return [name]


__all__ = ["GitTree", "Ref", "Source", "extract", "go_mod", "pseudo_commit"]
