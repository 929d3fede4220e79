"""The signal catalog: every PromQL building block, written once.

Recording rules, alerts, dashboards and the doctor all take their queries from here. A signal
has a name, a unit, help text and a builder that turns the config (through a `Ctx`) into PromQL.
Signals with a `record` name become recording rules; others are fragments that are always
inlined. A builder refers to other signals with `ctx.ref(name, **variant)`, which renders as the
recorded series, or as the inlined raw expression when the context asks for it (the doctor).

Version drift is normalised here: vLLM's renames and the EPP's three metric families are joined
with `or` after aggregation, preferred name first, so one query works on any of them.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from pdobs.core import promql
from pdobs.core.context import ROLES, Ctx, Variant

Config = dict[str, Any]
Builder = Callable[[Ctx, Variant], str]

NS = ("namespace",)
NS_MODEL = ("namespace", "model")
NS_POOL = ("namespace", "pool")
ROLE_VARIANTS: tuple[Variant, ...] = tuple({"role": r} for r in ROLES)

# The five post-mortem signals, in the order the checklist reads them.
CHECKLIST = (
    "nixl_transfers_absent",
    "prefill_idle",
    "decode_does_all_work",
    "ttft_roles_equal",
    "epp_ready_lt_pods",
)

# Codes of the verdict signal; the dashboards map them to text, the doctor to its verdict.
VERDICTS = {
    0: "DISAGGREGATED",
    1: "COLLAPSED TO AGGREGATED",
    2: "AGGREGATED BY DESIGN",
    3: "NO TRAFFIC",
    4: "CANNOT TELL",
}


@dataclass(frozen=True)
class Signal:
    name: str
    record: str | None  # level:metric:operations, or None for a fragment that is always inlined
    level: tuple[str, ...]  # label keys the result keeps (besides the variant's static labels)
    unit: str  # Grafana unit id
    help: str
    build: Builder
    variants: tuple[Variant, ...] = ({},)


# --- builders shared by many signals ----------------------------------------------------------


def _by_all(ctx: Ctx, level: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    return ctx.by(*level, extra=extra)


def vllm_sum_rate(names: tuple[str, ...], level: tuple[str, ...] = NS_MODEL,
                  extra_by: tuple[str, ...] = (), matchers: str = "") -> Builder:
    """sum(rate()) of a vLLM counter per role, trying each historical name in turn."""

    def build(ctx: Ctx, v: Variant) -> str:
        by = _by_all(ctx, level, extra_by)
        return " or ".join(
            f"sum by ({by}) (rate({ctx.vllm(n, v.get('role'), matchers)}[{ctx.window}]))"
            for n in names
        )

    return build


def vllm_gauge(agg: str, names: tuple[str, ...]) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*NS_MODEL)
        return " or ".join(f"{agg} by ({by}) ({ctx.vllm(n, v.get('role'))})" for n in names)

    return build


def epp_sum_rate(names: tuple[str, ...], level: tuple[str, ...] = NS_MODEL,
                 extra_by: tuple[str, ...] = ()) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        by = _by_all(ctx, level, extra_by)
        per_model = "model" in level
        return " or ".join(
            f"sum by ({by}) (rate({ctx.epp(n, per_model=per_model)}[{ctx.window}]))"
            for n in names
        )

    return build


def epp_pool_gauge(names: tuple[str, ...]) -> Builder:
    # Several EPP replicas report the same pool; max keeps one answer per pool.
    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*NS_POOL)
        return " or ".join(f"max by ({by}) ({ctx.epp(n)})" for n in names)

    return build


def ratio(num: tuple[str, Variant], den: tuple[str, Variant], level: tuple[str, ...]) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        on = ctx.on(*level)
        by = ctx.by(*level)
        return (f"sum by ({by}) ({ctx.ref(num[0], **num[1])})\n/ {on}\n"
                f"sum by ({by}) ({ctx.ref(den[0], **den[1])})")

    return build


# Every vLLM pod exports this gauge in every version, so its presence means "pod is up".
POD_PRESENCE_METRIC = "vllm:num_requests_running"


def _distinct_pods(ctx: Ctx, level: tuple[str, ...], selector: str) -> str:
    # The inner count folds data-parallel engines (one series each) into one per pod.
    by = ctx.by(*level)
    return f"count by ({by}) (count by ({by}, {ctx.label('pod')}) ({selector}))"


def _qlabel(q: float) -> str:
    return f"{q:g}"


# --- histogram families -----------------------------------------------------------------------


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

    qvariants = tuple({**base, "quantile": _qlabel(q)} for base in variants for q in quantiles)
    yield Signal(f"{h.key}_quantile", f"{prefix}:{h.record_base}:histogram_quantile", level,
                 h.unit, f"{h.help} Quantiles.", quantile, qvariants)

    def mean(ctx: Ctx, v: Variant) -> str:
        return f"{ctx.ref(f'{h.key}_sum_rate', **v)}\n/\n{ctx.ref(f'{h.key}_count_rate', **v)}"

    yield Signal(f"{h.key}_mean", f"{prefix}:{h.record_base}:mean{window}", level, h.unit,
                 f"{h.help} Mean over the rate window.", mean, variants)


# --- the five post-mortem signals --------------------------------------------------------------


def _pd_active(ctx: Ctx, v: Variant) -> str:
    """Prefill pods exist and decode pods serve traffic: the only case P/D checks apply to."""
    by = ctx.by(*NS_MODEL)
    return (f"(sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')}) > 0)\n"
            f"and {ctx.on(*NS_MODEL)}\n"
            f"(sum by ({by}) ({ctx.ref('requests', role='decode')}) > "
            f"{ctx.threshold('min_request_rate')})")


def _checklist(ctx: Ctx, v: Variant) -> str:
    """1 where the signal fails, 0 where it passes, only where P/D is active."""
    on, ns_on, t = ctx.on(*NS_MODEL), ctx.on(*NS), ctx.threshold
    holds = {
        # Absent or not increasing: both mean no KV moved in the rate window.
        "nixl_transfers_absent": f"unless {on} ({ctx.ref('nixl_transfers')} > 0)",
        "prefill_idle":
            f"unless {on} ({ctx.ref('prefill_work_ratio')} >= {t('prefill_idle_ratio')})",
        "decode_does_all_work":
            f"and {on} ({ctx.ref('decode_work_share')} > {t('decode_work_share')})",
        # A NaN ratio (prefill has no TTFT samples) fails the comparison, so it counts as equal.
        "ttft_roles_equal":
            f"unless {on} (abs({ctx.ref('ttft_decode_over_prefill')} - 1) >= "
            f"{t('ttft_equal_tolerance')})",
        "epp_ready_lt_pods": f"and {ns_on} ({ctx.ref('epp_ready_lt_pods')})",
    }
    zero = f"({ctx.ref('pd_active')}) * 0"
    return f"(\n  ({zero} + 1)\n  {holds[v['signal']]}\n)\nor\n{zero}"


def _epp_ready_lt_pods(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.ref('epp_ready_pods_ns')}\n< {ctx.on(*NS)}\n{ctx.ref('vllm_pods_ns')}"


def _prefill_busy(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.ref('prefill_work_ratio')} >= {ctx.threshold('prefill_idle_ratio')}"


def _nixl_metrics_missing(ctx: Ctx, v: Variant) -> str:
    """Prefill pods work but no NIXL series exist: vLLM < 0.11.1 or a non-NIXL connector."""
    return (f"({ctx.ref('pd_active')}) * 0 + 1\nand {ctx.on(*NS_MODEL)} ({ctx.ref('prefill_busy')})\n"
            f"unless {ctx.on(*NS_MODEL)} {ctx.ref('nixl_series')}")


def _verdict(ctx: Ctx, v: Variant) -> str:
    by = ctx.by(*NS_MODEL)
    on = ctx.on(*NS_MODEL)
    prefill = f"sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')})"
    decode = f"sum by ({by}) ({ctx.ref('vllm_pods', role='decode')})"
    active = f"({ctx.ref('pd_active')})"
    failing = ctx.ref("checklist", signal="nixl_transfers_absent")
    branches = [
        f"({ctx.ref('nixl_metrics_missing')}) * 0 + 4",
        f"{active} * 0 + 1 and {on} ({failing} == 1)",
        f"{active} * 0",
        f"({prefill} > 0) * 0 + 3",
        f"({decode} > 0) * 0 + 2",
    ]
    return "\nor\n".join(f"({b})" for b in branches)


# --- the catalog --------------------------------------------------------------------------------


def _signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    r = f"rate{window}"
    out = [
        # Model-server pods, per role: distinct pods exporting vLLM metrics.
        Signal("vllm_pods", "namespace_model_role:vllm_pods:count", NS_MODEL, "short",
               "Model-server pods exporting vLLM metrics.",
               lambda c, v: _distinct_pods(c, NS_MODEL, c.vllm(POD_PRESENCE_METRIC, v["role"])),
               ROLE_VARIANTS),
        Signal("vllm_pods_ns", "namespace:vllm_pods:count", NS, "short",
               "Model-server pods up in the namespace, whatever their role and model.",
               # Namespace level: a model scope must not narrow it when inlined (the recorded
               # series has no model label to filter on), or EPP ready pods would be compared
               # with one model's pods.
               lambda c, v: _distinct_pods(c, NS, c.unscoped("model").vllm(POD_PRESENCE_METRIC))),
        Signal("requests", f"namespace_model_role:vllm_requests_finished:{r}", NS_MODEL, "reqps",
               "Requests finished per second (each P/D request finishes once per role).",
               vllm_sum_rate(("vllm:request_success_total",)), ROLE_VARIANTS),
        Signal("requests_aborted", f"namespace_model_role:vllm_requests_aborted:{r}", NS_MODEL,
               "reqps", "Requests aborted per second.",
               vllm_sum_rate(("vllm:request_success_total",), matchers='finished_reason="abort"'),
               ROLE_VARIANTS),
        Signal("prompt_tokens", f"namespace_model_role:vllm_prompt_tokens:{r}", NS_MODEL, "short",
               "Prompt tokens per second (counted on both roles in P/D).",
               vllm_sum_rate(("vllm:prompt_tokens_total",)), ROLE_VARIANTS),
        Signal("generation_tokens", f"namespace_model_role:vllm_generation_tokens:{r}", NS_MODEL,
               "short", "Generated tokens per second (prefill adds one per request).",
               vllm_sum_rate(("vllm:generation_tokens_total",)), ROLE_VARIANTS),
        Signal("work_tokens", f"namespace_model_role:vllm_iteration_tokens:{r}", NS_MODEL, "short",
               "Tokens processed by engine steps per second: the work each role really does.",
               vllm_sum_rate(("vllm:iteration_tokens_total_sum",)), ROLE_VARIANTS),
        Signal("preemptions", f"namespace_model_role:vllm_preemptions:{r}", NS_MODEL, "short",
               "Preemptions per second.", vllm_sum_rate(("vllm:num_preemptions_total",)),
               ROLE_VARIANTS),
        Signal("running", "namespace_model_role:vllm_requests_running:sum", NS_MODEL, "short",
               "Requests running.", vllm_gauge("sum", ("vllm:num_requests_running",)),
               ROLE_VARIANTS),
        Signal("waiting", "namespace_model_role:vllm_requests_waiting:sum", NS_MODEL, "short",
               "Requests waiting (on decode this includes KV pulls in flight).",
               vllm_gauge("sum", ("vllm:num_requests_waiting",)), ROLE_VARIANTS),
        Signal("kv_cache_usage", "namespace_model_role:vllm_kv_cache_usage:avg", NS_MODEL,
               "percentunit", "Mean KV-cache usage (renamed from gpu_cache_usage_perc).",
               vllm_gauge("avg", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
               ROLE_VARIANTS),
        Signal("prefix_hits", f"namespace_model_role:vllm_prefix_cache_hits:{r}", NS_MODEL,
               "short", "Prefix-cache hit tokens per second.",
               vllm_sum_rate(("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")),
               ROLE_VARIANTS),
        Signal("prefix_queries", f"namespace_model_role:vllm_prefix_cache_queries:{r}", NS_MODEL,
               "short", "Prefix-cache queried tokens per second.",
               vllm_sum_rate(("vllm:prefix_cache_queries_total",
                              "vllm:gpu_prefix_cache_queries_total")), ROLE_VARIANTS),
        Signal("prefix_hit_ratio", f"namespace_model_role:vllm_prefix_cache_hit:ratio_{r}",
               NS_MODEL, "percentunit", "Prefix-cache hit rate over the rate window, per role.",
               lambda c, v: (f"{c.ref('prefix_hits', **v)}\n/ {c.on(*NS_MODEL)}\n"
                             f"({c.ref('prefix_queries', **v)} > 0)"), ROLE_VARIANTS),
        Signal("prefix_hit_ratio_all", f"namespace_model:vllm_prefix_cache_hit:ratio_{r}",
               NS_MODEL, "percentunit", "Prefix-cache hit rate over the rate window, all pods.",
               lambda c, v: (f"sum by ({c.by(*NS_MODEL)}) ({c.ref('prefix_hits')})\n/ "
                             f"{c.on(*NS_MODEL)}\n(sum by ({c.by(*NS_MODEL)}) "
                             f"({c.ref('prefix_queries')}) > 0)")),
        # NIXL: recorded on decode; prefill pods carry zero-valued children, so no role split.
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
        # EPP (inference scheduler): three metric families over time, joined after aggregation.
        Signal("epp_ready_pods", "namespace_pool:epp_ready_pods:max", NS_POOL, "short",
               "Pods the EPP considers ready (fresh metrics), per InferencePool.",
               epp_pool_gauge(("llm_d_epp_ready_endpoints", "inference_pool_ready_pods"))),
        Signal("epp_ready_pods_ns", "namespace:epp_ready_pods:sum", NS, "short",
               "Pods the EPP considers ready, summed over the pools of a namespace.",
               lambda c, v: f"sum by ({c.by(*NS)}) ({c.ref('epp_ready_pods')})"),
        Signal("epp_queue", "namespace_pool:epp_average_queue_size:max", NS_POOL, "short",
               "Mean queue size over the pool's pods (prefill and decode mixed).",
               epp_pool_gauge(("llm_d_epp_average_queue_size", "inference_pool_average_queue_size"))),
        Signal("epp_kv_usage", "namespace_pool:epp_average_kv_cache_utilization:max", NS_POOL,
               "percentunit", "Mean KV-cache utilisation over the pool's pods as the EPP sees it.",
               epp_pool_gauge(("llm_d_epp_average_kv_cache_utilization",
                               "inference_pool_average_kv_cache_utilization"))),
        Signal("epp_requests", f"namespace_model:epp_requests:{r}", NS_MODEL, "reqps",
               "Client requests per second through the EPP.",
               epp_sum_rate(("llm_d_epp_request_total", "inference_objective_request_total",
                             "inference_model_request_total"))),
        Signal("epp_errors", f"namespace_model:epp_request_errors:{r}", NS_MODEL, "reqps",
               "Client request errors per second at the EPP.",
               epp_sum_rate(("llm_d_epp_request_error_total",
                             "inference_objective_request_error_total",
                             "inference_model_request_error_total"))),
        Signal("epp_error_ratio", f"namespace_model:epp_request_errors:ratio_{r}", NS_MODEL,
               "percentunit", "Share of client requests that fail at the EPP (0 when none).",
               lambda c, v: (f"({c.ref('epp_errors')} or {c.ref('epp_requests')} * 0)\n/ "
                             f"{c.on(*NS_MODEL)}\n({c.ref('epp_requests')} > 0)")),
        Signal("pd_decisions", f"namespace_model_decision:epp_pd_decisions:{r}", NS_MODEL, "ops",
               "Scheduler P/D decisions per second by decision_type.",
               epp_sum_rate(("llm_d_epp_disagg_decision_total", "llm_d_epp_pd_decision_total",
                             "llm_d_inference_scheduler_disagg_decision_total",
                             "llm_d_inference_scheduler_pd_decision_total"),
                            extra_by=("decision_type",))),
    ]
    for h in HISTOGRAMS:
        out.extend(_histogram_signals(h, quantiles, window))
    out += [
        # Derived P/D signals.
        Signal("prefill_work_ratio", f"namespace_model:vllm_prefill_work:ratio_{r}", NS_MODEL,
               "percentunit", "Requests finished on prefill per request finished on decode: "
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
        Signal("nixl_metrics_missing", None, NS_MODEL, "short",
               "Prefill pods work but no NIXL series exist.", _nixl_metrics_missing),
        Signal("checklist", "namespace_model:pd_signal:failing", NS_MODEL, "short",
               "The post-mortem's five 'not disaggregated' signals: 1 failing, 0 passing, absent "
               "when P/D is not deployed or there is no traffic.", _checklist,
               tuple({"signal": s} for s in CHECKLIST)),
        Signal("verdict", "namespace_model:pd_verdict:code", NS_MODEL, "short",
               "Is it disaggregated? " + ", ".join(f"{k} {v}" for k, v in VERDICTS.items()) + ".",
               _verdict),
    ]
    return out + _dashboard_signals(window)


# --- issue 5: per-pod and status signals for the dashboards (dashboards/) -----------------------
# Per-pod rates are recorded (one series per pod and signal, per role as a static `role` label):
# raw, every dashboard refresh would re-read each pod's counters over the whole rate window
# (issue 8). Issue 9 only keeps per-pod records out of alert paths: alerts read namespace-level
# records (tests/test_scale_out_rules.py). Per-pod gauges stay fragments: raw they already read
# one sample per pod. The status ones turn the recorded checklist and verdict into one code per
# namespace/model that is never silently absent.

NS_MODEL_POD = ("namespace", "model", "pod")
# Per-pod signals: all pods, or one role.
POD_VARIANTS: tuple[Variant, ...] = ({}, *ROLE_VARIANTS)
# Every alert this project renders is named with this prefix (alert-name lint, firing-alerts panel).
ALERT_NAME_PREFIX = "PD"

# checklist_status: the checklist's 0/1 where P/D is active, else the verdict code saying why
# the check does not apply (codes 2 and 3 are VERDICTS codes).
CHECK_STATES = {0: "PASS", 1: "FAIL", 2: "NOT DEPLOYED", 3: "NO TRAFFIC"}
# nixl_status: is KV cache moving between prefill and decode?
NIXL_STATES = {0: "FLOWING", 1: "ABSENT", 2: "NOT DEPLOYED", 3: "IDLE", 4: "NO METRICS"}

_PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
_PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")


def _pod_gauge(agg: str, names: tuple[str, ...]) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*NS_MODEL_POD)
        return " or ".join(f"{agg} by ({by}) ({ctx.vllm(n, v.get('role'))})" for n in names)

    return build


def _pod_prefix_hit_ratio(ctx: Ctx, v: Variant) -> str:
    hits = vllm_sum_rate(_PREFIX_HITS, NS_MODEL_POD)(ctx, v)
    queries = vllm_sum_rate(_PREFIX_QUERIES, NS_MODEL_POD)(ctx, v)
    return f"(\n{hits}\n)\n/ {ctx.on(*NS_MODEL_POD)}\n((\n{queries}\n) > 0)"


def _not_applicable(ctx: Ctx) -> str:
    # Verdict 2 (aggregated by design) or 3 (no traffic): the comparisons filter, keeping the code.
    return f"(({ctx.ref('verdict')} >= 2) < 4)"


def _one_series(ctx: Ctx, expr: str) -> str:
    # The branches of a status come from differently named series (checklist, verdict): over a
    # time range that crosses a state change a panel would get one series per branch and a stat
    # panel would show two values. Exactly one branch exists per namespace/model at any instant,
    # so keeping only those labels joins them into one series.
    return f"max by ({ctx.by(*NS_MODEL)}) (\n{expr}\n)"


def _checklist_status(ctx: Ctx, v: Variant) -> str:
    return _one_series(ctx, f"{ctx.ref('checklist', **v)}\nor {ctx.on(*NS_MODEL)}\n{_not_applicable(ctx)}")


def _nixl_status(ctx: Ctx, v: Variant) -> str:
    # Verdict 4 means prefill works but no NIXL series exist: say so rather than "absent".
    return _one_series(ctx, f"({ctx.ref('verdict')} == 4)\nor {ctx.on(*NS_MODEL)}\n"
                            f"{ctx.ref('checklist', signal='nixl_transfers_absent')}\nor {ctx.on(*NS_MODEL)}\n"
                            f"{_not_applicable(ctx)}")


def _ttft_pd_mean(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL), ctx.on(*NS_MODEL)
    return (f"sum by ({by}) ({ctx.ref('ttft_mean', role='prefill')})\n+ {on}\n"
            f"sum by ({by}) ({ctx.ref('ttft_mean', role='decode')})")


def _epp_pod_queue(ctx: Ctx, v: Variant) -> str:
    # GAIE's collector names the model-server pod `model_server_pod` (`pod` is the EPP's own).
    by = ctx.by(*NS_POOL, extra=("model_server_pod",))
    return f"max by ({by}) ({ctx.epp('inference_pool_per_pod_queue_size')})"


def _alerts_firing(ctx: Ctx, v: Variant) -> str:
    return ctx.series("ALERTS", NS, promql.matcher("alertname", "=~", ALERT_NAME_PREFIX + ".*"),
                      promql.matcher("alertstate", "=", "firing"))


def _dashboard_signals(window: str) -> list[Signal]:
    r = f"rate{window}"
    return [
        Signal("pod_running", None, NS_MODEL_POD, "short", "Requests running per pod.",
               _pod_gauge("sum", ("vllm:num_requests_running",)), POD_VARIANTS),
        Signal("pod_waiting", None, NS_MODEL_POD, "short",
               "Requests waiting per pod (on decode this includes KV pulls in flight).",
               _pod_gauge("sum", ("vllm:num_requests_waiting",)), POD_VARIANTS),
        Signal("pod_kv_cache_usage", None, NS_MODEL_POD, "percentunit", "KV-cache usage per pod.",
               _pod_gauge("avg", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")), POD_VARIANTS),
        Signal("pod_work_tokens", f"namespace_model_pod:vllm_iteration_tokens:{r}", NS_MODEL_POD, "short",
               "Tokens processed by engine steps per second per pod: the work a pod really does.",
               vllm_sum_rate(("vllm:iteration_tokens_total_sum",), NS_MODEL_POD), ROLE_VARIANTS),
        Signal("pod_preemptions", f"namespace_model_pod:vllm_preemptions:{r}", NS_MODEL_POD, "short",
               "Preemptions per second per pod.",
               vllm_sum_rate(("vllm:num_preemptions_total",), NS_MODEL_POD), ROLE_VARIANTS),
        # One rule for the ratio, not hits and queries recorded apart: a refresh then reads one
        # series per pod instead of two plus a join.
        Signal("pod_prefix_hit_ratio", f"namespace_model_pod:vllm_prefix_cache_hit:ratio_{r}", NS_MODEL_POD,
               "percentunit", "Prefix-cache hit rate per pod over the rate window (not the lifetime ratio).",
               _pod_prefix_hit_ratio, ROLE_VARIANTS),
        Signal("epp_pod_queue", None, (*NS_POOL, "pod"), "short",
               "Waiting requests per model-server pod as the EPP sees them (GAIE pool collector; "
               "the pod is in model_server_pod).", _epp_pod_queue),
        Signal("ttft_pd_mean", None, NS_MODEL, "s",
               "Mean TTFT of the prefill leg plus mean TTFT of the decode leg (which holds the KV "
               "pull): the model-server share of a P/D request's TTFT, without gateway and sidecar hops.",
               _ttft_pd_mean),
        Signal("checklist_status", None, NS_MODEL, "short",
               "Checklist signal or why it does not apply: "
               + ", ".join(f"{k} {t}" for k, t in CHECK_STATES.items()) + ".",
               _checklist_status, tuple({"signal": s} for s in CHECKLIST)),
        Signal("nixl_status", None, NS_MODEL, "short",
               "KV transfer status: " + ", ".join(f"{k} {t}" for k, t in NIXL_STATES.items()) + ".",
               _nixl_status),
        Signal("pd_alerts_firing", None, NS, "short",
               "This project's alerts firing now (Prometheus' ALERTS series).", _alerts_firing),
    ]


@cache
def _catalog(quantiles: tuple[float, ...], window: str) -> dict[str, Signal]:
    signals = _signals(quantiles, window) + _doctor_signals() + _alert_signals()
    catalog = {s.name: s for s in signals}
    if len(catalog) != len(signals):
        raise AssertionError("duplicate signal names in the catalog")
    return catalog


def signals(cfg: Config) -> dict[str, Signal]:
    return _catalog(tuple(cfg["signals"]["quantiles"]), cfg["prometheus"]["rate_window"])


def _check_variant(sig: Signal, variant: Variant) -> None:
    keys = set().union(*(v.keys() for v in sig.variants))
    if not set(variant) <= keys:
        raise KeyError(f"signal {sig.name!r} has no variant labels {sorted(set(variant) - keys)}")
    for key, value in variant.items():
        if value not in {v.get(key) for v in sig.variants}:
            raise KeyError(f"signal {sig.name!r} has no {key}={value!r}")


def _resolve(ctx: Ctx, name: str, variant: Variant) -> str:
    sig = signals(ctx.cfg)[name]
    _check_variant(sig, variant)
    if ctx.inline or sig.record is None:
        return _inlined(ctx, sig, variant)
    return ctx.recorded(sig.record, sig.level, variant)


def _inlined(ctx: Ctx, sig: Signal, variant: Variant) -> str:
    if sig.record is None or any(dict(variant) == dict(v) for v in sig.variants):
        return f"(\n{sig.build(ctx, variant)}\n)"
    # A partial variant selects several recorded variants at once (e.g. both roles, as a
    # dashboard's `{quantile="0.95"}` does): inline each, labelled as its recording rule labels
    # it, so the raw form returns the very series the recorded selector would.
    parts = []
    for v in sig.variants:
        if all(v.get(k) == value for k, value in variant.items()):
            expr = sig.build(ctx, v)
            for key, value in v.items():
                expr = f'label_replace(\n{expr}\n, "{key}", "{value}", "", "")'
            parts.append(f"(\n{expr}\n)")
    return "(\n" + "\nor\n".join(parts) + "\n)"


def context(cfg: Config, scope: Mapping[str, tuple[str, str]] | None = None,
            inline: bool = False, rate_range: str | None = None) -> Ctx:
    """A query context. `scope` filters by label key ("cluster", "namespace", "model");
    `inline` renders references as raw PromQL; `rate_range` replaces the range of raw rates."""
    return Ctx(cfg=cfg, scope=dict(scope or {}), inline=inline, rate_range=rate_range, resolve=_resolve)


def query(ctx: Ctx, name: str, **variant: str) -> str:
    """The PromQL a consumer uses for a signal: the recorded series, or raw when inlined."""
    return _resolve(ctx, name, variant)


def expression(ctx: Ctx, name: str, **variant: str) -> str:
    """The expression that computes a signal (what its recording rule evaluates)."""
    sig = signals(ctx.cfg)[name]
    _check_variant(sig, variant)
    return sig.build(ctx, variant)


def dependencies(cfg: Config, name: str) -> set[str]:
    """Recorded signals a signal's expression reads, looking through inlined fragments."""
    found: set[str] = set()

    def trace(ctx: Ctx, dep: str, variant: Variant) -> str:
        sig = signals(cfg)[dep]
        if sig.record is None:
            for v in sig.variants:
                sig.build(ctx, {**v, **variant})
        else:
            found.add(dep)
        return "x"

    tracer = Ctx(cfg=cfg, resolve=trace)
    sig = signals(cfg)[name]
    for v in sig.variants:
        sig.build(tracer, v)
    return found


def stages(cfg: Config) -> dict[str, int]:
    """Recording group index of each recorded signal: one more than the deepest one it reads."""
    memo: dict[str, int] = {}

    def stage(name: str) -> int:
        if name not in memo:
            memo[name] = 1 + max((stage(d) for d in dependencies(cfg, name)), default=0)
        return memo[name]

    return {name: stage(name) for name, sig in signals(cfg).items() if sig.record}


# --- issue 7: what the doctor reads besides the checklist ---------------------------------------
# Metric families, the version each name betrays, renames and the pre-flight fragments. Data only;
# pdobs/doctor/ turns them into findings.

# Name patterns of each family, for discovery with `count by (__name__)`.
VLLM_NAME_PATTERN = "vllm:.+"
EPP_NAME_PATTERN = "inference_(model|objective|pool|extension)_.+|llm_d_(epp|inference_scheduler)_.+"
# A metric name of either family inside someone else's PromQL (their rules, their dashboards).
METRIC_NAME_TOKEN = (r"(?:vllm:|inference_(?:model|objective|pool|extension)_|"
                     r"llm_d_(?:epp|inference_scheduler)_)[a-zA-Z0-9_:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
COUNTER_SUFFIX = "_total"


@dataclass(frozen=True)
class VersionMarker:
    """A vLLM version bound implied by a name being present (or absent while vLLM exports)."""
    name: str
    present: bool
    op: str  # ">=" or "<"
    version: str
    why: str


VLLM_VERSION_MARKERS = (
    VersionMarker("vllm:nixl_xfer_time_seconds_count", True, ">=", "0.11.1",
                  "exports NIXL transfer metrics"),
    VersionMarker("vllm:external_prefix_cache_queries_total", True, ">=", "0.11.1",
                  "exports external_prefix_cache_queries"),
    VersionMarker("vllm:request_prefill_kv_computed_tokens_count", True, ">=", "0.13.0",
                  "exports request_prefill_kv_computed_tokens"),
    VersionMarker("vllm:inter_token_latency_seconds_count", True, ">=", "0.10.2",
                  "exports inter_token_latency_seconds"),
    VersionMarker("vllm:inter_token_latency_seconds_count", False, "<", "0.10.2",
                  "exports no inter_token_latency_seconds"),
    VersionMarker("vllm:gpu_cache_usage_perc", True, "<", "0.12.0",
                  "still exports gpu_cache_usage_perc (hidden in 0.11, removed in 0.12)"),
)
# NIXL transfer metrics exist from this vLLM version on (the CANNOT TELL explanation).
NIXL_MIN_VLLM = "0.11.1"
NIXL_SERIES_PREFIX = "vllm:nixl_"
# GAIE v1.2 and older read this vLLM gauge for the pool KV utilisation unless told otherwise.
EPP_KV_OLD_METRIC = "vllm:gpu_cache_usage_perc"
EPP_KV_FLAG = "--kv-cache-usage-percentage-metric=vllm:kv_cache_usage_perc"


@dataclass(frozen=True)
class Family:
    prefix: str
    versions: str


# EPP families, newest first; the scheduler image's vendored GAIE module decides which one it emits.
EPP_FAMILIES = (
    Family("llm_d_epp_", "llm-d-router v0.9+"),
    Family("inference_objective_", "GAIE v1.1+: scheduler v0.4-v0.8, or llm-d-router's deprecated copies"),
    Family("inference_model_", "GAIE v1.0 or older: scheduler v0.3 or older"),
    Family("inference_pool_", "GAIE pool gauges"),
    Family("inference_extension_", "GAIE scheduler internals"),
    Family("llm_d_inference_scheduler_", "P/D decision counters, scheduler v0.4+"),
)
# Request-metric families that replace each other: a rule reading one while another is exported
# reads nothing.
EPP_REQUEST_FAMILIES = ("llm_d_epp_", "inference_objective_", "inference_model_")

# Old name -> (new name, when) for vLLM's renames; histogram bases without suffix.
RENAMED = {
    "vllm:gpu_cache_usage_perc": ("vllm:kv_cache_usage_perc", "hidden in vLLM 0.11, removed in 0.12"),
    "vllm:gpu_prefix_cache_queries_total": ("vllm:prefix_cache_queries_total",
                                            "hidden in vLLM 0.11, removed in 0.12"),
    "vllm:gpu_prefix_cache_hits_total": ("vllm:prefix_cache_hits_total",
                                         "hidden in vLLM 0.11, removed in 0.12"),
    "vllm:time_per_output_token_seconds": ("vllm:inter_token_latency_seconds",
                                           "renamed in vLLM 0.10.2, hidden from 0.12, gone by 0.16"),
}


def _with_scope(ctx: Ctx, *keys: str) -> Ctx:
    """The same context scoped only by `keys` (e.g. `up` carries no model label)."""
    return replace(ctx, scope={k: v for k, v in ctx.scope.items() if k in keys})


def _names(pattern: str, family: str) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        name = promql.matcher("__name__", "=~", pattern)
        sel = ctx.vllm("", None, name) if family == "vllm" else ctx.epp("", extra=name)
        return f"count by ({ctx.by(*NS, extra=('__name__',))}) ({sel})"

    return build


def _pods_without_role(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL, "pod"), ctx.on(*NS, "pod")
    pods = f"count by ({by}) ({ctx.vllm('vllm:num_requests_running')})"
    return " unless ".join([pods] + [f"{on} {ctx.vllm('vllm:num_requests_running', r)}" for r in ROLES])


def _pods_with_both_roles(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL, "pod"), ctx.on(*NS, "pod")
    prefill, decode = (f"count by ({by}) ({ctx.vllm('vllm:num_requests_running', r)})" for r in ROLES)
    return f"{prefill}\nand {on}\n{decode}"


def _vllm_clusters(ctx: Ctx, v: Variant) -> str:
    """Values of the cluster label on vLLM series, whether or not multi_cluster is on: two values
    with it off mean deployments of different clusters get merged."""
    cluster = ctx.label("cluster")
    pods = ", ".join([cluster, ctx.label("namespace"), ctx.label("pod")])
    return (f"count by ({cluster}) (count by ({cluster}, {pods}) "
            f"({ctx.vllm('vllm:num_requests_running')}))")


def _targets_down(ctx: Ctx, v: Variant) -> str:
    return f"{_with_scope(ctx, 'cluster', 'namespace').vllm('up')} == 0"


def _epp_kv_reads_missing_metric(ctx: Ctx, v: Variant) -> str:
    """The EPP's pool KV gauge stayed 0 while vLLM reports KV usage and exports no
    gpu_cache_usage_perc: an EPP (GAIE v1.2 or older) still reading the old name."""
    on = ctx.on(*NS)
    step = f"[{ctx.window}:{ctx.cfg['prometheus']['scrape_interval']}]"
    epp = f"max by ({ctx.by(*NS_POOL)}) (max_over_time(({ctx.ref('epp_kv_usage')}){step}))"
    vllm = f"max by ({ctx.by(*NS)}) (max_over_time(({ctx.ref('kv_cache_usage')}){step}))"
    old = f"count by ({ctx.by(*NS)}) ({_with_scope(ctx, 'cluster', 'namespace').vllm(EPP_KV_OLD_METRIC)})"
    return f"({epp} == 0)\nand {on} ({vllm} > 0)\nunless {on} {old}"


def _doctor_signals() -> list[Signal]:
    return [
        Signal("vllm_metric_names", None, NS, "short", "vLLM metric names exported, per namespace.",
               _names(VLLM_NAME_PATTERN, "vllm")),
        Signal("epp_metric_names", None, NS, "short", "EPP metric names exported, per namespace.",
               _names(EPP_NAME_PATTERN, "epp")),
        Signal("vllm_pods_without_role", None, NS_MODEL, "short",
               "Model-server pods whose role the configured role mode cannot tell.", _pods_without_role),
        Signal("vllm_pods_with_both_roles", None, NS_MODEL, "short",
               "Model-server pods that match both the prefill and the decode role.", _pods_with_both_roles),
        Signal("vllm_deployments", None, NS_MODEL, "short",
               "Model-server pods per namespace and model, whatever their role (or none).",
               lambda c, v: (f"count by ({c.by(*NS_MODEL)}) (count by ({c.by(*NS_MODEL, 'pod')}) "
                             f"({c.vllm('vllm:num_requests_running')}))")),
        Signal("targets_down", None, NS, "short", "Scrape targets down (up == 0).", _targets_down),
        Signal("vllm_clusters", None, (), "short", "Model-server pods per value of the cluster label.",
               _vllm_clusters),
        Signal("epp_kv_reads_missing_metric", None, NS_POOL, "percentunit",
               "Pools whose EPP KV utilisation stays 0 because the EPP reads a vLLM metric that is gone.",
               _epp_kv_reads_missing_metric),
    ]


# --- issue 4: what the alerts read besides the checklist ----------------------------------------


def _model_server_targets_down(ctx: Ctx, v: Variant) -> str:
    # `up` carries target labels only: a model scope would match nothing, so it is dropped.
    unscoped = replace(ctx, scope={k: val for k, val in ctx.scope.items() if k != "model"})
    sel = unscoped.vllm("up", v["role"])
    return f"count by ({ctx.by(*NS)}) ({sel} == 0)"


def _alert_signals() -> list[Signal]:
    return [
        Signal("model_server_targets_down", "namespace_role:vllm_targets_down:count", NS, "short",
               "Model-server scrape targets down (up == 0), per role; absent when none is down.",
               _model_server_targets_down, ROLE_VARIANTS),
    ]
