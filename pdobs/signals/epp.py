"""The EPP (inference scheduler): pool gauges, client-side requests, P/D decisions, datalayer.

Three metric families over time (llm_d_epp_*, inference_objective_*, inference_model_*) are
joined with `or` after aggregation, newest first. The EPP's histograms are in histograms.py.

Request metrics carry the model the client asked for (model_name; target_model_name after a
rewrite) while vLLM and the P/D decision counters carry the target, so request signals are never
filtered by the model servers' model (builders.EPP_CLIENT_MODEL).
"""

from pdobs.core import promql
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import EPP_CLIENT_MODEL, NS, NS_MODEL, NS_POOL, epp_pool_gauge, epp_sum_rate

# Newest first; llm-d-inference-scheduler v0.4's pd_decision counter has no model_name.
DECISION_COUNTERS = ("llm_d_epp_disagg_decision_total", "llm_d_epp_pd_decision_total",
                     "llm_d_inference_scheduler_disagg_decision_total",
                     "llm_d_inference_scheduler_pd_decision_total")
# llm-d-router v0.9+: the EPP failed to poll a data source (source_type "metrics-data-source":
# scraping a model server's metrics). A pod it cannot poll has stale metrics and is not ready.
POLL_ERRORS = ("llm_d_epp_datalayer_poll_errors_total", "llm_d_inference_scheduler_datalayer_poll_errors_total")


def _decisions_per_model(ctx: Ctx, v: Variant) -> str:
    model = promql.matcher(ctx.label("model"), "!=", "")
    return epp_sum_rate(DECISION_COUNTERS, extra_by=("decision_type",), matchers=model)(ctx, v)


def _decisions_without_model(ctx: Ctx, v: Variant) -> str:
    by, w = ctx.by(*NS, extra=("decision_type",)), ctx.window
    model = promql.matcher(ctx.label("model"), "=", "")
    return " or ".join(f"sum by ({by}) (rate({ctx.epp(n, extra=model)}[{w}]))" for n in DECISION_COUNTERS)


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
               "Client requests per second through the EPP, by the model name the client asked for.",
               epp_sum_rate(("llm_d_epp_request_total", "inference_objective_request_total",
                             "inference_model_request_total")), unscoped=EPP_CLIENT_MODEL),
        Signal("epp_errors", f"namespace_model:epp_request_errors:{r}", NS_MODEL, "reqps",
               "Client request errors per second at the EPP, by the model name the client asked for.",
               epp_sum_rate(("llm_d_epp_request_error_total",
                             "inference_objective_request_error_total",
                             "inference_model_request_error_total")), unscoped=EPP_CLIENT_MODEL),
        Signal("epp_error_ratio", f"namespace_model:epp_request_errors:ratio_{r}", NS_MODEL,
               "percentunit", "Share of client requests that fail at the EPP (0 when none).",
               lambda c, v: (f"({c.ref('epp_errors')} or {c.ref('epp_requests')} * 0)\n/ "
                             f"{c.on(*NS_MODEL)}\n({c.ref('epp_requests')} > 0)"), unscoped=EPP_CLIENT_MODEL),
        # The decision counters carry the target model, as vLLM does; v0.4's carry none and are
        # recorded apart (a model filter would drop them).
        Signal("pd_decisions", f"namespace_model_decision:epp_pd_decisions:{r}", NS_MODEL, "ops",
               "Scheduler P/D decisions per second by decision_type, per target model.",
               _decisions_per_model),
        Signal("pd_decisions_without_model", f"namespace_decision:epp_pd_decisions_without_model:{r}", NS,
               "ops", "Scheduler P/D decisions per second by decision_type from counters without a model "
               "label (llm-d-inference-scheduler v0.4), per namespace.", _decisions_without_model),
        Signal("epp_poll_errors", f"namespace_source:epp_datalayer_poll_errors:{r}", NS, "ops",
               "Failed polls of the EPP's data sources per second, by source_type (llm-d-router v0.9+; "
               "metrics-data-source: scraping the model servers).",
               epp_sum_rate(POLL_ERRORS, NS, extra_by=("source_type",))),
        Signal("epp_poll_errors_ns", None, NS, "ops",
               "Failed polls of the EPP's data sources per second in the namespace, every source type.",
               lambda c, v: f"sum by ({c.by(*NS)}) ({c.ref('epp_poll_errors')})"),
    ]
