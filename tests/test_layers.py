"""The layering contracts in pyproject.toml hold (the same check `make lint` runs)."""

import subprocess
import sys
from pathlib import Path

from pdobs.core import paths


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=paths.ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_harness_is_not_shipped():
    import tomllib

    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(pattern.startswith(("harness", "tests", "bench", "tools")) for pattern in include)
