"""Run VictoriaMetrics (single node), vmalert replay and vmalert-tool from .tools/bin.

    with VictoriaMetricsServer() as vm:
        vm.import_prometheus(text)          # text exposition format, timestamps in ms
        vm.flush()
        replay_rules(vm.url, [rules], start=t0, end=t1, eval_interval_s=30)
        vm.query_range("sum(rate(x[5m]))", t0, t1, 60)

The server listens on 127.0.0.1 on a free port with its own temporary storage and is always
stopped (context manager, ``stop()``, and the same ``atexit`` net as PrometheusServer). It serves
the Prometheus query API, so the query helpers are PrometheusServer's.

Flags that make a backfilled VictoriaMetrics answer like a backfilled Prometheus:
``-search.disableCache`` (its response cache assumes the past never changes, but a replay writes
into the past), ``-search.latencyOffset=0s`` (no hiding of the newest points) and a 100-year
retention (samples older than the retention are dropped on import).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from pdobs.servers.prometheus import _LIVE, PrometheusError, PrometheusServer
from pdobs.servers.tools import tool_path

# Alert tests: the group name is not a label in Prometheus, so vmalert must not add one either.
VMALERT_TOOL_FLAGS = ("--disableAlertgroupLabel",)


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VictoriaMetricsServer(PrometheusServer):
    """A single-node victoria-metrics process under test control."""

    def __init__(self, *, workdir: str | Path | None = None, ready_timeout_s: float = 60.0,
                 extra_args: Sequence[str] = (), binary: str | Path | None = None) -> None:
        super().__init__(workdir=workdir, ready_timeout_s=ready_timeout_s, extra_args=extra_args, binary=binary)
        self.log_path = self.workdir / "victoria-metrics.log"

    def binary(self) -> Path:
        return self._binary if self._binary is not None else tool_path("victoria-metrics")

    def _spawn(self) -> None:
        cmd = [
            str(self.binary()),
            f"-storageDataPath={self.storage_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-search.disableCache",
            "-search.latencyOffset=0s",
            "-loggerLevel=WARN",
            *self.extra_args,
        ]
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _LIVE.add(self)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PrometheusError(f"victoria-metrics exited with {self._proc.returncode} while starting: "
                                      f"{' '.join(cmd)}\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if self._session.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise PrometheusError(f"victoria-metrics not ready after {self.ready_timeout_s:.0f}s: {' '.join(cmd)}\n"
                              f"{self.log_tail()}")

    def reload(self) -> None:  # pragma: no cover - nothing to reload: VictoriaMetrics has no rule files
        raise NotImplementedError("victoria-metrics has no configuration to reload")

    # -- ingestion ----------------------------------------------------------------------------

    def import_prometheus(self, chunks: Iterable[str | bytes]) -> int:
        """POST each chunk of text exposition format (``name{labels} value timestamp_ms``) to
        ``/api/v1/import/prometheus``; returns the bytes sent."""
        sent = 0
        for chunk in chunks:
            body = chunk.encode() if isinstance(chunk, str) else chunk
            resp = self._session.post(f"{self.url}/api/v1/import/prometheus", data=body, timeout=120)
            if resp.status_code // 100 != 2:
                raise PrometheusError(f"import failed ({resp.status_code}): {resp.text[:500]}")
            sent += len(body)
        return sent

    def flush(self) -> None:
        """Make everything ingested so far searchable (``/internal/force_flush``)."""
        resp = self._session.get(f"{self.url}/internal/force_flush", timeout=60)
        if resp.status_code // 100 != 2:
            raise PrometheusError(f"force_flush failed ({resp.status_code}): {resp.text[:500]}")


def replay_rules(vm: VictoriaMetricsServer, layers: Sequence[Sequence[str | Path]], *, start: float, end: float,
                 workdir: str | Path, binary: str | Path | None = None) -> None:
    """Evaluate recording rules over ``[start, end]`` with ``vmalert`` in replay mode, reading from
    and writing to ``vm``. Pass the rule files one layer at a time (see
    simulator.render_openmetrics.rule_layers): a rule reading another rule's records needs them
    written and flushed first, which vmalert only guarantees between runs (``-replay.rulesDelay``
    would cost a second per rule). Each group's own ``interval`` is its replay step."""
    tool = Path(binary) if binary else tool_path("vmalert")
    log = Path(workdir) / "vmalert-replay.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        cmd = [
            str(tool), *[f"-rule={Path(f).resolve()}" for f in layer],
            f"-datasource.url={vm.url}", f"-remoteWrite.url={vm.url}",
            f"-replay.timeFrom={_rfc3339(start)}", f"-replay.timeTo={_rfc3339(end)}",
            "-replay.rulesDelay=0s", "-replay.disableProgressBar",
            # No group label on the records (Prometheus adds none) and no shift of the evaluation time.
            "-disableAlertgroupLabel", "-rule.evalDelay=0s",
            "-loggerLevel=WARN", "-httpListenAddr=127.0.0.1:0",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        with log.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            raise PrometheusError(f"vmalert replay failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                                  f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        vm.flush()


def vmalert_tool_unittest(files: Sequence[str | Path], *, cwd: str | Path | None = None,
                          binary: str | Path | None = None,
                          timeout_s: float = 600.0) -> subprocess.CompletedProcess[str]:
    """``vmalert-tool unittest`` on promtool-format test files (exit 0 when all pass)."""
    tool = Path(binary) if binary else tool_path("vmalert-tool")
    cmd = [str(tool), "unittest", *[f"--files={f}" for f in files], *VMALERT_TOOL_FLAGS, "--loggerLevel=ERROR"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False, timeout=timeout_s)


def vmalert_dry_run(rule_files: Sequence[str | Path], *, binary: str | Path | None = None
                    ) -> subprocess.CompletedProcess[str]:
    """``vmalert -dryRun``: parse and validate rule files (expressions, templates) without running."""
    tool = Path(binary) if binary else tool_path("vmalert")
    cmd = [str(tool), "-dryRun", *[f"-rule={Path(f).resolve()}" for f in rule_files], "-loggerLevel=WARN"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def vmalert_tool_document(promtool_doc: Mapping[str, Any], rule_dir: str = "") -> dict[str, Any]:
    """A ``promtool test rules`` document as ``vmalert-tool unittest`` reads it.

    vmalert-tool takes promtool's format with one rename: expression tests are
    ``metricsql_expr_test``. And one semantic bridge: PromQL drops the metric name from the result
    of functions such as round() and abs(), MetricsQL keeps it; where promtool expects nameless
    samples, the expression's result has its name removed (``label_del``) so the values are what
    is compared. ``rule_dir`` is prefixed to relative rule file paths (the copy may live elsewhere).
    """
    doc = copy.deepcopy(dict(promtool_doc))
    doc["rule_files"] = [f if not rule_dir or Path(f).is_absolute() else f"{rule_dir.rstrip('/')}/{f}"
                         for f in doc.get("rule_files", ())]
    for group in doc.get("tests", ()):
        cases = group.pop("promql_expr_test", None)
        if cases is None:
            continue
        for case in cases:
            if case.get("exp_samples") and all(str(s.get("labels", "")).startswith("{")
                                               for s in case["exp_samples"]):
                case["expr"] = f'label_del(({case["expr"]}), "__name__")'
        group["metricsql_expr_test"] = cases
    return doc
