"""Every Prometheus metric a vLLM wheel defines, read from its Python source with ``ast``.

The wheel is never installed or imported. The reader walks every function of every module that
mentions a metric constructor, evaluating what it can of the source (constants, f-strings,
list arithmetic, loops over literal lists and enums, comprehensions) and keeping the rest
symbolic. A metric constructor is a call to ``prometheus_client``'s ``Counter``/``Gauge``/
``Histogram``/``Summary``/``Info``/``Enum`` or to vLLM's indirections for them
(``self._counter_cls``/``_gauge_cls``/``_histogram_cls``, ``metric_types[Counter]``).

Label lists that are a parameter of the defining function (vLLM passes ``labelnames`` from
``PrometheusStatLogger`` down to the spec-decode, KV-connector and perf metric classes) are
resolved from the call sites that forward a variable of the same name with a literal value; the
record says so (``labels_via``). Anything still unknown is recorded as such, never guessed.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tools.contract.pysource import Module, Package
from tools.contract.values import (
    Alternatives,
    ClassRef,
    EnumMember,
    External,
    FunctionRef,
    MetricRef,
    ModuleRef,
    Param,
    Symbolic,
    Tail,
    Unknown,
    is_known,
)

PROM_TYPES = {
    "Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary",
    "Info": "info", "Enum": "stateset",
}  # fmt: skip
CLS_ATTRS = {"_counter_cls": "counter", "_gauge_cls": "gauge", "_histogram_cls": "histogram"}
# prometheus_client.Histogram.DEFAULT_BUCKETS (without +Inf), used when no buckets are given.
PROMETHEUS_DEFAULT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
TRIGGERS = ("prometheus_client", "_counter_cls", "_gauge_cls", "_histogram_cls")
ENUM_BASES = {"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"}
_MAX_LOOP = 256
_BUILTIN_NAMES = frozenset(dir(builtins))
ONE_TWO_FIVE = "1-2-5 series up to max_model_len"
_METRIC_NAME = re.compile(r"^vllm:[a-zA-Z_][a-zA-Z0-9_:]*$")


@dataclass
class Definition:
    """One metric constructor call as read (values may still be symbolic)."""

    kind: str
    name: Any
    help: Any
    labels: Any
    buckets: Any
    file: str
    line: int
    cls: str | None
    function: str | None
    conditions: tuple[str, ...]
    label_obs: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Scope:
    module: Module
    cls: ClassRef | None
    function: str | None
    vars: dict[str, Any]
    params: frozenset[str]
    conditions: tuple[str, ...]
    self_name: str | None = None

    def child(self, conditions: tuple[str, ...]) -> Scope:
        return Scope(self.module, self.cls, self.function, self.vars, self.params, conditions,
                     self.self_name)  # fmt: skip


class Extractor:
    """Reads a :class:`Package` and collects :class:`Definition` records."""

    def __init__(self, package: Package) -> None:
        self.pkg = package
        self.definitions: list[Definition] = []
        self.forwards: dict[str, dict[tuple[str, ...], set[str]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.disable_created: list[str] = []
        self.name_strings: list[tuple[str, int, str]] = []
        self._memo: dict[tuple[str, str], Any] = {}
        self._busy: set[tuple[str, str]] = set()
        self._seen: set[tuple[str, int, str]] = set()

    # -- driver ---------------------------------------------------------------------------

    def run(self) -> None:
        for mod in self.pkg:
            if not any(t in mod.source for t in TRIGGERS):
                continue
            self.pkg.module(mod.name)  # index it
            try:
                tree = mod.tree
            except SyntaxError as exc:
                self.errors.append({"file": mod.path, "error": f"syntax error: {exc}"})
                continue
            scope = Scope(mod, None, None, {}, frozenset(), ())
            self._exec_body(tree.body, scope)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if _METRIC_NAME.match(node.value):
                        self.name_strings.append((mod.path, node.lineno, node.value))

    # -- statements -----------------------------------------------------------------------

    def _exec_body(self, stmts: Iterable[ast.stmt], scope: Scope) -> None:
        conditions = scope.conditions
        for stmt in stmts:
            local = scope.child(conditions)
            try:
                self._exec(stmt, local)
            except RecursionError:
                self.errors.append({"file": scope.module.path, "line": stmt.lineno,
                                    "error": "recursion limit while evaluating"})  # fmt: skip
            # ``if cond: return`` guards the rest of the block by ``not cond``.
            if isinstance(stmt, ast.If) and not stmt.orelse and _ends_flow(stmt.body):
                conditions = (*conditions, _negate(stmt.test))

    def _exec(self, stmt: ast.stmt, scope: Scope) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self._exec_function(stmt, scope)
        elif isinstance(stmt, ast.ClassDef):
            cls = ClassRef(scope.module.name, stmt.name) if scope.function is None else None
            inner = Scope(scope.module, cls, None, {}, frozenset(), ())
            self._exec_body(stmt.body, inner)
        elif isinstance(stmt, ast.Assign):
            value = self.eval(stmt.value, scope)
            for target in stmt.targets:
                self._bind(target, value, scope)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self._bind(stmt.target, self.eval(stmt.value, scope), scope)
        elif isinstance(stmt, ast.AugAssign):
            current = self.eval(stmt.target, scope)
            value = _binop(stmt.op, current, self.eval(stmt.value, scope))
            self._bind(stmt.target, value, scope)
        elif isinstance(stmt, ast.If):
            test = ast.unparse(stmt.test)
            self.eval(stmt.test, scope)
            for name in _assigned_names(stmt):
                if name not in scope.vars and name in scope.params:
                    scope.vars[name] = Param(name)
            before = dict(scope.vars)
            branches = []
            for body, cond in ((stmt.body, test), (stmt.orelse, _negate(stmt.test))):
                scope.vars.clear()
                scope.vars.update(before)
                self._exec_body(body, scope.child((*scope.conditions, cond)))
                branches.append(dict(scope.vars))
            scope.vars.clear()
            scope.vars.update(_merge(before, *branches, test))
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            items = _iterate_any(self, self.eval(stmt.iter, scope))
            if items is None:
                self._bind(stmt.target, Unknown(f"loop over {ast.unparse(stmt.iter)}"), scope)
                self._exec_body(stmt.body, scope)
            else:
                for item in items[:_MAX_LOOP]:
                    self._bind(stmt.target, item, scope)
                    self._exec_body(stmt.body, scope)
            self._exec_body(stmt.orelse, scope)
        elif isinstance(stmt, ast.While):
            self._exec_body(stmt.body, scope)
            self._exec_body(stmt.orelse, scope)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                self.eval(item.context_expr, scope)
            self._exec_body(stmt.body, scope)
        elif isinstance(stmt, ast.Try | getattr(ast, "TryStar", ast.Try)):
            self._exec_body(stmt.body, scope)
            for handler in stmt.handlers:
                self._exec_body(handler.body, scope)
            self._exec_body(stmt.orelse, scope)
            self._exec_body(stmt.finalbody, scope)
        elif isinstance(stmt, ast.Match):
            self.eval(stmt.subject, scope)
            for case in stmt.cases:
                self._exec_body(case.body, scope)
        elif isinstance(stmt, ast.Expr | ast.Return) and stmt.value is not None:
            self.eval(stmt.value, scope)

    def _exec_function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> None:
        args = fn.args
        names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        if args.vararg:
            names.append(args.vararg.arg)
        if args.kwarg:
            names.append(args.kwarg.arg)
        in_class = scope.cls is not None and scope.function is None
        self_name = names[0] if in_class and names else scope.self_name
        qual = fn.name if scope.function is None else f"{scope.function}.{fn.name}"
        if in_class and scope.cls is not None:
            qual = f"{scope.cls.qualname}.{fn.name}"
        # Nested functions see their parent's variables (closure), as read at definition time.
        parent_vars = dict(scope.vars) if scope.function is not None else {}
        inner = Scope(scope.module, scope.cls, qual, parent_vars,
                      frozenset(names) | (scope.params if scope.function else frozenset()),
                      (), self_name)  # fmt: skip
        for name in names:
            inner.vars.pop(name, None)
        self._exec_body(fn.body, inner)

    def _bind(self, target: ast.expr, value: Any, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            scope.vars[target.id] = value
        elif (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == scope.self_name
        ):
            scope.vars[f"self.{target.attr}"] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = value if isinstance(value, list | tuple) else None
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    self._bind(elt.value, Unknown("starred unpacking"), scope)
                elif items is not None and len(items) == len(target.elts):
                    self._bind(elt, items[i], scope)
                else:
                    self._bind(elt, Unknown(f"unpacking {ast.unparse(target)}"), scope)

    # -- names ----------------------------------------------------------------------------

    def lookup(self, name: str, scope: Scope) -> Any:
        if name in scope.vars:
            return scope.vars[name]
        if name in scope.params:
            return Param(name)
        return self.global_value(scope.module.name, name)

    def global_value(self, modname: str, name: str) -> Any:
        key = (modname, name)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:
            return Unknown(f"cyclic definition of {modname}.{name}")
        mod = self.pkg.module(modname)
        if mod is None:
            return Unknown(f"module {modname} not in the package")
        self._busy.add(key)
        try:
            if name in mod.assigns:
                value = self.eval(mod.assigns[name], Scope(mod, None, None, {}, frozenset(), ()))
            elif name in mod.classes:
                value = ClassRef(modname, name)
            elif name in mod.functions:
                value = FunctionRef(modname, name)
            elif name in mod.imports:
                value = self.import_value(*mod.imports[name])
            elif name in _BUILTIN_NAMES:
                value = External(f"builtins.{name}")
            else:
                value = Unknown(f"{name} is not defined in {modname}")
        finally:
            self._busy.discard(key)
        self._memo[key] = value
        return value

    def import_value(self, module: str, attr: str | None) -> Any:
        if attr is None:
            return ModuleRef(module) if self._is_package_module(module) else External(module)
        if f"{module}.{attr}" in self.pkg.modules:
            return ModuleRef(f"{module}.{attr}")
        if module in self.pkg.modules:
            return self.global_value(module, attr)
        if self._is_package_module(module):
            return Unknown(f"{module}.{attr} is not in the package")
        return External(f"{module}.{attr}")

    def _is_package_module(self, module: str) -> bool:
        root = module.split(".")[0]
        return any(m == root or m.startswith(root + ".") for m in self.pkg.modules)

    # -- classes --------------------------------------------------------------------------

    def class_def(self, ref: ClassRef) -> tuple[Module, ast.ClassDef] | None:
        mod = self.pkg.module(ref.module)
        if mod is None or ref.qualname not in mod.classes:
            return None
        return mod, mod.classes[ref.qualname]

    def class_bases(self, ref: ClassRef) -> list[Any]:
        found = self.class_def(ref)
        if found is None:
            return []
        mod, node = found
        scope = Scope(mod, None, None, {}, frozenset(), ())
        return [self.eval(b, scope) for b in node.bases]

    def is_enum(self, ref: ClassRef, depth: int = 0) -> bool:
        if depth > 10:
            return False
        for base in self.class_bases(ref):
            if isinstance(base, External) and base.qualname in ENUM_BASES:
                return True
            if isinstance(base, ClassRef) and self.is_enum(base, depth + 1):
                return True
        return False

    def enum_members(self, ref: ClassRef) -> list[EnumMember] | None:
        found = self.class_def(ref)
        if found is None or not self.is_enum(ref):
            return None
        mod, node = found
        scope = Scope(mod, None, None, {}, frozenset(), ())
        out = []
        for stmt in node.body:
            target, value = _simple_assign(stmt)
            if target and not target.startswith("_") and value is not None:
                out.append(EnumMember(ref, target, self.eval(value, scope)))
        return out

    def class_attr(self, ref: ClassRef, attr: str, depth: int = 0) -> Any:
        found = self.class_def(ref)
        if found is None or depth > 10:
            return Unknown(f"class {ref.qualname} not readable")
        mod, node = found
        scope = Scope(mod, None, None, {}, frozenset(), ())
        for stmt in node.body:
            target, value = _simple_assign(stmt)
            if target == attr and value is not None:
                if self.is_enum(ref) and not attr.startswith("_"):
                    return EnumMember(ref, attr, self.eval(value, scope))
                return self.eval(value, scope)
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == attr:
                return Unknown(f"method {ref.qualname}.{attr}")
        for base in self.class_bases(ref):
            if isinstance(base, ClassRef):
                got = self.class_attr(base, attr, depth + 1)
                if not isinstance(got, Unknown):
                    return got
        return Unknown(f"{ref.qualname}.{attr} not found")

    def enum_str(self, member: EnumMember) -> Any:
        """``str(member)``: a one-line ``__str__`` is evaluated; a ``str`` mixin gives the value."""
        found = self.class_def(member.cls)
        if found is not None:
            mod, node = found
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.FunctionDef)
                    and stmt.name == "__str__"
                    and len(stmt.body) >= 1
                    and isinstance(stmt.body[-1], ast.Return)
                    and stmt.body[-1].value is not None
                ):
                    scope = Scope(mod, member.cls, "__str__", {"self": member}, frozenset(), (),
                                  "self")  # fmt: skip
                    return self.eval(stmt.body[-1].value, scope)
            bases = self.class_bases(member.cls)
            if any(isinstance(b, External) and b.qualname in {"builtins.str", "enum.StrEnum"}
                   for b in bases):  # fmt: skip
                return member.value
        return Unknown(f"str() of {member.cls.qualname}.{member.name}")

    # -- expressions ----------------------------------------------------------------------

    def eval(self, node: ast.expr, scope: Scope) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id == scope.self_name and node.id in scope.vars:
                return scope.vars[node.id]
            return self.lookup(node.id, scope)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    got = self.eval(v.value, scope)
                    if isinstance(got, EnumMember):
                        got = self.enum_str(got)
                    if not is_known(got) or v.format_spec is not None:
                        return Unknown(f"f-string part {ast.unparse(v.value)}")
                    parts.append(str(got))
            return "".join(parts)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return self._eval_sequence(node, scope)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values, strict=True):
                value = self.eval(v, scope)
                if k is None:
                    if isinstance(value, dict):
                        out.update(value)
                    else:
                        return Unknown("dict unpacking of an unknown mapping")
                else:
                    key = self.eval(k, scope)
                    try:
                        out[key] = value
                    except TypeError:
                        return Unknown("unhashable dict key")
            return out
        if isinstance(node, ast.BinOp):
            return _binop(node.op, self.eval(node.left, scope), self.eval(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand, scope)
            if not is_known(operand):
                return Unknown(f"unary on {ast.unparse(node.operand)}")
            try:
                return {ast.USub: lambda x: -x, ast.UAdd: lambda x: +x, ast.Not: lambda x: not x,
                        ast.Invert: lambda x: ~x}[type(node.op)](operand)  # fmt: skip
            except TypeError:
                return Unknown("unary on a non-number")
        if isinstance(node, ast.BoolOp | ast.Compare):
            for sub in ast.iter_child_nodes(node):
                if isinstance(sub, ast.expr):
                    self.eval(sub, scope)
            return Unknown(f"condition {ast.unparse(node)}")
        if isinstance(node, ast.IfExp):
            self.eval(node.test, scope)
            body, orelse = self.eval(node.body, scope), self.eval(node.orelse, scope)
            return body if body == orelse else Unknown(f"conditional {ast.unparse(node)}")
        if isinstance(node, ast.Attribute):
            return self._eval_attribute(node, scope)
        if isinstance(node, ast.Subscript):
            return self._eval_subscript(node, scope)
        if isinstance(node, ast.Call):
            return self._eval_call(node, scope)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            return self._eval_comprehension(node, scope)
        if isinstance(node, ast.Starred):
            return self.eval(node.value, scope)
        if isinstance(node, ast.NamedExpr):
            value = self.eval(node.value, scope)
            self._bind(node.target, value, scope)
            return value
        if isinstance(node, ast.Await):
            self.eval(node.value, scope)
        return Unknown(f"expression {type(node).__name__}")

    def _eval_sequence(self, node: ast.List | ast.Tuple | ast.Set, scope: Scope) -> Any:
        items: list[Any] = []
        head: Unknown | Param | None = None
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                value = self.eval(elt.value, scope)
                seq = _iterate(self, value)
                if seq is not None:
                    items.extend(seq)
                elif not items and head is None and isinstance(value, Unknown | Param | Tail):
                    head, items = _split_tail(value)
                else:
                    return Unknown(f"starred {ast.unparse(elt.value)}")
            else:
                items.append(self.eval(elt, scope))
        if head is not None:
            return Tail(head, tuple(items))
        if isinstance(node, ast.Tuple):
            return tuple(items)
        if isinstance(node, ast.Set):
            try:
                return set(items)
            except TypeError:
                return Unknown("unhashable set item")
        return items

    def _eval_attribute(self, node: ast.Attribute, scope: Scope) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id == scope.self_name:
            bound = scope.vars.get(node.value.id)
            if isinstance(bound, EnumMember):  # evaluating an enum's __str__
                return {"value": bound.value, "name": bound.name}.get(
                    node.attr, Unknown(f"self.{node.attr}"))
            key = f"self.{node.attr}"
            if key in scope.vars:
                return scope.vars[key]
            if scope.cls is not None:
                return self.class_attr(scope.cls, node.attr)
            return Unknown(f"self.{node.attr}")
        base = self.eval(node.value, scope)
        if isinstance(base, ModuleRef):
            sub = f"{base.module}.{node.attr}"
            if sub in self.pkg.modules:
                return ModuleRef(sub)
            if base.module in self.pkg.modules:
                return self.global_value(base.module, node.attr)
            return Unknown(f"{sub} not in the package")
        if isinstance(base, External):
            return External(f"{base.qualname}.{node.attr}")
        if isinstance(base, ClassRef):
            return self.class_attr(base, node.attr)
        if isinstance(base, EnumMember):
            if node.attr == "value":
                return base.value
            if node.attr == "name":
                return base.name
        return Unknown(f"attribute {ast.unparse(node)}")

    def _eval_subscript(self, node: ast.Subscript, scope: Scope) -> Any:
        base = self.eval(node.value, scope)
        if isinstance(node.slice, ast.Slice):
            parts = [self.eval(p, scope) if p is not None else None
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]  # fmt: skip
            if isinstance(base, list | tuple | str) and all(is_known(p) for p in parts):
                try:
                    return base[slice(*parts)]
                except TypeError:
                    return Unknown("bad slice")
            return Unknown(f"slice of {ast.unparse(node.value)}")
        index = self.eval(node.slice, scope)
        if isinstance(base, External) and isinstance(index, External):
            return External(f"{base.qualname}[{index.qualname}]")
        if isinstance(base, list | tuple | str | dict) and is_known(index):
            try:
                return base[index]
            except (IndexError, KeyError, TypeError):
                return Unknown(f"missing item {ast.unparse(node)}")
        if isinstance(index, External) and index.qualname.split(".")[-1] in PROM_TYPES:
            # metric_types[Counter]: the class passed in for Counter.
            return External(f"metric_types[{index.qualname}]")
        return Unknown(f"subscript {ast.unparse(node)}")

    def _eval_comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, scope: Scope
    ) -> Any:
        inner = Scope(scope.module, scope.cls, scope.function, dict(scope.vars), scope.params,
                      scope.conditions, scope.self_name)  # fmt: skip
        results: list[Any] = []
        known = True

        def run(generators: list[ast.comprehension]) -> None:
            nonlocal known
            if not generators:
                if isinstance(node, ast.DictComp):
                    results.append((self.eval(node.key, inner), self.eval(node.value, inner)))
                else:
                    results.append(self.eval(node.elt, inner))
                return
            gen, rest = generators[0], generators[1:]
            source = self.eval(gen.iter, inner)
            items = _iterate_any(self, source)
            if isinstance(source, Alternatives):
                known = False
            if items is None:
                known = False
                self._bind(gen.target, Unknown(f"loop over {ast.unparse(gen.iter)}"), inner)
                run(rest)
                return
            for item in items[:_MAX_LOOP]:
                self._bind(gen.target, item, inner)
                if gen.ifs:  # a filter we cannot decide: the item may or may not be there
                    for cond in gen.ifs:
                        self.eval(cond, inner)
                    known = False
                run(rest)

        run(list(node.generators))
        if isinstance(node, ast.DictComp):
            out: dict[Any, Any] = {}
            for k, v in results:
                try:
                    out[k] = v
                except TypeError:
                    return Unknown("unhashable dict key")
            return out if known else _PartialDict(out)
        if not known:
            return _PartialList(results)
        return set(results) if isinstance(node, ast.SetComp) else results

    # -- calls ----------------------------------------------------------------------------

    def _eval_call(self, node: ast.Call, scope: Scope) -> Any:
        kind = self._metric_kind(node, scope)
        if kind is not None:
            return self._record(kind, node, scope)
        func = node.func
        # Arguments first, as Python does (they may construct metrics themselves).
        args = [self.eval(a, scope) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, scope) for k in node.keywords if k.arg is not None}
        for k in node.keywords:
            if k.arg is None:
                self.eval(k.value, scope)
        self._note_forwards(node, scope)
        if _is_super_init(func) and scope.cls is not None:
            self._inherit_init(scope, args, kwargs)
            return None
        if isinstance(func, ast.Attribute):
            base = self.eval(func.value, scope)
            if isinstance(base, MetricRef):
                if func.attr == "labels":
                    self._observe_labels(base, node, args, kwargs)
                return Unknown(f"{func.attr}() of a metric")
            if isinstance(base, External) and base.qualname == "prometheus_client" and (
                func.attr == "disable_created_metrics"
            ):
                self.disable_created.append(f"{scope.module.path}:{node.lineno}")
            method = _method(base, func.attr, args, kwargs)
            if method is not _NO_METHOD:
                return method
            callee = self._eval_attribute(func, scope)
        else:
            callee = self.eval(func, scope)
        if isinstance(callee, External):
            if callee.qualname == "prometheus_client.disable_created_metrics":
                self.disable_created.append(f"{scope.module.path}:{node.lineno}")
            return _builtin(self, callee.qualname, args, kwargs)
        if isinstance(callee, FunctionRef):
            return self._known_helper(callee, node, args, kwargs)
        return Unknown(f"call {ast.unparse(func)}()")

    def _inherit_init(self, scope: Scope, args: list[Any], kwargs: dict[str, Any]) -> None:
        """``super().__init__(...)``: bind the ``self.x = param`` a base ``__init__`` makes."""
        assert scope.cls is not None
        for base in self.class_bases(scope.cls):
            found = self.class_def(base) if isinstance(base, ClassRef) else None
            if found is None:
                continue
            init = next((s for s in found[1].body if isinstance(s, ast.FunctionDef)
                         and s.name == "__init__"), None)  # fmt: skip
            if init is None:
                continue
            params = [a.arg for a in (*init.args.posonlyargs, *init.args.args)][1:]
            bound = dict(zip(params, args, strict=False))
            bound.update({k: v for k, v in kwargs.items() if k is not None})
            for stmt in init.body:
                if (
                    isinstance(stmt, ast.Assign | ast.AnnAssign)
                    and isinstance(target := (stmt.targets[0] if isinstance(stmt, ast.Assign)
                                              else stmt.target), ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and isinstance(stmt.value, ast.Name)
                    and stmt.value.id in bound
                ):
                    scope.vars[f"self.{target.attr}"] = bound[stmt.value.id]
            return

    def _metric_kind(self, node: ast.Call, scope: Scope) -> str | None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in CLS_ATTRS:
            return CLS_ATTRS[func.attr]
        if isinstance(func, ast.Name | ast.Attribute | ast.Subscript):
            if isinstance(func, ast.Name) and func.id in scope.vars:
                value = scope.vars[func.id]
            elif isinstance(func, ast.Name) and func.id in scope.params:
                return None
            else:
                value = self.eval(func, scope)
            if isinstance(value, External):
                q = value.qualname
                if q.startswith("metric_types[") and q.endswith("]"):
                    q = q[len("metric_types[") : -1]
                mod, _, name = q.rpartition(".")
                if mod == "prometheus_client" or mod.startswith("prometheus_client."):
                    return PROM_TYPES.get(name)
        return None

    def _record(self, kind: str, node: ast.Call, scope: Scope) -> Any:
        kw: dict[str, Any] = {}
        for k in node.keywords:
            if k.arg is not None:
                kw[k.arg] = self.eval(k.value, scope)
            else:
                spread = self.eval(k.value, scope)
                if isinstance(spread, dict):
                    kw.update({str(a): b for a, b in spread.items()})
                else:
                    for key in ("name", "documentation", "labelnames", "buckets"):
                        kw.setdefault(key, Unknown(f"**{ast.unparse(k.value)}"))
        positional = [self.eval(a, scope) for a in node.args]
        for i, key in enumerate(("name", "documentation", "labelnames")):
            if i < len(positional):
                kw.setdefault(key, positional[i])
        name = kw.get("name", Unknown("no name argument"))
        prefix = [kw.get("namespace", ""), kw.get("subsystem", "")]
        if is_known(name) and all(isinstance(p, str) for p in prefix) and any(prefix):
            name = "_".join(p for p in (*prefix, name) if p)
        unit = kw.get("unit", "")
        if isinstance(name, str) and isinstance(unit, str) and unit and not name.endswith(unit):
            name = f"{name}_{unit}"
        buckets: Any = kw.get("buckets", PROMETHEUS_DEFAULT_BUCKETS) if kind == "histogram" else None
        labels = kw.get("labelnames", [])
        key = (scope.module.path, node.lineno, repr(name))
        if key in self._seen:
            for i, d in enumerate(self.definitions):
                if (d.file, d.line, repr(d.name)) == key:
                    return MetricRef(i)
        self._seen.add(key)
        doc = kw.get("documentation", Unknown("no documentation"))
        cls = scope.cls.qualname if scope.cls else None
        record = Definition(kind, name, doc, labels, buckets, scope.module.path, node.lineno, cls,
                            scope.function, scope.conditions)  # fmt: skip
        self.definitions.append(record)
        return MetricRef(len(self.definitions) - 1)

    def _observe_labels(
        self, ref: MetricRef, node: ast.Call, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        d = self.definitions[ref.index]
        if kwargs:
            d.label_obs.append(("kw", kwargs))
        if args:
            starred = [isinstance(a, ast.Starred) for a in node.args]
            if any(starred):
                after = starred[::-1].index(True)  # items after the last star
                d.label_obs.append(("right", list(args[len(args) - after :]) if after else []))
            else:
                d.label_obs.append(("left", list(args)))

    def _note_forwards(self, node: ast.Call, scope: Scope) -> None:
        """Record literal label-like lists passed on under their own name (``labelnames``)."""
        pairs = [(a.id, a) for a in node.args if isinstance(a, ast.Name)]
        pairs += [(k.arg, k.value) for k in node.keywords
                  if k.arg is not None and isinstance(k.value, ast.Name)]  # fmt: skip
        for param, arg in pairs:
            if not isinstance(arg, ast.Name):
                continue
            value = self.lookup(arg.id, scope)
            if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
                sites = self.forwards.setdefault(param, {}).setdefault(tuple(value), set())
                sites.add(f"{scope.module.path}:{node.lineno}")

    def _known_helper(
        self, fn: FunctionRef, node: ast.Call, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """The few vLLM helpers whose result the contract needs; anything else is unknown."""
        if fn.name == "create_metric_per_engine" and args and isinstance(args[0], MetricRef):
            per_engine = args[1] if len(args) > 1 else kwargs.get("per_engine_labelvalues")
            values = per_engine.items if isinstance(per_engine, _PartialDict) else per_engine
            if isinstance(values, dict):
                d = self.definitions[args[0].index]
                for v in values.values():
                    if isinstance(v, Tail):
                        d.label_obs.append(("right", list(v.items)))
                    elif isinstance(v, list | tuple):
                        d.label_obs.append(("left", list(v)))
            return Unknown("per-engine children")
        if fn.name == "build_1_2_5_buckets":
            if args and isinstance(args[0], int):
                return _build_buckets([1, 2, 5], args[0])
            return Symbolic(ONE_TWO_FIVE)
        if fn.name == "build_buckets":
            mantissas = args[0] if args else kwargs.get("mantissa_lst")
            limit = args[1] if len(args) > 1 else kwargs.get("max_value")
            if isinstance(mantissas, list) and isinstance(limit, int):
                return _build_buckets(mantissas, limit)
            if mantissas == [1, 2, 5]:
                return Symbolic(ONE_TWO_FIVE)
            return Symbolic(f"mantissas {mantissas} x 10^k up to max_model_len")
        if fn.name == "histogram_buckets" and args and isinstance(args[0], str):
            if args[0] == "request_tokens":
                return Symbolic(ONE_TWO_FIVE)
            table = self.global_value(fn.module, "_STATIC_FAMILY_DEFAULTS")
            if isinstance(table, dict) and args[0] in table:
                return list(table[args[0]])
            return Unknown(f"bucket family {args[0]!r}")
        return Unknown(f"call {fn.name}()")


# -- helpers --------------------------------------------------------------------------------


class _PartialList(list):
    """A comprehension over something unknown: its items are examples, not the whole list."""


@dataclass
class _PartialDict:
    items: dict[Any, Any]


_NO_METHOD = object()


def _is_super_init(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "__init__"
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "super"
    )


def _negate(test: ast.expr) -> str:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.unparse(test.operand)
    return f"not ({ast.unparse(test)})"


def _merge(before: dict[str, Any], body: dict[str, Any], orelse: dict[str, Any], test: str) -> dict[str, Any]:
    """Variables after an ``if``: a value both branches agree on, else unknown.

    A name bound in one branch only (unbound before) keeps that branch's value: reading it later
    implies that branch ran.
    """
    out: dict[str, Any] = {}
    for key in {*before, *body, *orelse}:
        values = [b[key] for b in (body, orelse) if key in b]
        # ``name = None`` then set in a branch: None is the "not set" sentinel, not a value.
        if len(values) == 2 and (values[0] is None) != (values[1] is None):
            values = [v for v in values if v is not None]
        if len(values) == 2 and values[0] is not values[1] and values[0] != values[1]:
            out[key] = Alternatives((values[0], values[1]), test)
        else:
            out[key] = values[0]
    return out


def _assigned_names(stmt: ast.stmt) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _ends_flow(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], ast.Return | ast.Raise | ast.Continue | ast.Break)


def _simple_assign(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    return None, None


def _split_tail(value: Unknown | Param | Tail) -> tuple[Unknown | Param, list[Any]]:
    if isinstance(value, Tail):
        return value.head, list(value.items)
    return value, []


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Add):
        if isinstance(left, Unknown | Param | Tail) and isinstance(right, list | tuple):
            head, items = _split_tail(left)
            return Tail(head, (*items, *right))
        if (isinstance(left, list) and isinstance(right, list)) or (
            isinstance(left, tuple) and isinstance(right, tuple)
        ):
            return left + right
    if not (is_known(left) and is_known(right)) or isinstance(left, _PartialList):
        return Unknown("arithmetic on an unknown value")
    ops = {
        ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b,
        ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a**b,
    }  # fmt: skip
    fn = ops.get(type(op))
    if fn is None:
        return Unknown(f"operator {type(op).__name__}")
    try:
        if isinstance(op, ast.Pow) and isinstance(right, int) and right > 256:
            return Unknown("power too large")
        if isinstance(op, ast.Mult) and isinstance(right, int) and right > 10_000:
            return Unknown("repetition too large")
        return fn(left, right)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return Unknown(f"operator {type(op).__name__} on {type(left).__name__}")


def _iterate(ex: Extractor, value: Any) -> list[Any] | None:
    if isinstance(value, _PartialList | Alternatives):
        return None
    if isinstance(value, list | tuple | str):
        return list(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, range):
        return list(value)
    if isinstance(value, ClassRef):
        return ex.enum_members(value)  # type: ignore[return-value]
    return None


def _iterate_any(ex: Extractor, value: Any) -> list[Any] | None:
    """Items of ``value``; for alternatives, the items of every option (each may run)."""
    if isinstance(value, Alternatives):
        options = [_iterate(ex, o) for o in value.options]
        if any(o is None for o in options):
            return None
        return [item for o in options for item in o]  # type: ignore[union-attr]
    return _iterate(ex, value)


def _build_buckets(mantissas: list[int], max_value: int) -> list[float]:
    out: list[float] = []
    exponent = 0
    while True:
        for m in mantissas:
            value = m * 10**exponent
            if value > max_value:
                return out
            out.append(float(value))
        exponent += 1


def _method(base: Any, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if isinstance(base, dict) and not kwargs:
        if name == "keys":
            return list(base.keys())
        if name == "values":
            return list(base.values())
        if name == "items":
            return [tuple(kv) for kv in base.items()]
        if name == "get" and args and is_known(args[0]):
            return base.get(args[0], args[1] if len(args) > 1 else None)
        if name == "copy":
            return dict(base)
    if isinstance(base, list | tuple) and name == "copy" and not args:
        return list(base)
    if isinstance(base, str) and all(is_known(a) for a in args) and not kwargs:
        if name in {"join", "upper", "lower", "replace", "strip", "rstrip", "lstrip", "format"}:
            if name == "join":
                items = args[0] if args else None
                if isinstance(items, list | tuple) and all(isinstance(i, str) for i in items):
                    return base.join(items)
                return Unknown("join of unknown items")
            try:
                return getattr(base, name)(*args)
            except (TypeError, ValueError, IndexError, KeyError):
                return Unknown(f"str.{name}")
    return _NO_METHOD


def _builtin(ex: Extractor, qualname: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    name = qualname.removeprefix("builtins.")
    if qualname.startswith("builtins.") and not kwargs:
        if name == "range" and all(isinstance(a, int) for a in args) and 1 <= len(args) <= 3:
            return range(*args)
        if name in {"list", "tuple", "sorted", "set", "frozenset", "reversed"} and len(args) == 1:
            items = _iterate(ex, args[0])
            if items is None:
                return Unknown(f"{name}() of an unknown value")
            if name == "sorted":
                try:
                    return sorted(items)
                except TypeError:
                    return Unknown("sorted() of mixed items")
            if name == "reversed":
                return items[::-1]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[name](items)
        if name == "str" and len(args) == 1:
            if isinstance(args[0], EnumMember):
                return ex.enum_str(args[0])
            return str(args[0]) if is_known(args[0]) else Unknown("str() of an unknown value")
        if name in {"int", "float", "len", "abs", "round", "min", "max"} and args:
            if all(is_known(a) for a in args):
                try:
                    return getattr(builtins, name)(*args)
                except (TypeError, ValueError):
                    return Unknown(f"{name}() failed")
        if name in {"zip", "enumerate"}:
            seqs = [_iterate(ex, a) if name == "zip" or i == 0 else None for i, a in enumerate(args)]
            if name == "zip" and all(s is not None for s in seqs):
                return [tuple(t) for t in zip(*seqs, strict=False)]  # type: ignore[misc]
            if name == "enumerate" and seqs and seqs[0] is not None:
                return list(enumerate(seqs[0]))
    if qualname == "builtins.dict" and not args:
        return dict(kwargs)
    return Unknown(f"call {qualname}()")
