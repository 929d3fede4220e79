"""Histogram families (vLLM, NIXL, EPP) and the five signals each one becomes.

Every histogram is recorded as bucket, sum and count rates, and read as quantiles (one variant
per configured quantile) and a mean over the rate window.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Builder, Signal
from pdobs.signals.builders import NS, NS_MODEL, ROLE_VARIANTS, epp_sum_rate, vllm_sum_rate


def quantile_label(q: float) -> str:
    """The `quantile` label value of a configured quantile (0.95 -> "0.95")."""
    return f"{q:g}"


@dataclass(frozen=True)
class Histogram:
    key: str
    names: tuple[str, ...]  # exposed base names, preferred first
    record_base: str
    help: str
    family: str  # vllm (per role) | nixl | epp (per model) | epp_ns
    unit: str = "s"


HISTOGRAMS = (
    Histogram("ttft", ("vllm:time_to_first_token_seconds",), "vllm_time_to_first_token_seconds",
              "Time to first token measured at each vLLM instance (not client TTFT).", "vllm"),
    Histogram("itl", ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
              "vllm_inter_token_latency_seconds",
              "Inter-token latency (renamed from time_per_output_token in vLLM 0.10.2).", "vllm"),
    Histogram("e2e", ("vllm:e2e_request_latency_seconds",), "vllm_e2e_request_latency_seconds",
              "End-to-end latency of each instance's leg of a request.", "vllm"),
    Histogram("queue", ("vllm:request_queue_time_seconds",), "vllm_request_queue_time_seconds",
              "Queue time; on decode pods it holds the NIXL KV pull.", "vllm"),
    Histogram("prefill_time", ("vllm:request_prefill_time_seconds",),
              "vllm_request_prefill_time_seconds", "Prefill phase time per request.", "vllm"),
    Histogram("decode_time", ("vllm:request_decode_time_seconds",),
              "vllm_request_decode_time_seconds", "Decode phase time per request.", "vllm"),
    Histogram("nixl_xfer_time", ("vllm:nixl_xfer_time_seconds",), "vllm_nixl_xfer_time_seconds",
              "NIXL KV transfer time per transfer (recorded on decode).", "nixl"),
    Histogram("nixl_post_time", ("vllm:nixl_post_time_seconds",), "vllm_nixl_post_time_seconds",
              "NIXL transfer post time per transfer.", "nixl"),
    Histogram("nixl_bytes", ("vllm:nixl_bytes_transferred",), "vllm_nixl_bytes_transferred",
              "Bytes moved per NIXL transfer.", "nixl", unit="bytes"),
    Histogram("nixl_descriptors", ("vllm:nixl_num_descriptors",), "vllm_nixl_num_descriptors",
              "NIXL descriptors per transfer.", "nixl", unit="short"),
    Histogram("epp_duration",
              ("llm_d_epp_request_duration_seconds", "inference_objective_request_duration_seconds",
               "inference_model_request_duration_seconds"),
              "epp_request_duration_seconds",
              "Client-side request latency seen by the EPP (the true end-to-end).", "epp"),
    Histogram("epp_ttft", ("llm_d_epp_request_ttft_seconds",), "epp_request_ttft_seconds",
              "Client-side TTFT seen by the EPP (llm-d-router v0.9 and later).", "epp"),
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
    variants = ROLE_VARIANTS if h.family == "vllm" else ({},)
    rate = f"rate{window}"

    def part_rate(suffix: str, extra: tuple[str, ...]) -> Builder:
        names = tuple(n + suffix for n in h.names)
        if h.family.startswith("epp"):
            return epp_sum_rate(names, level, extra)
        return vllm_sum_rate(names, level, extra)

    yield Signal(f"{h.key}_bucket_rate", f"{prefix}:{h.record_base}_bucket:{rate}", level, "short",
                 f"{h.help} Bucket rates.", part_rate("_bucket", ("le",)), variants)
    yield Signal(f"{h.key}_sum_rate", f"{prefix}:{h.record_base}_sum:{rate}", level, h.unit,
                 f"{h.help} Sum rate.", part_rate("_sum", ()), variants)
    yield Signal(f"{h.key}_count_rate", f"{prefix}:{h.record_base}_count:{rate}", level, "ops",
                 f"{h.help} Observations per second.", part_rate("_count", ()), variants)

    def quantile(ctx: Ctx, v: Variant) -> str:
        ref_v = {k: val for k, val in v.items() if k != "quantile"}
        return f"histogram_quantile({v['quantile']}, {ctx.ref(f'{h.key}_bucket_rate', **ref_v)})"

    qvariants = tuple({**base, "quantile": quantile_label(q)} for base in variants for q in quantiles)
    yield Signal(f"{h.key}_quantile", f"{prefix}:{h.record_base}:histogram_quantile", level,
                 h.unit, f"{h.help} Quantiles.", quantile, qvariants)

    def mean(ctx: Ctx, v: Variant) -> str:
        return f"{ctx.ref(f'{h.key}_sum_rate', **v)}\n/\n{ctx.ref(f'{h.key}_count_rate', **v)}"

    yield Signal(f"{h.key}_mean", f"{prefix}:{h.record_base}:mean{window}", level, h.unit,
                 f"{h.help} Mean over the rate window.", mean, variants)


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [s for h in HISTOGRAMS for s in _histogram_signals(h, quantiles, window)]
