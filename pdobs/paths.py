"""Where the project keeps things on disk, resolved from the repository root."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
DEFAULT_CONFIG = ROOT / "config" / "default.yaml"
CONFIG_SCHEMA = ROOT / "config" / "schema.yaml"
DOCS = ROOT / "docs"
RUNBOOKS = DOCS / "runbooks"
