#!/usr/bin/env python3
"""Make headless Chromium available as .tools/bin/chromium (the HTML report's browser test).

Stdlib only, like install_tools.py. Unlike the Prometheus tools, Debian's chromium needs some
sixty shared libraries, so it cannot be unpacked into .tools privately: it is taken from PATH
when the host has it, else installed with the host's apt-get (root only, as on CI), and linked.
The same run installs a font, since a container without one renders every word as blank boxes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / ".tools"
NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
# Debian packages: the browser, and a font family with the metrics of Arial/Helvetica.
PACKAGES = ("chromium", "fonts-liberation")
FONT_DIR = Path("/usr/share/fonts/truetype/liberation")
TIMEOUT_S = 1800


class BrowserError(Exception):
    """Chromium could not be had; the message says why and what to do."""


def _on_path(exclude: Path) -> Path | None:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != exclude.resolve()]
    for name in NAMES:
        found = shutil.which(name, path=os.pathsep.join(dirs))
        if found:
            return Path(found)
    return None


def _version(binary: Path) -> str:
    try:
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrowserError(f"{binary} --version failed: {exc}") from exc
    if proc.returncode != 0:
        raise BrowserError(f"{binary} --version exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}")
    return proc.stdout.strip()


def _apt_install(packages: tuple[str, ...]) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BrowserError(f"{' '.join(packages)} not installed and this is not root on a Debian-family host: "
                           f"install them (sudo apt-get install {' '.join(packages)}) and run `make browser` again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "-q", "update"],
                ["apt-get", "-q", "install", "-y", "--no-install-recommends", *packages]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrowserError(f"`{' '.join(cmd[:3])}` failed: {exc}") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise BrowserError(f"`{' '.join(cmd[:3])}` failed: {last}")


def install(dest: Path = DEFAULT_DEST) -> tuple[Path, str]:
    """Link dest/bin/chromium to a working Chromium; return the link and its version text."""
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    found = _on_path(bin_dir)
    missing = tuple(p for p, there in (("chromium", found), ("fonts-liberation", FONT_DIR.is_dir())) if not there)
    if missing:
        _apt_install(missing)
        found = found or _on_path(bin_dir)
    if found is None:
        raise BrowserError("apt-get installed chromium but no chromium binary is on PATH")
    version = _version(found)
    link = bin_dir / "chromium"
    staged = bin_dir / ".chromium.new"
    staged.unlink(missing_ok=True)
    staged.symlink_to(found.resolve())
    os.replace(staged, link)
    return link, version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Link headless Chromium into .tools/bin (apt-get install if needed).")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="default: .tools")
    args = parser.parse_args(argv)
    try:
        link, version = install(args.dest)
    except BrowserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"browser in {link}: {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
