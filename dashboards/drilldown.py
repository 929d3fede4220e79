"""Diagnostic Drill-Down: "is this deployment actually disaggregated?" answered at the top by the
post-mortem's checklist (one panel per record of pdobs/checks.py) and a verdict, then the per-pod,
EPP and cache evidence behind them. Data only; dashboards/builder.py renders it."""

from typing import Any

from dashboards import ids
from dashboards.spec import (
    GRID_WIDTH,
    Dashboard,
    Panel,
    Query,
    Row,
    Step,
    above,
    below,
    legend,
    outside,
    pname,
    quantiles,
    states,
)
from pdobs import checks, signals
from pdobs.checks import Verdict
from pdobs.signals import per_pod

Config = dict[str, Any]
UID = ids.DRILLDOWN
TITLE = "Diagnostic Drill-Down"

NOT_EVALUATED = ("No result for this selection: no vLLM pods match, or the recording rules are not "
                 "loaded in this Prometheus")


def _spread(signal: str, role: str) -> tuple[Query, ...]:
    """Highest, mean and lowest over a role's pods: three series whatever the pod count."""
    needs = ("pd",) if role == "prefill" else ()
    return tuple(Query(per_pod.spread_signal(signal, agg), {"role": role}, legend_text, needs)
                 for agg, legend_text in zip(per_pod.SPREAD_AGGS, ("highest pod", "mean", "lowest pod"), strict=True))


def _role_row(cfg: Config, role: str, t: dict[str, Any]) -> Row:
    # Over time: the spread across the role's pods (recorded, three series); per pod: now only (an
    # instant query, one sample per pod). A refresh then costs what it shows, whatever the fleet.
    pod = legend(cfg, "pod")
    needs = ("pd",) if role == "prefill" else ()
    v = {"role": role}
    name = role.capitalize()
    idle = (" Idle prefill pods (the lowest at 0 while decode works) are the post-mortem's second signal."
            if role == "prefill" else "")
    spread = " over time: the highest pod, the mean and the lowest pod"
    return Row(f"{name} pods", (
        Panel("timeseries", f"{name}: running requests across pods",
              f"Requests in the running batch of the {role} pods{spread}. Healthy: above 0 on every "
              f"pod while there is traffic, the three lines close together.{idle}",
              _spread("pod_running", role), width=6, key=f"{role}-running"),
        Panel("timeseries", f"{name}: waiting requests across pods",
              f"Requests queued on the {role} pods"
              + (" (including KV pulls in flight)" if role == "decode" else "")
              + f"{spread}. Healthy: near 0, below {t['waiting_requests']:g}.",
              _spread("pod_waiting", role), thresholds=above(t["waiting_requests"], "orange"),
              width=6, key=f"{role}-waiting"),
        Panel("timeseries", f"{name}: engine tokens/s across pods",
              f"Tokens processed by engine steps per second on the {role} pods{spread}: their real "
              "work. " + ("Healthy: prefill pods process the prompts." if role == "prefill"
                          else "Healthy: mostly generated tokens; prompt-sized bursts mean decode computes prompts."),
              _spread("pod_work_tokens", role), width=6, key=f"{role}-work"),
        Panel("timeseries", f"{name}: KV-cache usage across pods",
              f"Share of KV-cache blocks in use on the {role} pods{spread}. Healthy: below "
              f"{t['kv_cache_usage']:.0%}.",
              _spread("pod_kv_cache_usage", role), thresholds=above(t["kv_cache_usage"]), min=0, max=1,
              width=6, key=f"{role}-kv"),
        Panel("bargauge", f"{name}: running requests per pod (now)",
              f"Requests running on each {role} pod now: which pod the spread above comes from. "
              "Healthy: every pod above 0 while there is traffic, the bars about even.",
              (Query("pod_running", v, pod, needs),), width=6, key=f"{role}-running-now"),
        Panel("bargauge", f"{name}: waiting requests per pod (now)",
              f"Requests queued on each {role} pod now. Healthy: below {t['waiting_requests']:g}.",
              (Query("pod_waiting", v, pod, needs),), thresholds=above(t["waiting_requests"], "orange"),
              width=6, key=f"{role}-waiting-now"),
        Panel("bargauge", f"{name}: engine tokens/s per pod (now)",
              f"Engine tokens per second of each {role} pod over the rate window, now. Healthy: the "
              "bars about even; one near 0 gets no work.",
              (Query("pod_work_tokens", v, pod, needs),), width=6, key=f"{role}-work-now"),
        Panel("bargauge", f"{name}: KV-cache usage per pod (now)",
              f"KV-cache usage of each {role} pod now. Healthy: below {t['kv_cache_usage']:.0%}.",
              (Query("pod_kv_cache_usage", v, pod, needs),), thresholds=above(t["kv_cache_usage"]), min=0,
              max=1, width=6, key=f"{role}-kv-now"),
    ))


def dashboard(cfg: Config) -> Dashboard:
    t = cfg["grafana"]["thresholds"]
    s = cfg["signals"]
    model, pod, pool, role = (legend(cfg, k) for k in ("model", "pod", "pool", "role"))
    # One status panel per check record, then the verdict.
    # One line: each check a third of the verdict's width.
    width = GRID_WIDTH // (len(checks.CHECKS) + 2)
    top = [Panel("stat", c.title, c.description(cfg), (Query(c.status_signal, c.status_variant, model),),
                 states=states(c.status), no_value=NOT_EVALUATED, width=width, height=5, key=c.panel_key)
           for c in checks.CHECKS]
    top.append(Panel(
        "stat", "Verdict",
        "The checks combined. DISAGGREGATED: P/D deployed and KV cache moving (KV transfers, or prompt "
        "tokens decode received by KV transfer, on any connector). COLLAPSED TO AGGREGATED (red): "
        "prefill pods up, decode serving, no KV moving: decode computes every prompt (the post-mortem). "
        "AGGREGATED BY DESIGN: no prefill pods. NO TRAFFIC: too few requests to tell. CANNOT TELL: "
        "prefill works but vLLM exports no KV evidence (older than 0.11.1 with NIXL, older than 0.16 "
        "with another connector). Healthy P/D: DISAGGREGATED.",
        (Query("verdict", {}, model),), states=states(Verdict),
        no_value=NOT_EVALUATED, width=GRID_WIDTH - width * len(checks.CHECKS), height=5,
        key=ids.VERDICT_PANEL, link=ids.COORDINATOR))
    checklist = Row("Is this deployment actually disaggregated?", tuple(top))

    tol = s["ttft_equal_tolerance"]
    evidence = Row("What the checks measure", (
        # A count ratio, shown as the doctor prints it ("1.00 per decode req"), not as a percent.
        Panel("timeseries", "Prefill requests per decode request",
              "Requests finished on prefill pods per request finished on decode pods. Healthy P/D: "
              f"about 1.00; below {s['prefill_idle_ratio']:g} prefill is idle.",
              (Query("prefill_work_ratio", {}, model, ("pd",)),), thresholds=below(s["prefill_idle_ratio"]),
              min=0, width=5, key="evidence-prefill-ratio"),
        Panel("timeseries", "Decode share of engine tokens",
              "Decode pods' share of the tokens all pods process. Healthy P/D: well below 1 (prefill "
              f"processes the prompts); above {s['decode_work_share']:g} decode does all the work.",
              (Query("decode_work_share", {}, model),), thresholds=above(s["decode_work_share"]), min=0,
              max=1, width=5, key="evidence-decode-share"),
        Panel("timeseries", "TTFT decode / prefill",
              "Mean decode TTFT divided by mean prefill TTFT. Healthy P/D: clearly away from 1 "
              f"(outside {1 - tol:g} to {1 + tol:g}); about 1 means decode computes the prompt too.",
              (Query("ttft_decode_over_prefill", {}, model, ("pd",)),), thresholds=outside(1 - tol, 1 + tol),
              width=5, key="evidence-ttft-ratio"),
        Panel("timeseries", "KV transfers/s",
              "KV transfers completed per second (NIXL or Mooncake, whichever pod records them). Healthy P/D: "
              "tracks the decode request rate.",
              (Query("kv_transfers", {}, model, ("kv",)),), width=5, key="evidence-kv-transfers",
              link=ids.COORDINATOR),
        Panel("timeseries", "Prompt tokens delivered by KV transfer",
              "Share of decode's uncached prompt tokens that arrived by KV transfer (vLLM 0.16 or later, any "
              "connector). Healthy P/D: about 100%; 0 means decode computes the prompts itself.",
              (Query("kv_delivery_ratio", {}, model, ("kv_delivery",)),), min=0, max=1, width=4,
              key="evidence-kv-delivery", link=ids.COORDINATOR),
    ))

    epp = Row("Pods and EPP pool health", (
        Panel("timeseries", "EPP ready pods vs model-server pods up",
              "Pods the EPP considers ready (fresh metrics), summed over the namespace's pools, against "
              "pods exporting vLLM metrics per role. Healthy: EPP ready equals prefill + decode pods; "
              "fewer means the scheduler cannot route to some pods (often the prefill pod).",
              (Query("epp_ready_pods_ns", {}, "EPP ready"), Query("vllm_pods_ns", {}, "pods up"),
               Query("vllm_pods", {}, f"{role} pods")),
              width=6, key="epp-ready"),
        Panel("stat", "Model-server targets down",
              "Model-server scrape targets failing (up == 0), per role: a pod Prometheus cannot reach "
              "still counts for Kubernetes but exports nothing. Healthy: none (the panel then reads 0).",
              (Query("model_server_targets_down", {}, role, ("targets_down",)),), thresholds=(Step(None, "red"),),
              no_value="0: every model-server target answers its scrape", width=6, key="targets-down"),
        Panel("timeseries", "Pool queue (EPP)",
              "Mean waiting queue over the pool's pods as the EPP sees it (prefill and decode mixed "
              f"when one pool spans both). Healthy: near 0, below {t['waiting_requests']:g}.",
              (Query("epp_queue", {}, pool),), thresholds=above(t["waiting_requests"], "orange"), width=6,
              key="epp-queue"),
        Panel("timeseries", "Pool KV-cache utilisation (EPP)",
              "Mean KV-cache use over the pool's pods as the EPP sees it. Stuck at 0 while pods report "
              "usage means the EPP reads a vLLM metric name that no longer exists. Healthy: tracks "
              f"the pods' own KV usage, below {t['kv_cache_usage']:.0%}.",
              (Query("epp_kv_usage", {}, pool),), thresholds=above(t["kv_cache_usage"]), min=0, max=1, width=6,
              key="epp-kv"),
        Panel("bargauge", "Queue per model-server pod (EPP, now)",
              "Waiting requests of each model-server pod as the EPP last scraped them (the pool queue "
              "above is their mean over time). Healthy: near 0 and similar to each pod's own queue.",
              (Query("epp_pod_queue", {}, "{{model_server_pod}}", ("epp_pod_queue",)),),
              thresholds=above(t["waiting_requests"], "orange"), width=8, key="epp-pod-queue"),
        Panel("timeseries", "Scheduling latency (EPP)",
              "Time the EPP takes to pick pods for a request (buckets cap at 100 ms). Healthy: a few "
              "milliseconds.",
              tuple(Query("epp_scheduler_quantile", {"quantile": q}, pname(q))
                    for q in quantiles(cfg, "epp_scheduler_quantile")),
              width=8, key="epp-scheduling"),
        Panel("timeseries", "EPP datalayer poll errors",
              "Failed polls of the EPP's data sources per second, by source type (llm-d-router v0.9 or "
              "later). metrics-data-source failing means the EPP cannot scrape some model servers: it then "
              "counts them as not ready, the usual cause of fewer EPP ready pods than pods up. Healthy: 0 "
              "(the series appear with the first error).",
              (Query("epp_poll_errors", {}, "{{source_type}}", ("epp_poll_errors",)),),
              thresholds=(Step(None, "red"),), no_value="0: every data-source poll succeeds (or llm-d-router "
              "older than v0.9, which does not count them)", width=8, key="epp-poll-errors"),
    ))
    prefix = Row("Prefix cache", (
        Panel("bargauge", "Prefix-cache hit rate per pod (now)",
              "Latest prefix-cache hit rate of each pod over Grafana's rate interval. Healthy: similar "
              "for pods of a role; one pod far below the others lost cache-aware routing.",
              (Query("pod_prefix_hit_ratio", {}, pod),), min=0, max=1, width=12, height=8,
              key="prefix-pod"),
        Panel("timeseries", "Prefix-cache hit rate per role",
              "Prefix-cache hit rate over the rate window, per role. Healthy: steady.",
              (Query("prefix_hit_ratio", {}, role),), min=0, max=1, width=12, key="prefix-role"),
    ))
    alerts = Row("Alerts", (
        Panel("table", "Firing P/D alerts",
              f"This project's alerts ({signals.ALERT_NAME_PREFIX}*) firing now for the selected "
              "namespaces, with their labels; each alert's runbook links back to the panel that "
              "confirms it. Healthy: empty.",
              (Query("pd_alerts_firing", {}, "", ("alerts",)),), unit="short", width=24, height=6,
              no_value="No P/D alert firing (or the alert rules are not loaded in this Prometheus)",
              key="alerts"),
    ))
    return Dashboard(UID, TITLE,
                     "Is this deployment actually disaggregated? The post-mortem's five signals, the KV "
                     "delivered to decode, and a verdict, "
                     "then the per-pod, EPP and cache evidence behind them.",
                     (checklist, evidence, _role_row(cfg, "prefill", t), _role_row(cfg, "decode", t), epp,
                      prefix, alerts))
