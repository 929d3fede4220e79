"""build.py: deterministic, atomic, and careful with folders it did not make."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pdobs import cli, output
from pdobs.build import make
from pdobs.core import paths


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(paths.ROOT / "build.py"), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=paths.ROOT)


def test_build_is_deterministic(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert _build(first).returncode == 0
    assert _build(second).returncode == 0
    digests = _digest(first)
    assert "prometheus/recording-rules.yaml" in digests
    assert digests == _digest(second)


def test_rebuild_replaces_own_output(tmp_path: Path):
    out = tmp_path / "out"
    assert _build(out).returncode == 0
    (out / "stale.txt").write_text("from an older build")
    assert _build(out).returncode == 0
    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "temporary folders left behind"


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    proc = _build(mine)
    assert proc.returncode == 2
    assert "did not make" in proc.stderr
    assert (mine / "notes.txt").read_text() == "precious"


def test_failed_render_leaves_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out"
    assert cli.main(["--out", str(out)]) == 0
    before = _digest(out)

    def broken(cfg: dict, model: object) -> dict[str, str]:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(make, "FILE_STEPS", (*make.FILE_STEPS, broken))
    assert cli.main(["--out", str(out)]) == 1
    assert _digest(out) == before


def test_failure_after_writing_leaves_previous_output(tmp_path: Path):
    out = tmp_path / "out"
    output.write_tree(out, {"a.txt": "old"})

    def fail(tmp: Path) -> None:
        assert (tmp / "a.txt").read_text() == "new"  # the new tree was fully written
        raise OSError("disk full")

    with pytest.raises(OSError):
        output.write_tree(out, {"a.txt": "new", "b/c.txt": "x"}, before_swap=fail)
    assert (out / "a.txt").read_text() == "old"
    assert not (out / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_paths_outside_the_output(tmp_path: Path):
    with pytest.raises(output.OutputError):
        output.write_tree(tmp_path / "out", {"../escape.txt": "x"})
    assert not (tmp_path / "escape.txt").exists()
