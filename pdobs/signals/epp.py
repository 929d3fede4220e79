"""The EPP (inference scheduler): pool gauges, client-side requests and P/D decisions.

Three metric families over time (llm_d_epp_*, inference_objective_*, inference_model_*) are
joined with `or` after aggregation, newest first. The EPP's histograms are in histograms.py.
"""

from pdobs.core.engine import Signal
from pdobs.signals.builders import NS, NS_MODEL, NS_POOL, epp_pool_gauge, epp_sum_rate


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("epp_ready_pods", "namespace_pool:epp_ready_pods:max", NS_POOL, "short",
               "Pods the EPP considers ready (fresh metrics), per InferencePool.",
               epp_pool_gauge(("llm_d_epp_ready_endpoints", "inference_pool_ready_pods"))),
        Signal("epp_ready_pods_ns", "namespace:epp_ready_pods:sum", NS, "short",
               "Pods the EPP considers ready, summed over the pools of a namespace.",
               lambda c, v: f"sum by ({c.by(*NS)}) ({c.ref('epp_ready_pods')})"),
        Signal("epp_queue", "namespace_pool:epp_average_queue_size:max", NS_POOL, "short",
               "Mean queue size over the pool's pods (prefill and decode mixed).",
               epp_pool_gauge(("llm_d_epp_average_queue_size", "inference_pool_average_queue_size"))),
        Signal("epp_kv_usage", "namespace_pool:epp_average_kv_cache_utilization:max", NS_POOL,
               "percentunit", "Mean KV-cache utilisation over the pool's pods as the EPP sees it.",
               epp_pool_gauge(("llm_d_epp_average_kv_cache_utilization",
                               "inference_pool_average_kv_cache_utilization"))),
        Signal("epp_requests", f"namespace_model:epp_requests:{r}", NS_MODEL, "reqps",
               "Client requests per second through the EPP.",
               epp_sum_rate(("llm_d_epp_request_total", "inference_objective_request_total",
                             "inference_model_request_total"))),
        Signal("epp_errors", f"namespace_model:epp_request_errors:{r}", NS_MODEL, "reqps",
               "Client request errors per second at the EPP.",
               epp_sum_rate(("llm_d_epp_request_error_total",
                             "inference_objective_request_error_total",
                             "inference_model_request_error_total"))),
        Signal("epp_error_ratio", f"namespace_model:epp_request_errors:ratio_{r}", NS_MODEL,
               "percentunit", "Share of client requests that fail at the EPP (0 when none).",
               lambda c, v: (f"({c.ref('epp_errors')} or {c.ref('epp_requests')} * 0)\n/ "
                             f"{c.on(*NS_MODEL)}\n({c.ref('epp_requests')} > 0)")),
        Signal("pd_decisions", f"namespace_model_decision:epp_pd_decisions:{r}", NS_MODEL, "ops",
               "Scheduler P/D decisions per second by decision_type.",
               epp_sum_rate(("llm_d_epp_disagg_decision_total", "llm_d_epp_pd_decision_total",
                             "llm_d_inference_scheduler_disagg_decision_total",
                             "llm_d_inference_scheduler_pd_decision_total"),
                            extra_by=("decision_type",))),
    ]
