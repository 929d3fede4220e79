"""Which metric names and labels a rendered query needs, read from Prometheus's own parse tree.

Every expression is parsed by a real Prometheus (``/api/v1/parse_query``), then walked top-down
with the set of labels its result must carry: a ``by (...)`` clause, ``on (...)`` matching, a
label matcher, ``le`` under ``histogram_quantile``, a ``{{label}}`` legend or a ``$labels.x`` in
an alert. A requirement that reaches a recorded series continues into its recording rule(s); one
that reaches a raw selector becomes a :class:`Use` of that metric. ``label_replace`` and
``label_join`` provide their target label themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Ast = dict[str, Any]
_GRAFANA_BUILTIN = re.compile(r"\$__(rate_interval|interval|range)(_ms|_s)?")
_GRAFANA_VAR = re.compile(r"\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.*),\s*(?P<label>[A-Za-z_]\w*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.*)\)\s*$", re.S)
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_ALERT_LABEL = re.compile(r"\$labels\.([A-Za-z_]\w*)")
SET_OPS = {"and", "or", "unless"}


@dataclass(frozen=True)
class Query:
    origin: str  # where it was rendered: file and rule/panel
    expr: str
    needs: frozenset[str] = frozenset()  # labels its consumer reads from the result


@dataclass(frozen=True)
class Use:
    """A raw metric a query selects, with the labels it needs that metric to carry."""

    origin: str
    metric: str
    labels: frozenset[str]


@dataclass
class Rule:
    record: str
    expr: str
    static: frozenset[str]


def grafana_to_promql(text: str) -> str:
    """Grafana's variables replaced by values PromQL accepts (they only appear in strings/ranges)."""
    return _GRAFANA_VAR.sub("x", _GRAFANA_BUILTIN.sub("5m", text))


def rule_queries(path: str, text: str) -> tuple[list[Query], list[Rule]]:
    """Queries of a Prometheus rule file, and its recording rules."""
    queries, rules = [], []
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            needs: set[str] = set()
            for value in (rule.get("annotations") or {}).values():
                needs |= set(_ALERT_LABEL.findall(str(value)))
            queries.append(Query(f"{path} {name}", rule["expr"], frozenset(needs)))
            if "record" in rule:
                rules.append(Rule(rule["record"], rule["expr"], frozenset(rule.get("labels") or {})))
    return queries, rules


def dashboard_queries(path: str, text: str) -> list[Query]:
    """Panel targets (with the labels their legends show) and template variable queries."""
    out: list[Query] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            title = node.get("title", where)
            if isinstance(node.get("expr"), str) and node["expr"].strip():
                legend = set(_LEGEND.findall(str(node.get("legendFormat", ""))))
                out.append(Query(f"{path} {title}", grafana_to_promql(node["expr"]), frozenset(legend)))
            for value in node.values():
                walk(value, title)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    doc = json.loads(text)
    walk(doc.get("panels", []), path)
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") != "query" or not isinstance(query, str):
            continue
        if m := _LABEL_VALUES.match(query):
            out.append(Query(f"{path} ${var['name']}", grafana_to_promql(m["expr"]), frozenset({m["label"]})))
        elif m := _QUERY_RESULT.match(query):
            out.append(Query(f"{path} ${var['name']}", grafana_to_promql(m["expr"])))
    return out


@dataclass
class Walker:
    """Collects the raw metric uses of queries, following recorded names into their rules."""

    parse: Callable[[str], Ast]
    rules: Mapping[str, list[Rule]]
    uses: list[Use] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (origin, what) grouped away
    _seen: set[tuple[str, frozenset[str]]] = field(default_factory=set)

    def run(self, queries: Iterable[Query]) -> None:
        for q in queries:
            self.need(self.parse(q.expr), set(q.needs), q.origin)

    def need(self, node: Ast, req: set[str], origin: str) -> None:
        t = node.get("type")
        if t in ("vectorSelector", "matrixSelector"):
            self._selector(node, req, origin)
        elif t == "aggregation":
            grouping = set(node.get("grouping") or [])
            op = node["op"]
            if node.get("without"):
                inner = req
            elif op in ("topk", "bottomk", "limitk", "limit_ratio"):
                inner = req | grouping
            else:
                missing = req - grouping - ({node["param"]["val"]} if op == "count_values" else set())
                if missing:
                    self.dropped.append((origin, f"{op} by ({', '.join(sorted(grouping))}) "
                                                 f"drops {sorted(missing)}"))  # fmt: skip
                inner = grouping - ({node["param"]["val"]} if op == "count_values" else set())
            self.need(node["expr"], inner, origin)
        elif t == "binaryExpr":
            self._binary(node, req, origin)
        elif t == "call":
            self._call(node, req, origin)
        elif t in ("parenExpr", "unaryExpr", "subquery", "stepInvariantExpr"):
            self.need(node["expr"], req, origin)

    def _selector(self, node: Ast, req: set[str], origin: str) -> None:
        name = node.get("name")
        if not name:  # {__name__=~"..."}: a family listing, no single metric to hold to it
            return
        labels = req | {m["name"] for m in node.get("matchers", []) if m["name"] != "__name__"}
        if name in self.rules:
            key = (name, frozenset(labels))
            if key in self._seen:
                return
            self._seen.add(key)
            for rule in self.rules[name]:
                self.need(self.parse(rule.expr), labels - rule.static, f"{origin} -> {name}")
            return
        self.uses.append(Use(origin, name, frozenset(labels)))

    def _binary(self, node: Ast, req: set[str], origin: str) -> None:
        lhs, rhs = node["lhs"], node["rhs"]
        if _scalar(lhs) or _scalar(rhs):
            for side in (lhs, rhs):
                self.need(side, set() if _scalar(side) else req, origin)
            return
        m = node.get("matching") or {}
        on, labels, include = m.get("on", False), set(m.get("labels") or []), set(m.get("include") or [])
        card = m.get("card", "one-to-one")
        if on:
            if card == "one-to-many":  # group_right: the result's labels are rhs's
                self.need(lhs, labels | include, origin)
                self.need(rhs, (req - include) | labels, origin)
                return
            self.need(lhs, (req - include) | labels, origin)
            self.need(rhs, labels | include | (req if node["op"] == "or" else set()), origin)
            return
        self.need(lhs, req, origin)
        self.need(rhs, req - labels, origin)

    def _call(self, node: Ast, req: set[str], origin: str) -> None:
        name = node["func"]["name"]
        args = node.get("args", [])
        if name in ("label_replace", "label_join"):
            # label_replace(v, dst, replacement, src, regex); label_join(v, dst, sep, src...)
            strings = [a.get("val") for a in args[1:] if a.get("type") == "stringLiteral"]
            dst = strings[0] if strings else None
            sources = strings[2:3] if name == "label_replace" else strings[2:]
            self.need(args[0], (req - {dst}) | {s for s in sources if s}, origin)
            return
        if name in ("histogram_quantile", "histogram_fraction"):
            self.need(args[-1], req | {"le"}, origin)
            return
        if name in ("absent", "absent_over_time", "vector", "scalar", "time", "timestamp_scalar"):
            for a in args:
                self.need(a, set(), origin)
            return
        for a in args:
            if not _scalar(a) and a.get("type") != "stringLiteral":
                self.need(a, req, origin)


def _scalar(node: Ast) -> bool:
    t = node.get("type")
    if t == "numberLiteral":
        return True
    if t == "call":
        return node["func"].get("returnType") == "scalar"
    if t in ("parenExpr", "unaryExpr"):
        return _scalar(node["expr"])
    if t == "binaryExpr":
        return _scalar(node["lhs"]) and _scalar(node["rhs"])
    return False


def recorded(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for r in rules:
        out.setdefault(r.record, []).append(r)
    return out


def all_queries(files: Mapping[str, str]) -> tuple[list[Query], list[Rule]]:
    """Every query in a build's Prometheus rule files and Grafana dashboards."""
    queries: list[Query] = []
    rules: list[Rule] = []
    for path in sorted(files):
        if path.startswith("prometheus/") and path.endswith(".yaml"):
            q, r = rule_queries(path, files[path])
            queries += q
            rules += r
        elif path.startswith("dashboards/") and path.endswith(".json"):
            queries += dashboard_queries(path, files[path])
    return queries, rules


def iter_names(node: Ast) -> Iterator[str]:
    """Metric names of every selector in a tree (for reports)."""
    if node.get("type") in ("vectorSelector", "matrixSelector") and node.get("name"):
        yield node["name"]
    for key in ("expr", "lhs", "rhs", "param"):
        if isinstance(node.get(key), dict):
            yield from iter_names(node[key])
    for arg in node.get("args") or []:
        yield from iter_names(arg)
