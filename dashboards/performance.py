"""Performance: latency, throughput and caches of a llm-d deployment, split by role so P/D requests
are never counted twice. Data only; dashboards/builder.py renders it."""

from typing import Any

from dashboards import ids
from dashboards.spec import Dashboard, Panel, Query, Row, above, legend, nearest_quantile, pname, quantiles

Config = dict[str, Any]
UID = ids.PERFORMANCE
TITLE = "Performance"

_WINDOW_NOTE = "Recorded over the rules' rate window, so it trails the traffic by a few minutes."
# The EPP labels requests with the model the client asked for; vLLM with the model it serves.
_EPP_NOTE = ("Filtered by namespace only: the EPP labels requests with the model name the client asked for, "
             "which a model rewrite or a LoRA adapter makes differ from the model servers' (the legend shows it).")


def _per_quantile(cfg: Config, signal: str, legend: str, **variant: str) -> tuple[Query, ...]:
    return tuple(Query(signal, {**variant, "quantile": q}, f"{legend} {pname(q)}".strip())
                 for q in quantiles(cfg, signal))


def dashboard(cfg: Config) -> Dashboard:
    t = cfg["grafana"]["thresholds"]
    ns, model, pod, role = (legend(cfg, k) for k in ("namespace", "model", "pod", "role"))
    q95 = nearest_quantile(cfg, "ttft_quantile", 0.95)
    q50 = nearest_quantile(cfg, "itl_quantile", 0.5)
    e50 = nearest_quantile(cfg, "epp_duration_quantile", 0.5)
    headline = Row("Headline", (
        Panel("stat", f"TTFT {pname(q95)} per role",
              f"{pname(q95)} time to first token at each model-server instance, one value per role. "
              "The prefill value is the prefill leg; the decode value starts when the decode pod "
              "receives the request and includes the KV pull. Neither is the client's TTFT. "
              f"Healthy: below {t['ttft_seconds']} s.",
              (Query("ttft_quantile", {"quantile": q95}, role),),
              thresholds=above(t["ttft_seconds"]), width=4, height=5, key="headline-ttft"),
        Panel("stat", f"ITL {pname(q50)} (decode)",
              f"{pname(q50)} inter-token latency on decode pods (prefill pods generate a single token). "
              f"Healthy: below {t['itl_seconds']} s and steady.",
              (Query("itl_quantile", {"role": "decode", "quantile": q50}, "decode"),),
              thresholds=above(t["itl_seconds"]), width=4, height=5, key="headline-itl"),
        Panel("stat", f"Client E2E {pname(e50)} (EPP)",
              f"{pname(e50)} request latency measured by the EPP, from the gateway's request to the last "
              "byte: the only true end-to-end latency of a P/D request. Healthy: steady for a steady "
              f"prompt/output mix. {_EPP_NOTE}",
              (Query("epp_duration_quantile", {"quantile": e50}, model),), width=4, height=5,
              key="headline-client-e2e"),
        Panel("stat", "Requests/s",
              "Client requests completed per second, counted once: on decode pods (every P/D request "
              "also finishes on a prefill pod, which is not counted here). Healthy: matches the "
              "offered load.",
              (Query("requests", {"role": "decode"}, ns),), width=4, height=5,
              key="headline-requests"),
        Panel("stat", "Prefix-cache hit rate (all pods)",
              "Share of prompt tokens found in the prefix cache over the rate window, all pods (a rate, "
              "not the lifetime ratio). Healthy: steady; a sudden drop means routing lost cache affinity.",
              (Query("prefix_hit_ratio_all", legend="hit rate"),), min=0, max=1, width=4, height=5,
              key="headline-prefix-hit"),
        Panel("stat", "Error rate (EPP)",
              "Share of client requests that failed at the EPP (0 when no error was ever counted). "
              f"Healthy: below {t['error_ratio']:.1%}. {_EPP_NOTE}",
              (Query("epp_error_ratio", legend=model),), thresholds=above(t["error_ratio"]), width=4,
              height=5, key="headline-errors"),
    ))
    latency = Row("Latency per role (per instance)", (
        Panel("timeseries", "TTFT per role",
              "Time to first token quantiles at each model-server instance, per role. Prefill: its own "
              "leg (queue + prompt compute). Decode: from arrival at the decode pod, including the KV "
              "pull. When both lines coincide, decode is computing the prompts itself. "
              f"Healthy: below {t['ttft_seconds']} s. {_WINDOW_NOTE}",
              _per_quantile(cfg, "ttft_quantile", role), thresholds=above(t["ttft_seconds"]),
              width=12, key="ttft-per-role"),
        Panel("timeseries", "Inter-token latency (decode)",
              "Inter-token latency quantiles on decode pods (vLLM's lowest bucket is 10 ms, so fast "
              f"decode reads as 10 ms). Healthy: below {t['itl_seconds']} s. {_WINDOW_NOTE}",
              _per_quantile(cfg, "itl_quantile", "decode", role="decode"), thresholds=above(t["itl_seconds"]),
              width=12, key="itl"),
        Panel("timeseries", "E2E per instance, per role",
              "Each instance's leg of a request (arrival to last token), per role; a P/D request has "
              "one leg on each role, so these are not client latencies. Healthy: prefill legs short "
              "and steady, decode legs tracking output length.",
              _per_quantile(cfg, "e2e_quantile", role), width=12, key="e2e-per-role"),
        Panel("timeseries", "Queue time per role",
              "Time from arrival to being scheduled, per role. On decode pods vLLM schedules a request "
              "only when its KV cache has arrived, so decode queue time holds the KV transfer. Buckets "
              "start at 0.3 s. Healthy: near the lowest bucket.",
              _per_quantile(cfg, "queue_quantile", role), width=12, key="queue-per-role"),
    ))
    client = Row("Client side (EPP)", (
        Panel("timeseries", "Client E2E latency (EPP)",
              f"Request latency seen by the EPP, gateway request to last byte. Healthy: steady. {_EPP_NOTE}",
              _per_quantile(cfg, "epp_duration_quantile", model), width=6, key="client-e2e"),
        Panel("timeseries", "Client TTFT (EPP)",
              "Time to first response byte of streaming requests seen by the EPP (a non-streaming "
              "request's first byte is its whole answer, so it is left out): the client's TTFT, prefill "
              f"and KV transfer included. Healthy: below {t['ttft_seconds']} s. {_EPP_NOTE}",
              tuple(Query(q.signal, q.variant, q.legend, ("epp_ttft",))
                    for q in _per_quantile(cfg, "epp_ttft_quantile", model)),
              thresholds=above(t["ttft_seconds"]), width=6, key="client-ttft"),
        Panel("timeseries", "Client requests/s (EPP)",
              f"Requests per second through the EPP. Healthy: equals the decode request rate. {_EPP_NOTE}",
              (Query("epp_requests", legend=model),), width=6, key="client-requests"),
        Panel("timeseries", "Client error ratio (EPP)",
              f"Share of client requests failing at the EPP. Healthy: below {t['error_ratio']:.1%}. {_EPP_NOTE}",
              (Query("epp_error_ratio", legend=model),), thresholds=above(t["error_ratio"]),
              min=0, width=6, key="client-errors"),
    ))
    throughput = Row("Throughput per role (no double counting)", (
        Panel("timeseries", "Requests finished per role",
              "Requests finished per second on each role. A P/D request finishes once on prefill (one "
              "token) and once on decode, so the decode line is the client request rate and the two "
              "lines should match. Healthy P/D: prefill close to decode; prefill near 0 means decode "
              "does the prefill itself.",
              (Query("requests", legend=role),), width=8, key="requests-per-role"),
        Panel("timeseries", "Tokens per role",
              "Prompt and generated tokens per second per role. Prompt tokens are counted on both "
              "roles for a P/D request, so read them per role, never summed. Healthy: prefill prompt "
              "tokens track decode prompt tokens; decode generates nearly all output tokens.",
              (Query("prompt_tokens", legend=f"prompt {role}"),
               Query("generation_tokens", legend=f"generated {role}")), width=8, key="tokens-per-role"),
        Panel("timeseries", "Engine work per role",
              "Tokens processed by engine steps per second, per role: where the compute really "
              "happens. Healthy P/D: prefill processes the prompts, decode mostly generated tokens.",
              (Query("work_tokens", legend=role),), width=8, key="work-per-role"),
    ))
    caches = Row("Caches", (
        Panel("timeseries", "Prefix-cache hit rate",
              "Share of prompt tokens found in the prefix cache over the rate window, overall and per "
              "role. Healthy: steady at the level your prompt reuse allows.",
              (Query("prefix_hit_ratio_all", legend="all pods"), Query("prefix_hit_ratio", legend=role)),
              min=0, max=1, width=8, key="prefix-hit"),
        Panel("timeseries", "Prefix-cache hit rate per pod",
              "Prefix-cache hit rate of each pod over Grafana's rate interval. Healthy: similar pods "
              "show similar rates; one pod far below the others lost its share of cache-aware routing.",
              (Query("pod_prefix_hit_ratio", legend=pod),), min=0, max=1, width=8, key="prefix-hit-pod"),
        Panel("timeseries", "KV-cache usage per pod",
              "Share of each pod's KV-cache blocks in use. On prefill pods blocks stay pinned until the "
              f"decode pod has read them. Healthy: below {t['kv_cache_usage']:.0%}; near 100% leads to "
              "preemptions.",
              (Query("pod_kv_cache_usage", legend=pod),), thresholds=above(t["kv_cache_usage"]),
              min=0, max=1, width=8, key="kv-usage-pod"),
    ))
    scheduler = Row("Scheduler state per pod", (
        Panel("timeseries", "Running requests per pod",
              "Requests in each pod's running batch. Healthy: spread evenly over pods of a role.",
              (Query("pod_running", legend=pod),), width=8, key="running-pod"),
        Panel("timeseries", "Waiting requests per pod",
              "Requests waiting to be scheduled on each pod (on decode this includes KV pulls in "
              f"flight). Healthy: near 0, below {t['waiting_requests']:g}.",
              (Query("pod_waiting", legend=pod),), thresholds=above(t["waiting_requests"], "orange"),
              width=8, key="waiting-pod"),
        Panel("timeseries", "Preemptions per pod",
              "Requests preempted per second for lack of KV-cache space. Healthy: 0.",
              (Query("pod_preemptions", legend=pod),), width=8,
              key="preemptions-pod"),
    ))
    return Dashboard(UID, TITLE,
                     "Latency, throughput and caches of llm-d model servers, per role so P/D requests are "
                     "never counted twice, with the client's view from the EPP beside them.",
                     (headline, latency, client, throughput, caches, scheduler))
