"""Histogram families (vLLM, KV transfer, EPP) and the five signals each one becomes.

Every histogram is recorded as bucket, sum and count rates, and read as quantiles (one variant
per configured quantile) and a mean over the rate window. The EPP's per-model histograms also get
a namespace-level mean (a fragment): their model label is the client's model name, which a model
rewrite or a LoRA adapter makes differ from the model server's, so nothing can join them per model.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from pdobs.core.context import ROLES, Ctx, Variant
from pdobs.core.engine import Builder, Signal
from pdobs.signals.builders import EPP_CLIENT_MODEL, NS, NS_MODEL, epp_sum_rate, vllm_sum_rate


def quantile_label(q: float) -> str:
    """The `quantile` label value of a configured quantile (0.95 -> "0.95")."""
    return f"{q:g}"


@dataclass(frozen=True)
class Histogram:
    key: str
    names: tuple[str, ...]  # exposed base names, preferred first
    record_base: str
    help: str
    family: str  # vllm (per role) | kv (KV transfer, no role split) | epp (per model) | epp_ns
    unit: str = "s"
    roles: tuple[str, ...] = ROLES  # vllm family: the roles it means something on
    matchers: str = ""  # extra label matchers every part reads


HISTOGRAMS = (
    Histogram("ttft", ("vllm:time_to_first_token_seconds",), "vllm_time_to_first_token_seconds",
              "Time to first token measured at each vLLM instance (not client TTFT).", "vllm"),
    # Decode only: a prefill pod generates one token per request, so its ITL has no samples and
    # every quantile and mean of it is NaN.
    Histogram("itl", ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
              "vllm_inter_token_latency_seconds",
              "Inter-token latency on decode pods (renamed from time_per_output_token in vLLM 0.10.2).",
              "vllm", roles=("decode",)),
    Histogram("e2e", ("vllm:e2e_request_latency_seconds",), "vllm_e2e_request_latency_seconds",
              "End-to-end latency of each instance's leg of a request.", "vllm"),
    Histogram("queue", ("vllm:request_queue_time_seconds",), "vllm_request_queue_time_seconds",
              "Queue time; on decode pods it holds the wait for the KV cache (pulled or pushed).", "vllm"),
    Histogram("prefill_time", ("vllm:request_prefill_time_seconds",),
              "vllm_request_prefill_time_seconds", "Prefill phase time per request.", "vllm"),
    Histogram("decode_time", ("vllm:request_decode_time_seconds",),
              "vllm_request_decode_time_seconds", "Decode phase time per request.", "vllm"),
    # KV transfer: NIXL or Mooncake (0.33+), recorded by the pod that drives the transfer (decode
    # for NIXL pull, prefill for NIXL push and Mooncake), so never split by role.
    Histogram("kv_xfer_time", ("vllm:nixl_xfer_time_seconds", "vllm:mooncake_xfer_time_seconds"),
              "vllm_kv_xfer_time_seconds", "KV transfer time per transfer (NIXL or Mooncake).", "kv"),
    Histogram("nixl_post_time", ("vllm:nixl_post_time_seconds",), "vllm_nixl_post_time_seconds",
              "NIXL transfer post time per transfer.", "kv"),
    Histogram("kv_bytes", ("vllm:nixl_bytes_transferred", "vllm:mooncake_bytes_transferred"),
              "vllm_kv_bytes_transferred", "Bytes moved per KV transfer (NIXL or Mooncake).", "kv",
              unit="bytes"),
    Histogram("kv_descriptors", ("vllm:nixl_num_descriptors", "vllm:mooncake_num_descriptors"),
              "vllm_kv_num_descriptors", "Memory descriptors per KV transfer (NIXL or Mooncake).", "kv",
              unit="short"),
    Histogram("epp_duration",
              ("llm_d_epp_request_duration_seconds", "inference_objective_request_duration_seconds",
               "inference_model_request_duration_seconds"),
              "epp_request_duration_seconds",
              "Client-side request latency seen by the EPP (the true end-to-end).", "epp"),
    # Streaming requests only: for a non-streaming one the first response byte is the whole answer,
    # so its "TTFT" is the request's duration.
    Histogram("epp_ttft", ("llm_d_epp_request_ttft_seconds",), "epp_request_ttft_seconds",
              "Client-side TTFT of streaming requests seen by the EPP (llm-d-router v0.9 and later).",
              "epp", matchers='streaming="true"'),
    Histogram("epp_scheduler", ("llm_d_epp_scheduler_e2e_duration_seconds",
                                "inference_extension_scheduler_e2e_duration_seconds"),
              "epp_scheduler_e2e_duration_seconds", "EPP scheduling latency per request.",
              "epp_ns"),
)



def _hist_level(h: Histogram) -> tuple[tuple[str, ...], str]:
    if h.family == "vllm":
        return NS_MODEL, "namespace_model_role"
    if h.family == "epp_ns":
        return NS, "namespace"
    return NS_MODEL, "namespace_model"


def _histogram_signals(h: Histogram, quantiles: tuple[float, ...], window: str) -> Iterator[Signal]:
    level, prefix = _hist_level(h)
    variants: tuple[Variant, ...] = tuple({"role": r} for r in h.roles) if h.family == "vllm" else ({},)
    unscoped = EPP_CLIENT_MODEL if h.family == "epp" else ()
    rate = f"rate{window}"

    def part_rate(suffix: str, extra: tuple[str, ...]) -> Builder:
        names = tuple(n + suffix for n in h.names)
        if h.family.startswith("epp"):
            return epp_sum_rate(names, level, extra, h.matchers)
        return vllm_sum_rate(names, level, extra, h.matchers)

    yield Signal(f"{h.key}_bucket_rate", f"{prefix}:{h.record_base}_bucket:{rate}", level, "short",
                 f"{h.help} Bucket rates.", part_rate("_bucket", ("le",)), variants, unscoped)
    yield Signal(f"{h.key}_sum_rate", f"{prefix}:{h.record_base}_sum:{rate}", level, h.unit,
                 f"{h.help} Sum rate.", part_rate("_sum", ()), variants, unscoped)
    yield Signal(f"{h.key}_count_rate", f"{prefix}:{h.record_base}_count:{rate}", level, "ops",
                 f"{h.help} Observations per second.", part_rate("_count", ()), variants, unscoped)

    def quantile(ctx: Ctx, v: Variant) -> str:
        ref_v = {k: val for k, val in v.items() if k != "quantile"}
        return f"histogram_quantile({v['quantile']}, {ctx.ref(f'{h.key}_bucket_rate', **ref_v)})"

    qvariants = tuple({**base, "quantile": quantile_label(q)} for base in variants for q in quantiles)
    yield Signal(f"{h.key}_quantile", f"{prefix}:{h.record_base}:histogram_quantile", level,
                 h.unit, f"{h.help} Quantiles.", quantile, qvariants, unscoped)

    def mean(ctx: Ctx, v: Variant) -> str:
        return f"{ctx.ref(f'{h.key}_sum_rate', **v)}\n/\n{ctx.ref(f'{h.key}_count_rate', **v)}"

    yield Signal(f"{h.key}_mean", f"{prefix}:{h.record_base}:mean{window}", level, h.unit,
                 f"{h.help} Mean over the rate window.", mean, variants, unscoped)

    if h.family == "epp":
        def mean_ns(ctx: Ctx, v: Variant) -> str:
            by = ctx.by(*NS)
            return (f"sum by ({by}) ({ctx.ref(f'{h.key}_sum_rate')})\n/ {ctx.on(*NS)}\n"
                    f"sum by ({by}) ({ctx.ref(f'{h.key}_count_rate')})")

        yield Signal(f"{h.key}_mean_ns", None, NS, h.unit,
                     f"{h.help} Mean over the rate window, all client model names of the namespace.", mean_ns)


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [s for h in HISTOGRAMS for s in _histogram_signals(h, quantiles, window)]
