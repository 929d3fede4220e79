"""P/D Coordinator: the two legs of a P/D request, the KV transfer between them (any connector),
and the scheduler's P/D decisions. Data only; dashboards/builder.py renders it.

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

KV = ("kv",)
NIXL = ("nixl",)
# The prefill leg has no value now: say why instead of a stale number or a bare "No Data".
PREFILL_NONE = ("None now: prefill pods finish no requests. With prefill pods up, P/D has collapsed to "
                "aggregated serving (see KV transfer status); else P/D is not deployed (no prefill pods).")
KV_EMPTY = ("No KV transfer series for this selection: P/D not deployed, or a connector without transfer "
            "metrics (NIXL before vLLM 0.11.1, Mooncake before 0.33, others). The KV transfer status panel "
            "says which.")
RECORDER_NOTE = "Not split by role, so it reads the same whichever pod records."


def _kv_quantiles(cfg: Config, signal: str, label: str, needs: tuple[str, ...] = KV) -> tuple[Query, ...]:
    return tuple(Query(signal, {"quantile": q}, f"{label} {pname(q)}", needs) for q in quantiles(cfg, signal))


def dashboard(cfg: Config) -> Dashboard:
    t = cfg["grafana"]["thresholds"]
    slow = cfg["alerts"]["PDKVTransferSlow"]
    failures = cfg["alerts"]["PDKVTransferFailures"]
    ns, model, role = legend(cfg, "namespace"), legend(cfg, "model"), legend(cfg, "role")

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
              "Mean time to first response byte of streaming requests measured by the EPP: the client's "
              "TTFT, both legs and every hop included (a non-streaming request's first byte is its whole "
              "answer, so it is left out). Only llm-d-router v0.9 or later measures it. Per namespace: "
              "the EPP labels requests with the model the client asked for, which a model rewrite or a "
              f"LoRA adapter makes differ from vLLM's. Healthy: a little above the true TTFT, below "
              f"{t['ttft_seconds']} s.",
              (Query("epp_ttft_mean_ns", {}, ns, ("epp_ttft",)),), thresholds=above(t["ttft_seconds"]),
              width=6, height=5, key="ttft-client"),
        Panel("timeseries", "TTFT legs over time",
              "The same means over time. Healthy P/D: decode clearly below prefill, true TTFT the sum. "
              "Decode rising to meet prefill is the collapse to aggregated serving.",
              (Query("ttft_mean", {}, f"vLLM {role}"), Query("ttft_pd_mean", {}, "true (prefill + decode)", ("pd",)),
               Query("epp_ttft_mean_ns", {}, "client (EPP, streaming)", ("epp_ttft",))),
              thresholds=above(t["ttft_seconds"]), width=24, key="ttft-legs"),
    ))
    kv = Row("KV cache transfer (NIXL, Mooncake)", (
        Panel("stat", "KV transfer status",
              "Is KV cache moving from prefill to decode pods, on any connector? FLOWING: KV transfers "
              "(NIXL or Mooncake) completed in the rate window, or decode received prompt tokens by KV "
              "transfer. ABSENT (red): prefill pods are up and decode serves traffic, yet neither shows KV "
              "moving (series missing or flat): the post-mortem's failure. NO METRICS: prefill works but "
              "vLLM exports no KV evidence at all (older than 0.11.1 with NIXL, older than 0.16 with another "
              "connector), so transfers cannot be seen. NOT DEPLOYED: no prefill pods (aggregated "
              "serving). IDLE: no traffic. Healthy P/D: FLOWING.",
              (Query("kv_status", {}, model),),
              states=states(NixlState), width=6, height=6, key="kv-status",
              no_value="No verdict for this selection: no vLLM pods match, or the recording rules are "
                       "not loaded in this Prometheus", link=ids.DRILLDOWN),
        Panel("timeseries", "KV transfers/s",
              "KV transfers completed per second (NIXL or Mooncake), counted on the pod that drives them: "
              f"decode for NIXL pull, prefill for NIXL push and Mooncake. {RECORDER_NOTE} Healthy P/D: "
              "tracks the decode request rate; flat at 0 with traffic means no KV moves.",
              (Query("kv_transfers", {}, model, KV),), no_value=KV_EMPTY, width=6, height=6,
              key="kv-transfers"),
        Panel("timeseries", "KV transfers per decode request",
              "KV transfers per request finished on decode, whichever role records them. Healthy: about 1 "
              f"(more with heterogeneous TP); below {t['nixl_transfers_per_request']:g} means decode pods "
              "serve requests without receiving KV (prompts computed locally).",
              (Query("kv_transfers_per_request", {}, model, KV),),
              thresholds=below(t["nixl_transfers_per_request"]), no_value=KV_EMPTY, width=6, height=6,
              key="kv-per-request"),
        Panel("timeseries", "Failed transfers and notifications",
              "Failed KV transfers per second, each failure counted once (NIXL transfers, handshakes and "
              "notifications, whose counters overlap from vLLM 0.33; Mooncake sends and receives, which "
              "both see one failed push), failed NIXL notifications on their own, and the failure share "
              "of transfers. vLLM 0.11.1 to 0.14 only reports failures together with a success, so a "
              f"fully broken path can read 0 here: check the status panel. Healthy: 0; red above "
              f"{failures['threshold']:.1%} of transfers.",
              (Query("kv_failures", {}, "failed transfers/s", KV),
               Query("nixl_failed_notifications", {}, "failed NIXL notifications/s", NIXL),
               Query("kv_failure_ratio", {}, "failure ratio", KV)),
              unit="short", thresholds=above(failures["threshold"]), no_value=KV_EMPTY, width=6, height=6,
              key="kv-failures"),
        Panel("timeseries", "KV delivered to decode",
              "Of the prompt tokens decode pods did not find in their cache, the share that arrived by KV "
              "transfer (vLLM 0.16 or later, any connector, with or without transfer metrics of its own). "
              "Healthy P/D: about 100%; 0 means decode computes the prompts itself; in between, some "
              "transfers fail and are recomputed.",
              (Query("kv_delivery_ratio", {}, model, ("kv_delivery",)),), min=0, max=1,
              thresholds=below(0.5), width=6, key="kv-delivery"),
        Panel("timeseries", "KV bytes/s",
              "KV-cache bytes moved per second (NIXL or Mooncake). Healthy: proportional to prompt "
              "tokens/s on decode; 0 with traffic means no KV moves.",
              (Query("kv_bytes_rate", {}, model, KV),), no_value=KV_EMPTY, width=6, key="kv-bytes"),
        Panel("timeseries", "MB per transfer",
              "Mean and quantiles of the bytes moved per KV transfer, in decimal units (1 MB = 1,000,000 "
              "bytes). Healthy: proportional to prompt length times the model's KV bytes per token.",
              (Query("kv_bytes_per_transfer", {}, "mean", KV),
               *_kv_quantiles(cfg, "kv_bytes_quantile", "")),
              unit="decbytes", no_value=KV_EMPTY, width=6, key="kv-size"),
        Panel("timeseries", "KV transfer time",
              "Time per KV transfer, mean and quantiles, on the pod that drives it; buckets start at 5 ms. "
              f"Healthy: mean below {slow['mean_seconds']} s and {pname('0.95')} below "
              f"{slow['p95_seconds']} s (the PDKVTransferSlow bounds).",
              (Query("kv_xfer_time_mean", {}, "mean", KV),
               *_kv_quantiles(cfg, "kv_xfer_time_quantile", "")),
              thresholds=above(slow["p95_seconds"]), no_value=KV_EMPTY, width=6, key="kv-time"),
        Panel("timeseries", "KV transfer post time",
              "Time to post each NIXL transfer request (NIXL only). Healthy: milliseconds, well below the "
              "transfer time.",
              (Query("nixl_post_time_mean", {}, "mean", NIXL),
               *_kv_quantiles(cfg, "nixl_post_time_quantile", "", NIXL)),
              no_value=KV_EMPTY, width=6, key="kv-post-time"),
        Panel("timeseries", "KV descriptors per transfer",
              "Memory descriptors per KV transfer (NIXL or Mooncake), mean and quantiles. Healthy: steady "
              "for a steady prompt mix; a jump means smaller, fragmented blocks.",
              (Query("kv_descriptors_mean", {}, "mean", KV),
               *_kv_quantiles(cfg, "kv_descriptors_quantile", "")),
              no_value=KV_EMPTY, width=6, key="kv-descriptors"),
        Panel("timeseries", "KV expired on prefill",
              "Requests whose KV lease expired on the prefill pod before decode read their blocks, per "
              "second (vLLM 0.16 or later with NIXL, 0.33 with Mooncake), and NIXL transfers that completed "
              "after the lease expired (vLLM 0.33: decode may have read blocks prefill had already reused). "
              "Healthy: 0.",
              (Query("kv_expired", {}, "expired", ("kv_expired",)),
               Query("nixl_notifications_after_expiry", {}, "completed after expiry", ("nixl_after_expiry",))),
              width=12, key="kv-expired"),
        Panel("timeseries", "KV-fetch backlog (decode)",
              "Requests waiting for their KV cache on the pods that consume it, by stage (vLLM 0.33 or "
              "later): waiting_to_start (the load has not started), in_progress, completed_waiting (loaded, "
              "not running yet). Healthy: a handful, in_progress mostly; a growing waiting_to_start means "
              "the connector cannot keep up.",
              (Query("kv_fetch_backlog", {}, "{{stage}}", ("kv_fetch",)),), stack=True, width=12,
              key="kv-fetch"),
        Panel("timeseries", "Decode requests ending as errors",
              "Requests decode pods finish with finished_reason=\"error\" per second (vLLM 0.14 or later), "
              "beside the failed KV transfers. From vLLM 0.24 a failed KV load ends the request this way "
              "(kv_load_failure_policy=fail, the default) instead of recomputing it. Healthy: 0.",
              (Query("requests_errored", {"role": "decode"}, "errors/s", ("error_reason",)),
               Query("kv_failures", {}, "failed KV transfers/s", KV)),
              unit="reqps", width=12, key="kv-load-errors"),
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
              "prefill pod, decode-only lets the decode pod compute it. llm-d-inference-scheduler v0.4 "
              "counts them without a model label, so there they are the namespace's, all models. Healthy "
              "P/D: mostly prefill-decode (all of them with threshold 0, the P/D guide's default).",
              (Query("pd_decisions", {}, "{{decision_type}}", ("pd_decisions",)),
               Query("pd_decisions_without_model", {}, "{{decision_type}} (all models)", ("pd_decisions_v0_4",))),
              stack=True, width=12, key="pd-decisions"),
        Panel("timeseries", "Requests finished per role",
              "Requests finished per second on each role. Healthy P/D: prefill about equal to decode "
              "(each request finishes once on each); prefill near 0 means it idles.",
              (Query("requests", {}, role),), width=12, key="requests-per-role"),
    ))
    return Dashboard(UID, TITLE,
                     "The two legs of a P/D request (prefill and decode), the KV-cache transfer between them "
                     "(NIXL or Mooncake), and the scheduler's P/D decisions, per namespace and model.",
                     (legs, kv, phases, scheduler))
