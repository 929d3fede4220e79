"""Per-pod signals for the dashboards' per-pod panels.

Per-pod rates are recorded (one series per pod and signal, per role as a static `role` label):
raw, every dashboard refresh would re-read each pod's counters over the whole rate window. Alerts
never read them (tests/test_scale_out_rules.py): per-pod series stay out of alert paths. Per-pod
gauges stay fragments: raw they already read one sample per pod.

Over time the dashboards show the spread of a per-pod signal across a role's pods (highest,
mean, lowest: three recorded series whatever the pod count) and the pods themselves only now (an
instant query, one sample per pod): a refresh then costs no more as the fleet grows than the
series it shows.
"""

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Builder, Signal
from pdobs.signals.builders import (
    NS_MODEL,
    NS_MODEL_POD,
    NS_POOL,
    POD_VARIANTS,
    ROLE_VARIANTS,
    vllm_gauge,
    vllm_sum_rate,
)
from pdobs.signals.vllm import KV_CACHE_USAGE, PREFIX_HITS, PREFIX_QUERIES


def _pod_prefix_hit_ratio(ctx: Ctx, v: Variant) -> str:
    hits = vllm_sum_rate(PREFIX_HITS, NS_MODEL_POD)(ctx, v)
    queries = vllm_sum_rate(PREFIX_QUERIES, NS_MODEL_POD)(ctx, v)
    return f"(\n{hits}\n)\n/ {ctx.on(*NS_MODEL_POD)}\n((\n{queries}\n) > 0)"


def _epp_pod_queue(ctx: Ctx, v: Variant) -> str:
    # GAIE's collector names the model-server pod `model_server_pod` (`pod` is the EPP's own).
    by = ctx.by(*NS_POOL, extra=("model_server_pod",))
    return f"max by ({by}) ({ctx.epp('inference_pool_per_pod_queue_size')})"


# Per-pod signals whose spread across a role's pods is recorded: (signal, record metric, unit, help).
SPREAD = (
    ("pod_running", "vllm_requests_running_per_pod", "short", "Requests running per pod"),
    ("pod_waiting", "vllm_requests_waiting_per_pod", "short", "Requests waiting per pod"),
    ("pod_work_tokens", "vllm_iteration_tokens_per_pod", "short", "Engine tokens per second per pod"),
    ("pod_kv_cache_usage", "vllm_kv_cache_usage_per_pod", "percentunit", "KV-cache usage per pod"),
)
SPREAD_AGGS = ("max", "avg", "min")


def spread_signal(pod_signal: str, agg: str) -> str:
    return f"{pod_signal}_{agg}"


# The per-pod expressions the spreads aggregate, from raw series: a namespace-level record never
# reads a per-pod record (tests/test_scale_out_rules.py), so the per-pod rate is computed again.
_PER_POD: dict[str, Builder] = {
    "pod_running": vllm_gauge("sum", ("vllm:num_requests_running",), NS_MODEL_POD),
    "pod_waiting": vllm_gauge("sum", ("vllm:num_requests_waiting",), NS_MODEL_POD),
    "pod_work_tokens": vllm_sum_rate(("vllm:iteration_tokens_total_sum",), NS_MODEL_POD),
    "pod_kv_cache_usage": vllm_gauge("avg", KV_CACHE_USAGE, NS_MODEL_POD),
}


def _spread(pod_signal: str, agg: str) -> Builder:
    per_pod = _PER_POD[pod_signal]

    def build(ctx: Ctx, v: Variant) -> str:
        return f"{agg} by ({ctx.by(*NS_MODEL)}) (\n{per_pod(ctx, v)}\n)"

    return build


def _spread_signals() -> list[Signal]:
    words = {"max": "highest", "avg": "mean", "min": "lowest"}
    return [Signal(spread_signal(pod_signal, agg), f"namespace_model_role:{metric}:{agg}", NS_MODEL, unit,
                   f"{text}: the {words[agg]} over the role's pods.", _spread(pod_signal, agg), ROLE_VARIANTS)
            for pod_signal, metric, unit, text in SPREAD for agg in SPREAD_AGGS]


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [*_spread_signals(),
        Signal("pod_running", None, NS_MODEL_POD, "short", "Requests running per pod.",
               _PER_POD["pod_running"], POD_VARIANTS),
        Signal("pod_waiting", None, NS_MODEL_POD, "short",
               "Requests waiting per pod (on decode this includes KV pulls in flight).",
               _PER_POD["pod_waiting"], POD_VARIANTS),
        Signal("pod_kv_cache_usage", None, NS_MODEL_POD, "percentunit", "KV-cache usage per pod.",
               _PER_POD["pod_kv_cache_usage"], POD_VARIANTS),
        Signal("pod_work_tokens", f"namespace_model_pod:vllm_iteration_tokens:{r}", NS_MODEL_POD, "short",
               "Tokens processed by engine steps per second per pod: the work a pod really does.",
               _PER_POD["pod_work_tokens"], ROLE_VARIANTS),
        Signal("pod_preemptions", f"namespace_model_pod:vllm_preemptions:{r}", NS_MODEL_POD, "short",
               "Preemptions per second per pod.",
               vllm_sum_rate(("vllm:num_preemptions_total",), NS_MODEL_POD), ROLE_VARIANTS),
        # One rule for the ratio, not hits and queries recorded apart: a refresh then reads one
        # series per pod instead of two plus a join.
        Signal("pod_prefix_hit_ratio", f"namespace_model_pod:vllm_prefix_cache_hit:ratio_{r}", NS_MODEL_POD,
               "percentunit", "Prefix-cache hit rate per pod over the rate window (not the lifetime ratio).",
               _pod_prefix_hit_ratio, ROLE_VARIANTS),
        Signal("epp_pod_queue", None, (*NS_POOL, "pod"), "short",
               "Waiting requests per model-server pod as the EPP sees them (GAIE pool collector; "
               "the pod is in model_server_pod).", _epp_pod_queue),
    ]
