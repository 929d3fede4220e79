"""A real Prometheus serving a backfilled scenario, with scenario-relative time.

    sp = serve_scenario(scenarios.get("collapsed", duration_min=30), workdir=tmp,
                        rule_files=["build/prometheus/recording-rules.yaml"])
    sp.query("inference_pool_ready_pods", minute=30)
    sp.stop()

Recording rules are backfilled with ``promtool tsdb create-blocks-from rules`` one layer of
groups at a time (a group reading another group's records needs those loaded first), restarting
the server after each layer; the rule files are also loaded into the server as they are. The
``ALERTS`` series, which promtool cannot backfill, can be replayed too (``backfill_alert_rules``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdobs.servers.prometheus import PrometheusServer
from simulator.alert_replay import backfill_alerts
from simulator.render_openmetrics import Backfill, backfill, backfill_rules, rule_layers
from simulator.scenarios import Scenario


@dataclass
class ScenarioPrometheus:
    """A started server plus where the scenario sits in time (minute m = ``time_at(m)``)."""

    scenario: Scenario
    backfill: Backfill
    server: PrometheusServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def start_time(self) -> float:
        return self.backfill.start_time

    @property
    def end_time(self) -> float:
        return self.backfill.end_time

    def time_at(self, minute: float | None = None) -> float:
        """Absolute time of a scenario minute (None: its last sample)."""
        return self.end_time if minute is None else self.backfill.time_at(minute)

    def query(self, expr: str, minute: float | None = None) -> list[dict[str, Any]]:
        return self.server.query(expr, self.time_at(minute))

    def query_value(self, expr: str, minute: float | None = None) -> float | None:
        return self.server.query_value(expr, self.time_at(minute))

    def query_range(
        self,
        expr: str,
        start_min: float = 0.0,
        end_min: float | None = None,
        step_s: float | None = None,
    ) -> list[dict[str, Any]]:
        step = step_s if step_s is not None else self.backfill.interval_s
        return self.server.query_range(expr, self.time_at(start_min), self.time_at(end_min), step)

    def stop(self) -> None:
        self.server.stop()


def serve_scenario(
    scenario: Scenario,
    *,
    workdir: str | Path,
    rule_files: Sequence[str | Path] = (),
    backfill_recording_rules: bool = True,
    backfill_alert_rules: bool = False,
    interval_s: float = 30.0,
    evaluation_interval_s: float = 30.0,
    end_time: float | None = None,
) -> ScenarioPrometheus:
    """Backfill ``scenario`` into ``workdir/tsdb`` and start Prometheus on it.

    With ``rule_files`` and ``backfill_recording_rules`` their recording rules are evaluated
    over the whole scenario (every ``evaluation_interval_s``) and added to the TSDB too; with
    ``backfill_alert_rules`` as well, the ``ALERTS`` series their alerting rules would have
    written (see :mod:`simulator.alert_replay`).
    """
    from pdobs.core.promql import format_duration

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    tsdb = work / "tsdb"
    loaded = backfill(scenario, tsdb, interval_s=interval_s, end_time=end_time, workdir=work)
    server = PrometheusServer(
        storage_dir=tsdb,
        rule_files=rule_files,
        evaluation_interval=format_duration(evaluation_interval_s),
        workdir=work / "prometheus",
    )
    server.start()
    try:
        if rule_files and backfill_recording_rules:
            for layer in rule_layers(rule_files, work / "rule-layers"):
                backfill_rules(
                    server.url, layer, tsdb,
                    start=loaded.start_time, end=loaded.end_time,
                    eval_interval_s=evaluation_interval_s, workdir=work / "rule-blocks",
                )  # fmt: skip
                server.restart()
            if backfill_alert_rules and backfill_alerts(
                server, rule_files, tsdb, start=loaded.start_time, end=loaded.end_time,
                default_interval_s=evaluation_interval_s, workdir=work / "alert-blocks",
            ):
                server.restart()
    except BaseException:
        server.stop()
        raise
    return ScenarioPrometheus(scenario, loaded, server)
