"""Rendering 3: a live ``/metrics`` endpoint whose values advance with wall-clock time.

``LiveEndpoint(scenario, speed=60)`` plays a 60-minute scenario in one minute of wall time: the
scenario minute is ``elapsed_seconds * speed / 60``, and the simulation steps every
``step_s`` scenario seconds (default 30 s, i.e. every 0.5 s of wall time at speed 60). After its
last phase the scenario keeps running in its final conditions. ``switch(other)`` swaps the
behaviour at runtime (e.g. collapsed -> healthy to see alerts resolve) while every counter keeps
growing, as a real fix would not reset pods.

Two ways to scrape it (both text exposition format 0.0.4, served by ``http.server``):

* Per target (faithful, recommended): ``/targets/<cluster or ->/<namespace>/<pod>/metrics``
  serves one pod's metrics with metric labels only, and answers 503 while that pod's scrape is
  meant to fail, so Prometheus itself records ``up`` = 0 and staleness. ``scrape_configs()``
  returns one Prometheus scrape job per target that sets ``job``, ``instance``, ``namespace``,
  ``pod``, ``container`` (and ``cluster`` / the role label) as target labels, exactly as the
  PodMonitor / ServiceMonitor would.
* All targets at once: ``/metrics`` serves every pod's series with the target labels
  (``namespace``, ``pod``, ``job``, ``instance``, ...) written as ordinary labels, plus each
  simulated target's ``up``. Prometheus must scrape it with ``honor_labels: true`` so those labels
  win over the scrape's own ``job``/``instance``; its real ``up`` then describes only the
  endpoint itself (``scrape_configs(per_target=False)``).

What a live endpoint cannot show: a target that does not exist yet (or any more) answers 404,
so Prometheus records ``up`` 0 for it where Kubernetes discovery would have no target at all;
and a scenario's ``scrape_missed`` (Prometheus' own outage) has no effect, the endpoint keeps
answering.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pdobs.core.promql import format_duration
from simulator.model import Frame, Simulation, Target
from simulator.scenarios import Scenario

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TARGET_PATH = re.compile(r"^/targets/([^/]+)/([^/]+)/([^/]+)/metrics$")


def target_slug(target: Target) -> str:
    """``<cluster or ->/<namespace>/<pod>`` (the path segment of the per-target endpoint)."""
    cluster, namespace, pod = target.ident.split("/")
    return f"{cluster or '-'}/{namespace}/{pod}"


class LiveEndpoint:
    """Serves a scenario over HTTP on 127.0.0.1 (free port unless ``port`` is given)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float = 1.0,
        step_s: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.scenario = scenario
        self.speed = speed
        self.step_s = step_s
        self._sim = Simulation(scenario.runs, step_s)
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._t0 = time.monotonic()
        self._switch_log: list[tuple[float, str]] = [(0.0, scenario.name)]
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.scrapes = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LiveEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = endpoint._handle(self.path)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LiveEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("endpoint not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    # -- time and behaviour ------------------------------------------------------------------

    @property
    def minute(self) -> float:
        """Scenario minutes elapsed since start (across switches)."""
        return (time.monotonic() - self._t0) * self.speed / 60.0

    def switch(self, scenario: Scenario, at_minute: float = 0.0) -> None:
        """Play ``scenario`` from its minute ``at_minute`` from now on; counters carry over."""
        with self._lock:
            self._advance()
            self._sim.switch(scenario.runs, at_minute)
            self.scenario = scenario
            self._switch_log.append((self.minute, scenario.name))

    def _advance(self) -> Frame:
        target_step = int(self.minute * 60.0 / self.step_s)
        while self._frame is None or self._sim.step <= target_step:
            self._frame = self._sim.advance()
        return self._frame

    def current_frame(self) -> Frame:
        with self._lock:
            return self._advance()

    # -- exposition --------------------------------------------------------------------------

    def exposition(self, slug: str | None = None) -> tuple[int, str]:
        """``(status, text)`` of ``/metrics`` (``slug`` None) or of one target's endpoint."""
        with self._lock:
            frame = self._advance()
            return self._render(frame, slug)

    def _handle(self, path: str) -> tuple[int, str]:
        path = path.split("?", 1)[0]
        if path in ("/-/healthy", "/-/ready"):
            return 200, "OK\n"
        if path == "/metrics":
            self.scrapes += 1
            return self.exposition(None)
        m = _TARGET_PATH.match(path)
        if m:
            self.scrapes += 1
            return self.exposition("/".join(m.groups()))
        return 404, "not found\n"

    def _render(self, frame: Frame, slug: str | None) -> tuple[int, str]:
        reg = self._sim.registry
        entries = frame.entries
        if slug is not None:
            entries = [e for e in entries if target_slug(e.target) == slug]
            if not entries:
                return 404, f"no target {slug} at minute {frame.minute:.1f}\n"
            if not entries[0].up:
                return 503, "scrape failure simulated\n"
        with_targets = slug is None
        # sid -> (value, target) for everything exposed now, grouped by family below.
        current: dict[int, tuple[float, Target]] = {}
        for e in entries:
            t = e.target
            if with_targets:
                current[t.up_sid] = (e.up, t)
            if e.up and t.layout is not None:
                for sid, v in zip(t.layout.sids, t.values, strict=True):
                    current[sid] = (v, t)
        out: list[str] = []
        for fam_name, mids in reg.family_metrics.items():
            lines: list[str] = []
            for mid in mids:
                for sid in reg.metrics[mid].sids:
                    got = current.get(sid)
                    if got is None:
                        continue
                    info = reg.series[sid]
                    v, t = got
                    parts = [t.label_str] if with_targets else []
                    if info.metric_labels:
                        parts.append(info.metric_labels)
                    labels = ",".join(parts)
                    lines.append(f"{info.name}{{{labels}}} {v!r}\n" if labels
                                 else f"{info.name} {v!r}\n")  # fmt: skip
            if not lines:
                continue
            fam = reg.families[fam_name]
            # Text format 0.0.4 names counters by their sample name, as prometheus_client does.
            exposed = fam_name + "_total" if fam.kind == "counter" else fam_name
            help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
            out.append(f"# HELP {exposed} {help_text}\n# TYPE {exposed} {fam.kind}\n")
            out.extend(lines)
        return 200, "".join(out)

    # -- Prometheus configuration ------------------------------------------------------------

    def scrape_configs(
        self, *, scrape_interval_s: float = 1.0, per_target: bool = True
    ) -> list[dict[str, Any]]:
        """Prometheus ``scrape_configs`` for this endpoint (see the module docstring).

        Per-target jobs are generated for every target the current scenario ever has (a dry
        run over its duration), so pods that appear later are scraped too."""
        interval = format_duration(scrape_interval_s)
        address = f"{self._host}:{self.port}"
        if not per_target:
            return [{
                "job_name": "pd-simulator",
                "honor_labels": True,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": [address]}],
            }]  # fmt: skip
        configs = []
        for i, target in enumerate(_all_targets(self.scenario)):
            labels = dict(target.labels)
            job, instance = labels.pop("job"), labels.pop("instance")
            configs.append({
                "job_name": f"pd-sim-{i}",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": f"/targets/{target_slug(target)}/metrics",
                "static_configs": [{"targets": [address], "labels": labels}],
                "relabel_configs": [
                    {"target_label": "job", "replacement": job},
                    {"target_label": "instance", "replacement": instance},
                ],
            })  # fmt: skip
        return configs


def _all_targets(scenario: Scenario) -> list[Target]:
    sim = Simulation(scenario.runs, 60.0)
    for _ in sim.frames(scenario.n_steps(60.0)):
        pass
    return sorted(sim.targets.values(), key=lambda t: t.tid)


def parse_exposition(text: str) -> Mapping[str, float]:
    """``{'name{labels}': value}`` of a text exposition (for tests and quick checks)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out
