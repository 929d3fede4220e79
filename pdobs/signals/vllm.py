"""vLLM model-server signals per namespace, model and role: pods, requests, tokens, scheduler
state, KV cache and prefix cache (histograms are in histograms.py, KV transfer in kv_transfer.py and
kv_delivery.py)."""

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import (
    NS,
    NS_MODEL,
    POD_PRESENCE_METRIC,
    ROLE_VARIANTS,
    distinct_pods,
    vllm_gauge,
    vllm_sum_rate,
)

# Prefix-cache counters, renamed in vLLM 0.11 (old names hidden there, removed in 0.12).
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
KV_CACHE_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


def pods_ns(ctx: Ctx, v: Variant) -> str:
    # Namespace level: a model scope must not narrow it when inlined (the recorded series has no
    # model label to filter on), or EPP ready pods would be compared with one model's pods.
    return distinct_pods(ctx, NS, ctx.unscoped("model").vllm(POD_PRESENCE_METRIC))


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        # Model-server pods, per role: distinct pods exporting vLLM metrics.
        Signal("vllm_pods", "namespace_model_role:vllm_pods:count", NS_MODEL, "short",
               "Model-server pods exporting vLLM metrics.",
               lambda c, v: distinct_pods(c, NS_MODEL, c.vllm(POD_PRESENCE_METRIC, v["role"])),
               ROLE_VARIANTS),
        Signal("vllm_pods_ns", "namespace:vllm_pods:count", NS, "short",
               "Model-server pods up in the namespace, whatever their role and model.", pods_ns),
        Signal("requests", f"namespace_model_role:vllm_requests_finished:{r}", NS_MODEL, "reqps",
               "Requests finished per second (each P/D request finishes once per role).",
               vllm_sum_rate(("vllm:request_success_total",)), ROLE_VARIANTS),
        Signal("requests_aborted", f"namespace_model_role:vllm_requests_aborted:{r}", NS_MODEL,
               "reqps", "Requests aborted per second.",
               vllm_sum_rate(("vllm:request_success_total",), matchers='finished_reason="abort"'),
               ROLE_VARIANTS),
        # vLLM 0.14+ pre-creates the child; from 0.24 (kv_load_failure_policy "fail" by default) a
        # decode request whose KV load fails ends here instead of being recomputed.
        Signal("requests_errored", f"namespace_model_role:vllm_requests_errored:{r}", NS_MODEL,
               "reqps", "Requests finished with an error per second (vLLM 0.14+; on decode from 0.24 "
               "a failed KV load).",
               vllm_sum_rate(("vllm:request_success_total",), matchers='finished_reason="error"'),
               ROLE_VARIANTS),
        Signal("prompt_tokens", f"namespace_model_role:vllm_prompt_tokens:{r}", NS_MODEL, "short",
               "Prompt tokens per second (counted on both roles in P/D).",
               vllm_sum_rate(("vllm:prompt_tokens_total",)), ROLE_VARIANTS),
        Signal("generation_tokens", f"namespace_model_role:vllm_generation_tokens:{r}", NS_MODEL,
               "short", "Generated tokens per second (prefill adds one per request).",
               vllm_sum_rate(("vllm:generation_tokens_total",)), ROLE_VARIANTS),
        Signal("work_tokens", f"namespace_model_role:vllm_iteration_tokens:{r}", NS_MODEL, "short",
               "Tokens processed by engine steps per second: the work each role really does.",
               vllm_sum_rate(("vllm:iteration_tokens_total_sum",)), ROLE_VARIANTS),
        Signal("preemptions", f"namespace_model_role:vllm_preemptions:{r}", NS_MODEL, "short",
               "Preemptions per second.", vllm_sum_rate(("vllm:num_preemptions_total",)),
               ROLE_VARIANTS),
        Signal("running", "namespace_model_role:vllm_requests_running:sum", NS_MODEL, "short",
               "Requests running.", vllm_gauge("sum", ("vllm:num_requests_running",)),
               ROLE_VARIANTS),
        Signal("waiting", "namespace_model_role:vllm_requests_waiting:sum", NS_MODEL, "short",
               "Requests waiting (on decode this includes KV pulls in flight).",
               vllm_gauge("sum", ("vllm:num_requests_waiting",)), ROLE_VARIANTS),
        Signal("kv_cache_usage", "namespace_model_role:vllm_kv_cache_usage:avg", NS_MODEL,
               "percentunit", "Mean KV-cache usage (renamed from gpu_cache_usage_perc).",
               vllm_gauge("avg", KV_CACHE_USAGE), ROLE_VARIANTS),
        Signal("prefix_hits", f"namespace_model_role:vllm_prefix_cache_hits:{r}", NS_MODEL,
               "short", "Prefix-cache hit tokens per second.", vllm_sum_rate(PREFIX_HITS), ROLE_VARIANTS),
        Signal("prefix_queries", f"namespace_model_role:vllm_prefix_cache_queries:{r}", NS_MODEL,
               "short", "Prefix-cache queried tokens per second.", vllm_sum_rate(PREFIX_QUERIES),
               ROLE_VARIANTS),
        Signal("prefix_hit_ratio", f"namespace_model_role:vllm_prefix_cache_hit:ratio_{r}",
               NS_MODEL, "percentunit", "Prefix-cache hit rate over the rate window, per role.",
               lambda c, v: (f"{c.ref('prefix_hits', **v)}\n/ {c.on(*NS_MODEL)}\n"
                             f"({c.ref('prefix_queries', **v)} > 0)"), ROLE_VARIANTS),
        Signal("prefix_hit_ratio_all", f"namespace_model:vllm_prefix_cache_hit:ratio_{r}",
               NS_MODEL, "percentunit", "Prefix-cache hit rate over the rate window, all pods.",
               lambda c, v: (f"sum by ({c.by(*NS_MODEL)}) ({c.ref('prefix_hits')})\n/ "
                             f"{c.on(*NS_MODEL)}\n(sum by ({c.by(*NS_MODEL)}) "
                             f"({c.ref('prefix_queries')}) > 0)")),
    ]
