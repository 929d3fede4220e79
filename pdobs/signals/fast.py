"""Short-window evidence: what the collapse and KV-failure alerts page on within minutes.

The checklist (checklist.py) judges rates over the rate window (5 minutes by default): a rate
drains to zero only once the window holds nothing from before the fault, so an alert on it cannot
fire before the window has passed. These signals count raw counters over `prometheus.fast_window`
(90 s by default) instead, so "decode started N requests and not one KV transfer completed"
holds from the first scrapes after the fault; the alerts' `for` then asks that it lasts.

Requests are counted when they *start* (a TTFT observation: vLLM records it at the first token,
right after the KV pull), not when they finish: when traffic stops, decode keeps finishing the
requests it holds for as long as they take to generate, with no new transfer, and counting
completions would read that tail as "no KV moved".

The KV-transfer counters are summed over every pod, whatever its role (a pull connector counts
on decode, a push connector on prefill); `KV_TRANSFER_COUNTERS` lists them per connector,
preferred first, so a connector whose counters vLLM names differently is one more name. Prefill
idleness needs no connector at all: prefill pods start ~no request while decode pods start many.
"""

from collections.abc import Callable
from dataclasses import replace

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.core.promql import duration_seconds
from pdobs.signals import kv_delivery, kv_transfer
from pdobs.signals.builders import NS_MODEL, ROLE_VARIANTS

# First-token observations per request on each pod (every vLLM version names it so).
STARTED_COUNTER = "vllm:time_to_first_token_seconds_count"
# The fast signals, as the checklist names the signals they stand in for.
FAST_CHECKS = ("nixl_transfers_absent", "prefill_idle")


def _window(ctx: Ctx) -> str:
    # Always the configured window: a dashboard's $__rate_interval must not shorten the evidence.
    return ctx.cfg["prometheus"]["fast_window"]


def _sum_increase(ctx: Ctx, names: tuple[str, ...], role: str | None = None) -> str:
    by = ctx.by(*NS_MODEL)
    return " or ".join(f"sum by ({by}) (increase({ctx.vllm(n, role)}[{_window(ctx)}]))" for n in names)


def _started(ctx: Ctx, v: Variant) -> str:
    return _sum_increase(ctx, (STARTED_COUNTER,), v["role"])


def _over_window(ctx: Ctx, build: Callable[[Ctx], str]) -> str:
    """A connector-agnostic rate of kv_transfer.py over the fast window, times its length: the
    count in the window, with the same per-pod rules (no 0.33 failure counted twice, Mooncake's
    two sides counted once) as the rate-window signals."""
    window = _window(ctx)
    seconds = duration_seconds(window)
    return f"(\n{build(replace(ctx, rate_range=window))}\n) * {seconds:g}"


def _transfers(ctx: Ctx, v: Variant) -> str:
    return _over_window(ctx, kv_transfer.transfers)


def _failures(ctx: Ctx, v: Variant) -> str:
    return _over_window(ctx, kv_transfer.failures)


def _active(ctx: Ctx, v: Variant) -> str:
    """Prefill pods are up and decode pods started enough requests in the fast window."""
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    return (f"(sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')}) > 0)\nand {on}\n"
            f"(sum by ({by}) ({ctx.ref('requests_started_fast', role='decode')}) >= "
            f"{ctx.threshold('fast_min_requests')})")


def _prefill_start_ratio(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    return (f"sum by ({by}) ({ctx.ref('requests_started_fast', role='prefill')})\n/ {on}\n"
            f"sum by ({by}) ({ctx.ref('requests_started_fast', role='decode')})")


def _fast_signal(ctx: Ctx, v: Variant) -> str:
    """1 where the evidence says the signal fails, 0 where it passes, only where it can tell."""
    # From raw series in one rule: on a live Prometheus each recording group the evidence waits
    # on can add an evaluation interval, and this is the path that pages within minutes.
    raw = ctx.inlined()
    on = ctx.on(*NS_MODEL)
    holds = {
        # Absent or flat: no transfer completed in the window, and decode received no prompt token
        # by KV transfer (the witness of a connector that exports no transfer metrics).
        "nixl_transfers_absent": (f"unless {on} ({raw.ref('kv_transfers_fast')} > 0)\n"
                                  f"  unless {on} ({raw.ref('kv_delivered_fast')} > 0)"),
        "prefill_idle": f"unless {on} ({raw.ref('prefill_start_ratio_fast')} >= {ctx.threshold('prefill_idle_ratio')})",
    }
    zero = f"({raw.ref('fast_active')}) * 0"
    return f"(\n  ({zero} + 1)\n  {holds[v['signal']]}\n)\nor\n{zero}"


def _kv_unobservable(ctx: Ctx, v: Variant) -> str:
    """Prefill pods work but no KV-transfer series exist: nothing can show a transfer."""
    on = ctx.on(*NS_MODEL)
    return (f"({ctx.ref('fast_signal', signal='prefill_idle')} == 0)\n"
            f"unless {on} {ctx.ref('kv_series')}\nunless {on} {ctx.ref('kv_delivery_series')}")


def _decode_starting(ctx: Ctx, v: Variant) -> str:
    """Decode pods started requests over the rate window: the checklist's evidence is about
    traffic still arriving, not the tail of requests that started before it stopped."""
    return (f"sum by ({ctx.by(*NS_MODEL)}) ({ctx.ref('ttft_count_rate', role='decode')}) > "
            f"{ctx.threshold('min_request_rate')}")


def signals(quantiles: tuple[float, ...], window: str, fast_window: str) -> list[Signal]:
    inc = f"increase{fast_window}"
    return [
        Signal("requests_started_fast", f"namespace_model_role:vllm_requests_started:{inc}", NS_MODEL,
               "short", "Requests that produced their first token in the fast window, per role.",
               _started, ROLE_VARIANTS),
        Signal("kv_transfers_fast", f"namespace_model:vllm_kv_transfers:{inc}", NS_MODEL, "short",
               "KV-cache transfers completed in the fast window (every pod, every listed connector).",
               _transfers),
        Signal("kv_transfer_failures_fast", f"namespace_model:vllm_kv_failures:{inc}", NS_MODEL, "short",
               "Failed KV transfers in the fast window, each counted once (NIXL or Mooncake).", _failures),
        Signal("kv_delivered_fast", None, NS_MODEL, "short",
               "Prompt tokens decode received by KV transfer in the fast window (vLLM 0.16+, any connector).",
               lambda c, v: _over_window(c, kv_delivery.delivered)),
        Signal("fast_active", None, NS_MODEL, "short",
               "Prefill pods are up and decode pods started enough requests in the fast window to tell.",
               _active),
        Signal("prefill_start_ratio_fast", None, NS_MODEL, "percentunit",
               "Requests started on prefill per request started on decode in the fast window: about 1 "
               "when disaggregated, about 0 when prefill is idle.", _prefill_start_ratio),
        Signal("fast_signal", "namespace_model:pd_fast_signal:failing", NS_MODEL, "short",
               "Short-window evidence for two checklist signals: 1 failing, 0 passing, absent when "
               "decode started too few requests in the fast window (or P/D is not deployed).",
               _fast_signal, tuple({"signal": s} for s in FAST_CHECKS)),
        Signal("decode_starting", None, NS_MODEL, "reqps",
               "Requests started per second on decode over the rate window, where above the idle bound.",
               _decode_starting),
        Signal("fast_kv_unobservable", None, NS_MODEL, "short",
               "Prefill pods work in the fast window but no KV evidence series exist.", _kv_unobservable),
    ]
