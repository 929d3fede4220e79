"""The pinned external binaries that `make tools` installs into .tools/bin."""

import json
import os
from pathlib import Path

from pdobs.core import paths

# Major line -> promtool binary: rule tests run on both, since users run both majors.
PROMTOOLS: dict[str, str] = {"3.5": "promtool", "2.53": "promtool-2"}


class ToolMissingError(RuntimeError):
    """A pinned tool is absent; the message says how to get it."""


def _how_to_get() -> str:
    if paths.IN_CHECKOUT and not os.environ.get(paths.TOOLS_ENV):
        return "run `make tools`"
    return (f"run `make tools` in a clone of the project and set {paths.TOOLS_ENV} to its .tools folder "
            "(or pass --tools-dir)")


def tool_path(name: str) -> Path:
    folder = paths.tools_dir() / "bin"
    path = folder / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = ".tools/bin" if paths.IN_CHECKOUT and folder == paths.ROOT / ".tools" / "bin" else str(folder)
        raise ToolMissingError(f"'{name}' is not installed in {where}: {_how_to_get()}")
    return path


def installed_versions() -> dict[str, str]:
    """Tool name -> exact version, as recorded by the installer."""
    versions = paths.tools_dir() / "versions.json"
    try:
        data = json.loads(versions.read_text())
    except FileNotFoundError as exc:
        raise ToolMissingError(f"no tools are installed in {versions.parent / 'bin'}: {_how_to_get()}") from exc
    return {str(name): str(version) for name, version in data.items()}
