"""Shared fixtures: real Prometheus servers on simulated scenarios, live endpoints.

* ``prometheus_for_scenario(scenario, rule_files=(), **kw) -> ScenarioPrometheus`` (session):
  backfills the scenario, starts Prometheus 3.5 on it (recording rules backfilled too, and
  with ``backfill_alert_rules=True`` the ALERTS series the alert rules would have written) and
  caches it for the session, keyed by scenario name + parameters + rule files; at most
  ``MAX_RUNNING`` stay up (least recently used stopped first). All are stopped at the end.
* ``prometheus_server(**PrometheusServer kwargs) -> PrometheusServer`` (function): a started
  server with its own temporary storage, stopped after the test.
* ``live_endpoint(scenario, speed=..., step_s=...) -> LiveEndpoint`` (function): a started
  endpoint, stopped after the test.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pdobs.servers.prometheus import PrometheusServer
from simulator.render_live import LiveEndpoint
from simulator.scenarios import Scenario
from simulator.serve import ScenarioPrometheus, serve_scenario

MAX_RUNNING = 8


def _scenario_key(scenario: Scenario, rule_files: Sequence[str | Path], kw: dict[str, Any]) -> str:
    return json.dumps(
        [scenario.name, scenario.params, [str(Path(p).resolve()) for p in rule_files], kw],
        sort_keys=True,
        default=repr,
    )


@pytest.fixture(scope="session")
def prometheus_for_scenario(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ScenarioPrometheus]]:
    running: OrderedDict[str, ScenarioPrometheus] = OrderedDict()

    def factory(
        scenario: Scenario,
        rule_files: Sequence[str | Path] = (),
        *,
        interval_s: float = 30.0,
        evaluation_interval_s: float = 30.0,
        backfill_recording_rules: bool = True,
        backfill_alert_rules: bool = False,
    ) -> ScenarioPrometheus:
        kw = {"interval_s": interval_s, "evaluation_interval_s": evaluation_interval_s,
              "backfill_recording_rules": backfill_recording_rules,
              "backfill_alert_rules": backfill_alert_rules}  # fmt: skip
        key = _scenario_key(scenario, rule_files, kw)
        if key in running:
            running.move_to_end(key)
            return running[key]
        while len(running) >= MAX_RUNNING:
            _, oldest = running.popitem(last=False)
            oldest.stop()
        served = serve_scenario(
            scenario,
            workdir=tmp_path_factory.mktemp(f"prom-{scenario.name[:40]}"),
            rule_files=rule_files,
            **kw,
        )
        running[key] = served
        return served

    try:
        yield factory
    finally:
        for served in running.values():
            served.stop()


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    started: list[PrometheusServer] = []

    def factory(**kwargs: Any) -> PrometheusServer:
        kwargs.setdefault("workdir", tmp_path / f"prometheus-{len(started)}")
        server = PrometheusServer(**kwargs)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def live_endpoint() -> Iterator[Callable[..., LiveEndpoint]]:
    started: list[LiveEndpoint] = []

    def factory(scenario: Scenario, **kwargs: Any) -> LiveEndpoint:
        endpoint = LiveEndpoint(scenario, **kwargs)
        started.append(endpoint)
        return endpoint.start()

    try:
        yield factory
    finally:
        for endpoint in started:
            endpoint.stop()


# --- a local Grafana API for push (tests/grafana_api_server.py) --------------------------------
# Short timeouts and no backoff so failure paths finish quickly.
FAST_PUSH_CONFIG = "grafana:\n  push:\n    timeout_seconds: 0.5\n    retries: 2\n    backoff_seconds: 0\n"


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch):
    """A started local Grafana API server, its token in GRAFANA_TOKEN."""
    from grafana_api_server import GrafanaAPI

    with GrafanaAPI() as api:
        monkeypatch.setenv("GRAFANA_TOKEN", api.token)
        yield api


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST_PUSH_CONFIG)
    return path
