"""Time and memory of generating a big scenario and backfilling it into a real Prometheus TSDB.

    .venv/bin/python bench/bench_simulator.py --pods 128 --hours 6 --interval 30

Generation (Python) and ``promtool tsdb create-blocks-from openmetrics`` run side by side, one
2-hour chunk at a time. Prints wall and CPU time, peak RSS of this process and of the largest
child (promtool), samples and series, and writes the same as JSON under bench/out/. With
``--verify`` it also starts Prometheus on the result and counts the series it holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pdobs.servers.prometheus import PrometheusServer  # noqa: E402
from simulator import scenarios  # noqa: E402
from simulator.render_openmetrics import backfill  # noqa: E402


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)  # ru_maxrss is in KiB on Linux


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=128, help="model-server pods (half prefill)")
    parser.add_argument("--prefill-pods", type=int, help="override the prefill share")
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--interval", type=float, default=30.0, help="scrape interval, seconds")
    parser.add_argument("--rps-per-decode-pod", type=float, default=10.0)
    parser.add_argument("--vllm-version", default="0.12.0")
    parser.add_argument("--epp-family", default="llm_d_router")
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--verify", action="store_true", help="start Prometheus and count series")
    parser.add_argument("--keep", action="store_true", help="keep the TSDB")
    args = parser.parse_args(argv)

    prefill = args.prefill_pods if args.prefill_pods is not None else args.pods // 2
    decode = args.pods - prefill
    scenario = scenarios.get(
        "scale", prefill_pods=prefill, decode_pods=decode, rps=args.rps_per_decode_pod * decode,
        duration_min=args.hours * 60, vllm_version=args.vllm_version, epp_family=args.epp_family,
    )  # fmt: skip
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pdsim-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tsdb = work / "tsdb"
    shutil.rmtree(tsdb, ignore_errors=True)

    wall0, cpu0 = time.monotonic(), time.process_time()
    result = backfill(scenario, tsdb, interval_s=args.interval, workdir=work)
    wall = time.monotonic() - wall0
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "pods": args.pods, "prefill_pods": prefill, "decode_pods": decode, "hours": args.hours,
        "interval_s": args.interval, "vllm_version": args.vllm_version,
        "epp_family": args.epp_family, "samples": result.samples, "chunks": result.files,
        "blocks": len(result.blocks), "wall_s": round(wall, 1),
        "python_cpu_s": round(time.process_time() - cpu0, 1),
        "promtool_cpu_s": round(kids.ru_utime + kids.ru_stime, 1),
        "python_peak_rss_mib": _mib(own.ru_maxrss),
        "promtool_peak_rss_mib": _mib(kids.ru_maxrss),
        "tsdb_mib": round(_dir_size(tsdb) / 2**20, 1),
    }  # fmt: skip
    if args.verify:
        with PrometheusServer(storage_dir=tsdb, workdir=work / "prometheus") as prom:
            report["series"] = len(prom.series('{__name__=~".+"}', result.start_time,
                                               result.end_time))  # fmt: skip
            report["pods_seen"] = prom.query_value(
                "count(count by (pod) (vllm:num_requests_running))", result.end_time
            )
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"simulator-{args.pods}pods-{args.hours:g}h-{stamp}.json").write_text(
        json.dumps(report, indent=2) + "\n"
    )
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
