#!/usr/bin/env python3
"""Build an older revision and the working tree with the same configs and say whether every
artefact (and every generated doc) is byte-identical.

    .venv/bin/python tools/compare_builds.py --rev 479ffc9 --config my.yaml --config other.yaml

The old revision is checked out with `git worktree add` into a temporary folder; the working tree
(tracked and untracked files git does not ignore, as they are now) is copied beside it, so neither
build nor `build.py docs` touches the checkout. Both run with this Python. Every build uses the
default config and then each --config file. Exit 0 when everything is identical, 1 when not
(the differing files are listed, with the first lines of each diff), 2 on bad input.
"""

import argparse
import difflib
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED_DOCS = ("docs/config-reference.md", "docs/runbooks")
DIFF_LINES = 20


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout


def _copy_working_tree(dest: Path) -> None:
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _run(tree: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "build.py", *args], cwd=tree, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: build.py {' '.join(args)} failed in {tree}:\n{proc.stderr[-2000:]}")


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def compare(old: Path, new: Path, label: str) -> list[str]:
    """Differences between two folders, one line per file (with a short diff for text)."""
    before, after = _files(old), _files(new)
    out = [f"{label}: only in the old build: {rel}" for rel in sorted(set(before) - set(after))]
    out += [f"{label}: only in the new build: {rel}" for rel in sorted(set(after) - set(before))]
    for rel in sorted(set(before) & set(after)):
        if not filecmp.cmp(before[rel], after[rel], shallow=False):
            diff = list(difflib.unified_diff(before[rel].read_text().splitlines(), after[rel].read_text().splitlines(),
                                             f"old/{rel}", f"new/{rel}", lineterm=""))
            out.append(f"{label}: differs: {rel}\n    " + "\n    ".join(diff[:DIFF_LINES]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", required=True, help="the older git revision to compare with (commit, tag, branch)")
    p.add_argument("--config", type=Path, action="append", default=[],
                   help="a config file to build both with, besides the default (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    args = p.parse_args(argv)
    for cfg in args.config:
        if not cfg.is_file():
            print(f"error: --config {cfg}: no such file", file=sys.stderr)
            return 2
    try:
        rev = _git("rev-parse", "--verify", f"{args.rev}^{{commit}}").strip()
    except subprocess.CalledProcessError:
        print(f"error: --rev {args.rev}: not a commit of this repository", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="compare-builds-"))
    old, new = work / "old", work / "new"
    try:
        _git("worktree", "add", "--detach", str(old), rev)
        _copy_working_tree(new)
        problems: list[str] = []
        configs = [("default", None), *((c.stem, c.resolve()) for c in args.config)]
        for name, cfg in configs:
            extra = ["--config", str(cfg)] if cfg else []
            for tree in (old, new):
                _run(tree, *extra, "--out", str(work / f"out-{tree.name}-{name}"))
            problems += compare(work / f"out-old-{name}", work / f"out-new-{name}", f"build ({name})")
        for tree in (old, new):
            _run(tree, "docs")
        for rel in GENERATED_DOCS:
            problems += compare(old / rel, new / rel, "docs") if (old / rel).is_dir() else (
                [] if filecmp.cmp(old / rel, new / rel, shallow=False) else [f"docs: differs: {rel}"])
        for line in problems:
            print(line)
        names = ", ".join(n for n, _ in configs)
        print(f"{rev[:12]} vs the working tree ({names}; generated docs): "
              + ("identical" if not problems else f"{len(problems)} difference(s)"))
        return 1 if problems else 0
    finally:
        _git("worktree", "remove", "--force", str(old))
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
