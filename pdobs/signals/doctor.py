"""What the doctor reads besides the checklist: metric families, the version each name betrays,
renames, and the pre-flight fragments. Data only; pdobs/doctor/ turns them into findings."""

from dataclasses import dataclass

from pdobs.core import promql
from pdobs.core.context import ROLES, Ctx, Variant
from pdobs.core.engine import Builder, Signal
from pdobs.signals.builders import NS, NS_MODEL, NS_POOL, POD_PRESENCE_METRIC

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


# name, present, op, version, why
VLLM_VERSION_MARKERS = tuple(VersionMarker(*row) for row in (
    ("vllm:nixl_xfer_time_seconds_count", True, ">=", "0.11.1", "exports NIXL transfer metrics"),
    ("vllm:external_prefix_cache_queries_total", True, ">=", "0.11.1", "exports external_prefix_cache_queries"),
    ("vllm:request_prefill_kv_computed_tokens_count", True, ">=", "0.13.0",
     "exports request_prefill_kv_computed_tokens"),
    ("vllm:inter_token_latency_seconds_count", True, ">=", "0.10.2", "exports inter_token_latency_seconds"),
    ("vllm:inter_token_latency_seconds_count", False, "<", "0.10.2", "exports no inter_token_latency_seconds"),
    ("vllm:gpu_cache_usage_perc", True, "<", "0.12.0",
     "still exports gpu_cache_usage_perc (hidden in 0.11, removed in 0.12)"),
    ("vllm:prompt_tokens_by_source_total", True, ">=", "0.16.0", "exports prompt_tokens_by_source"),
    ("vllm:prompt_tokens_recomputed_total", True, "<", "0.24.0",
     "still exports prompt_tokens_recomputed (removed in 0.24)"),
    ("vllm:num_requests_waiting_by_reason", True, ">=", "0.24.0", "exports num_requests_waiting_by_reason"),
    ("vllm:prompt_tokens_cached_by_source_total", True, ">=", "0.33.0", "exports prompt_tokens_cached_by_source"),
))
NIXL_SERIES_PREFIX = "vllm:nixl_"
MOONCAKE_SERIES_PREFIX = "vllm:mooncake_xfer_"  # the transfer metrics, not the Mooncake store's
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


def _names(pattern: str, family: str) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        name = promql.matcher("__name__", "=~", pattern)
        sel = ctx.vllm("", None, name) if family == "vllm" else ctx.epp("", extra=name)
        return f"count by ({ctx.by(*NS, extra=('__name__',))}) ({sel})"

    return build


def _pods_without_role(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL, "pod"), ctx.on(*NS, "pod")
    pods = f"count by ({by}) ({ctx.vllm(POD_PRESENCE_METRIC)})"
    return " unless ".join([pods] + [f"{on} {ctx.vllm(POD_PRESENCE_METRIC, r)}" for r in ROLES])


def _pods_with_both_roles(ctx: Ctx, v: Variant) -> str:
    by, on = ctx.by(*NS_MODEL, "pod"), ctx.on(*NS, "pod")
    prefill, decode = (f"count by ({by}) ({ctx.vllm(POD_PRESENCE_METRIC, r)})" for r in ROLES)
    return f"{prefill}\nand {on}\n{decode}"


def _vllm_clusters(ctx: Ctx, v: Variant) -> str:
    """Values of the cluster label on vLLM series, whether or not multi_cluster is on: two values
    with it off mean deployments of different clusters get merged."""
    cluster = ctx.label("cluster")
    pods = ", ".join([cluster, ctx.label("namespace"), ctx.label("pod")])
    return (f"count by ({cluster}) (count by ({cluster}, {pods}) "
            f"({ctx.vllm(POD_PRESENCE_METRIC)}))")


def _targets_down(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.unscoped('model').vllm('up')} == 0"


def _epp_kv_reads_missing_metric(ctx: Ctx, v: Variant) -> str:
    """The EPP's pool KV gauge stayed 0 while vLLM reports KV usage and exports no
    gpu_cache_usage_perc: an EPP (GAIE v1.2 or older) still reading the old name."""
    on = ctx.on(*NS)
    step = f"[{ctx.window}:{ctx.cfg['prometheus']['scrape_interval']}]"
    epp = f"max by ({ctx.by(*NS_POOL)}) (max_over_time(({ctx.ref('epp_kv_usage')}){step}))"
    vllm = f"max by ({ctx.by(*NS)}) (max_over_time(({ctx.ref('kv_cache_usage')}){step}))"
    old = f"count by ({ctx.by(*NS)}) ({ctx.unscoped('model').vllm(EPP_KV_OLD_METRIC)})"
    return f"({epp} == 0)\nand {on} ({vllm} > 0)\nunless {on} {old}"


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
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
                             f"({c.vllm(POD_PRESENCE_METRIC)}))")),
        Signal("targets_down", None, NS, "short", "Scrape targets down (up == 0).", _targets_down),
        Signal("vllm_clusters", None, (), "short", "Model-server pods per value of the cluster label.",
               _vllm_clusters),
        Signal("epp_kv_reads_missing_metric", None, NS_POOL, "percentunit",
               "Pools whose EPP KV utilisation stays 0 because the EPP reads a vLLM metric that is gone.",
               _epp_kv_reads_missing_metric),
    ]
