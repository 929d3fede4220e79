"""A Python package read from an archive (a wheel): modules, their imports and top-level names.

Nothing is imported or run. Top-level assignments are evaluated on demand by
:mod:`tools.contract.evaluate`, which asks this index where a name comes from.
"""

from __future__ import annotations

import ast
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Module:
    """One module of the package: its tree and what its top level binds."""

    name: str
    path: str
    source: str
    _tree: ast.Module | None = None
    assigns: dict[str, ast.expr] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    indexed: bool = False

    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            self._tree = ast.parse(self.source, filename=self.path)
        return self._tree

    @property
    def package(self) -> str:
        return self.name if self.path.endswith("__init__.py") else self.name.rpartition(".")[0]


def _module_name(path: str) -> str:
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


class Package:
    """The Python modules under ``root`` in a zip archive (a wheel or any zip of sources)."""

    def __init__(self, archive: Path, root: str = "vllm") -> None:
        self.archive = archive
        self.modules: dict[str, Module] = {}
        with zipfile.ZipFile(archive) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                name = info.filename
                if name.startswith(root + "/") and name.endswith(".py"):
                    text = zf.read(info).decode("utf-8", errors="replace")
                    self.modules[_module_name(name)] = Module(_module_name(name), name, text)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.modules[k] for k in sorted(self.modules))

    def module(self, name: str) -> Module | None:
        mod = self.modules.get(name)
        if mod is not None and not mod.indexed:
            self._index(mod)
        return mod

    def _index(self, mod: Module) -> None:
        """Record the top-level bindings, including those under ``if``/``try`` at top level."""
        mod.indexed = True
        try:
            body = list(mod.tree.body)
        except SyntaxError:
            return
        while body:
            stmt = body.pop(0)
            if isinstance(stmt, ast.If | ast.Try):
                body[0:0] = [*stmt.body, *getattr(stmt, "orelse", []), *getattr(stmt, "finalbody", [])]
                for handler in getattr(stmt, "handlers", []):
                    body[0:0] = handler.body
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        mod.assigns[target.id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                mod.assigns[stmt.target.id] = stmt.value
            elif isinstance(stmt, ast.ClassDef):
                mod.classes[stmt.name] = stmt
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                mod.functions[stmt.name] = stmt
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        mod.imports[alias.asname] = (alias.name, None)
                    else:
                        top = alias.name.split(".")[0]
                        mod.imports[top] = (top, None)
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ""
                if stmt.level:
                    pkg = mod.package.split(".")
                    pkg = pkg[: len(pkg) - (stmt.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                for alias in stmt.names:
                    mod.imports[alias.asname or alias.name] = (base, alias.name)
