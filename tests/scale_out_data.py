"""One simulated fleet for the scale-out tests, loaded into Prometheus and VictoriaMetrics alike.

Clusters (multi_cluster config, the simulator's `cluster` label on every series):
  a/llm-d       the post-mortem's collapse                  } same namespace, same pod names
  b/llm-d       healthy P/D                                 }
  solo/solo     healthy P/D alone in its namespace: what b must look like if nothing of a leaks in
  scale/pods-4  healthy P/D on 2 prefill + 2 decode pods    } cardinality: the recorded series per
  scale/pods-16 healthy P/D on 4 prefill + 12 decode pods   } namespace must not grow with pods

Both engines get the same samples (the OpenMetrics writer's, with ms timestamps for
VictoriaMetrics) ending at the same time, and the same recording rules evaluated over the whole
scenario (promtool create-blocks-from rules for Prometheus, vmalert replay for VictoriaMetrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.victoriametrics import VictoriaMetricsServer, replay_rules
from pdobs.build import make
from pdobs.core import config, promql
from recording_rules import render as recording_rules
from simulator import render_victoriametrics, scenarios
from simulator.render_openmetrics import Backfill, default_end_time, rule_layers
from simulator.serve import ScenarioPrometheus, serve_scenario

DURATION_MIN = 20
FAULT_MIN = 3
FROM_MIN = 14  # first compared minute: the collapse has filled the 5m rate windows and every series it
# ended has left both engines' lookback by then
STEP_S = 60
SCRAPE_S = 30
COLLAPSED, HEALTHY, SOLO = ("a", "llm-d"), ("b", "llm-d"), ("solo", "solo")
# namespace -> (prefill pods, decode pods)
SCALE_CLUSTER = "scale"
SCALES = {"pods-4": (2, 2), "pods-16": (4, 12)}


def multi_cluster_config() -> dict[str, Any]:
    return config.load(overrides={"multi_cluster": True})


def fleet() -> scenarios.Scenario:
    both = scenarios.multi_cluster(
        scenarios.get("collapsed", duration_min=DURATION_MIN, fault_start_min=FAULT_MIN),
        scenarios.get("healthy_pd", duration_min=DURATION_MIN),
        clusters=(COLLAPSED[0], HEALTHY[0]))
    solo = scenarios.get("healthy_pd", duration_min=DURATION_MIN, cluster=SOLO[0], namespace=SOLO[1])
    sized = [scenarios.get("scale", prefill_pods=p, decode_pods=d, rps=4.0 * (p + d), duration_min=DURATION_MIN,
                           cluster=SCALE_CLUSTER, namespace=ns)
             for ns, (p, d) in SCALES.items()]
    return scenarios.combine(both, solo, *sized, name="scale-out-fleet")


def truth(scenario: scenarios.Scenario, where: tuple[str, str]) -> dict[str, Any]:
    """The simulator's ground truth of one cluster/namespace of the fleet."""
    part = scenario.truth["parts"]["/".join(where)]
    return part["by_cluster"][where[0]] if "by_cluster" in part else part


def end_time() -> float:
    """A shared last-sample time on the step grid, so both engines' range queries line up."""
    return math.floor(default_end_time(SCRAPE_S) / STEP_S) * STEP_S


def write_rules(cfg: dict[str, Any], workdir: Path) -> Path:
    path = workdir / "recording-rules.yaml"
    path.write_text(make.build(cfg)[recording_rules.RULE_FILE])
    return path


def load_prometheus(scenario: scenarios.Scenario, rules: Path, workdir: Path, end: float) -> ScenarioPrometheus:
    return serve_scenario(scenario, workdir=workdir, rule_files=[rules], interval_s=SCRAPE_S,
                          evaluation_interval_s=SCRAPE_S, end_time=end)


@dataclass
class LoadedVM:
    server: VictoriaMetricsServer
    backfill: Backfill

    def stop(self) -> None:
        self.server.stop()


def load_victoriametrics(cfg: dict[str, Any], scenario: scenarios.Scenario, rules: Path, workdir: Path,
                         end: float) -> LoadedVM:
    server = VictoriaMetricsServer(workdir=workdir / "vm").start()
    try:
        loaded = render_victoriametrics.load(scenario, server, interval_s=SCRAPE_S, end_time=end)
        layers = rule_layers([rules], workdir / "vm-rule-layers")
        # Same window as promtool's backfill: every evaluation from the first sample to the last.
        assert promql.duration_seconds(cfg["prometheus"]["evaluation_interval"]) == SCRAPE_S
        replay_rules(server, layers, start=loaded.start_time, end=loaded.end_time, workdir=workdir)
        return LoadedVM(server, loaded)
    except BaseException:
        server.stop()
        raise
