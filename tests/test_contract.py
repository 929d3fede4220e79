"""The committed metric contract (contract/) against what the package queries and what the
simulator renders. No network: the contract is data read from upstream by `make contract`.

(a) Every metric a rendered rule, alert, dashboard or doctor query selects exists in at least
    one contract version or EPP build, with every label the query filters, groups, matches or
    displays by (scrape labels aside). Queries are taken from the rendered artefacts and from a
    doctor run, and parsed by a real Prometheus, so this survives any refactor of the catalog.
(b) Every family the simulator renders for a contract vLLM version (per connector and kv_role)
    or EPP build equals the contract's: names, types, labels, buckets, pre-created label values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pdobs.build.make import build as render_all
from pdobs.core import config
from pdobs.doctor import diagnose
from pdobs.servers.prometheus import PrometheusServer
from simulator import scenarios as S
from simulator.metrics import BUCKETS_1_2_5, EPP_PROFILES, Family, vllm_families
from tests import promql_uses as U
from tools.contract import load

ONE_TWO_FIVE = "1-2-5 series up to max_model_len"
# Series Prometheus makes itself, not an exporter.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# Contract label lists the source does not fix (labels_unresolved), so no label check applies.
UNRESOLVED_LABELS = {"vllm:cache_config_info": "CacheConfig.metrics_info() keys, built at run time"}

CONFIGS = {
    "default": {},
    "multi-cluster, role label": {"multi_cluster": True, "roles": {"mode": "label"}},
}


# --- (a) what the package queries ----------------------------------------------------------------


class RecordingPrometheus:
    """Stands in for the doctor's Prometheus client: answers every query with one series."""

    shown = "recording stub"
    time = 1_750_000_000.0

    def __init__(self) -> None:
        self.queries: list[str] = []

    def buildinfo(self) -> dict[str, Any]:
        return {}

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        self.queries.append(promql)
        return [({"namespace": "llm-d", "model_name": "m", "pod": "p", "__name__": "vllm:x"}, 1.0)]

    def rules(self) -> list[dict[str, Any]]:
        return []

    def label_values(self, label: str, match: str, lookback_seconds: float) -> list[str]:
        self.queries.append(match)
        return []


@pytest.fixture(scope="module")
def parse(tmp_path_factory) -> Iterator[Any]:
    """Prometheus's own PromQL parser, through /api/v1/parse_query."""
    server = PrometheusServer(storage_dir=tmp_path_factory.mktemp("tsdb"),
                              workdir=tmp_path_factory.mktemp("parse"))  # fmt: skip
    server.start()
    session = requests.Session()
    cache: dict[str, Any] = {}

    def parse_query(expr: str) -> dict[str, Any]:
        if expr not in cache:
            body = session.get(f"{server.url}/api/v1/parse_query", params={"query": expr}, timeout=30).json()
            assert body["status"] == "success", f"{body.get('error')}: {expr}"
            cache[expr] = body["data"]
        return cache[expr]

    try:
        yield parse_query
    finally:
        session.close()
        server.stop()


def _cfg(overrides: dict[str, Any]) -> dict[str, Any]:
    return config.load(overrides=overrides) if overrides else config.load()


def _scrape_labels(cfg: dict[str, Any]) -> set[str]:
    """Labels the scrape adds (target labels), as the config names them."""
    labels = {cfg["labels"][k] for k in ("cluster", "namespace", "pod")} | {"job", "instance"}
    if cfg["roles"]["mode"] == "label":
        labels.add(cfg["roles"]["label"]["name"])
    return labels


def _uses(cfg: dict[str, Any], parse: Any) -> U.Walker:
    queries, rules = U.all_queries(render_all(cfg))
    stub = RecordingPrometheus()
    diagnose(cfg, stub, {})
    queries += [U.Query(f"doctor query {i}", q) for i, q in enumerate(stub.queries)]
    assert len(stub.queries) > 10, "the doctor ran no queries: the stub no longer fits its client"
    walker = U.Walker(parse, U.recorded(rules))
    walker.run(queries)
    return walker


def available_labels(sample: str) -> set[str] | None:
    """Labels of a sample name in any contract source (None: some source leaves them open)."""
    out: set[str] = set()
    for exposed in load.sample_index().get(sample, ()):
        if exposed.metric["labels"] is None:
            return None
        out |= set(exposed.metric["labels"])
    if sample.endswith("_bucket"):
        out.add("le")
    return out


def problems(walker: U.Walker, scrape: set[str]) -> list[str]:
    index = load.sample_index()
    out = set()
    for use in walker.uses:
        if use.metric in PROMETHEUS_SERIES:
            continue
        if use.metric not in index:
            out.add(f"{use.metric}: in no contract vLLM version or EPP build ({use.origin})")
            continue
        labels = available_labels(use.metric)
        missing = set() if labels is None else use.labels - labels - scrape
        if missing:
            out.add(f"{use.metric}: no label {sorted(missing)} in any contract source ({use.origin})")
    out |= {f"{origin}: {what}" for origin, what in walker.dropped}
    return sorted(out)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_queried_metric_and_label_is_in_the_contract(parse, name):
    cfg = _cfg(CONFIGS[name])
    walker = _uses(cfg, parse)
    assert len({u.metric for u in walker.uses}) > 50, "too few metrics found: the walk is broken"
    assert problems(walker, _scrape_labels(cfg)) == []


def test_the_check_catches_a_wrong_name_and_a_missing_label(parse):
    walker = U.Walker(parse, {})
    walker.run([
        U.Query("t1", "sum by (namespace, model_name) (llm_d_epp_ready_endpoints)"),
        U.Query("t2", "rate(vllm:prompt_tokens[5m])"),  # a counter queried without _total
        U.Query("t3", 'sum by (le) (rate(vllm:nixl_xfer_time_seconds_bucket{engine="0"}[5m]))'),
        U.Query("t4", "sum by (namespace) (up) * on(namespace, pod) group_left(role) vllm:num_requests_running",
                frozenset({"role"})),
    ])  # fmt: skip
    assert problems(walker, {"namespace", "pod"}) == [
        "llm_d_epp_ready_endpoints: no label ['model_name'] in any contract source (t1)",
        "t4: sum by (namespace) drops ['pod']",
        "vllm:num_requests_running: no label ['role'] in any contract source (t4)",
        "vllm:prompt_tokens: in no contract vLLM version or EPP build (t2)",
    ]


# --- (b) what the simulator renders ---------------------------------------------------------------


def _buckets(fam: Family) -> Any:
    return ONE_TWO_FIVE if fam.buckets == BUCKETS_1_2_5 else [float(b) for b in fam.buckets]


def family_differences(fam: Family, metric: dict[str, Any]) -> list[str]:
    """Where one simulated family and its contract definition disagree."""
    out = []
    where = f"{fam.name} ({metric['file']}:{metric['line']})"
    if fam.kind != metric["type"]:
        out.append(f"{where}: type {fam.kind}, contract {metric['type']}")
    if fam.name not in UNRESOLVED_LABELS:
        if metric["labels"] is None:
            out.append(f"{where}: contract labels unresolved ({metric.get('labels_unresolved')})")
        elif set(fam.all_labels()) != set(metric["labels"]):
            out.append(f"{where}: labels {sorted(fam.all_labels())}, contract {sorted(metric['labels'])}")
    if fam.kind == "histogram" and _buckets(fam) != metric.get("buckets"):
        out.append(f"{where}: buckets {_buckets(fam)}, contract {metric.get('buckets')}")
    if fam.key_label and not fam.lazy and not fam.dynamic:
        values = metric.get("label_values", {}).get(fam.key_label)
        if values is None or set(values) != set(fam.key_values):
            out.append(f"{where}: {fam.key_label} values {sorted(fam.key_values)}, contract {values}")
    return out


SERVER_CONFIGS = [
    load.ServerConfig(connector, consumer, hidden)
    for connector in (None, "nixl", "mooncake")
    for consumer in (False, True)
    for hidden in (False, True)
    if connector is not None or not consumer
]


@pytest.mark.parametrize("version", load.vllm_versions())
@pytest.mark.parametrize("cfg", SERVER_CONFIGS,
                         ids=lambda c: f"{c.connector}-consumer{c.kv_consumer:d}-hidden{c.show_hidden:d}")
def test_simulated_vllm_families_equal_the_contract(version, cfg):
    contract = load.server_families(version, cfg)
    sim = {f.name: f for f in vllm_families(version, connector=cfg.connector, kv_consumer=cfg.kv_consumer,
                                             show_hidden=cfg.show_hidden)}  # fmt: skip
    assert sorted(set(sim) - set(contract)) == [], "simulated but not in the contract"
    assert sorted(set(contract) - set(sim)) == [], "in the contract but not simulated"
    assert [d for name in sorted(sim) for d in family_differences(sim[name], contract[name])] == []


EPP_CASES = [(key, release) for key, p in sorted(EPP_PROFILES.items()) for release in p.releases]


@pytest.mark.parametrize(("profile", "release"), EPP_CASES)
def test_simulated_epp_families_equal_the_contract(profile, release):
    by_sample = {s: m for m in load.epp_families(release).values() for s in m["samples"]}
    diffs = []
    for fam in EPP_PROFILES[profile].families:
        samples = fam.sample_names()
        metric = by_sample.get(samples[0])
        if metric is None or set(metric["samples"]) != set(samples):
            diffs.append(f"{fam.name}: {samples[0]} not in {release}")
            continue
        diffs += family_differences(fam, metric)
    assert diffs == []


def test_every_epp_profile_claims_contract_builds():
    known = set(load.epp_keys())
    for profile in EPP_PROFILES.values():
        assert profile.releases, f"{profile.key} claims no EPP build"
        assert set(profile.releases) <= known, profile.key


def _all_scenarios() -> list[S.Scenario]:
    return [S.get(name, duration_min=2) for name in (*S.ALL, *S.UPSTREAM)]


def test_every_scenario_renders_a_contract_vllm_version():
    versions = set(load.vllm_versions())
    used = {s.deployment.vllm_version for s in _all_scenarios()}
    assert used <= versions, f"scenarios render vLLM versions the contract does not hold: {used - versions}"


@pytest.mark.parametrize("name", sorted(S.UPSTREAM))
def test_upstream_scenarios_export_per_pod_what_the_contract_says(name):
    """Per role (kv_producer prefill, kv_consumer decode), the rendered vLLM families."""
    s = S.get(name, duration_min=2)
    dep = s.deployment
    sim = s.simulation()
    for _ in sim.frames(s.n_steps()):
        pass
    per_pod: dict[int, set[str]] = {}
    for info in sim.registry.metrics:
        per_pod.setdefault(info.target, set()).add(info.family.name)
    for target in sim.targets_by_tid:
        if target.kind != "vllm":
            continue
        role = "prefill" if "-prefill-" in (target.label("pod") or "") else "decode"
        cfg = load.ServerConfig(dep.kv_metrics, dep.kv_consumer(role), dep.show_hidden_metrics)
        assert per_pod[target.tid] - {"up"} == set(load.server_families(dep.vllm_version, cfg)), (name, role)
