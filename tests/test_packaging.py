"""The package as a user installs it: `pip install <clone>` into a new venv, then `pdobs` from
another folder, with nothing of the checkout on the path.

The "clone" is a copy of the files git tracks (plus new, unignored ones), so what is not in the
repository cannot make this pass. pip resolves the pinned dependencies as a user's pip would.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from alerts.definitions import ALERTS
from pdobs import __version__
from pdobs.core import paths


def _clone(dest: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=paths.ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = paths.ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    return dest


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PDOBS_TOOLS_DIR", "VIRTUAL_ENV")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv, clone): `python -m venv` and `pip install <clone>`, as the README says."""
    root = tmp_path_factory.mktemp("packaging")
    clone = _clone(root / "clone")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(clone)], capture_output=True,
                          text=True, env=_env(), cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv, clone


def pdobs(venv: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "pdobs"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**_env(), **(env or {})}, timeout=300)


def test_pdobs_works_from_any_folder(installed, tmp_path):
    venv, _ = installed
    proc = pdobs(venv, tmp_path, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"pdobs {__version__} (llm-d P/D observability)\n"), proc.stderr

    proc = pdobs(venv, tmp_path, "build", "--out", "DIR")
    assert proc.returncode == 0, proc.stderr
    for rel in ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml", "dashboards/pd-coordinator.json",
                "alertmanager/alertmanager.yaml", "kubernetes/prometheus-operator"):
        assert (tmp_path / "DIR" / rel).exists(), rel
    assert proc.stdout == f"wrote 22 files to {tmp_path / 'DIR'}\n"
    assert "notice: runbook_url is still the project's default" in proc.stderr

    proc = pdobs(venv, tmp_path, "build")  # the default --out: ./build where the user is
    assert proc.returncode == 0 and (tmp_path / "build" / "prometheus" / "alerts.yaml").is_file(), proc.stderr

    for command in ("build", "doctor", "push", "demo", "docs"):
        proc = pdobs(venv, tmp_path, command, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: pdobs {command}"), (command, proc.stderr)
        assert "--config" in proc.stdout, command
    assert "--prometheus URL" in pdobs(venv, tmp_path, "doctor", "--help").stdout


def test_the_installed_package_stands_alone(installed, tmp_path):
    venv, clone = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pdobs.doctor, pdobs.core.paths as p; "
                            "print(p.ROOT, p.IN_CHECKOUT)"], capture_output=True, text=True, cwd=tmp_path,
                           env=_env())
    root, in_checkout = where.stdout.split()
    assert "site-packages" in root and in_checkout == "False", where.stdout + where.stderr

    # docs: the runbooks ship with the package, written out for publishing.
    proc = pdobs(venv, tmp_path, "docs")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "pdobs-docs" / "runbooks").glob("*.md"))
    assert written == sorted(f"{a.name}.md" for a in ALERTS)
    assert (tmp_path / "pdobs-docs" / "runbooks" / "PDPrefillIdle.md").read_text() == \
        (clone / "docs" / "runbooks" / "PDPrefillIdle.md").read_text()

    # demo: no tools installed beside site-packages; one line says how to get them.
    proc = pdobs(venv, tmp_path, "demo")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "run `make tools` in a clone of the project and set PDOBS_TOOLS_DIR" in proc.stderr
    assert "--tools-dir" in proc.stderr
    proc = pdobs(venv, tmp_path, "demo", "--list")
    assert proc.returncode == 0 and "collapsed_nixl_flat (default)" in proc.stdout


def test_the_wheel_carries_the_data_and_the_command(tmp_path):
    clone = _clone(tmp_path / "clone")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(clone)], check=True, env=_env(), capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"llm_d_pd_observability-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("pdobs/config/default.yaml", "pdobs/config/schema.yaml", "pdobs/demo/demo.yaml",
                   "dashboards/schema/dashboard.schema.json",
                   f"llm_d_pd_observability-{__version__}.data/data/share/llm-d-pd-observability/runbooks/"
                   "PDDisaggregationCollapsed.md"):
        assert needed in names, needed
    # The test and benchmark machinery stays out of what users install.
    assert not [n for n in names if n.split("/")[0] in ("tests", "harness", "bench", "tools")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pdobs = pdobs.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata


def test_build_py_on_an_old_python_says_so_in_one_line():
    # The guard runs before any project import; an old interpreter is played by its version tuple.
    code = ("import runpy, sys; sys.version_info = (3, 9, 18, 'final', 0); "
            f"sys.argv = ['build.py', '--version']; runpy.run_path({str(paths.ROOT / 'build.py')!r}, "
            "run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("error: llm-d P/D observability needs Python 3.11 or newer, this is 3.9; run `make build` "
                           "(it makes a .venv) or use python3.11+\n")


SHARED = "sha" + "red"
SIBLING_PATHS = ("../" + SHARED, '".."' + " / " + f'"{SHARED}"')  # spelled apart so this file does not match


def test_nothing_reads_a_folder_beside_the_clone():
    # A user's clone has nothing beside it: no sibling reference folder to read schemas or docs from.
    offenders = []
    for rel in subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=paths.ROOT, capture_output=True,
                              text=True, check=True).stdout.split():
        path = paths.ROOT / rel
        if path.suffix in (".py", ".yaml", ".yml", ".toml", ".md", ".json", ".cfg") or rel in ("Makefile", ".ci/run"):
            text = path.read_text(errors="replace")
            if any(needle in text for needle in SIBLING_PATHS):
                offenders.append(rel)
    assert offenders == []
