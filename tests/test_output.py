"""The output folder is replaced in place: bind mounts of sub-folders stay live, readers never miss
a file, concurrent builds take turns, and a full or read-only disk is a one-line error."""

import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pdobs import cli, output
from pdobs.build import make
from pdobs.core import config, paths

DASHBOARDS = "grafana/dashboards/pd-observability"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return make.build(config.load())


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(paths.ROOT / "build.py"), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=paths.ROOT)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith((".pd-observability-tmp-", ".out."))]


def test_a_bind_mounted_sub_folder_stays_the_live_folder_and_is_never_empty(tmp_path: Path):
    out = tmp_path / "build"
    assert cli.main(["--out", str(out)]) == 0
    # What a bind mount holds: the folder's inode, opened once.
    fd = os.open(out / DASHBOARDS, os.O_RDONLY | os.O_DIRECTORY)
    try:
        held = os.fstat(fd)
        sizes: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set() and len(sizes) < 200_000:
                sizes.append(len([n for n in os.listdir(fd) if n.endswith(".json")]))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for tags in ("a", "b", "c"):
                cfg = tmp_path / f"{tags}.yaml"
                cfg.write_text(f"grafana: {{tags: [{tags}]}}\n")
                assert cli.main(["--config", str(cfg), "--out", str(out)]) == 0
        finally:
            stop.set()
            watcher.join()
        now = os.stat(out / DASHBOARDS)
        assert (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino), "the folder was swapped, not updated"
        assert sizes and min(sizes) == 3, f"the held folder was seen with {min(sizes)} dashboards"
        # The held folder carries the last build's content.
        shown = sorted(os.listdir(fd))
        assert shown == sorted(p.name for p in (out / DASHBOARDS).iterdir())
        assert '"c"' in (out / DASHBOARDS / "pd-performance.json").read_text()
    finally:
        os.close(fd)


def test_a_reader_sees_every_file_complete_during_rebuilds(tmp_path: Path, rendered: dict[str, str]):
    out = tmp_path / "out"
    versions = [rendered, {k: v + " " for k, v in rendered.items()}]
    output.write_tree(out, versions[0])
    problems: list[str] = []
    checks = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal checks
        while not stop.is_set() and checks < 100_000:
            for rel in rendered:
                try:
                    data = (out / rel).read_text()
                except FileNotFoundError:
                    problems.append(f"missing {rel}")
                    continue
                if data not in (versions[0][rel], versions[1][rel]):
                    problems.append(f"torn {rel}")
                checks += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(8):
            output.write_tree(out, versions[(i + 1) % 2])
    finally:
        stop.set()
        reader.join()
    assert checks > len(rendered)
    assert problems == []
    assert _leftovers(tmp_path) == []


def test_two_concurrent_builds_both_succeed_and_leave_nothing_behind(tmp_path: Path):
    out = tmp_path / "out"
    reference = tmp_path / "reference"
    first = _build(reference)
    assert first.wait(timeout=120) == 0
    builds = [_build(out) for _ in range(2)]
    results = [(b.wait(timeout=120), b.stderr.read() if b.stderr else "") for b in builds]
    for b in builds:
        for stream in (b.stdout, b.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0, 0], results
    assert _leftovers(tmp_path) == []
    assert _digest(out) == _digest(reference)


def test_created_files_and_folders_are_readable_by_others_and_honour_the_umask(tmp_path: Path):
    old = os.umask(0o022)
    try:
        output.write_tree(tmp_path / "open", {"a/b.txt": "x"})
        os.umask(0o077)
        output.write_tree(tmp_path / "private", {"a/b.txt": "x"})
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert [mode(tmp_path / "open" / p) for p in ("", "a", "a/b.txt", output.MARKER)] == [0o755, 0o755, 0o644, 0o644]
    assert [mode(tmp_path / "private" / p) for p in ("", "a", "a/b.txt")] == [0o700, 0o700, 0o600]


def test_output_of_an_older_build_is_taken_over(tmp_path: Path):
    """Builds before the manifest swapped whole folders (made by mkdtemp, mode 0700)."""
    out = tmp_path / "out"
    (out / "gone").mkdir(parents=True)
    out.chmod(0o700)
    (out / output.MARKER).write_text("made by build.py; replaced as a whole on every build\n")
    (out / "gone" / "old.json").write_text("{}")
    (out / "a.txt").write_text("old")
    old = os.umask(0o022)
    try:
        output.write_tree(out, {"a.txt": "new"})
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.iterdir()) == sorted([output.MARKER, output.LOCK, "a.txt"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_a_full_disk_during_staging_is_one_line_and_leaves_the_previous_output(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                                 capsys: pytest.CaptureFixture[str]):
    """In-process, with os.write failing as on a full disk (the real full and read-only disks are
    in the next test)."""
    out = tmp_path / "out"
    assert cli.main(["--out", str(out)]) == 0
    before = _digest(out)
    capsys.readouterr()
    real_write = os.write
    calls = 0

    def full_disk(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls > 5:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", full_disk)
    assert cli.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write {out}/")
    assert "No space left on device" in err
    assert _digest(out) == before
    assert _leftovers(tmp_path) == []


UNSHARE_SCRIPT = r"""
set -u
mnt=$WORK/mnt
mkdir -p "$mnt"
build() { "$PY" "$ROOT/build.py" --out "$mnt/build" >"$WORK/$1.out" 2>"$WORK/$1.err"; echo $? >"$WORK/$1.rc"; }
mount -t tmpfs -o size=2m tmpfs "$mnt"
build first
sha256sum $(find "$mnt/build" -type f | sort) >"$WORK/first.sums"
# Fill the rest of the disk, then rebuild: staging the new files needs space the disk no longer has.
dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true
build full
sha256sum $(find "$mnt/build" -type f | sort) >"$WORK/full.sums"
ls -a "$mnt/build" "$mnt/build"/* >"$WORK/full.ls" 2>&1
rm "$mnt/filler"
mount -o remount,ro "$mnt"
build readonly
"""


def test_a_real_full_disk_and_a_read_only_filesystem(tmp_path: Path):
    """A 2 MiB tmpfs in a private mount namespace (`unshare`, as root or in a user namespace)."""
    env = {**os.environ, "WORK": str(tmp_path), "PY": sys.executable, "ROOT": str(paths.ROOT)}
    proc = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", UNSHARE_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    def result(step: str) -> tuple[int, str]:
        return int((tmp_path / f"{step}.rc").read_text()), (tmp_path / f"{step}.err").read_text()

    code, err = result("first")
    assert code == 0 and "error" not in err, err  # (a notice about the default runbook_url may be there)
    code, err = result("full")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: cannot write ") and "No space left on device" in err and "--out" in err
    assert (tmp_path / "full.sums").read_text() == (tmp_path / "first.sums").read_text(), \
        "the previous output changed"
    assert ".pd-observability-tmp-" not in (tmp_path / "full.ls").read_text()
    code, err = result("readonly")
    assert code == 2 and err.count("\n") == 1, err
    assert "Read-only file system" in err and str(tmp_path / "mnt" / "build") in err
