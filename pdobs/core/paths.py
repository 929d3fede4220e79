"""Where the project keeps things on disk.

The default config and its schema are package data, so they are found wherever the package is
installed. ROOT is the folder the packages sit in: a checkout, or site-packages once installed.
The docs and the tools folder only exist in a checkout; an installed package finds the runbooks in
its shared data folder and the tools through `PDOBS_TOOLS_DIR` (or the demo's --tools-dir).
"""

import os
import sys
import sysconfig
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
ROOT = PACKAGE.parent
DEFAULT_CONFIG = PACKAGE / "config" / "default.yaml"
CONFIG_SCHEMA = PACKAGE / "config" / "schema.yaml"
# A checkout has the tools installer beside the packages; site-packages has not.
IN_CHECKOUT = (ROOT / "tools" / "install_tools.py").is_file() and (ROOT / "pyproject.toml").is_file()
TOOLS_ENV = "PDOBS_TOOLS_DIR"
TOOLS_DIR = Path(os.environ.get(TOOLS_ENV) or ROOT / ".tools")
TOOLS_BIN = TOOLS_DIR / "bin"
# Where pyproject's data-files put the docs of an installed package (<prefix>/share/...).
SHARE_NAME = "llm-d-pd-observability"


def tools_dir() -> Path:
    """The tools folder now: PDOBS_TOOLS_DIR when set (read on every call, so --tools-dir can set
    it), else the checkout's .tools."""
    return Path(os.environ.get(TOOLS_ENV) or ROOT / ".tools")


def _installed_docs() -> Path:
    for scheme in (None, f"{os.name}_user"):
        try:
            data = Path(sysconfig.get_path("data", scheme) if scheme else sysconfig.get_path("data"))
        except KeyError:
            continue
        if (data / "share" / SHARE_NAME / "runbooks").is_dir():
            return data / "share" / SHARE_NAME
    return Path(sys.prefix) / "share" / SHARE_NAME


DOCS = ROOT / "docs" if IN_CHECKOUT else _installed_docs()
RUNBOOKS = DOCS / "runbooks"
