"""Scenario simulator: synthetic llm-d P/D series (vLLM + EPP) rendered for promtool, a backfilled
Prometheus TSDB and a live ``/metrics`` endpoint.

It models what vLLM and the EPP export straight from their upstream metric definitions and must
not import the project's signal catalog (only ``pdobs.servers.tools`` / ``pdobs.core.paths`` /
``pdobs.servers.prometheus``), so that a wrong metric name in the catalog fails a test instead of
agreeing with itself.
"""

from simulator.scenarios import ALL, Scenario, combine, get, multi_cluster

__all__ = ["ALL", "Scenario", "combine", "get", "multi_cluster"]
