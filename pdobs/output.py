"""Atomic replacement of the output folder.

Everything is rendered into a temporary folder beside the target and swapped in with renames, so
a failed build leaves the previous output untouched. A folder that build.py did not make is never
replaced: we refuse rather than delete something a user made.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

MARKER = ".pd-observability-build"


class OutputError(Exception):
    """The output folder cannot be used; the message says what to do."""


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise OutputError(
            f"--out {out}: folder has files build.py did not make; choose an empty or new --out"
        )


def write_tree(out: Path, files: Mapping[str, str | bytes],
               before_swap: Callable[[Path], None] | None = None) -> None:
    """Write `files` (relative path -> content) as the whole content of `out`, atomically.

    `before_swap` runs on the finished temporary folder (validation hooks, and the tests' way to
    inject a failure at the last moment).
    """
    out = out.resolve()
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for rel, content in sorted(files.items()):
            path = tmp / rel
            if path.resolve().parent != tmp and tmp not in path.resolve().parents:
                raise OutputError(f"refusing to write outside the output folder: {rel}")
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            path.write_bytes(data)
        (tmp / MARKER).write_text("made by build.py; replaced as a whole on every build\n")
        if before_swap is not None:
            before_swap(tmp)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
