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


def test_rebuild_removes_what_the_last_build_wrote_and_keeps_what_a_user_added(tmp_path: Path):
    out = tmp_path / "out"
    assert _build(out).returncode == 0
    output.write_tree(out, {**_contents(out), "old-layout/stale.txt": "from an older build"})
    (out / "dashboards" / "my-notes.txt").write_text("a user's file")
    assert _build(out).returncode == 0
    assert not (out / "old-layout").exists(), "a file the previous build wrote, and its folder, are removed"
    assert (out / "dashboards" / "my-notes.txt").read_text() == "a user's file"
    assert not [p for p in tmp_path.rglob("*") if ".pd-observability-tmp-" in p.name or p.name.startswith(".out.")]


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".pd-observability-build")}


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

    def fail(staged: output.Staged) -> None:
        assert staged["a.txt"].read_text() == "new"  # the new tree was fully staged
        raise OSError(28, "No space left on device")

    with pytest.raises(output.OutputError, match="No space left"):
        output.write_tree(out, {"a.txt": "new", "b/c.txt": "x"}, before_swap=fail)
    assert (out / "a.txt").read_text() == "old"
    assert not (out / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [".pd-observability-build", ".pd-observability-build.lock",
                                                     "a.txt"], "no staged file is left behind"


def test_refuses_paths_outside_the_output(tmp_path: Path):
    with pytest.raises(output.OutputError):
        output.write_tree(tmp_path / "out", {"../escape.txt": "x"})
    assert not (tmp_path / "escape.txt").exists()
