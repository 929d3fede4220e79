#!/usr/bin/env python3
"""Install the tools pinned in tools/pins.toml into .tools/bin.

Stdlib only: it runs before anything else is set up. Each tool comes from the first source that
has a version its pin accepts:

  1. PATH     a binary the host already has (linked, not copied)
  2. debian   the pinned suite's .deb: `apt-get download` + `dpkg-deb -x` with a private apt
              state, so the host's sources, lists and dpkg database stay untouched

A run whose tools already match .tools/versions.json and the pins changes nothing. If a tool
cannot be had, the run exits 1 with one line per tool naming every source tried and why.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
PINS = Path(__file__).with_name("pins.toml")
DEFAULT_DEST = ROOT / ".tools"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRINGS = (Path("/usr/share/keyrings/debian-archive-keyring.gpg"),
            Path("/usr/share/keyrings/debian-archive-keyring.pgp"))
TIMEOUT_S = 600
_VERSION = re.compile(r"(\d+\.\d+\.\d+(?:\+[0-9A-Za-z.]+)?)")


@dataclasses.dataclass(frozen=True)
class Tool:
    """One binary of pins.toml, its line's fields folded in (see pins.toml for their meaning)."""

    name: str
    package: str
    suite: str
    accept: str
    minimum: str = ""
    deb_path: str = ""
    path_names: Sequence[str] = ()
    probe: Sequence[str] = ("--version",)
    reports_version: bool = True
    deb_share: Sequence[str] = ()

    def accepts(self, version: str) -> bool:
        return version.startswith(self.accept) and (not self.minimum or _key(version) >= _key(self.minimum))

    @property
    def wanted(self) -> str:
        return f"{self.accept}x" + (f" >= {self.minimum}" if self.minimum else "")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def load_pins(path: Path = PINS) -> tuple[Tool, ...]:
    doc = tomllib.loads(path.read_text())
    tools = []
    for name, entry in doc["tools"].items():
        line = doc["lines"].get(entry.get("line", ""))
        try:
            if line is None:
                raise TypeError(f"`line` must name one of [lines.*]: {', '.join(doc['lines'])}")
            fields = {"deb_path": f"usr/bin/{name}", "path_names": [name], **line, **entry}
            del fields["line"]
            tools.append(Tool(name=name, **fields))
        except TypeError as exc:  # an unknown, missing or misspelt key
            print(f"error: {path.name} [tools.{name}]: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
    return tuple(tools)


TOOLS = load_pins()


class SourceError(Exception):
    """One source could not provide one tool; the message says why."""


class InstallError(Exception):
    """Some tools could not be installed from any source."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        lines = "".join(f"\n  {line}" for line in self.failures)
        super().__init__(f"could not install {len(self.failures)} tool(s):{lines}")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A binary a source produced, not yet placed in .tools/bin."""

    path: Path
    version: str  # recorded when the binary does not report its own
    origin: str  # shown to the user
    link: bool = False  # link to it rather than move it: it belongs to the host


class Source(Protocol):
    name: str

    def obtain(self, tool: Tool) -> Candidate: ...


def run(cmd: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command and return its stdout; SourceError with its last stderr line if it fails."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"`{cmd[0]}` failed: {exc}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if not ln.startswith("W:")]
        shown = " ".join(itertools.takewhile(lambda arg: arg != "-o", cmd))  # without apt's private options
        raise SourceError(f"`{shown}` failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout + proc.stderr


def probe(binary: Path, tool: Tool) -> str | None:
    """Run the tool's probe; return the version it reports, None if it reports none."""
    out = run([str(binary), *tool.probe])
    match = _VERSION.search(out) if tool.reports_version else None
    return match.group(1) if match else None


class PathSource:
    """A binary the host already has, e.g. from a distribution package."""

    name = "PATH"

    def __init__(self, exclude: Path) -> None:
        # .tools/bin may itself be on PATH; finding our own link there proves nothing.
        dirs = os.environ.get("PATH", "").split(os.pathsep)
        self._search = os.pathsep.join(d for d in dirs if d and Path(d).resolve() != exclude.resolve())

    def obtain(self, tool: Tool) -> Candidate:
        seen = []
        for name in tool.path_names:
            found = shutil.which(name, path=self._search)
            if found:
                version = probe(Path(found), tool)
                if version and tool.accepts(version):
                    return Candidate(Path(found).absolute(), version, f"PATH {found}", link=True)
                seen.append(f"{found} is {version or 'of unknown version'}")
        raise SourceError(f"{'; '.join(seen)}, want {tool.wanted}" if seen else
                          f"none of {', '.join(tool.path_names)} on PATH")


class DebianSource:
    """The pinned suites' .debs, unpacked without installing them."""

    def __init__(self, workdir: Path, share_dir: Path, suites: Sequence[str]) -> None:
        self._dir = workdir / "apt"
        self._share_dir = share_dir
        self._suites = sorted(set(suites))
        self._mirror = debian_mirror()
        self._ready: SourceError | bool = False
        self._unpacked: dict[tuple[str, str], Path] = {}
        self.name = f"debian ({self._mirror})"

    def obtain(self, tool: Tool) -> Candidate:
        self._update_once()
        version = self._served(tool)
        upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]  # 1:1.145.0+ds1-2 -> 1.145.0+ds1
        if not tool.accepts(upstream):
            raise SourceError(f"{tool.suite} serves {tool.package} {version}, want {tool.wanted}")
        root = self._unpack(tool.package, version)
        if not (root / tool.deb_path).is_file():
            raise SourceError(f"{tool.package} {version} has no /{tool.deb_path}")
        for rel in tool.deb_share:
            if not (root / rel).is_dir():
                raise SourceError(f"{tool.package} {version} has no /{rel}")
            target = self._share_dir / Path(rel).relative_to("usr/share")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / rel, target)
        return Candidate(root / tool.deb_path, upstream, f"debian {tool.suite} {tool.package} {version}")

    def _apt(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        d = self._dir
        opts = {
            "Dir::State": d / "state",
            "Dir::State::status": d / "state" / "status",
            "Dir::Cache": d / "cache",
            # The host config may disable the binary cache (Docker images do); without it
            # every apt call re-parses ~20 MB of indexes, about 2 s each.
            "Dir::Cache::pkgcache": d / "cache" / "pkgcache.bin",
            "Dir::Cache::srcpkgcache": "",
            "Dir::Etc::sourcelist": d / "sources.list",
            "Dir::Etc::sourceparts": d / "empty",
            "Dir::Etc::preferences": d / "preferences",
            "Dir::Etc::preferencesparts": d / "empty",
            "Acquire::Languages": "none",  # only the Packages indexes are needed
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"  # apt's _apt user cannot write our private folders
        return run([tool, *args, *(a for k, v in opts.items() for a in ("-o", f"{k}={v}"))], cwd=cwd)

    def _update_once(self) -> None:
        # One `apt-get update` per run, and its one failure reported for every tool.
        if isinstance(self._ready, SourceError):
            raise self._ready
        if not self._ready:
            try:
                self._update()
            except SourceError as exc:
                self._ready = exc
                raise
            self._ready = True

    def _update(self) -> None:
        for needed in ("apt-get", "apt-cache", "dpkg-deb"):
            if not shutil.which(needed):
                raise SourceError(f"{needed} not found (not a Debian-based host: put the tools on PATH)")
        keyring = next((k for k in KEYRINGS if k.is_file()), None)
        if keyring is None:
            raise SourceError("no Debian archive keyring (install debian-archive-keyring)")
        for sub in ("state/lists/partial", "cache/archives/partial", "empty", "debs"):
            (self._dir / sub).mkdir(parents=True, exist_ok=True)
        (self._dir / "state" / "status").touch()
        (self._dir / "sources.list").write_text(
            "".join(f"deb [signed-by={keyring}] {self._mirror} {suite} main\n" for suite in self._suites))
        out = self._apt("apt-get", "-q", "update")
        # apt-get update exits 0 even when it could fetch nothing; only the lists tell.
        for suite in self._suites:
            if not any((self._dir / "state" / "lists").glob(f"*_dists_{suite}_main_binary-*_Packages*")):
                errors = [ln for ln in out.splitlines() if "Failed to fetch" in ln] or ["no Packages index"]
                raise SourceError(f"apt-get update got no {suite} index: {errors[0]}")

    def _served(self, tool: Tool) -> str:
        try:
            out = self._apt("apt-cache", "show", "--no-all-versions", f"{tool.package}/{tool.suite}")
        except SourceError as exc:
            raise SourceError(f"{tool.suite} does not carry {tool.package}") from exc
        return next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version:"))

    def _unpack(self, package: str, version: str) -> Path:
        if (package, version) not in self._unpacked:
            debs = self._dir / "debs"
            self._apt("apt-get", "-q", "download", f"{package}={version}", cwd=debs)
            deb = next(debs.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"), None)
            if deb is None:
                raise SourceError(f"apt-get download {package}={version} left no .deb")
            target = self._dir / "unpacked" / f"{package}_{version}"
            target.mkdir(parents=True)
            run(["dpkg-deb", "-x", str(deb), str(target)])
            deb.unlink()  # the unpacked tree is all we need
            self._unpacked[(package, version)] = target
        return self._unpacked[(package, version)]


def debian_mirror() -> str:
    """PDOBS_DEBIAN_MIRROR, else the Debian mirror the host's apt uses (restricted networks
    reach that one), else deb.debian.org."""
    if os.environ.get("PDOBS_DEBIAN_MIRROR"):
        return os.environ["PDOBS_DEBIAN_MIRROR"].rstrip("/")
    try:
        uris = run(["apt-get", "indextargets", "--format", "$(REPO_URI)"]).split()
    except SourceError:
        uris = []
    return next((u.rstrip("/") for u in uris if re.fullmatch(r"https?://\S+/debian/?", u)), DEFAULT_MIRROR)


def read_versions(dest: Path) -> dict[str, str]:
    try:
        data = json.loads((dest / "versions.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_versions(dest: Path, versions: dict[str, str]) -> None:
    text = json.dumps(dict(sorted(versions.items())), indent=2) + "\n"
    path = dest / "versions.json"
    if path.is_file() and path.read_text() == text:
        return  # unchanged: keep the mtime, a no-op run touches nothing
    path.with_suffix(".tmp").write_text(text)
    os.replace(path.with_suffix(".tmp"), path)


def is_current(tool: Tool, bin_dir: Path, recorded: dict[str, str]) -> bool:
    """True if the installed binary runs and matches both versions.json and the pin."""
    version, binary = recorded.get(tool.name), bin_dir / tool.name
    if not version or not tool.accepts(version) or not os.access(binary, os.X_OK):
        return False
    share = bin_dir.parent / "share"
    # A copy from Debian needs its data folders; a link to the host's binary (PATH) does not.
    if not binary.is_symlink() and not all((share / Path(r).relative_to("usr/share")).is_dir() for r in tool.deb_share):
        return False
    try:
        reported = probe(binary, tool)
    except SourceError:
        return False
    return reported == version or not tool.reports_version


def place(tool: Tool, candidate: Candidate, bin_dir: Path) -> str:
    """Verify a candidate and move (or link) it into bin_dir; return its version."""
    reported = probe(candidate.path, tool)
    if tool.reports_version and reported is None:
        raise SourceError(f"{candidate.origin} reports no version")
    version = reported or candidate.version
    if not tool.accepts(version):
        raise SourceError(f"{candidate.origin} is {version}, want {tool.wanted}")
    target, staged = bin_dir / tool.name, bin_dir / f".{tool.name}.new"
    staged.unlink(missing_ok=True)
    if candidate.link:
        staged.symlink_to(candidate.path)
    else:
        try:
            os.link(candidate.path, staged)  # free on one filesystem, and leaves the source intact
        except OSError:
            shutil.copy2(candidate.path, staged)
    os.replace(staged, target)  # atomic: a concurrent reader never sees half a binary
    try:
        probe(target, tool)  # the file in .tools/bin is what everyone runs
    except SourceError:
        target.unlink()
        raise
    return version


def install_one(tool: Tool, sources: Sequence[Source], bin_dir: Path) -> str:
    reasons = []
    for source in sources:
        try:
            candidate = source.obtain(tool)
            version = place(tool, candidate, bin_dir)
        except SourceError as exc:
            reasons.append(f"{source.name}: {exc}")
            continue
        print(f"installed {tool.name} {version} from {candidate.origin}", flush=True)
        return version
    raise SourceError(f"{tool.name} ({tool.wanted}): " + " | ".join(reasons))


@contextmanager
def locked(dest: Path) -> Iterator[None]:
    # Engineers share a working tree; two concurrent installs must not interleave.
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def install(tools: Sequence[Tool] = TOOLS, dest: Path = DEFAULT_DEST) -> dict[str, str]:
    """Make dest/bin hold every tool; return name -> exact version installed."""
    with locked(dest):
        bin_dir = dest / "bin"
        bin_dir.mkdir(exist_ok=True)
        recorded = read_versions(dest)
        versions = {t.name: recorded[t.name] for t in tools if is_current(t, bin_dir, recorded)}
        pending = [t for t in tools if t.name not in versions]
        if not pending:
            return versions
        failures = []
        with tempfile.TemporaryDirectory(dir=dest, prefix="tmp-") as tmp:
            sources = [PathSource(bin_dir), DebianSource(Path(tmp), dest / "share", [t.suite for t in pending])]
            for tool in pending:
                try:
                    versions[tool.name] = install_one(tool, sources, bin_dir)
                except SourceError as exc:
                    failures.append(str(exc))
        write_versions(dest, versions)
        if failures:
            raise InstallError(failures)
        return versions


def main(argv: Sequence[str] | None = None, tools: Sequence[Tool] = TOOLS) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False,
                                     description="Install the tools pinned in tools/pins.toml into .tools/bin.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="default: .tools")
    args = parser.parse_args(argv)
    try:
        versions = install(tools, args.dest)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{name} {versions[name]}" for name in sorted(versions))
    print(f"tools in {args.dest / 'bin'}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
