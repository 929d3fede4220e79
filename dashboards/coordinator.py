"""P/D Coordinator: the two legs of a P/D request, the KV transfer between them, and the
scheduler's P/D decisions. Data only; dashboards/builder.py renders it.

llm-d's own "P/D Coordinator Metrics" dashboard has no namespace/model filter, mixes roles and
reads the failed-transfers counter without its `_total` suffix (always 0); this one is scoped by
the variables, reads every query from the catalog, and its KV panels never show a bare "No Data".
"""

from typing import Any

from dashboards import ids
from dashboards.spec import (
    Dashboard,
    Panel,
    Query,
    Row,
    above,
    below,
    legend,
    pname,
    quantiles,
    states,
)
from pdobs.checks import NixlState

Config = dict[str, Any]
UID = ids.COORDINATOR
TITLE = "P/D Coordinator"

NIXL = ("nixl",)
# The prefill leg has no value now: say why instead of a stale number or a bare "No Data".
PREFILL_NONE = ("None now: prefill pods finish no requests. With prefill pods up, P/D has collapsed to "
                "aggregated serving (see KV transfer status); else P/D is not deployed (no prefill pods).")
NIXL_EMPTY = ("No NIXL series for this selection: P/D not deployed, vLLM older than 0.11.1, or a "
              "connector other than NIXL. The KV transfer status panel says which.")


def _nixl_quantiles(cfg: Config, signal: str, label: str) -> tuple[Query, ...]:
    return tuple(Query(signal, {"quantile": q}, f"{label} {pname(q)}", NIXL) for q in quantiles(cfg, signal))


def dashboard(cfg: Config) -> Dashboard:
    t = cfg["grafana"]["thresholds"]
    slow = cfg["alerts"]["PDKVTransferSlow"]
    failures = cfg["alerts"]["PDKVTransferFailures"]
    model, role = legend(cfg, "model"), legend(cfg, "role")

    legs = Row("TTFT: the two legs of a P/D request", (
        Panel("stat", "Avg vLLM TTFT (Prefill)",
              "Mean time to first token on prefill pods: the prefill leg alone (queue + prompt "
              "compute, one token), measured from arrival at the prefill pod. Not the client's TTFT. "
              "Healthy P/D: a value close to the prompt compute time; empty when prefill pods get no "
              "requests.",
              (Query("ttft_mean", {"role": "prefill"}, model, ("pd",)),), width=6, height=5,
              thresholds=above(t["ttft_seconds"]), key="ttft-prefill", no_value=PREFILL_NONE),
        Panel("stat", "Avg True TTFT (Prefill + Decode)",
              "Mean prefill-leg TTFT plus mean decode-leg TTFT: the model servers' share of a P/D "
              "request's time to first token (the decode leg holds the KV pull). Gateway and sidecar "
              "hops are not included, so the client sees a little more (Avg client TTFT, beside it, "
              f"where the EPP measures it). Healthy: below {t['ttft_seconds']} s.",
              (Query("ttft_pd_mean", {}, model, ("pd",)),), thresholds=above(t["ttft_seconds"]), width=6,
              height=5, key="ttft-true", no_value=PREFILL_NONE),
        Panel("stat", "Avg vLLM TTFT (Decode)",
              "Mean time to first token on decode pods, from arrival at the decode pod: KV pull plus "
              "one decode step. Healthy P/D: well below the prefill value. About equal to it (or "
              "prefill empty) means decode is computing the prompts itself: P/D has collapsed.",
              (Query("ttft_mean", {"role": "decode"}, model),), thresholds=above(t["ttft_seconds"]),
              width=6, height=5, key="ttft-decode"),
        Panel("stat", "Avg client TTFT (EPP)",
              "Mean time to first response byte measured by the EPP: the client's TTFT, both legs and "
              "every hop included. Only llm-d-router v0.9 or later measures it. Healthy: a little "
              f"above the true TTFT, below {t['ttft_seconds']} s.",
              (Query("epp_ttft_mean", {}, model, ("epp_ttft",)),), thresholds=above(t["ttft_seconds"]),
              width=6, height=5, key="ttft-client"),
        Panel("timeseries", "TTFT legs over time",
              "The same means over time. Healthy P/D: decode clearly below prefill, true TTFT the sum. "
              "Decode rising to meet prefill is the collapse to aggregated serving.",
              (Query("ttft_mean", {}, f"vLLM {role}"), Query("ttft_pd_mean", {}, "true (prefill + decode)", ("pd",)),
               Query("epp_ttft_mean", {}, "client (EPP)", ("epp_ttft",))),
              thresholds=above(t["ttft_seconds"]), width=24, key="ttft-legs"),
    ))
    kv = Row("KV cache transfer (NIXL)", (
        Panel("stat", "KV transfer status",
              "Is KV cache moving from prefill to decode pods? FLOWING: NIXL transfers completed in "
              "the rate window. ABSENT (red): prefill pods are up and decode serves traffic, yet no "
              "transfer happened (series missing or flat): the post-mortem's failure. NO METRICS: "
              "prefill works but vLLM exports no NIXL series (older than 0.11.1 or another "
              "connector), so transfers cannot be seen. NOT DEPLOYED: no prefill pods (aggregated "
              "serving). IDLE: no traffic. Healthy P/D: FLOWING.",
              (Query("nixl_status", {}, model),),
              states=states(NixlState), width=6, height=6, key="kv-status",
              no_value="No verdict for this selection: no vLLM pods match, or the recording rules are "
                       "not loaded in this Prometheus", link=ids.DRILLDOWN),
        Panel("timeseries", "KV transfers/s",
              "NIXL transfers completed per second (recorded on decode pods). Healthy P/D: tracks the "
              "decode request rate; flat at 0 with traffic means no KV moves.",
              (Query("nixl_transfers", {}, model, NIXL),), no_value=NIXL_EMPTY, width=6, height=6,
              key="kv-transfers"),
        Panel("timeseries", "KV transfers per decode request",
              "NIXL transfers per request finished on decode. Healthy: about 1 (more with "
              f"heterogeneous TP); below {t['nixl_transfers_per_request']:g} means decode pods serve "
              "requests without pulling KV (prompts computed locally).",
              (Query("nixl_transfers_per_request", {}, model, NIXL),),
              thresholds=below(t["nixl_transfers_per_request"]), no_value=NIXL_EMPTY, width=6, height=6,
              key="kv-per-request"),
        Panel("timeseries", "Failed transfers and notifications",
              "Failed NIXL transfers and failed notifications per second, and the failure share of "
              "transfers. vLLM 0.11.1 to 0.14 only reports failures together with a success, so a "
              "fully broken path can read 0 here: check the status panel. Healthy: 0; red above "
              f"{failures['threshold']:.1%} of transfers.",
              (Query("nixl_failed_transfers", {}, "failed transfers/s", NIXL),
               Query("nixl_failed_notifications", {}, "failed notifications/s", NIXL),
               Query("nixl_failure_ratio", {}, "failure ratio", NIXL)),
              unit="short", thresholds=above(failures["threshold"]), no_value=NIXL_EMPTY, width=6, height=6,
              key="kv-failures"),
        Panel("timeseries", "KV bytes/s",
              "KV-cache bytes moved by NIXL per second. Healthy: proportional to prompt tokens/s on "
              "decode; 0 with traffic means no KV moves.",
              (Query("nixl_bytes_rate", {}, model, NIXL),), no_value=NIXL_EMPTY, width=6, key="kv-bytes"),
        Panel("timeseries", "MB per transfer",
              "Mean and quantiles of the bytes moved per NIXL transfer, in decimal units (1 MB = 1,000,000 "
              "bytes). Healthy: proportional to prompt length times the model's KV bytes per token.",
              (Query("nixl_mb_per_transfer", {}, "mean", NIXL),
               *_nixl_quantiles(cfg, "nixl_bytes_quantile", "")),
              unit="decbytes", no_value=NIXL_EMPTY, width=6, key="kv-size"),
        Panel("timeseries", "KV transfer time",
              "Time per NIXL transfer (decode side), mean and quantiles; buckets start at 5 ms. "
              f"Healthy: mean below {slow['mean_seconds']} s and {pname('0.95')} below "
              f"{slow['p95_seconds']} s (the PDKVTransferSlow bounds).",
              (Query("nixl_xfer_time_mean", {}, "mean", NIXL),
               *_nixl_quantiles(cfg, "nixl_xfer_time_quantile", "")),
              thresholds=above(slow["p95_seconds"]), no_value=NIXL_EMPTY, width=6, key="kv-time"),
        Panel("timeseries", "KV transfer post time",
              "Time to post each NIXL transfer request. Healthy: milliseconds, well below the transfer "
              "time.",
              (Query("nixl_post_time_mean", {}, "mean", NIXL),
               *_nixl_quantiles(cfg, "nixl_post_time_quantile", "")),
              no_value=NIXL_EMPTY, width=6, key="kv-post-time"),
        Panel("timeseries", "NIXL descriptors per transfer",
              "Memory descriptors per NIXL transfer, mean and quantiles. Healthy: steady for a steady "
              "prompt mix; a jump means smaller, fragmented blocks.",
              (Query("nixl_descriptors_mean", {}, "mean", NIXL),
               *_nixl_quantiles(cfg, "nixl_descriptors_quantile", "")),
              no_value=NIXL_EMPTY, width=12, key="kv-descriptors"),
        Panel("timeseries", "KV expired on prefill",
              "Requests whose KV blocks expired on the prefill pod before decode read them, per second "
              "(vLLM 0.16 or later, reported by prefill pods). Healthy: 0.",
              (Query("nixl_expired", {}, model, ("nixl_expired",)),), width=12, key="kv-expired"),
    ))
    phases = Row("Phase breakdown", (
        Panel("timeseries", "P/D phase breakdown (mean per request)",
              "Where a P/D request's time goes, stacked: the prefill leg on the prefill pod, then on "
              "the decode pod the queue time (which holds the KV pull, as vLLM schedules a request "
              "only once its KV has arrived), the first step and the decode. Healthy: the decode queue "
              "slice stays small next to the prefill leg.",
              (Query("e2e_mean", {"role": "prefill"}, "prefill leg", ("pd",)),
               Query("queue_mean", {"role": "decode"}, "decode queue (KV pull)"),
               Query("prefill_time_mean", {"role": "decode"}, "decode first step"),
               Query("decode_time_mean", {"role": "decode"}, "decode")),
              unit="s", stack=True, width=12, key="phases"),
        Panel("timeseries", "Prefill and decode durations",
              "Quantiles of the prefill phase on prefill pods and of the decode phase on decode pods. "
              "Healthy: prefill tracks prompt length, decode tracks output length.",
              (*(Query("prefill_time_quantile", {"role": "prefill", "quantile": q}, f"prefill {pname(q)}", ("pd",))
                 for q in quantiles(cfg, "prefill_time_quantile")),
               *(Query("decode_time_quantile", {"role": "decode", "quantile": q}, f"decode {pname(q)}")
                 for q in quantiles(cfg, "decode_time_quantile"))),
              unit="s", width=12, key="phase-durations"),
    ))
    scheduler = Row("Scheduler", (
        Panel("timeseries", "P/D decisions by type",
              "The scheduler's decisions per second by type: prefill-decode sends the prompt to a "
              "prefill pod, decode-only lets the decode pod compute it. Healthy P/D: mostly "
              "prefill-decode (all of them with threshold 0, the P/D guide's default).",
              (Query("pd_decisions", {}, "{{decision_type}}", ("pd_decisions",)),), stack=True, width=12,
              key="pd-decisions"),
        Panel("timeseries", "Requests finished per role",
              "Requests finished per second on each role. Healthy P/D: prefill about equal to decode "
              "(each request finishes once on each); prefill near 0 means it idles.",
              (Query("requests", {}, role),), width=12, key="requests-per-role"),
    ))
    return Dashboard(UID, TITLE,
                     "The two legs of a P/D request (prefill and decode), the NIXL KV-cache transfer between "
                     "them, and the scheduler's P/D decisions, per namespace and model.",
                     (legs, kv, phases, scheduler))
