"""Replacing the output folder in place, file by file.

What is guaranteed (docs/security.md says how each point is tested):
- Folders are kept, never swapped: a bind mount of any sub-folder (Grafana's dashboards folder)
  stays the live folder, and a reader never finds a folder or a file missing. Each file is written
  to a temporary file in its own folder and renamed over the old one (atomic on POSIX).
- Nothing is written until every file is rendered (the caller renders into memory). Then every new
  file is staged first; if staging fails (full disk, read-only filesystem) the staged files are
  removed and the previous output is untouched. Only the renames follow, which allocate nothing.
- Files the previous build wrote and this one does not are removed after the new files are in
  place; they are listed in the marker file's manifest. Files anyone else put in the folder are
  left alone. A folder with files but no marker is refused, never replaced.
- Concurrent builds into one folder take turns (an exclusive flock on a lock file inside it).
- Files and folders are created with the usual modes, 0666 and 0777 less the umask (0644 and 0755
  with the common umask 022), so a Grafana or Prometheus container user can read them.
- Not guaranteed: durability across a power loss (nothing is fsynced), and consistency between
  files while the renames run: a reader may see some files of the new build and some of the old
  for the few milliseconds the renames take.
"""

import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

MARKER = ".pd-observability-build"
LOCK = ".pd-observability-build.lock"
_TMP_PREFIX = ".pd-observability-tmp-"
_MARKER_HEAD = "made by build.py; it replaces the files listed below on every build and leaves others alone\n"
# The marker of builds before the manifest: they replaced the whole folder, so all of it is theirs.
_OLD_MARKER_HEAD = "made by build.py; replaced as a whole on every build\n"

Staged = Mapping[str, Path]  # relative path -> staged temporary file, before the renames


class OutputError(Exception):
    """The output folder cannot be used or written; the message says what to do."""


def _fail(path: Path, exc: OSError, action: str = "write") -> OutputError:
    hint = {errno.ENOSPC: "free some space or choose another --out",
            errno.EDQUOT: "free some space or choose another --out",
            errno.EROFS: "the filesystem is read-only; choose another --out",
            errno.EACCES: "no permission; choose another --out or fix its permissions",
            errno.EPERM: "no permission; choose another --out or fix its permissions"}.get(
        exc.errno or 0, "choose another --out")
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot {action} {path}: {reason}; {hint}; the previous output is untouched")


def _relative_paths(files: Mapping[str, str | bytes]) -> dict[str, PurePosixPath]:
    rels: dict[str, PurePosixPath] = {}
    for key in sorted(files):
        path = PurePosixPath(key)
        if path.is_absolute() or ".." in path.parts or not path.parts or any(
                not p.isprintable() for p in path.parts) or path.name in (MARKER, LOCK) or str(path) in rels:
            raise OutputError(f"refusing to write outside the output folder: {key!r}")
        rels[str(path)] = path
    return rels


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    lock = out / LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise _fail(lock, exc, "create the lock file") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _previous_manifest(out: Path) -> set[str] | None:
    """Files the previous build wrote; None when the folder is not ours (no marker)."""
    marker = out / MARKER
    try:
        text = marker.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _fail(marker, exc, "read") from None
    if text.startswith(_MARKER_HEAD):
        return {line for line in text[len(_MARKER_HEAD):].splitlines() if line}
    # An older build, which swapped whole folders: every file in the folder is its.
    return {str(p.relative_to(out)) for p in out.rglob("*")
            if p.is_file() and p.name not in (MARKER, LOCK)} if text.startswith(_OLD_MARKER_HEAD) else set()


def _check_target(out: Path) -> set[str]:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder; choose another --out")
    previous = _previous_manifest(out) if out.is_dir() else set()
    if previous is None:
        if any(p.name != LOCK for p in out.iterdir()):
            raise OutputError(f"--out {out}: folder has files build.py did not make; choose an empty or new --out")
        previous = set()
    return previous


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` (which must not exist) holding `data`, mode 0666 less the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    return path.parent / f"{_TMP_PREFIX}{secrets.token_hex(6)}-{path.name}"[:255]


def _make_dirs(out: Path, rel: PurePosixPath, created: list[Path]) -> Path:
    """The folder of `rel`, created (mode 0777 less the umask) where missing."""
    folder = out
    for part in rel.parts[:-1]:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise OutputError(f"{folder}: exists and is not a folder build.py can write into; remove it")
        if not folder.exists():
            folder.mkdir()
            created.append(folder)
    return folder


def _fix_old_mode(out: Path) -> None:
    """Builds before the manifest made the folder with mkdtemp, mode 0700: open it up as mkdir would."""
    marker = out / MARKER
    if marker.is_file() and marker.read_text().startswith(_OLD_MARKER_HEAD) and out.stat().st_mode & 0o077 == 0:
        umask = os.umask(0o022)
        os.umask(umask)
        out.chmod(0o777 & ~umask)


def _remove_leftovers(out: Path) -> None:
    """Temporary files of a build that was killed mid-way (we hold the lock: none is in use)."""
    for path in out.rglob(f"{_TMP_PREFIX}*"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def _write_marker(out: Path, manifest: set[str]) -> None:
    marker = out / MARKER
    tmp = _temp_beside(marker)
    try:
        _write_new(tmp, (_MARKER_HEAD + "".join(f"{rel}\n" for rel in sorted(manifest))).encode())
        os.replace(tmp, marker)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(marker)) from None


def _remove_stale(out: Path, stale: set[str], keep_dirs: set[Path]) -> None:
    for rel in sorted(stale, reverse=True):
        path = out / rel
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
        # Folders only the stale files needed go too; a folder holding anything else stays.
        folder = path.parent
        while folder != out and folder not in keep_dirs:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def write_tree(out: Path, files: Mapping[str, str | bytes],
               before_swap: Callable[[Staged], None] | None = None) -> None:
    """Make `files` (relative path -> content) the build's content of `out`, as the module says.

    `before_swap` runs once every file is staged, before any rename (validation hooks, and the
    tests' way to inject a failure at the last moment).
    """
    out = out.absolute()
    rels = _relative_paths(files)
    # Refuse a folder we did not make before touching it (no lock file left in a user's folder); a
    # folder with our lock is checked again under the lock, where another build's half-made files
    # cannot be mistaken for a user's.
    if not (out / LOCK).exists():
        _check_target(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(out, exc, "create") from None
    with _locked(out):
        previous = _check_target(out)
        _remove_leftovers(out)
        _fix_old_mode(out)
        staged: dict[str, Path] = {}
        created: list[Path] = []
        try:
            for key, rel in rels.items():
                folder = _make_dirs(out, rel, created)
                target = folder / rel.name
                if target.is_dir() and not target.is_symlink():
                    raise OutputError(f"{target}: is a folder where build.py writes a file; remove it")
                content = files[key]
                tmp = staged[str(rel)] = _temp_beside(target)  # removed on failure, even half-written
                try:
                    _write_new(tmp, content.encode() if isinstance(content, str) else content)
                except OSError as exc:
                    raise _fail(target, exc) from None
            if before_swap is not None:
                before_swap(staged)
            new = set(staged)
            # Listed before the renames, so an interrupted build's files still count as ours.
            _write_marker(out, previous | new)
        except OSError as exc:
            _unstage(staged, created)
            raise _fail(Path(exc.filename) if exc.filename else out, exc) from None
        except BaseException:
            _unstage(staged, created)
            raise
        try:
            for rel, tmp in staged.items():
                os.replace(tmp, out / rel)
            _remove_stale(out, previous - new, {(out / rel).parent for rel in new})
            _write_marker(out, new)
        except OSError as exc:
            _unstage(staged, [])
            raise OutputError(f"cannot finish writing {out}: {exc.strerror}; some files are new, some old: "
                              "fix the cause and build again") from None


def _unstage(staged: Mapping[str, Path], created: list[Path]) -> None:
    for tmp in staged.values():
        tmp.unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass
