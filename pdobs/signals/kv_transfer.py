"""KV-cache transfer between prefill and decode, whichever connector moves it: NIXL (vLLM 0.11.1+,
pull, or push from 0.24) or Mooncake (metrics from 0.33).

Each signal joins the connectors' metrics with `or` after aggregation, NIXL first, as renames are
joined: a deployment runs one connector. A transfer is recorded by the pod that drives it (decode
for NIXL pull, prefill for NixlPushConnector and Mooncake), and every pod of a connector exports
its children (zero where it records nothing), so no signal here splits by role. The transfer
histograms (time, post time, bytes, descriptors) are in histograms.py; what decode received by
KV transfer, on any connector, is in kv_delivery.py.
"""

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import NS_MODEL, vllm_sum_rate

# Transfer counts per connector, preferred first.
TRANSFER_COUNTS = ("vllm:nixl_xfer_time_seconds_count", "vllm:mooncake_xfer_time_seconds_count")
NIXL_FAILED_TRANSFERS = "vllm:nixl_num_failed_transfers_total"
NIXL_FAILED_NOTIFICATIONS = "vllm:nixl_num_failed_notifications_total"
# From vLLM 0.33 (nixl/stats.py) failed_transfers also counts handshake and notification failures,
# and a pod exports this counter: it tells, pod by pod, whether a failed notification is in
# failed_transfers already.
NIXL_0_33_MARKER = "vllm:nixl_num_notifications_after_expiry_total"
MOONCAKE_FAILED_TRANSFERS = "vllm:mooncake_num_failed_transfers_total"  # the sender's (prefill) failed writes
MOONCAKE_FAILED_RECVS = "vllm:mooncake_num_failed_recvs_total"  # the receiver's (decode) failed loads
KV_EXPIRED = ("vllm:nixl_num_kv_expired_reqs_total", "vllm:mooncake_num_kv_expired_reqs_total")


def _larger(ctx: Ctx, a: str, b: str) -> str:
    """Per namespace/model the larger of two vectors with the same labels, or whichever exists."""
    on = ctx.on(*NS_MODEL)
    return f"(({a}) >= {on} ({b}))\nor {on}\n({b})\nor {on}\n({a})"


def _nixl_failures(ctx: Ctx) -> str:
    """Failed NIXL transfers, each counted once: before 0.33 failed notifications are a counter
    of their own and are added; from 0.33 they are already in failed_transfers. Decided per pod,
    so a fleet half-way through an upgrade adds them only where they are not counted yet."""
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    w = ctx.window
    transfers = f"sum by ({by}) (rate({ctx.vllm(NIXL_FAILED_TRANSFERS)}[{w}]))"
    separate = (f"sum by ({by}) (\n  rate({ctx.vllm(NIXL_FAILED_NOTIFICATIONS)}[{w}])\n"
                f"  unless {ctx.on('namespace', 'pod')} {ctx.vllm(NIXL_0_33_MARKER)}\n)")
    return f"{transfers}\n+ {on}\n(\n{separate}\nor\n{transfers} * 0\n)"


def _mooncake_failures(ctx: Ctx) -> str:
    """Failed Mooncake transfers: a failed write is usually seen by both sides (the prefill pod's
    failed transfer, then decode's error response counted as a failed receive), so the larger of
    the two counts them without counting one failure twice."""
    by, w = ctx.by(*NS_MODEL), ctx.window
    sent = f"sum by ({by}) (rate({ctx.vllm(MOONCAKE_FAILED_TRANSFERS)}[{w}]))"
    received = f"sum by ({by}) (rate({ctx.vllm(MOONCAKE_FAILED_RECVS)}[{w}]))"
    return _larger(ctx, sent, received)


def transfers(ctx: Ctx) -> str:
    """KV transfers completed per second over the context's rate range, whichever connector."""
    return vllm_sum_rate(TRANSFER_COUNTS)(ctx, {})


def failures(ctx: Ctx) -> str:
    """Failed KV transfers per second over the context's rate range, each counted once."""
    return f"(\n{_nixl_failures(ctx)}\n)\nor\n(\n{_mooncake_failures(ctx)}\n)"


def _kv_failures(ctx: Ctx, v: Variant) -> str:
    return failures(ctx)


def _kv_series(ctx: Ctx, v: Variant) -> str:
    by = ctx.by(*NS_MODEL)
    return " or ".join(f"count by ({by}) ({ctx.vllm(n)})" for n in TRANSFER_COUNTS)


def _kv_expired_events(ctx: Ctx, v: Variant) -> str:
    # A request whose lease expires is counted on prefill; if decode's read still completes,
    # vLLM 0.33 counts a notification after expiry too (one per remote rank): the larger of the two
    # is how many requests were hit, without counting one twice.
    return _larger(ctx, ctx.ref("kv_expired"), ctx.ref("nixl_notifications_after_expiry"))


def _kv_fetch_backlog(ctx: Ctx, v: Variant) -> str:
    by = ctx.by(*NS_MODEL, extra=("stage",))
    return f"sum by ({by}) ({ctx.vllm('vllm:num_requests_kv_fetch_by_stage')})"


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("kv_series", "namespace_model:vllm_kv_transfer_series:count", NS_MODEL, "short",
               "KV transfer series present (NIXL on vLLM 0.11.1+, Mooncake on 0.33+).", _kv_series),
        Signal("kv_transfers", f"namespace_model:vllm_kv_transfers:{r}", NS_MODEL, "ops",
               "KV transfers completed per second (NIXL or Mooncake), whichever pod records them.",
               vllm_sum_rate(TRANSFER_COUNTS)),
        Signal("kv_bytes_rate", f"namespace_model:vllm_kv_bytes:{r}", NS_MODEL, "Bps",
               "KV bytes moved per second (NIXL or Mooncake).",
               vllm_sum_rate(("vllm:nixl_bytes_transferred_sum", "vllm:mooncake_bytes_transferred_sum"))),
        Signal("kv_failures", f"namespace_model:vllm_kv_failures:{r}", NS_MODEL, "ops",
               "Failed KV transfers per second, each failure counted once: NIXL transfers, handshakes "
               "and notifications on any vLLM version, or Mooncake sends and receives.", _kv_failures),
        Signal("nixl_failed_notifications",
               f"namespace_model:vllm_nixl_failed_notifications:{r}", NS_MODEL, "ops",
               "Failed NIXL notifications per second (from vLLM 0.33 also counted in the failures).",
               vllm_sum_rate((NIXL_FAILED_NOTIFICATIONS,))),
        Signal("kv_expired", f"namespace_model:vllm_kv_expired_requests:{r}", NS_MODEL, "ops",
               "Requests whose KV lease expired on prefill before decode read them (NIXL on vLLM "
               "0.16+, Mooncake 0.33+).", vllm_sum_rate(KV_EXPIRED)),
        Signal("nixl_notifications_after_expiry",
               f"namespace_model:vllm_nixl_notifications_after_expiry:{r}", NS_MODEL, "ops",
               "NIXL completion notifications for requests whose KV lease had expired, per second "
               "(vLLM 0.33+): their blocks may have been reused before the transfer finished.",
               vllm_sum_rate((NIXL_0_33_MARKER,))),
        Signal("kv_expired_events", None, NS_MODEL, "ops",
               "Requests hit by an expired KV lease per second: expired on prefill, or completed "
               "after the expiry, whichever counts more.", _kv_expired_events),
        Signal("kv_failure_ratio", f"namespace_model:vllm_kv_failures:ratio_{r}", NS_MODEL,
               "percentunit", "Failed KV transfers per completed transfer.",
               lambda c, v: f"{c.ref('kv_failures')}\n/ {c.on(*NS_MODEL)}\n{c.ref('kv_transfers')}"),
        Signal("kv_transfers_per_request",
               f"namespace_model:vllm_kv_transfers_per_request:ratio_{r}", NS_MODEL, "short",
               "KV transfers per request finished on decode (about 1 when healthy, whichever role "
               "records them).",
               lambda c, v: (f"{c.ref('kv_transfers')}\n/ {c.on(*NS_MODEL)}\n"
                             f"sum by ({c.by(*NS_MODEL)}) ({c.ref('requests', role='decode')})")),
        Signal("kv_bytes_per_transfer", f"namespace_model:vllm_kv_bytes_per_transfer:ratio_{r}",
               NS_MODEL, "bytes", "Mean bytes per KV transfer.",
               lambda c, v: (f"{c.ref('kv_bytes_rate')}\n/ {c.on(*NS_MODEL)}\n"
                             f"({c.ref('kv_transfers')} > 0)")),
        Signal("kv_fetch_backlog", "namespace_model_stage:vllm_requests_kv_fetch:sum", NS_MODEL, "short",
               "Requests waiting for their KV cache on the pods that consume it, by stage (vLLM 0.33+): "
               "waiting_to_start, in_progress, completed_waiting.", _kv_fetch_backlog),
    ]

