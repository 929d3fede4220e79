#!/usr/bin/env python3
"""Install the pinned Prometheus, Alertmanager and VictoriaMetrics binaries into .tools/bin.

Stdlib only, because it runs before anything else is set up. Every tool is tried
from these sources in order, and the first binary whose own version report matches
the pin wins:

  1. PATH       a suitable binary the host already has (linked, not copied)
  2. debian     `apt-get download` + `dpkg -x` with a private apt state, so the
                host's sources, lists and dpkg database stay untouched
  3. github     the official release tarball (hosts outside Debian)
  4. docker     a wrapper script running the official image (only if `docker info` works)

A run whose tools already match .tools/versions.json and their pins changes nothing.
If any tool cannot be had, the run exits 1 with one line per tool naming every
source tried and why it failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / ".tools"

_PROM_GH = "https://github.com/prometheus/prometheus/releases/download/v{v}"
_AM_GH = "https://github.com/prometheus/alertmanager/releases/download/v{v}"
_VM_GH = "https://github.com/VictoriaMetrics/VictoriaMetrics/releases/download/v{v}"


@dataclasses.dataclass(frozen=True)
class Pin:
    """A pinned upstream line, shared by the binaries built from it."""

    suite: str  # Debian suite serving the line
    prefix: str  # accepted version prefix; "" accepts any
    release: str  # exact upstream release for the github and docker sources
    minimum: str = ""  # lowest accepted version; "" for none
    checksums: str = ""  # URL of the release's sha256 list, {v} = release
    reports_version: bool = True  # the probe's output names the version


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    """One binary to install and where each source finds it."""

    name: str  # file name in .tools/bin
    pin: Pin
    package: str  # Debian binary package
    deb_path: str  # binary inside the .deb
    tarball: str  # release tarball URL; {v} = release, {os}/{arch} = platform
    member: str  # binary inside the tarball
    image: str  # container image, {v} = release
    image_path: str  # binary inside the image
    path_names: tuple[str, ...]  # names to look for on PATH
    probe: tuple[str, ...] = ("--version",)  # must exit 0
    # Data folders of the .deb that its binary reads at run time, copied to .tools/share.
    # Debian's alertmanager loads default.tmpl from /usr/share/prometheus/alertmanager instead of
    # embedding it; pdobs/alertmanager.py mounts our copy there in a private mount namespace.
    deb_share: tuple[str, ...] = ()


# Debian served on 2026-11-27: sid prometheus + promtool 3.5.3+ds1-6, prometheus-alertmanager
# 0.33.1-5, victoria-metrics 1.145.0+ds1-2; trixie promtool 2.53.3+ds1-2. Prefixes rather
# than exact versions, so a Debian point release does not break `make tools`.
PROM_3 = Pin(suite="sid", prefix="3.5.", release="3.5.3", checksums=_PROM_GH + "/sha256sums.txt")
PROM_2 = Pin(suite="trixie", prefix="2.53.", release="2.53.3", checksums=_PROM_GH + "/sha256sums.txt")
# The project needs 0.28 or newer; a floor keeps sid's next minor release acceptable.
ALERTMANAGER = Pin(
    suite="sid",
    prefix="0.",
    minimum="0.28",
    release="0.33.1",
    checksums=_AM_GH + "/sha256sums.txt",
)
# Debian's VictoriaMetrics builds print an empty version and vmalert-tool has no version
# flag, so the version recorded is the one of the .deb, tarball or image.
VICTORIA = Pin(suite="sid", prefix="1.", release="1.145.0", reports_version=False)

_PROM_TGZ = _PROM_GH + "/prometheus-{v}.{os}-{arch}.tar.gz"
_AM_TGZ = _AM_GH + "/alertmanager-{v}.{os}-{arch}.tar.gz"
_VMUTILS_TGZ = _VM_GH + "/vmutils-{os}-{arch}-v{v}.tar.gz"

# fmt: off
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("prometheus", PROM_3, "prometheus", "usr/bin/prometheus",
             _PROM_TGZ, "prometheus-{v}.{os}-{arch}/prometheus",
             "prom/prometheus:v{v}", "/bin/prometheus", ("prometheus",)),
    # Debian ships promtool in its own package, not in `prometheus`.
    ToolSpec("promtool", PROM_3, "promtool", "usr/bin/promtool",
             _PROM_TGZ, "prometheus-{v}.{os}-{arch}/promtool",
             "prom/prometheus:v{v}", "/bin/promtool", ("promtool",)),
    ToolSpec("promtool-2", PROM_2, "promtool", "usr/bin/promtool",
             _PROM_TGZ, "prometheus-{v}.{os}-{arch}/promtool",
             "prom/prometheus:v{v}", "/bin/promtool", ("promtool-2", "promtool")),
    # Debian renames the daemon prometheus-alertmanager; amtool ships in the same package.
    ToolSpec("alertmanager", ALERTMANAGER, "prometheus-alertmanager",
             "usr/bin/prometheus-alertmanager",
             _AM_TGZ, "alertmanager-{v}.{os}-{arch}/alertmanager",
             "prom/alertmanager:v{v}", "/bin/alertmanager",
             ("alertmanager", "prometheus-alertmanager"),
             deb_share=("usr/share/prometheus/alertmanager",)),
    ToolSpec("amtool", ALERTMANAGER, "prometheus-alertmanager", "usr/bin/amtool",
             _AM_TGZ, "alertmanager-{v}.{os}-{arch}/amtool",
             "prom/alertmanager:v{v}", "/bin/amtool", ("amtool",)),
    ToolSpec("victoria-metrics", VICTORIA, "victoria-metrics", "usr/bin/victoria-metrics",
             _VM_GH + "/victoria-metrics-{os}-{arch}-v{v}.tar.gz", "victoria-metrics-prod",
             "victoriametrics/victoria-metrics:v{v}", "/victoria-metrics-prod",
             ("victoria-metrics",)),
    ToolSpec("vmalert", VICTORIA, "victoria-metrics", "usr/bin/vmalert",
             _VMUTILS_TGZ, "vmalert-prod",
             "victoriametrics/vmalert:v{v}", "/vmalert-prod", ("vmalert",)),
    # --help is the cheapest "it runs" check for a tool without a version flag.
    ToolSpec("vmalert-tool", VICTORIA, "victoria-metrics", "usr/bin/vmalert-tool",
             _VMUTILS_TGZ, "vmalert-tool-prod",
             "victoriametrics/vmalert-tool:v{v}", "/vmalert-tool-prod", ("vmalert-tool",),
             probe=("--help",)),
)
# fmt: on

DEBIAN_SUITES = ("sid", "trixie")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRINGS = (
    Path("/usr/share/keyrings/debian-archive-keyring.gpg"),
    Path("/usr/share/keyrings/debian-archive-keyring.pgp"),
)
PROBE_TIMEOUT_S = 60
DOWNLOAD_TIMEOUT_S = 60
_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+(?:\+[0-9A-Za-z.]+)?)")


class SourceError(Exception):
    """One source could not provide one tool; the message says why."""


class InstallError(Exception):
    """Some tools could not be installed from any source."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        lines = "\n".join(f"  {line}" for line in self.failures)
        super().__init__(f"could not install {len(self.failures)} tool(s):\n{lines}")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A binary a source produced, not yet placed in .tools/bin."""

    path: Path
    fallback_version: str  # recorded when the binary does not report its version
    origin: str  # shown to the user
    link: bool = False  # link to it rather than move it (it belongs to the host)


class Source(Protocol):
    name: str

    def obtain(self, spec: ToolSpec) -> Candidate: ...


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def accepts(spec: ToolSpec, version: str) -> bool:
    if not version.startswith(spec.pin.prefix):
        return False
    minimum = spec.pin.minimum
    return not minimum or version_key(version) >= version_key(minimum)


def wanted(spec: ToolSpec) -> str:
    parts = [f"{spec.pin.prefix}x" if spec.pin.prefix else "any"]
    if spec.pin.minimum:
        parts.append(f">= {spec.pin.minimum}")
    return " ".join(parts)


def probe(binary: Path, spec: ToolSpec) -> str | None:
    """Run the tool's probe; return the version it reports, None if it reports none."""
    try:
        proc = subprocess.run(
            [str(binary), *spec.probe],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"{binary} {' '.join(spec.probe)} failed: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        raise SourceError(f"{binary} {' '.join(spec.probe)} exited {proc.returncode}: {''.join(detail)}")
    if not spec.pin.reports_version:
        return None
    match = _VERSION_RE.search(proc.stdout + proc.stderr)
    return match.group(1) if match else None


def debian_upstream(version: str) -> str:
    """'1:1.145.0+ds1-2' -> '1.145.0+ds1': the part comparable with upstream versions."""
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def run(cmd: Sequence[str], timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; raise SourceError with its last stderr line if it fails."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"`{cmd[0]}` failed: {exc}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("W:")]
        last = lines[-1] if lines else f"exit {proc.returncode}"
        raise SourceError(f"`{' '.join(cmd[:2])}` failed: {last}")
    return proc


def platform_pair() -> tuple[str, str]:
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    machine = platform.machine().lower()
    return platform.system().lower(), arch.get(machine, machine)


def link_or_copy(src: Path, dst: Path) -> None:
    # A hard link is free on the same filesystem and leaves the source for other specs.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_executable(path: Path) -> None:
    path.chmod(0o755)


class PathSource:
    """A binary the host already has, e.g. from a distribution package."""

    name = "PATH"

    def __init__(self, exclude: Path) -> None:
        # .tools/bin may itself be on PATH; finding our own link there proves nothing.
        self._exclude = exclude.resolve()

    def obtain(self, spec: ToolSpec) -> Candidate:
        path_dirs = [
            d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != self._exclude
        ]
        search = os.pathsep.join(path_dirs)
        seen: list[str] = []
        for name in spec.path_names:
            found = shutil.which(name, path=search)
            if not found:
                continue
            version = probe(Path(found), spec)
            if version and accepts(spec, version):
                return Candidate(Path(found).absolute(), version, f"PATH {found}", link=True)
            seen.append(f"{found} is {version or 'of unknown version'}")
        if seen:
            raise SourceError("; ".join(seen) + f", want {wanted(spec)}")
        raise SourceError(f"none of {', '.join(spec.path_names)} on PATH")


class DebianSource:
    """Pinned .debs from the Debian archive, unpacked without installing them."""

    def __init__(self, workdir: Path, mirror: str | None = None, share_dir: Path | None = None) -> None:
        self._dir = workdir / "apt"
        self._share_dir = share_dir
        self._mirror = mirror or host_debian_mirror()
        self._ready: SourceError | bool = False
        self._extracted: dict[tuple[str, str], Path] = {}
        self.name = f"debian ({self._mirror})"

    def obtain(self, spec: ToolSpec) -> Candidate:
        self._setup()
        version = self._served_version(spec)
        if not accepts(spec, debian_upstream(version)):
            raise SourceError(f"{spec.pin.suite} serves {spec.package} {version}, want {wanted(spec)}")
        root = self._unpack(spec.package, version)
        binary = root / spec.deb_path
        if not binary.is_file():
            raise SourceError(f"{spec.package} {version} has no /{spec.deb_path}")
        self._keep_share(spec, root, version)
        return Candidate(binary, debian_upstream(version), f"debian {spec.pin.suite} {spec.package} {version}")

    def _keep_share(self, spec: ToolSpec, root: Path, version: str) -> None:
        if self._share_dir is None:
            return
        for rel in spec.deb_share:
            src = root / rel
            if not src.is_dir():
                raise SourceError(f"{spec.package} {version} has no /{rel}")
            target = self._share_dir / Path(rel).relative_to("usr/share")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(src, target)

    def _apt_options(self) -> list[str]:
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
            # Only the Packages indexes are needed; translations just cost download time.
            "Acquire::Languages": "none",
        }
        if os.geteuid() == 0:
            # apt's _apt sandbox user cannot write into our private directories.
            opts["APT::Sandbox::User"] = "root"
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def _setup(self) -> None:
        # One `apt-get update` per run, and one failure reported for every tool.
        if isinstance(self._ready, SourceError):
            raise self._ready
        if self._ready:
            return
        try:
            self._update()
            self._ready = True
        except SourceError as exc:
            self._ready = exc
            raise

    def _update(self) -> None:
        for needed in ("apt-get", "apt-cache", "dpkg-deb"):
            if not shutil.which(needed):
                raise SourceError(f"{needed} not found (not a Debian-based host)")
        keyring = next((k for k in KEYRINGS if k.is_file()), None)
        if keyring is None:
            raise SourceError("no Debian archive keyring (install debian-archive-keyring)")
        for sub in ("state/lists/partial", "cache/archives/partial", "empty", "debs"):
            (self._dir / sub).mkdir(parents=True, exist_ok=True)
        (self._dir / "state" / "status").touch()
        (self._dir / "sources.list").write_text(
            "".join(f"deb [signed-by={keyring}] {self._mirror} {suite} main\n" for suite in DEBIAN_SUITES)
        )
        proc = run(["apt-get", *self._apt_options(), "-q", "update"])
        # apt-get update exits 0 even when it could fetch nothing; only the lists tell.
        lists = self._dir / "state" / "lists"
        for suite in DEBIAN_SUITES:
            if not any(lists.glob(f"*_dists_{suite}_main_binary-*_Packages*")):
                fetch_errors = [ln for ln in proc.stderr.splitlines() if "Failed to fetch" in ln]
                why = fetch_errors[0] if fetch_errors else "no Packages index"
                raise SourceError(f"apt-get update got no {suite} index: {why}")

    def _served_version(self, spec: ToolSpec) -> str:
        out = run(["apt-cache", *self._apt_options(), "madison", spec.package]).stdout
        for line in out.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) == 3 and fields[0] == spec.package:
                where = fields[2].split()
                if len(where) >= 2 and where[1].split("/")[0] == spec.pin.suite:
                    return fields[1]
        raise SourceError(f"{spec.pin.suite} does not carry {spec.package}")

    def _unpack(self, package: str, version: str) -> Path:
        key = (package, version)
        if key not in self._extracted:
            debs = self._dir / "debs"
            run(["apt-get", *self._apt_options(), "-q", "download", f"{package}={version}"], cwd=debs)
            deb = next(debs.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"), None)
            if deb is None:
                raise SourceError(f"apt-get download {package}={version} left no .deb")
            target = self._dir / "unpacked" / f"{package}_{version}"
            target.mkdir(parents=True)
            run(["dpkg-deb", "-x", str(deb), str(target)])
            deb.unlink()  # the unpacked tree is all we need; keep the temp dir small
            self._extracted[key] = target
        return self._extracted[key]


class GithubSource:
    """The official release tarballs, for hosts without Debian's archive."""

    name = "github"

    def __init__(self, workdir: Path) -> None:
        self._dir = workdir / "github"
        self._tarballs: dict[str, Path] = {}

    def obtain(self, spec: ToolSpec) -> Candidate:
        os_name, arch = platform_pair()
        fields = {"v": spec.pin.release, "os": os_name, "arch": arch}
        url = spec.tarball.format(**fields)
        tarball = self._download(url, spec.pin.checksums.format(**fields))
        out = self._dir / "bin" / spec.name
        out.parent.mkdir(parents=True, exist_ok=True)
        member = spec.member.format(**fields)
        try:
            with tarfile.open(tarball) as tar:
                src = tar.extractfile(member)
                if src is None:
                    raise SourceError(f"{member} in {url} is not a file")
                with src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        except (KeyError, tarfile.TarError) as exc:
            raise SourceError(f"{member} not in {url}: {exc}") from exc
        make_executable(out)
        return Candidate(out, spec.pin.release, f"github {url}")

    def _download(self, url: str, checksums_url: str) -> Path:
        if url in self._tarballs:
            return self._tarballs[url]
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / url.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                with path.open("wb") as out:
                    shutil.copyfileobj(resp, out)
            if checksums_url:
                with urllib.request.urlopen(checksums_url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                    verify_sha256(path, resp.read().decode())
        except OSError as exc:  # URLError and HTTPError are OSErrors
            raise SourceError(f"cannot download {url}: {exc}") from exc
        self._tarballs[url] = path
        return path


def verify_sha256(path: Path, sums: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for line in sums.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            if parts[0] != digest:
                raise SourceError(f"sha256 mismatch for {path.name}")
            return
    raise SourceError(f"{path.name} not listed in the release's sha256sums")


class DockerSource:
    """The official image behind a wrapper script, where Docker can pull images."""

    name = "docker"

    def __init__(self, workdir: Path) -> None:
        self._dir = workdir / "docker"
        self._usable: SourceError | bool = False

    def obtain(self, spec: ToolSpec) -> Candidate:
        self._check_daemon()
        image = spec.image.format(v=spec.pin.release)
        run(["docker", "pull", "-q", image], timeout=1800)
        self._dir.mkdir(parents=True, exist_ok=True)
        wrapper = self._dir / spec.name
        wrapper.write_text(docker_wrapper(image, spec.image_path))
        make_executable(wrapper)
        return Candidate(wrapper, spec.pin.release, f"docker {image}")

    def _check_daemon(self) -> None:
        if isinstance(self._usable, SourceError):
            raise self._usable
        if self._usable:
            return
        if not shutil.which("docker"):
            self._usable = SourceError("docker not installed")
            raise self._usable
        try:
            run(["docker", "info"], timeout=30)
            self._usable = True
        except SourceError as exc:
            self._usable = exc
            raise


def docker_wrapper(image: str, binary: str) -> str:
    # The repo and /tmp are mounted at the same paths so file arguments (rule files,
    # test data in temp dirs) resolve inside the container as they do outside.
    return (
        "#!/bin/sh\n"
        "# Written by tools/install_tools.py: runs the pinned image's binary as a local tool.\n"
        f'exec docker run --rm -i --network host -u "$(id -u):$(id -g)" '
        f'-v "{ROOT}:{ROOT}" -v /tmp:/tmp -w "$PWD" --entrypoint {binary} {image} "$@"\n'
    )


def host_debian_mirror() -> str:
    """The Debian mirror the host's apt already reaches, so restricted networks work too."""
    if os.environ.get("PDOBS_DEBIAN_MIRROR"):
        return os.environ["PDOBS_DEBIAN_MIRROR"].rstrip("/")
    for uri in host_apt_uris():
        if re.fullmatch(r"https?://[^\s]+/debian/?", uri):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def host_apt_uris() -> Iterator[str]:
    etc = Path("/etc/apt")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        if path.suffix not in (".list", ".sources") or not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                yield from words[1:]
            elif words[:1] == ["deb"]:
                yield from (w for w in words[1:] if "://" in w)


def default_sources(workdir: Path, bin_dir: Path) -> list[Source]:
    return [
        PathSource(bin_dir),
        DebianSource(workdir, share_dir=bin_dir.parent / "share"),
        GithubSource(workdir),
        DockerSource(workdir),
    ]


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
        return  # unchanged: keep the mtime, a no-op run must touch nothing
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def is_current(spec: ToolSpec, bin_dir: Path, recorded: dict[str, str]) -> bool:
    """True if the installed binary runs and matches both versions.json and the pin."""
    version = recorded.get(spec.name)
    binary = bin_dir / spec.name
    if not version or not accepts(spec, version) or not os.access(binary, os.X_OK):
        return False
    share = bin_dir.parent / "share"
    # A copy from Debian needs its data folders; a link to the host's binary (PATH) does not.
    if not binary.is_symlink() and not all(
        (share / Path(rel).relative_to("usr/share")).is_dir() for rel in spec.deb_share
    ):
        return False
    try:
        reported = probe(binary, spec)
    except SourceError:
        return False
    return reported == version if spec.pin.reports_version else True


def place(spec: ToolSpec, candidate: Candidate, bin_dir: Path) -> str:
    """Verify a candidate, move (or link) it into bin_dir; return its version."""
    reported = probe(candidate.path, spec)
    if spec.pin.reports_version and reported is None:
        raise SourceError(f"{candidate.origin} reports no version")
    version = reported or candidate.fallback_version
    if not accepts(spec, version):
        raise SourceError(f"{candidate.origin} is {version}, want {wanted(spec)}")
    target = bin_dir / spec.name
    staged = bin_dir / f".{spec.name}.new"
    staged.unlink(missing_ok=True)
    if candidate.link:
        staged.symlink_to(candidate.path)
    else:
        link_or_copy(candidate.path, staged)
    os.replace(staged, target)  # atomic: a concurrent reader never sees half a binary
    try:
        probe(target, spec)  # the copy in .tools/bin is what everyone runs
    except SourceError:
        target.unlink()
        raise
    return version


def install_one(spec: ToolSpec, sources: Sequence[Source], bin_dir: Path) -> str:
    reasons: list[str] = []
    for source in sources:
        try:
            candidate = source.obtain(spec)
            version = place(spec, candidate, bin_dir)
        except SourceError as exc:
            reasons.append(f"{source.name}: {exc}")
            continue
        print(f"installed {spec.name} {version} from {candidate.origin}", flush=True)
        return version
    raise SourceError(f"{spec.name} ({wanted(spec)}): " + " | ".join(reasons))


@contextmanager
def locked(dest: Path) -> Iterator[None]:
    # Engineers share a working tree; two concurrent installs must not interleave.
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def install(
    specs: Sequence[ToolSpec] = TOOLS,
    dest: Path = DEFAULT_DEST,
    sources: Sequence[Source] | None = None,
) -> dict[str, str]:
    """Make dest/bin hold every spec'd tool; return name -> exact version installed."""
    with locked(dest):
        bin_dir = dest / "bin"
        bin_dir.mkdir(exist_ok=True)
        recorded = read_versions(dest)
        versions = {s.name: recorded[s.name] for s in specs if is_current(s, bin_dir, recorded)}
        pending = [s for s in specs if s.name not in versions]
        if not pending:
            return versions
        failures: list[str] = []
        with tempfile.TemporaryDirectory(dir=dest, prefix="tmp-") as tmp:
            chosen = sources if sources is not None else default_sources(Path(tmp), bin_dir)
            for spec in pending:
                try:
                    versions[spec.name] = install_one(spec, chosen, bin_dir)
                except SourceError as exc:
                    failures.append(str(exc))
        write_versions(dest, versions)
        if failures:
            raise InstallError(failures)
        return versions


def main(argv: Sequence[str] | None = None, specs: Sequence[ToolSpec] = TOOLS) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description="Install the pinned tools into .tools/bin.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="default: .tools")
    args = parser.parse_args(argv)
    try:
        versions = install(specs, args.dest)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{name} {versions[name]}" for name in sorted(versions))
    print(f"tools in {args.dest / 'bin'}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
