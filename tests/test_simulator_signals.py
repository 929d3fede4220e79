"""The scenarios show what their truth says, queried raw against a real, backfilled Prometheus.

Every scenario is rendered into one TSDB, one namespace each, so a single server answers for all
of them. The PromQL here is written by hand from the metric reference, not taken from the
signal catalog.
"""

from __future__ import annotations

import math

import pytest

from simulator import scenarios as S

DURATION = 20
PREFILL = 'pod=~".*-prefill-.*"'
DECODE = 'pod=~".*-decode-.*"'


def ns(name: str) -> str:
    return "ns-" + name.replace("_", "-")


@pytest.fixture(scope="module")
def served(prometheus_for_scenario):
    everything = S.combine(
        *(S.get(name, namespace=ns(name), duration_min=DURATION) for name in sorted(S.ALL)),
        name="all-scenarios",
    )
    return prometheus_for_scenario(everything)


def by_namespace(served, expr: str) -> dict[str, float]:
    return {r["metric"]["namespace"]: float(r["value"][1]) for r in served.query(expr)}


def ratio(num: str, den: str) -> str:
    return f"sum by (namespace) ({num}) / sum by (namespace) ({den})"


QUERIES = {
    "nixl_series": "count by (namespace) (vllm:nixl_xfer_time_seconds_count)",
    "nixl_rate": "sum by (namespace) (rate(vllm:nixl_xfer_time_seconds_count[5m]))",
    "prefill_pods": f"count by (namespace) (vllm:num_requests_running{{{PREFILL}}})",
    "prefill_rps": f"sum by (namespace) (rate(vllm:request_success_total{{{PREFILL}}}[5m]))",
    "decode_rps": f"sum by (namespace) (rate(vllm:request_success_total{{{DECODE}}}[5m]))",
    "decode_share": ratio(f"rate(vllm:iteration_tokens_total_sum{{{DECODE}}}[5m])",
                          "rate(vllm:iteration_tokens_total_sum[5m])"),
    "ttft_prefill": ratio(f"rate(vllm:time_to_first_token_seconds_sum{{{PREFILL}}}[5m])",
                          f"rate(vllm:time_to_first_token_seconds_count{{{PREFILL}}}[5m])"),
    "ttft_decode": ratio(f"rate(vllm:time_to_first_token_seconds_sum{{{DECODE}}}[5m])",
                         f"rate(vllm:time_to_first_token_seconds_count{{{DECODE}}}[5m])"),
    "epp_ready": "max by (namespace) (inference_pool_ready_pods)",
    "vllm_pods": "count by (namespace) (count by (namespace, pod) (vllm:num_requests_running))",
}  # fmt: skip


@pytest.fixture(scope="module")
def measured(served) -> dict[str, dict[str, float]]:
    return {key: by_namespace(served, expr) for key, expr in QUERIES.items()}


def observed(m: dict[str, dict[str, float]], namespace: str) -> dict[str, bool]:
    def get(key: str) -> float:
        return m[key].get(namespace, math.nan)

    pd = get("prefill_pods") > 0
    traffic = get("decode_rps") > 0
    ttft_p, ttft_d = get("ttft_prefill"), get("ttft_decode")
    return {
        "pd_deployed": pd,
        "traffic": traffic,
        "nixl_series_present": get("nixl_series") > 0,
        "kv_transfer_observed": get("nixl_rate") > 0,
        "prefill_idle": pd and not get("prefill_rps") > 0,
        "decode_does_all_work": traffic and get("decode_share") == pytest.approx(1.0),
        "ttft_roles_equal": pd and traffic
        and (math.isnan(ttft_p) or ttft_p == pytest.approx(ttft_d, rel=0.02)),
        "epp_ready_lt_pods": get("epp_ready") < get("vllm_pods"),
    }


@pytest.mark.parametrize("name", sorted(S.ALL))
def test_raw_queries_agree_with_truth(measured, name):
    truth = S.get(name, namespace=ns(name), duration_min=DURATION).truth
    seen = observed(measured, ns(name))
    assert seen == {key: truth[key] for key in seen}


def test_collapsed_shows_all_five_post_mortem_signals(served, measured):
    n = ns("collapsed")
    # (1) KV transfer metrics (NIXL): no data.
    assert served.query(f'vllm:nixl_xfer_time_seconds_count{{namespace="{n}"}}') == []
    assert served.query_value(f'absent(vllm:nixl_xfer_time_seconds_count{{namespace="{n}"}})') == 1
    # (2) Prefill worker utilisation ~0: prefill pods up, completing nothing.
    assert measured["prefill_pods"][n] == 1
    assert measured["prefill_rps"][n] == 0
    assert served.query_value(f'avg(vllm:num_requests_running{{namespace="{n}",{PREFILL}}})') == 0
    # (3) The decode pod does all the work (and serves the traffic, ~26 req/s as in the post-mortem).
    assert measured["decode_share"][n] == 1
    assert measured["decode_rps"][n] == pytest.approx(26, rel=0.02)
    # (4) TTFT prefill vs decode: prefill has no observations of its own any more.
    assert math.isnan(measured["ttft_prefill"][n])
    assert measured["ttft_decode"][n] == pytest.approx(0.0549, rel=0.02)
    # (5) EPP ready pods (1) below the pods running (2).
    assert (measured["epp_ready"][n], measured["vllm_pods"][n]) == (1, 2)


def test_healthy_shows_none_of_them(served, measured):
    n = ns("healthy_pd")
    assert measured["nixl_series"][n] > 0 and measured["nixl_rate"][n] == pytest.approx(10)
    assert measured["prefill_rps"][n] == pytest.approx(10)
    assert measured["decode_rps"][n] == pytest.approx(10)
    assert measured["decode_share"][n] < 0.5  # prefill computes the (bigger) prompts
    assert measured["ttft_prefill"][n] == pytest.approx(0.045, rel=0.02)
    assert measured["ttft_decode"][n] == pytest.approx(0.030, rel=0.02)  # KV pull + first step
    assert measured["epp_ready"][n] == measured["vllm_pods"][n] == 2


def test_collapse_with_flat_nixl_series(served):
    n = ns("collapsed_nixl_flat")
    present = served.query(f'vllm:nixl_xfer_time_seconds_count{{namespace="{n}"}}')
    assert len(present) == 2  # prefill and decode children
    increase = f'sum(increase(vllm:nixl_xfer_time_seconds_count{{namespace="{n}"}}[9m]))'
    assert served.query_value(increase) == 0
    assert served.query_value(increase, minute=10) > 0  # it moved before the collapse


def test_faults_are_visible_raw(served):
    failing = ns("nixl_failing")
    fail_ratio = served.query_value(
        f'sum(rate(vllm:nixl_num_failed_transfers_total{{namespace="{failing}"}}[5m])) / '
        f'(sum(rate(vllm:nixl_xfer_time_seconds_count{{namespace="{failing}"}}[5m])) + '
        f'sum(rate(vllm:nixl_num_failed_transfers_total{{namespace="{failing}"}}[5m])))'
    )
    assert fail_ratio == pytest.approx(0.05, rel=0.05)
    slow = ns("nixl_slow")
    mean_xfer = served.query_value(
        f'sum(rate(vllm:nixl_xfer_time_seconds_sum{{namespace="{slow}"}}[5m])) / '
        f'sum(rate(vllm:nixl_xfer_time_seconds_count{{namespace="{slow}"}}[5m]))'
    )
    assert mean_xfer == pytest.approx(0.8, rel=0.01)
    down = ns("target_down")
    ups = {r["metric"]["pod"]: r["value"][1]
           for r in served.query(f'up{{namespace="{down}",job=~".*podmonitor"}}')}  # fmt: skip
    assert sorted(ups.values()) == ["0", "1", "1"]
    router = ns("epp_llm_d_router")
    assert served.query_value(f'llm_d_epp_ready_endpoints{{namespace="{router}"}}') == 2
    transient = ns("epp_mismatch_transient")
    mid = served.query_value(f'max(inference_pool_ready_pods{{namespace="{transient}"}})', 12)
    pods = served.query_value(
        f'count(count by (pod) (vllm:num_requests_running{{namespace="{transient}"}}))', 12
    )
    assert (mid, pods) == (2, 3)  # the surge pod exports metrics, the EPP does not count it yet


def test_recording_rules_are_backfilled_layer_by_layer(prometheus_for_scenario, tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(
        "groups:\n"
        "- name: base\n  rules:\n"
        "  - record: namespace:vllm_request_success:rate5m\n"
        "    expr: sum by (namespace) (rate(vllm:request_success_total[5m]))\n"
        "- name: derived\n  rules:\n"
        "  - record: namespace:vllm_request_success:rate5m_doubled\n"
        "    expr: 2 * namespace:vllm_request_success:rate5m\n"
        "  - alert: Never\n    expr: vector(1) == 0\n"
    )
    sp = prometheus_for_scenario(S.get("healthy_pd", duration_min=DURATION), rule_files=[rules])
    assert sp.query_value("namespace:vllm_request_success:rate5m", minute=20) == pytest.approx(20)
    assert sp.query_value("namespace:vllm_request_success:rate5m_doubled", minute=20) == (
        pytest.approx(40)
    )
    assert {g["name"] for g in sp.server.rules()} == {"base", "derived"}
