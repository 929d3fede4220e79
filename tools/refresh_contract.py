"""Refresh the metric contract (contract/) from upstream source.

    python tools/refresh_contract.py vllm [--version 0.33.0 ...]
    python tools/refresh_contract.py epp --git kubernetes-sigs/gateway-api-inference-extension=DIR \\
        --git llm-d/llm-d-inference-scheduler=DIR --git llm-d/llm-d-router=DIR [--only KEY ...]

``vllm`` downloads each wheel from PyPI with ``pip download --no-deps`` into a temporary folder,
reads its Python source as a zip (vLLM is never installed or imported), writes
``contract/vllm/<version>.json`` and deletes the wheel. ``epp`` reads git directories (clones
of the upstream repositories; nothing is checked out or built) and writes
``contract/epp/<key>.json``. What is read comes from ``contract/sources.yaml``.

Exit codes: 0 written, 2 bad input or a failed download (one line naming the cause), 1 a bug.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from tools.contract.go_metrics import GitTree, Source, extract, go_mod, pseudo_commit
from tools.contract.pysource import Package
from tools.contract.vllm_contract import build
from tools.contract.vllm_metrics import Extractor

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contract"
MIN_FREE_BYTES = 2 * 1024**3  # a vLLM wheel is ~400 MB; leave room for pip's own copy


class InputError(Exception):
    """Bad input: reported as one line, exit 2."""


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Deterministic JSON, written atomically (a reader never sees half a file)."""
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_sources() -> dict[str, Any]:
    return yaml.safe_load((CONTRACT / "sources.yaml").read_text(encoding="utf-8"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vllm_doc(archive: Path, version: str, source: dict[str, Any]) -> dict[str, Any]:
    ex = Extractor(Package(archive))
    ex.run()
    return build(ex, {"package": "vllm", "version": version, **source})


def download_wheel(version: str, dest: Path) -> Path:
    free = shutil.disk_usage(dest).free
    if free < MIN_FREE_BYTES:
        raise InputError(f"{dest}: {free // 1024**2} MiB free, need 2048; set TMPDIR to a roomier disk")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", f"vllm=={version}", "-d", str(dest)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("vllm-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise InputError(f"vllm=={version}: pip download failed: {last}")
    return wheels[0]


def refresh_vllm(versions: list[str], archives: dict[str, Path], out: Path) -> None:
    for version in versions:
        if version in archives:
            archive = archives[version]
            doc = vllm_doc(archive, version, {"archive": archive.name, "sha256": _sha256(archive)})
        else:
            with tempfile.TemporaryDirectory(prefix=f"vllm-{version}-") as tmp:
                wheel = download_wheel(version, Path(tmp))
                doc = vllm_doc(wheel, version, {
                    "wheel": wheel.name, "sha256": _sha256(wheel),
                    "index": "PyPI (pip download --no-deps --only-binary=:all:)",
                })  # fmt: skip
        write_json(out / f"{version}.json", doc)
        print(f"contract/vllm/{version}.json: {len(doc['metrics'])} definitions, "
              f"{len(doc['unresolved'])} unresolved")  # fmt: skip


def epp_doc(entry: dict[str, Any], gits: dict[str, Path]) -> dict[str, Any]:
    def git(repo: str) -> Path:
        if repo not in gits:
            raise InputError(f"--git {repo}=DIR is missing (the git dir of a clone of {repo})")
        return gits[repo]

    tree = GitTree(git(entry["repo"]), entry["ref"])
    module, requires, replaces = go_mod(tree)
    sources = [Source(entry["repo"], entry.get("label", entry["ref"]), tree, module, tuple(entry["roots"]))]
    doc: dict[str, Any] = {
        "schema": 1,
        "component": "epp",
        "key": entry["key"],
        "repo": entry["repo"],
        "ref": entry.get("label", entry["ref"]),
        "commit": tree.commit,
        "go_module": module,
        "generator": "tools/refresh_contract.py epp",
    }
    vendored = entry.get("vendored")
    if vendored:
        version = requires.get(vendored["module"])
        if version is None:
            raise InputError(f"{entry['key']}: go.mod does not require {vendored['module']}")
        if vendored["module"] in replaces:
            raise InputError(f"{entry['key']}: go.mod replaces {vendored['module']}; not supported")
        ref = pseudo_commit(version) or version
        vtree = GitTree(git(vendored["repo"]), ref)
        sources.append(Source(vendored["repo"], version, vtree, vendored["module"],
                              tuple(vendored["roots"]), key="vendored"))  # fmt: skip
        doc["vendored"] = {"module": vendored["module"], "version": version, "repo": vendored["repo"],
                           "commit": vtree.commit}  # fmt: skip
    metrics, unresolved = extract(sources)
    doc["metrics"] = metrics
    doc["unresolved"] = unresolved
    doc["notes"] = [
        "name: the family as client_golang registers it (Namespace_Subsystem_Name); samples: "
        "what the text exposition shows (counters keep the name as written, usually _total).",
        "binary: epp unless the file belongs to another program of the repo (routing-sidecar, bbr).",
        "Definitions only: a metric of an optional plugin is exported only when that plugin runs.",
    ]
    return doc


def refresh_epp(gits: dict[str, Path], only: set[str], out: Path) -> None:
    entries = load_sources()["epp"]
    known = {e["key"] for e in entries}
    if only - known:
        raise InputError(f"--only {sorted(only - known)[0]}: not in contract/sources.yaml (have {sorted(known)})")
    for entry in entries:
        if only and entry["key"] not in only:
            continue
        doc = epp_doc(entry, gits)
        write_json(out / f"{entry['key']}.json", doc)
        print(f"contract/epp/{entry['key']}.json: {len(doc['metrics'])} definitions, "
              f"{len(doc['unresolved'])} unresolved")  # fmt: skip


def _pairs(values: list[str], flag: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise InputError(f"{flag} {value!r}: expected NAME=PATH")
        if not Path(path).exists():
            raise InputError(f"{flag} {value!r}: {path} does not exist")
        out[key] = Path(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    pv = sub.add_parser("vllm", help="download vLLM wheels from PyPI and read their metrics")
    pv.add_argument("--version", action="append", default=[], help="only these versions")
    pv.add_argument("--archive", action="append", default=[], metavar="VERSION=PATH",
                    help="read a local wheel (or zip of the vllm/ sources) instead of downloading")  # fmt: skip
    pv.add_argument("--out", type=Path, default=CONTRACT / "vllm")
    pe = sub.add_parser("epp", help="read EPP metrics from git directories")
    pe.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=DIR", help="a clone's git dir")
    pe.add_argument("--only", action="append", default=[], metavar="KEY")
    pe.add_argument("--out", type=Path, default=CONTRACT / "epp")
    args = parser.parse_args(argv)
    try:
        if args.part == "vllm":
            configured = [str(v) for v in load_sources()["vllm"]["versions"]]
            versions = args.version or configured
            archives = _pairs(args.archive, "--archive")
            refresh_vllm(versions, archives, args.out)
        else:
            refresh_epp(_pairs(args.git, "--git"), set(args.only), args.out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(exc.cmd[:4])} failed: {(exc.stderr or '').strip()[:200]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
