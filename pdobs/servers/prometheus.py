"""Run a real Prometheus (3.5, from .tools/bin) for tests and benchmarks.

    with PrometheusServer(storage_dir=tsdb, rule_files=[rules]) as prom:
        prom.query('up', time=t)

It listens on 127.0.0.1 on a free port, either on an existing TSDB (a backfilled one) or with
scrape configs of its own, loads the given rule files, optionally sends alerts to an
Alertmanager, and waits until ``/-/ready``. ``stop()`` always ends the process (SIGTERM, then
SIGKILL after a timeout); the context manager and an ``atexit`` hook make sure of it.
Retention is set to 100 years: time-based retention counts from the newest block, and a test
must never lose a backfilled block because it looks old.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

_LIVE: weakref.WeakSet[PrometheusServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - safety net for crashed test sessions
    for server in list(_LIVE):
        server.stop()


class PrometheusError(RuntimeError):
    """Prometheus could not be started, or answered an API call with an error."""


class PrometheusQueryError(PrometheusError):
    """The query API returned ``status: error`` (bad PromQL, timeout, ...)."""

    def __init__(self, expr: str, error_type: str, error: str) -> None:
        super().__init__(f"{error_type}: {error}\n  query: {expr}")
        self.expr = expr
        self.error_type = error_type
        self.error = error


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ts(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return repr(float(value))


class PrometheusServer:
    """A Prometheus process under test control.

    ``storage_dir``: TSDB directory to serve (a backfilled one); a temporary one otherwise.
    ``rule_files``: loaded as they are (absolute paths are used in the generated config).
    ``scrape_configs``: Prometheus ``scrape_configs`` entries (e.g. for a live endpoint).
    ``alertmanager_url``: e.g. ``http://127.0.0.1:9093``; alerts are sent there (API v2).
    """

    def __init__(
        self,
        *,
        storage_dir: str | Path | None = None,
        rule_files: Sequence[str | Path] = (),
        evaluation_interval: str = "30s",
        scrape_interval: str = "30s",
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        alertmanager_url: str | None = None,
        external_labels: Mapping[str, str] | None = None,
        retention: str = "100y",
        extra_args: Sequence[str] = (),
        binary: str | Path | None = None,
        ready_timeout_s: float = 60.0,
        workdir: str | Path | None = None,
        log_level: str = "warn",
    ) -> None:
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.evaluation_interval = evaluation_interval
        self.scrape_interval = scrape_interval
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.alertmanager_url = alertmanager_url
        self.external_labels = dict(external_labels or {})
        self.retention = retention
        self.extra_args = list(extra_args)
        self._binary = Path(binary) if binary else None
        self.ready_timeout_s = ready_timeout_s
        self.log_level = log_level
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="pdobs-prom-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir = Path(storage_dir) if storage_dir else self.workdir / "data"
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "prometheus.yml"
        self.log_path = self.workdir / "prometheus.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._session = requests.Session()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def binary(self) -> Path:
        if self._binary is not None:
            return self._binary
        from pdobs.servers.tools import tool_path

        return tool_path("prometheus")

    def config(self) -> dict[str, Any]:
        """The configuration file's content."""
        glob: dict[str, Any] = {
            "scrape_interval": self.scrape_interval,
            "evaluation_interval": self.evaluation_interval,
        }
        if self.external_labels:
            glob["external_labels"] = self.external_labels
        cfg: dict[str, Any] = {"global": glob, "rule_files": [str(p) for p in self.rule_files]}
        cfg["scrape_configs"] = self.scrape_configs
        if self.alertmanager_url:
            parts = urlsplit(self.alertmanager_url)
            am: dict[str, Any] = {
                "scheme": parts.scheme or "http",
                "api_version": "v2",
                "static_configs": [{"targets": [parts.netloc]}],
            }
            if parts.path and parts.path != "/":
                am["path_prefix"] = parts.path
            cfg["alerting"] = {"alertmanagers": [am]}
        return cfg

    def start(self) -> PrometheusServer:
        if self.running:
            return self
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        last_error: Exception | None = None
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            try:
                self._spawn()
                return self
            except PrometheusError as exc:
                last_error = exc
                self._terminate()
                if "address already in use" not in str(exc):
                    break
        assert last_error is not None
        raise last_error

    def _spawn(self) -> None:
        cmd = [
            str(self.binary()),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            f"--log.level={self.log_level}",
            *self.extra_args,
        ]
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _LIVE.add(self)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self._proc.returncode} while starting: "
                    f"{' '.join(cmd)}\n{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):
                if self._session.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise PrometheusError(
            f"prometheus not ready after {self.ready_timeout_s:.0f}s: {' '.join(cmd)}\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _terminate(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the process (idempotent). A temporary workdir is removed with it."""
        self._terminate()
        _LIVE.discard(self)
        self._session.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> PrometheusServer:
        """Stop and start on the same storage (e.g. to pick up blocks added to the TSDB)."""
        self._terminate()
        return self.start()

    def reload(self) -> None:
        """Re-read the configuration and rule files (``POST /-/reload``)."""
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        resp = self._session.post(f"{self.url}/-/reload", timeout=30)
        if resp.status_code != 200:
            raise PrometheusError(f"reload failed ({resp.status_code}): {resp.text[:500]}")

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- API ---------------------------------------------------------------------------------

    def _api(self, path: str, params: Mapping[str, Any], expr: str = "") -> Any:
        try:
            resp = self._session.post(f"{self.url}{path}", data=params, timeout=60)
        except requests.RequestException as exc:
            raise PrometheusError(f"{path} failed: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(
                f"{path} answered {resp.status_code} with non-JSON: {resp.text[:500]}"
            ) from None
        if body.get("status") != "success":
            raise PrometheusQueryError(expr, body.get("errorType", "?"), body.get("error", "?"))
        return body.get("data")

    def _get(self, path: str) -> Any:
        resp = self._session.get(f"{self.url}{path}", timeout=30)
        body = resp.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body.get("data")

    def query(self, expr: str, time: float | str | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result list (``[{"metric": {...}, "value": [t, "v"]}]``).

        Scalars come back as one element with an empty ``metric``."""
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = _ts(time)
        data = self._api("/api/v1/query", params, expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(
        self, expr: str, start: float | str, end: float | str, step: float | str
    ) -> list[dict[str, Any]]:
        """Range query; returns the matrix (``[{"metric": {...}, "values": [[t, "v"], ...]}]``)."""
        params = {"query": expr, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        return list(self._api("/api/v1/query_range", params, expr)["result"])

    def query_value(self, expr: str, time: float | str | None = None) -> float | None:
        """The single value of an instant query: None if empty, an error if several series."""
        result = self.query(expr, time)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"expected at most one series, got {len(result)}: {expr}")
        return float(result[0]["value"][1])

    def series(self, match: str, start: float | None = None, end: float | None = None) -> list:
        params: dict[str, Any] = {"match[]": match}
        if start is not None:
            params["start"] = _ts(start)
        if end is not None:
            params["end"] = _ts(end)
        return list(self._api("/api/v1/series", params, match))

    def rules(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/rules")["groups"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts")["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def wait_for(
        self, expr: str, *, timeout_s: float = 60.0, interval_s: float = 0.5
    ) -> list[dict[str, Any]]:
        """Poll an instant query (at now) until it returns something; raise on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"no result after {timeout_s:.0f}s: {expr}")
            time.sleep(interval_s)


def as_float(sample_value: Sequence[Any]) -> float:
    """``[t, "1.5"]`` -> 1.5 (handles NaN/Inf strings)."""
    text = str(sample_value[1])
    if text in ("NaN", "+Inf", "-Inf"):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[text]
    return float(text)
