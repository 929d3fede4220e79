"""The pinned external binaries that `make tools` installs into .tools/bin."""

import json
import os
from pathlib import Path

from pdobs.core.paths import TOOLS_BIN

VERSIONS_FILE = TOOLS_BIN.parent / "versions.json"

# Major line -> promtool binary: rule tests run on both, since users run both majors.
PROMTOOLS: dict[str, str] = {"3.5": "promtool", "2.53": "promtool-2"}


class ToolMissingError(RuntimeError):
    """A pinned tool is absent; the fix is always the same make target."""


def tool_path(name: str) -> Path:
    path = TOOLS_BIN / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolMissingError(f"'{name}' is not installed in .tools/bin: run `make tools`")
    return path


def installed_versions() -> dict[str, str]:
    """Tool name -> exact version, as recorded by the installer."""
    try:
        data = json.loads(VERSIONS_FILE.read_text())
    except FileNotFoundError as exc:
        raise ToolMissingError("no tools are installed in .tools/bin: run `make tools`") from exc
    return {str(name): str(version) for name, version in data.items()}
