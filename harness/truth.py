"""When each alert is meant to fire, in the terms of the scenario simulator's ground truth.

The detection benchmark (bench/detection.py) asks, minute by minute, whether an alert's firing is
a detection or a false positive. It never keeps a table of "alert X is for scenario Y": it takes
the simulator's truth at each minute (`simulator.scenarios.signals_at`, derived from the
scenario's conditions, never from its series) and asks `holds(truth, settings)` here, where
`settings` is the alert's entry in the config's `alerts` (its thresholds). A scenario in which
`holds` is never true is benign for that alert.

`warmup` is how the alert's signal reaches its condition once the fault is there:
  "gauge"  a gauge (or `up`) shows the fault in the first scrape after it;
  "rise"   a rate rises above a bound with the first samples after the fault (failures, slow
           transfers: a lower bound, a mean-based bound needs part of the window);
  "drain"  a rate must fall to (about) zero, so the rate window must first empty of the samples
           from before the fault: the window is part of the physical floor.

The goals (issue 15) are the benchmark's, not the rules': `page_within` is how soon after its
start a fault that lasts at least that long must page (collapse-class alerts 3 minutes, KV transfer
failures 5); `QUIET_BELOW` is how long a fault may last and still page nobody, for every alert.
An alert without `page_within` must fire on an episode at least as long as its own design floor
(`for` + warm-up + scrape + evaluation, bench/detection.py).

Truth keys (see simulator/scenarios.py): pd_deployed, traffic, nixl_series_present,
kv_series_present, kv_delivery_series_present, kv_transfer_active, kv_transfer_observed,
kv_delivered, prefill_idle, decode_does_all_work, ttft_roles_equal, epp_ready_lt_pods,
expected_verdict, prefill_pods, decode_pods, vllm_pods_up, epp_ready_pods, rps, nixl_fail_ratio,
nixl_xfer_s, kv_load_failure_policy.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Truth = Mapping[str, Any]
Settings = Mapping[str, Any]
Warmup = Literal["gauge", "rise", "drain"]

# No alert may fire on a fault shorter than this.
QUIET_BELOW = "2m"


@dataclass(frozen=True)
class Expectation:
    holds: Callable[[Truth, Settings], bool]
    warmup: Warmup
    meaning: str  # the condition in words, for the benchmark report
    page_within: str | None = None  # goal: a fault at least this long pages within this of its start


def _serving_pd(t: Truth) -> bool:
    """P/D is deployed and decode pods serve requests: the only state the P/D alerts judge."""
    return bool(t["pd_deployed"] and t["traffic"])


def _prefill_working(t: Truth) -> bool:
    return _serving_pd(t) and not t["prefill_idle"]


def _kv_evidence(t: Truth) -> bool:
    """Some KV evidence is exported: the connector's transfer series or decode's prompt tokens by source."""
    return bool(t["kv_series_present"] or t["kv_delivery_series_present"])


def _kv_seen_moving(t: Truth) -> bool:
    return bool(t["kv_transfer_observed"] or t["kv_delivered"])


EXPECT: dict[str, Expectation] = {
    "PDKVTransferAbsent": Expectation(
        lambda t, s: _serving_pd(t) and not _kv_seen_moving(t)
        and bool(t["prefill_idle"] or _kv_evidence(t)),
        "drain", "P/D serving traffic, no KV seen moving, and not merely unobservable "
                 "(prefill idle, or KV evidence exported but flat)", page_within="3m"),
    "PDKVTransferMetricsMissing": Expectation(
        lambda t, s: _prefill_working(t) and not _kv_evidence(t),
        "rise", "prefill pods work but vLLM exports no KV evidence (no transfer series, no prompt tokens by source)"),
    "PDEPPReadyPodsMismatch": Expectation(
        lambda t, s: bool(t["epp_ready_lt_pods"]),
        "gauge", "the EPP counts fewer ready pods than model-server pods are up"),
    "PDPrefillIdle": Expectation(
        lambda t, s: _serving_pd(t) and bool(t["prefill_idle"]),
        "drain", "P/D serving traffic while prefill pods finish nothing", page_within="3m"),
    "PDDisaggregationCollapsed": Expectation(
        lambda t, s: t["expected_verdict"] == "COLLAPSED",
        "drain", "verdict COLLAPSED (prefill idle while decode serves traffic)", page_within="3m"),
    "PDKVTransferFailures": Expectation(
        lambda t, s: _prefill_working(t) and bool(t["kv_series_present"])
        and t["nixl_fail_ratio"] > s["threshold"],
        "rise", "failed / attempted KV transfers above the alert's threshold", page_within="5m"),
    "PDKVTransferSlow": Expectation(
        lambda t, s: bool(t["kv_transfer_observed"]) and t["nixl_xfer_s"] > s["mean_seconds"],
        "rise", "mean KV transfer time above the alert's mean bound"),
    # The simulator never lets KV blocks expire, so no scenario exercises this alert.
    "PDKVTransferExpiredRequests": Expectation(
        lambda t, s: False,
        "rise", "KV blocks expire on prefill (no simulator scenario models it)"),
    "PDModelServerTargetsDown": Expectation(
        lambda t, s: t["vllm_pods_up"] < t["prefill_pods"] + t["decode_pods"],
        "gauge", "a running model-server pod cannot be scraped"),
    # Blind monitoring: a simulated deployment always carries the pod label and llm-d's role
    # names, exports EPP metrics and runs with the recording rules, so no scenario holds these
    # (tests/rules/blind*.yaml patch the series to make them hold).
    "PDPodRolesUnresolved": Expectation(
        lambda t, s: False,
        "gauge", "vLLM series lack the pod label, or no pod matches a role (no simulator scenario models it)"),
    "PDEPPMetricsAbsent": Expectation(
        lambda t, s: False,
        "gauge", "pods with a role are up but the EPP exports nothing (no simulator scenario models it)"),
    "PDRecordingRulesAbsent": Expectation(
        lambda t, s: False,
        "gauge", "the recording rules are not loaded (no simulator scenario models it)"),
    "PDKVLoadErrors": Expectation(
        lambda t, s: _prefill_working(t) and bool(t["kv_series_present"])
        and t["kv_load_failure_policy"] == "fail" and t["nixl_fail_ratio"] > s["threshold"],
        "rise", "KV transfers fail under kv_load_failure_policy=fail (vLLM 0.24+): decode requests end as errors"),
}
