"""vLLM 0.24/0.33 deployments (NIXL pull, NIXL push, Mooncake) show what their truth says,
queried raw (hand-written PromQL, not the catalog's) against a real, backfilled Prometheus.

Also the upstream semantics the profiles model: which pod records a transfer, KV-load failures
ending requests as errors from 0.24, and 0.33 counting notification failures as failed
transfers.
"""

from __future__ import annotations

import math

import pytest

from simulator import scenarios as S

DURATION = 20
PREFILL = 'pod=~".*-prefill-.*"'
DECODE = 'pod=~".*-decode-.*"'
EXTRA = {
    # 5 % of transfers fail from minute 5, on the fail-by-default 0.24 and the recompute 0.16.
    "failing_v0_24": ("nixl_failing", {"vllm_version": "0.24.0", "fault_start_min": 5}),
    "failing_v0_16": ("nixl_failing", {"vllm_version": "0.16.0", "fault_start_min": 5}),
    # 0.6 % of notifications fail (the double counting in 0.33).
    "notif_v0_33": ("healthy_pd", {"vllm_version": "0.33.0", "nixl_notif_fail_ratio": 0.006}),
    "notif_v0_29": ("healthy_pd", {"vllm_version": "0.29.0", "nixl_notif_fail_ratio": 0.006}),
}


def ns(name: str) -> str:
    return "up-" + name.replace("_", "-")


def _parts() -> list[S.Scenario]:
    parts = [S.get(name, namespace=ns(name), duration_min=DURATION) for name in sorted(S.UPSTREAM)]
    parts += [S.get(base, namespace=ns(key), duration_min=DURATION, **kw) for key, (base, kw) in EXTRA.items()]
    return parts


@pytest.fixture(scope="module")
def served(prometheus_for_scenario):
    return prometheus_for_scenario(S.combine(*_parts(), name="upstream-scenarios"))


def by_namespace(served, expr: str) -> dict[str, float]:
    return {r["metric"]["namespace"]: float(r["value"][1]) for r in served.query(expr)}


def xfer(role: str) -> str:
    return (f'sum by (namespace) (rate({{__name__=~"vllm:(nixl|mooncake)_xfer_time_seconds_count",'
            f"{role}}}[5m]))")  # fmt: skip


QUERIES = {
    "kv_series": 'count by (namespace) ({__name__=~"vllm:(nixl|mooncake)_xfer_time_seconds_count"})',
    "nixl_series": "count by (namespace) (vllm:nixl_xfer_time_seconds_count)",
    "xfer_prefill": xfer(PREFILL),
    "xfer_decode": xfer(DECODE),
    "delivered": 'sum by (namespace) (rate(vllm:prompt_tokens_by_source_total{source="external_kv_transfer",'
                 f"{DECODE}}}[5m]))",
    "delivery_series": 'count by (namespace) (vllm:prompt_tokens_by_source_total{source="external_kv_transfer"})',
    "prefill_rps": f"sum by (namespace) (rate(vllm:request_success_total{{{PREFILL}}}[5m]))",
    "decode_rps": f"sum by (namespace) (rate(vllm:request_success_total{{{DECODE}}}[5m]))",
    "fetch_pods": "count by (namespace) (count by (namespace, pod) (vllm:num_requests_kv_fetch_by_stage))",
    "fetch_prefill_pods": f"count by (namespace) (vllm:num_requests_kv_fetch_by_stage{{{PREFILL}}})",
}  # fmt: skip


@pytest.fixture(scope="module")
def measured(served) -> dict[str, dict[str, float]]:
    return {key: by_namespace(served, expr) for key, expr in QUERIES.items()}


@pytest.mark.parametrize("name", sorted(S.UPSTREAM))
def test_raw_queries_agree_with_truth(measured, name):
    truth = S.get(name, namespace=ns(name), duration_min=DURATION).truth
    n = ns(name)

    def get(key: str) -> float:
        return measured[key].get(n, math.nan)

    assert (get("kv_series") > 0) == truth["kv_series_present"]
    assert (get("nixl_series") > 0) == truth["nixl_series_present"]
    assert (get("delivery_series") > 0) == truth["kv_delivery_series_present"]
    assert (get("delivered") > 0) == truth["kv_delivered"]
    assert (get("prefill_rps") > 0) == (not truth["prefill_idle"])
    recorder = truth["kv_transfer_recorded_by"]
    if truth["kv_transfer_active"] and recorder:
        other = "decode" if recorder == "prefill" else "prefill"
        assert get(f"xfer_{recorder}") == pytest.approx(truth["rps"], rel=0.02)
        assert get(f"xfer_{other}") == 0
    # kv_producer prefill / kv_consumer decode: only decode reports its KV-fetch backlog (0.33).
    if truth["vllm_version"] == "0.33.0":
        assert get("fetch_pods") == truth["decode_pods"] and math.isnan(get("fetch_prefill_pods"))
    else:
        assert math.isnan(get("fetch_pods"))


def test_healthy_and_collapsed_verdicts_in_every_profile():
    for name in S.UPSTREAM:
        expected = "DISAGGREGATED" if name.startswith("healthy") else "COLLAPSED"
        assert S.get(name, duration_min=DURATION).truth["expected_verdict"] == expected, name
    # Mooncake on 0.24 exports no transfer series, yet prompt_tokens_by_source shows delivery.
    t = S.get("healthy_mooncake_v0_24", duration_min=2).truth
    assert not t["kv_series_present"] and t["kv_delivery_series_present"] and t["kv_delivered"]


def test_failed_kv_loads_end_as_errors_from_0_24(served):
    def rate(selector: str) -> float | None:
        return served.query_value(f"sum(rate({selector}[5m]))")

    fail, recompute = ns("failing_v0_24"), ns("failing_v0_16")
    errors = 'vllm:request_success_total{{finished_reason="error",namespace="{}",' + DECODE + "}}"
    # 5 % of attempted transfers fail: 0.24 ends those requests with finished_reason="error".
    assert rate(errors.format(fail)) == pytest.approx(0.5, rel=0.05)
    assert rate(f'vllm:nixl_num_failed_transfers_total{{namespace="{fail}"}}') == pytest.approx(0.5, rel=0.05)
    assert rate(f'vllm:nixl_xfer_time_seconds_count{{namespace="{fail}"}}') == pytest.approx(9.5, rel=0.02)
    # 0.16 recomputes them: no error finishes, the tokens count as recomputed.
    assert rate(errors.format(recompute)) == 0
    assert rate(f'vllm:prompt_tokens_recomputed_total{{namespace="{recompute}"}}') > 0
    assert served.query(f'vllm:prompt_tokens_recomputed_total{{namespace="{fail}"}}') == []


def test_0_33_counts_notification_failures_as_failed_transfers(served):
    def rate(metric: str, namespace: str) -> float | None:
        return served.query_value(f'sum(rate({metric}{{namespace="{namespace}"}}[5m]))')

    new, old = ns("notif_v0_33"), ns("notif_v0_29")
    for namespace in (new, old):
        notif = rate("vllm:nixl_num_failed_notifications_total", namespace)
        assert notif == pytest.approx(0.06, rel=0.1)  # 0.6 % of 10 transfers/s
    # 0.33: the same failures again in failed_transfers; 0.29: failed_transfers stays 0.
    assert rate("vllm:nixl_num_failed_transfers_total", new) == pytest.approx(0.06, rel=0.1)
    assert rate("vllm:nixl_num_failed_transfers_total", old) == 0
