"""KV-cache transfer between prefill and decode: vLLM's NIXL connector metrics (vLLM 0.11.1+).

NIXL series are recorded on decode; prefill pods carry zero-valued children, so there is no role
split. The NIXL histograms (transfer time, post time, bytes, descriptors) are in histograms.py.
"""

from pdobs.core.engine import Signal
from pdobs.signals.builders import NS_MODEL, vllm_sum_rate


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("nixl_series", "namespace_model:vllm_nixl_series:count", NS_MODEL, "short",
               "NIXL transfer series present (vLLM 0.11.1+ with the NIXL connector).",
               lambda c, v: (f"count by ({c.by(*NS_MODEL)}) "
                             f"({c.vllm('vllm:nixl_xfer_time_seconds_count')})")),
        Signal("nixl_transfers", f"namespace_model:vllm_nixl_transfers:{r}", NS_MODEL, "ops",
               "NIXL KV transfers completed per second.",
               vllm_sum_rate(("vllm:nixl_xfer_time_seconds_count",))),
        Signal("nixl_bytes_rate", f"namespace_model:vllm_nixl_bytes:{r}", NS_MODEL, "Bps",
               "KV bytes moved by NIXL per second.",
               vllm_sum_rate(("vllm:nixl_bytes_transferred_sum",))),
        Signal("nixl_failed_transfers", f"namespace_model:vllm_nixl_failed_transfers:{r}",
               NS_MODEL, "ops", "Failed NIXL transfers per second.",
               vllm_sum_rate(("vllm:nixl_num_failed_transfers_total",))),
        Signal("nixl_failed_notifications",
               f"namespace_model:vllm_nixl_failed_notifications:{r}", NS_MODEL, "ops",
               "Failed NIXL notifications per second.",
               vllm_sum_rate(("vllm:nixl_num_failed_notifications_total",))),
        Signal("nixl_expired", f"namespace_model:vllm_nixl_kv_expired_requests:{r}", NS_MODEL,
               "ops", "Requests whose KV blocks expired on prefill before decode read them "
               "(vLLM 0.16+).", vllm_sum_rate(("vllm:nixl_num_kv_expired_reqs_total",))),
        Signal("nixl_failure_ratio", f"namespace_model:vllm_nixl_failures:ratio_{r}", NS_MODEL,
               "percentunit", "Failed NIXL transfers and notifications per completed transfer.",
               lambda c, v: (f"(\n  {c.ref('nixl_failed_transfers')}\n  + {c.on(*NS_MODEL)} "
                             f"group_left() ({c.ref('nixl_failed_notifications')} or "
                             f"{c.ref('nixl_failed_transfers')} * 0)\n)\n/ {c.on(*NS_MODEL)}\n"
                             f"{c.ref('nixl_transfers')}")),
        Signal("nixl_transfers_per_request",
               f"namespace_model:vllm_nixl_transfers_per_request:ratio_{r}", NS_MODEL, "short",
               "NIXL transfers per request finished on decode (about 1 when healthy).",
               lambda c, v: (f"{c.ref('nixl_transfers')}\n/ {c.on(*NS_MODEL)}\n"
                             f"sum by ({c.by(*NS_MODEL)}) ({c.ref('requests', role='decode')})")),
        Signal("nixl_mb_per_transfer", f"namespace_model:vllm_nixl_bytes_per_transfer:ratio_{r}",
               NS_MODEL, "bytes", "Mean bytes per NIXL transfer.",
               lambda c, v: (f"{c.ref('nixl_bytes_rate')}\n/ {c.on(*NS_MODEL)}\n"
                             f"({c.ref('nixl_transfers')} > 0)")),
    ]
