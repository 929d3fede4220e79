"""Where the project keeps things on disk.

The default config and its schema are package data, so they are found wherever the package is
installed. ROOT is the checkout the package runs from; docs and the tools folder only exist in a
checkout (`PDOBS_TOOLS_DIR` points the tool finder elsewhere, e.g. for an installed package).
"""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
ROOT = PACKAGE.parent
DEFAULT_CONFIG = PACKAGE / "config" / "default.yaml"
CONFIG_SCHEMA = PACKAGE / "config" / "schema.yaml"
TOOLS_DIR = Path(os.environ.get("PDOBS_TOOLS_DIR") or ROOT / ".tools")
TOOLS_BIN = TOOLS_DIR / "bin"
DOCS = ROOT / "docs"
RUNBOOKS = DOCS / "runbooks"
