"""Derived P/D signals: how the work splits between prefill and decode, and when P/D applies.

These are the quantities the checklist (checklist.py, pdobs/checks.py) compares with the
configured thresholds, and the fragments the verdict is made of.
"""

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import NS, NS_MODEL, ratio


def _pd_active(ctx: Ctx, v: Variant) -> str:
    """Prefill pods exist and decode pods serve traffic: the only case P/D checks apply to."""
    by = ctx.by(*NS_MODEL)
    return (f"(sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')}) > 0)\n"
            f"and {ctx.on(*NS_MODEL)}\n"
            f"(sum by ({by}) ({ctx.ref('requests', role='decode')}) > "
            f"{ctx.threshold('min_request_rate')})")


def _epp_ready_lt_pods(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.ref('epp_ready_pods_ns')}\n< {ctx.on(*NS)}\n{ctx.ref('vllm_pods_ns')}"


def _prefill_busy(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.ref('prefill_work_ratio')} >= {ctx.threshold('prefill_idle_ratio')}"


def _kv_evidence_missing(ctx: Ctx, v: Variant) -> str:
    """Prefill pods work but no KV evidence of any kind is exported: no connector transfer series
    (NIXL before vLLM 0.11.1, Mooncake before 0.33, other connectors) and no prompt tokens by
    source (before 0.16)."""
    on = ctx.on(*NS_MODEL)
    return (f"({ctx.ref('pd_active')}) * 0 + 1\nand {on} ({ctx.ref('prefill_busy')})\n"
            f"unless {on} {ctx.ref('kv_series')}\nunless {on} {ctx.ref('kv_delivery_series')}")


def _kv_moving(ctx: Ctx, v: Variant) -> str:
    """Some witness shows KV cache moving: the connector's transfers, or prompt tokens decode
    received by KV transfer."""
    return f"({ctx.ref('kv_transfers')} > 0)\nor {ctx.on(*NS_MODEL)}\n({ctx.ref('kv_delivered_tokens')} > 0)"


def _ttft_pd_mean(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    return (f"sum by ({by}) ({ctx.ref('ttft_mean', role='prefill')})\n+ {on}\n"
            f"sum by ({by}) ({ctx.ref('ttft_mean', role='decode')})")


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("prefill_work_ratio", f"namespace_model:vllm_prefill_work:ratio_{r}", NS_MODEL,
               "none", "Requests finished on prefill per request finished on decode: "
               "about 1 when disaggregated, about 0 when prefill is idle.",
               ratio(("requests", {"role": "prefill"}), ("requests", {"role": "decode"}),
                     NS_MODEL)),
        Signal("decode_work_share", f"namespace_model:vllm_decode_work:share_{r}", NS_MODEL,
               "percentunit", "Decode pods' share of the tokens processed by all pods: well below "
               "1 when prefill computes the prompts, 1 when decode does all the work.",
               lambda c, v: (f"sum by ({c.by(*NS_MODEL)}) ({c.ref('work_tokens', role='decode')})"
                             f"\n/ {c.on(*NS_MODEL)}\n(sum by ({c.by(*NS_MODEL)}) "
                             f"({c.ref('work_tokens')}) > 0)")),
        Signal("ttft_decode_over_prefill", f"namespace_model:vllm_ttft_decode_over_prefill:ratio_{r}",
               NS_MODEL, "short", "Mean TTFT on decode divided by mean TTFT on prefill: about 1 "
               "(or no prefill samples) when decode computes the prompts itself.",
               ratio(("ttft_mean", {"role": "decode"}), ("ttft_mean", {"role": "prefill"}),
                     NS_MODEL)),
        Signal("epp_ready_lt_pods", None, NS, "short",
               "Namespaces where the EPP sees fewer ready pods than model-server pods are up.",
               _epp_ready_lt_pods),
        Signal("pd_active", None, NS_MODEL, "short",
               "Prefill pods exist and decode pods serve traffic.", _pd_active),
        Signal("prefill_busy", None, NS_MODEL, "short", "Prefill pods do real work.",
               _prefill_busy),
        Signal("kv_evidence_missing", None, NS_MODEL, "short",
               "Prefill pods work but no KV evidence is exported (no transfer series, no prompt tokens "
               "by source).", _kv_evidence_missing),
        Signal("kv_moving", None, NS_MODEL, "short",
               "KV cache moves: transfers complete, or decode receives prompt tokens by KV transfer.",
               _kv_moving),
        Signal("ttft_pd_mean", None, NS_MODEL, "s",
               "Mean TTFT of the prefill leg plus mean TTFT of the decode leg (which holds the KV "
               "pull): the model-server share of a P/D request's TTFT, without gateway and sidecar hops.",
               _ttft_pd_mean),
    ]
