"""KV delivery: the prompt tokens decode pods got by KV transfer, on any connector.

vLLM 0.16+ counts every prompt token by where it came from (`vllm:prompt_tokens_by_source_total`,
sources of vllm/v1/metrics/stats.py: local_compute, local_cache_hit, external_kv_transfer). On a
decode pod, external_kv_transfer is the KV a prefill pod computed and the connector delivered:
a direct witness that disaggregation works, whatever the connector and whether or not it exports
metrics of its own (Mooncake before 0.33 does not). The series exist on every pod of 0.16+, so
their absence means an older vLLM, never "nothing delivered".
"""

from pdobs.core import promql
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Builder, Signal
from pdobs.signals.builders import NS_MODEL, vllm_sum_rate

BY_SOURCE = "vllm:prompt_tokens_by_source_total"
DELIVERED = "external_kv_transfer"
COMPUTED = "local_compute"


def _source(source: str) -> str:
    return promql.matcher("source", "=", source)


def _tokens(source: str) -> Builder:
    rate = vllm_sum_rate((BY_SOURCE,), matchers=_source(source))

    def build(ctx: Ctx, v: Variant) -> str:
        return rate(ctx, {"role": "decode"})

    return build


def delivered(ctx: Ctx) -> str:
    """Prompt tokens per second decode received by KV transfer, over the context's rate range."""
    return _tokens(DELIVERED)(ctx, {})


def _series(ctx: Ctx, v: Variant) -> str:
    return f"count by ({ctx.by(*NS_MODEL)}) ({ctx.vllm(BY_SOURCE, 'decode', _source(DELIVERED))})"


def _ratio(ctx: Ctx, v: Variant) -> str:
    # Only where P/D is deployed: aggregated serving computes every prompt on decode by design.
    on, by = ctx.on(*NS_MODEL), ctx.by(*NS_MODEL)
    delivered, computed = ctx.ref("kv_delivered_tokens"), ctx.ref("kv_computed_tokens")
    return (f"{delivered}\n/ {on}\n(({delivered} + {on} {computed}) > 0)\n"
            f"and {on}\n(sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')}) > 0)")


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("kv_delivery_series", "namespace_model:vllm_kv_delivery_series:count", NS_MODEL, "short",
               "Decode pods' prompt-tokens-by-source series present (vLLM 0.16+, any connector).", _series),
        Signal("kv_delivered_tokens", f"namespace_model:vllm_decode_prompt_tokens_kv_transfer:{r}", NS_MODEL,
               "short", "Prompt tokens per second decode pods received by KV transfer (vLLM 0.16+, any "
               "connector).", _tokens(DELIVERED)),
        Signal("kv_computed_tokens", f"namespace_model:vllm_decode_prompt_tokens_local_compute:{r}", NS_MODEL,
               "short", "Prompt tokens per second decode pods computed themselves (not cached, not "
               "delivered).", _tokens(COMPUTED)),
        Signal("kv_delivery_ratio", f"namespace_model:vllm_decode_prompt_tokens_kv_transfer:ratio_{r}",
               NS_MODEL, "percentunit", "Share of the prompt tokens decode did not find in its cache that "
               "arrived by KV transfer, where prefill pods exist: about 1 when disaggregated, 0 when decode "
               "computes the prompts.",
               _ratio),
    ]
