"""Just enough of Go to read metric definitions: a tokenizer and an expression reader.

It understands literals, string concatenation, identifiers (package-level ``const``/``var``,
resolved across the files of a package and across packages of the same module), composite
literals (``[]string{...}``, ``prometheus.CounterOpts{...}``), ``append`` and the
``prometheus`` bucket helpers. Whatever else it meets stays an :class:`Unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.contract.values import Unknown

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<char>'(?:\\.|[^'\\\n])*')
  | (?P<num>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|\.\.\.|&&|\|\||<-|==|!=|<=|>=|<<|>>|\+\+|--|[-+*/%&|^<>=!(){}\[\],;:.~])
    """,
    re.S | re.X,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    line: int


def tokenize(source: str) -> list[Tok]:
    out: list[Tok] = []
    pos, line = 0, 1
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:  # a character Go allows that we do not care about (unicode in idents)
            pos += 1
            continue
        kind = m.lastgroup or ""
        text = m.group()
        if kind not in {"ws", "comment"}:
            out.append(Tok(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return out


def unquote(tok: Tok) -> str:
    if tok.kind == "raw":
        return tok.text[1:-1]
    body = tok.text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@dataclass(frozen=True)
class Ref:
    """An identifier, possibly qualified by an import alias (``pkg.Name``)."""

    qual: str | None
    name: str


@dataclass(frozen=True)
class Call:
    func: Ref | Any
    args: tuple[Any, ...]
    spread: bool  # last argument written ``x...``
    line: int


@dataclass(frozen=True)
class Composite:
    """``T{...}``: ``fields`` for keyed elements, ``items`` for positional ones."""

    type: str
    fields: dict[str, Any]
    items: tuple[Any, ...]


@dataclass
class GoFile:
    path: str
    package: str
    imports: dict[str, str]  # alias -> import path
    decls: dict[str, Any]  # package-level const/var name -> parsed expression
    tokens: list[Tok] = field(repr=False, default_factory=list)


class Parser:
    """Reads one Go file's package clause, imports and package-level declarations."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.toks = tokenize(source)
        self.i = 0

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.text == text and t.kind in {"op", "ident"}

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse_file(self) -> GoFile:
        package = ""
        imports: dict[str, str] = {}
        decls: dict[str, Any] = {}
        depth = 0
        while self.i < len(self.toks):
            t = self.take()
            if t.kind == "op" and t.text in "({[":
                depth += 1
                continue
            if t.kind == "op" and t.text in ")}]":
                depth -= 1
                continue
            if depth != 0 or t.kind != "ident":
                continue
            if t.text == "package" and self.peek():
                package = self.take().text
            elif t.text == "import":
                self._imports(imports)
            elif t.text in {"const", "var"}:
                self._decl_group(decls)
        return GoFile(self.path, package, imports, decls, self.toks)

    def _imports(self, imports: dict[str, str]) -> None:
        def one() -> None:
            alias = None
            if self.peek() and self.peek().kind in {"ident", "op"} and self.peek().text != "(":  # type: ignore[union-attr]
                if self.peek().kind == "ident" or self.peek().text in {".", "_"}:  # type: ignore[union-attr]
                    alias = self.take().text
            t = self.peek()
            if t is not None and t.kind == "str":
                self.take()
                path = unquote(t)
                imports[alias or path.rsplit("/", 1)[-1]] = path

        if self.at("("):
            self.take()
            while self.peek() is not None and not self.at(")"):
                before = self.i
                one()
                if self.i == before:
                    self.take()
            self.take()
        else:
            one()

    def _decl_group(self, decls: dict[str, Any]) -> None:
        if self.at("("):
            self.take()
            while self.peek() is not None and not self.at(")"):
                before = self.i
                self._spec(decls)
                if self.i == before:
                    self.take()
            if self.peek() is not None:
                self.take()
        else:
            self._spec(decls)

    def _spec(self, decls: dict[str, Any]) -> None:
        first = self.peek()
        if first is None or first.kind != "ident":
            return
        names = [self.take().text]
        while self.at(","):
            self.take()
            if self.peek() and self.peek().kind == "ident":  # type: ignore[union-attr]
                names.append(self.take().text)
        line = first.line
        # Skip a type up to "=" on the same line; a spec without "=" ends at the line's end.
        depth = 0
        while self.peek() is not None:
            t = self.peek()
            assert t is not None
            if depth == 0 and t.text == "=" and t.kind == "op":
                break
            if t.line != line and depth == 0:
                return
            if t.text in "([{" and t.kind == "op":
                depth += 1
            elif t.text in ")]}" and t.kind == "op":
                if depth == 0:
                    return
                depth -= 1
            self.take()
        if self.peek() is None:
            return
        self.take()  # "="
        values = [self.expr()]
        while self.at(","):
            self.take()
            values.append(self.expr())
        for name, value in zip(names, values, strict=False):
            decls[name] = value

    # -- expressions ----------------------------------------------------------------------

    def expr(self) -> Any:
        left = self.unary()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().text in {"+", "-", "*", "/"}:  # type: ignore[union-attr]
            op = self.take().text
            right = self.unary()
            left = ("binop", op, left, right)
        return left

    def unary(self) -> Any:
        if self.at("&") or self.at("*"):
            self.take()
            return self.unary()
        if self.at("-"):
            self.take()
            return ("neg", self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        t = self.peek()
        if t is None:
            return Unknown("end of file")
        if t.kind in {"str", "raw"}:
            self.take()
            return unquote(t)
        if t.kind == "num":
            self.take()
            text = t.text.replace("_", "")
            if text.lower().startswith("0x"):
                return int(text, 16)
            return float(text) if any(c in text for c in ".eE") else int(text)
        if t.kind == "ident":
            self.take()
            if self.at(".") and self.peek(1) is not None and self.peek(1).kind == "ident":  # type: ignore[union-attr]
                self.take()
                return Ref(t.text, self.take().text)
            return Ref(None, t.text)
        if self.at("["):
            return self._typed_literal()
        if self.at("("):
            self.take()
            inner = self.expr()
            if self.at(")"):
                self.take()
            return inner
        if self.at("func"):
            return self._skip_func()
        self.take()
        return Unknown(f"token {t.text!r}")

    def _typed_literal(self) -> Any:
        """``[]T{...}`` or ``[N]T{...}``; ``map[K]V{...}`` arrives through an ident."""
        type_parts = []
        while self.peek() is not None and not self.at("{"):
            tok = self.take()
            type_parts.append(tok.text)
            if len(type_parts) > 12:
                return Unknown("type too long")
        return self._composite("".join(type_parts))

    def _composite(self, type_name: str) -> Composite:
        self.take()  # "{"
        fields: dict[str, Any] = {}
        items: list[Any] = []
        while self.peek() is not None and not self.at("}"):
            if self.at("{"):
                value: Any = self._composite("")
            else:
                value = self.expr()
            if self.at(":"):
                self.take()
                key = value.name if isinstance(value, Ref) and value.qual is None else repr(value)
                fields[key] = self._composite("") if self.at("{") else self.expr()
            else:
                items.append(value)
            if self.at(","):
                self.take()
            elif not self.at("}"):
                self.take()  # something we do not read; keep going
        if self.peek() is not None:
            self.take()
        return Composite(type_name, fields, tuple(items))

    def _skip_func(self) -> Unknown:
        """A function literal: skip its signature and body."""
        self.take()
        depth = 0
        while self.peek() is not None:
            t = self.take()
            if t.text == "{" and t.kind == "op":
                depth += 1
            elif t.text == "}" and t.kind == "op":
                depth -= 1
                if depth == 0:
                    break
        return Unknown("function literal")

    def postfix(self, value: Any) -> Any:
        while True:
            if self.at("("):
                line = self.take().line
                args: list[Any] = []
                spread = False
                while self.peek() is not None and not self.at(")"):
                    args.append(self.expr())
                    if self.at("..."):
                        self.take()
                        spread = True
                    if self.at(","):
                        self.take()
                    elif not self.at(")"):
                        self.take()
                if self.peek() is not None:
                    self.take()
                value = Call(value, tuple(args), spread, line)
            elif self.at("{") and isinstance(value, Ref) and _looks_like_type(value):
                value = self._composite(f"{value.qual}.{value.name}" if value.qual else value.name)
            elif self.at(".") and self.peek(1) is not None and self.peek(1).kind == "ident":  # type: ignore[union-attr]
                self.take()
                value = ("attr", value, self.take().text)
            elif self.at("["):
                self.take()
                index = self.expr()
                if self.at("]"):
                    self.take()
                value = ("index", value, index)
            else:
                return value


def _looks_like_type(ref: Ref) -> bool:
    """``prometheus.CounterOpts{`` is a literal; ``x {`` after an if-condition is not."""
    return ref.name[:1].isupper() and (ref.qual is not None or ref.name.endswith("Opts"))


# Helpers whose meaning we know, by (import path, name).
PROM = "github.com/prometheus/client_golang/prometheus"
COMPBASE = "k8s.io/component-base/metrics"
DEF_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


@dataclass
class Resolver:
    """Evaluates parsed expressions against the packages of one source tree."""

    files_in_dir: Callable[[str], list[GoFile]]
    module_path: str
    module_dirs: dict[str, str]  # other modules' import-path prefix -> loader key
    _busy: set[tuple[str, str]] = field(default_factory=set)

    def value(self, expr: Any, f: GoFile, depth: int = 0) -> Any:
        if depth > 40:
            return Unknown("expression too deep")
        if isinstance(expr, str | int | float | Unknown):
            return expr
        if isinstance(expr, tuple) and expr and expr[0] == "binop":
            _, op, a, b = expr
            left, right = self.value(a, f, depth + 1), self.value(b, f, depth + 1)
            if isinstance(left, str) and isinstance(right, str) and op == "+":
                return left + right
            if isinstance(left, int | float) and isinstance(right, int | float):
                return {"+": left + right, "-": left - right, "*": left * right,
                        "/": left / right if right else Unknown("division by zero")}[op]  # fmt: skip
            return Unknown(f"operator {op}")
        if isinstance(expr, tuple) and expr and expr[0] == "neg":
            inner = self.value(expr[1], f, depth + 1)
            return -inner if isinstance(inner, int | float) else Unknown("negation")
        if isinstance(expr, Ref):
            return self.ref(expr, f, depth)
        if isinstance(expr, Composite):
            if expr.type.startswith("[]") or expr.type.startswith("["):
                return [self.value(v, f, depth + 1) for v in expr.items]
            return Composite(expr.type, {k: self.value(v, f, depth + 1) for k, v in expr.fields.items()},
                             tuple(self.value(v, f, depth + 1) for v in expr.items))  # fmt: skip
        if isinstance(expr, Call):
            return self.call(expr, f, depth)
        return Unknown(f"expression {type(expr).__name__}")

    def import_path(self, ref: Ref, f: GoFile) -> str | None:
        return f.imports.get(ref.qual) if ref.qual else None

    def ref(self, ref: Ref, f: GoFile, depth: int) -> Any:
        if ref.qual is None:
            if ref.name in {"nil"}:
                return None
            return self._decl(_dir(f.path), ref.name, depth)
        path = self.import_path(ref, f)
        if path is None:
            return Unknown(f"{ref.qual}.{ref.name}: no such import")
        if path == PROM and ref.name == "DefBuckets":
            return list(DEF_BUCKETS)
        if path == COMPBASE and ref.name.isupper():
            return ref.name  # stability levels: ALPHA, BETA, STABLE, ...
        target = self._dir_of_import(path)
        if target is None:
            return Unknown(f"{path}.{ref.name} is outside the tree")
        return self._decl(target, ref.name, depth)

    def _dir_of_import(self, path: str) -> str | None:
        if path == self.module_path:
            return ""
        if path.startswith(self.module_path + "/"):
            return path[len(self.module_path) + 1 :]
        for prefix, key in self.module_dirs.items():
            if path == prefix or path.startswith(prefix + "/"):
                return f"{key}{path[len(prefix):].lstrip('/')}"
        return None

    def _decl(self, directory: str, name: str, depth: int) -> Any:
        key = (directory, name)
        if key in self._busy:
            return Unknown(f"cyclic {name}")
        for gf in self.files_in_dir(directory):
            if name in gf.decls:
                self._busy.add(key)
                try:
                    return self.value(gf.decls[name], gf, depth + 1)
                finally:
                    self._busy.discard(key)
        return Unknown(f"{name} not found in {directory or '.'}")

    def call(self, c: Call, f: GoFile, depth: int) -> Any:
        func = c.func
        args = [self.value(a, f, depth + 1) for a in c.args]
        if isinstance(func, Ref) and func.qual is None and func.name == "append":
            if not args or not isinstance(args[0], list):
                return Unknown("append to an unknown slice")
            out = list(args[0])
            rest = args[1:]
            if c.spread and rest:
                *plain, last = rest
                out += plain
                if not isinstance(last, list):
                    return Unknown("append of an unknown slice")
                out += last
            else:
                out += rest
            return out
        if isinstance(func, Ref) and func.name == "HelpMsgWithStability" and len(args) >= 2:
            msg, level = args[0], args[1]
            if isinstance(msg, str) and isinstance(level, str):
                return f"[{level}] {msg}"
            return msg if isinstance(msg, str) else Unknown("help text")
        path = self.import_path(func, f) if isinstance(func, Ref) else None
        if path == PROM and isinstance(func, Ref):
            nums = [a for a in args if isinstance(a, int | float)]
            if func.name == "ExponentialBuckets" and len(nums) == 3:
                start, factor, count = nums
                return [start * factor**i for i in range(int(count))]
            if func.name == "LinearBuckets" and len(nums) == 3:
                start, width, count = nums
                return [start + width * i for i in range(int(count))]
            if func.name == "BuildFQName" and all(isinstance(a, str) for a in args):
                return "_".join(a for a in args if a)
        return Unknown(f"call {_func_text(func)}()")


def _func_text(func: Any) -> str:
    if isinstance(func, Ref):
        return f"{func.qual}.{func.name}" if func.qual else func.name
    return type(func).__name__


def _dir(path: str) -> str:
    return path.rpartition("/")[0]
