"""The metric families vLLM and the EPP export, as data.

Everything here is transcribed by hand from the metric contract (``contract/``, read from the
upstream source of each vLLM version and EPP build), and ``tests/test_contract.py`` checks that
every family rendered for a contract version or EPP build equals the contract's (names, types,
labels, buckets, pre-created label values). It is deliberately *not* shared with the project's
signal catalog: if the catalog gets a name, a label or a ``_total`` suffix wrong, queries against
the series this module describes return nothing and a test fails, instead of the two agreeing
with each other. ``since``/``until`` are the first contract version with/without a family: a
family that appeared between two contract versions is dated by the later one.

A :class:`Family` is what one ``# TYPE`` line announces. Its ``source`` names the quantity the model
(``simulator.model``) computes for it; several families can share a source (renamed metrics that
vLLM emits side by side carry the same observations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Version = tuple[int, int, int]

# Sentinel for vLLM's 1-2-5 token-count buckets, which depend on --max-model-len.
BUCKETS_1_2_5 = (-1.0,)


@dataclass(frozen=True)
class Family:
    """One metric family.

    ``name`` is the family name as OpenMetrics spells it in ``# TYPE``: counters *without*
    ``_total`` (prometheus_client and client_golang append it to the sample), histograms without
    ``_bucket``. ``labels`` are the metric's own label names (vLLM's ``model_name``/``engine``
    are added when ``common_labels``); every label takes a constant value from the target's
    context except ``key_label``, whose values ``key_values`` tell the children apart.
    vLLM pre-creates its children per engine, so its series exist at 0 before any traffic;
    ``lazy`` children only appear once first incremented (client_golang ``*Vec`` types, as the
    EPP uses them). ``dynamic`` families get their key values from the model at run time (the
    EPP's per-pod queue gauge: one child per ready model-server pod).
    """

    name: str
    kind: Kind
    source: str
    help: str
    labels: tuple[str, ...] = ()
    key_label: str | None = None
    key_values: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    since: Version = (0, 0, 0)
    until: Version | None = None  # first version that no longer has it at all
    hidden_since: Version | None = None  # hidden unless --show-hidden-metrics-for-version
    connector: str | None = None  # only with this KV connector's metrics: "nixl" | "mooncake"
    kv_consumer: bool = False  # only on pods whose kv_role consumes KV (kv_consumer, kv_both)
    common_labels: bool = True  # vLLM's model_name + engine
    lazy: bool = False
    dynamic: bool = False
    # Labels whose value comes from another context key: the P/D decision counters carry the
    # target model (the request metrics' target_model_name) in their model_name label.
    label_from: tuple[tuple[str, str], ...] = ()

    def context_key(self, label: str) -> str:
        """The context key a label's constant value is read from."""
        return dict(self.label_from).get(label, label)

    def sample_names(self) -> tuple[str, ...]:
        """Exposed sample names, in exposition order."""
        if self.kind == "counter":
            return (self.name + "_total",)
        if self.kind == "histogram":
            return (self.name + "_bucket", self.name + "_count", self.name + "_sum")
        return (self.name,)

    def all_labels(self) -> tuple[str, ...]:
        """Metric label names in exposition order (without ``le``)."""
        return (*self.labels, "model_name", "engine") if self.common_labels else self.labels

    def activity_key(self, key_value: str | None) -> str:
        """The model's activity key for one child: ``source`` or ``source:<key value>``."""
        return self.source if key_value is None else f"{self.source}:{key_value}"


def parse_version(text: str) -> Version:
    """``"0.11.1"`` -> ``(0, 11, 1)``; suffixes such as ``rc1`` are ignored."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    while len(parts) < 3:
        parts.append(0)
    return (parts[0], parts[1], parts[2])


def buckets_1_2_5(max_value: int) -> tuple[float, ...]:
    """vLLM's ``build_1_2_5_buckets``: 1, 2, 5, 10, 20, 50, ... up to ``max_value``."""
    out: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(out)
            out.append(float(value))
        exponent += 1


# --- vLLM (V1 engine), reference section 1 --------------------------------------------------

TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
ITERATION_TOKENS_BUCKETS = (
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
)
PARAMS_N_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0)
NIXL_XFER_TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 5.0)
NIXL_POST_TIME_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 5.0,
)  # fmt: skip
NIXL_BYTES_BUCKETS = tuple(float(2**e) for e in range(11, 34, 2))  # 2 KiB ... 8 GiB
NIXL_DESCRIPTORS_BUCKETS = (
    10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 400.0, 1000.0, 2000.0, 4000.0, 10000.0, 20000.0,
    50000.0,
)  # fmt: skip

REQUEST_NUM_PREEMPTIONS_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0)

# Label values of the children vLLM creates at start-up (contract ``label_values``).
FINISHED_REASONS = ("stop", "length", "abort")
FINISHED_REASONS_0_14 = (*FINISHED_REASONS, "error")  # KV-load failures end requests as errors
FINISHED_REASONS_0_24 = (*FINISHED_REASONS_0_14, "repetition")
SLEEP_STATES = ("awake", "weights_offloaded", "discard_all")
PROMPT_SOURCES = ("local_compute", "local_cache_hit", "external_kv_transfer")
CACHE_HIT_SOURCES = ("device", "host", "disk", "p2p", "external_unspecified")
WAITING_REASONS = ("capacity", "deferred")
KV_FETCH_STAGES = ("waiting_to_start", "in_progress", "completed_waiting")
ADMISSION_REASONS = ("max_num_queued_reqs", "max_num_queued_tokens")
CACHE_CONFIG_LABELS = (
    "block_size", "cache_dtype", "enable_prefix_caching", "gpu_memory_utilization",
    "num_gpu_blocks", "engine",
)  # fmt: skip

V0_10_2: Version = (0, 10, 2)
V0_11_0: Version = (0, 11, 0)
V0_11_1: Version = (0, 11, 1)
V0_12_0: Version = (0, 12, 0)
V0_14_0: Version = (0, 14, 0)
V0_16_0: Version = (0, 16, 0)
V0_24_0: Version = (0, 24, 0)
V0_33_0: Version = (0, 33, 0)

# KV connectors and their metric families: which connector class exports which family set, and
# from which version (contract: NixlPromMetrics from 0.11.1, MooncakePromMetrics from 0.33.0;
# 0.24-0.29 Mooncake only logs its stats).
CONNECTOR_METRICS = {
    "NixlConnector": ("nixl", V0_11_1),  # the pull connector (an alias of NixlPullConnector in 0.24+)
    "NixlPullConnector": ("nixl", V0_24_0),
    "NixlPushConnector": ("nixl", V0_24_0),
    "MooncakeConnector": ("mooncake", V0_33_0),
}


def _success(reasons: tuple[str, ...], since: Version, until: Version | None) -> Family:
    return Family("vllm:request_success", "counter", "success",
                  "Count of successfully processed requests.",
                  labels=("finished_reason",), key_label="finished_reason", key_values=reasons,
                  since=since, until=until)  # fmt: skip


VLLM_FAMILIES: tuple[Family, ...] = (
    Family("vllm:num_requests_running", "gauge", "running",
           "Number of requests in model execution batches."),
    Family("vllm:num_requests_waiting", "gauge", "waiting",
           "Number of requests waiting to be processed."),
    Family("vllm:num_requests_waiting_by_reason", "gauge", "waiting_by_reason",
           "Number of waiting requests by reason.", labels=("reason",), key_label="reason",
           key_values=WAITING_REASONS, since=V0_24_0),
    Family("vllm:num_requests_kv_fetch_by_stage", "gauge", "kv_fetch",
           "Number of waiting requests by async KV load stage.", labels=("stage",),
           key_label="stage", key_values=KV_FETCH_STAGES, since=V0_33_0, kv_consumer=True),
    Family("vllm:kv_cache_usage_perc", "gauge", "kv_usage",
           "KV-cache usage. 1 means 100 percent usage."),
    Family("vllm:gpu_cache_usage_perc", "gauge", "kv_usage",
           "GPU KV-cache usage. 1 means 100 percent usage.",
           until=V0_12_0, hidden_since=V0_11_0),
    Family("vllm:engine_sleep_state", "gauge", "sleep", "Engine sleep state.",
           labels=("sleep_state",), key_label="sleep_state",
           key_values=SLEEP_STATES, since=V0_11_1),
    Family("vllm:cache_config_info", "gauge", "cache_config_info",
           "Information of the LLMEngine CacheConfig.",
           labels=CACHE_CONFIG_LABELS, common_labels=False),
    Family("vllm:prefix_cache_queries", "counter", "prefix_queries",
           "Prefix cache queries, in terms of number of queried tokens."),
    Family("vllm:prefix_cache_hits", "counter", "prefix_hits",
           "Prefix cache hits, in terms of number of cached tokens."),
    Family("vllm:gpu_prefix_cache_queries", "counter", "prefix_queries",
           "GPU prefix cache queries, in terms of number of queried tokens.",
           until=V0_12_0, hidden_since=V0_11_0),
    Family("vllm:gpu_prefix_cache_hits", "counter", "prefix_hits",
           "GPU prefix cache hits, in terms of number of cached tokens.",
           until=V0_12_0, hidden_since=V0_11_0),
    Family("vllm:external_prefix_cache_queries", "counter", "ext_prefix_queries",
           "External prefix cache queries from KV connector cross-instance cache sharing.",
           since=V0_11_1),
    Family("vllm:external_prefix_cache_hits", "counter", "ext_prefix_hits",
           "External prefix cache hits from KV connector cross-instance cache sharing.",
           since=V0_11_1),
    Family("vllm:mm_cache_queries", "counter", "mm_queries",
           "Multi-modal cache queries, in terms of number of queried items.", since=V0_11_1),
    Family("vllm:mm_cache_hits", "counter", "mm_hits",
           "Multi-modal cache hits, in terms of number of cached items.", since=V0_11_1),
    Family("vllm:prompt_tokens", "counter", "prompt_tokens", "Number of prefill tokens processed."),
    Family("vllm:generation_tokens", "counter", "generation_tokens",
           "Number of generation tokens processed."),
    Family("vllm:prompt_tokens_by_source", "counter", "prompt_by_source",
           "Number of prompt tokens by source.",
           labels=("source",), key_label="source", key_values=PROMPT_SOURCES, since=V0_16_0),
    Family("vllm:prompt_tokens_cached", "counter", "prompt_cached",
           "Number of cached prompt tokens.", since=V0_16_0),
    Family("vllm:prompt_tokens_cached_by_source", "counter", "cached_by_source",
           "Prefix-cache hit tokens by the cache tier that supplied them.",
           labels=("source",), key_label="source", key_values=CACHE_HIT_SOURCES, since=V0_33_0),
    Family("vllm:prompt_tokens_recomputed", "counter", "prompt_recomputed",
           "Number of recomputed prompt tokens.", since=V0_16_0, until=V0_24_0),
    _success(FINISHED_REASONS, (0, 0, 0), V0_14_0),
    _success(FINISHED_REASONS_0_14, V0_14_0, V0_24_0),
    _success(FINISHED_REASONS_0_24, V0_24_0, None),
    Family("vllm:admission_rejections", "counter", "admission",
           "Number of admission attempts rejected by a queue limit, by reason.",
           labels=("model_name", "reason"), key_label="reason", key_values=ADMISSION_REASONS,
           since=V0_33_0, common_labels=False),
    Family("vllm:num_preemptions", "counter", "preemptions", "Cumulative number of preemption."),
    Family("vllm:time_to_first_token_seconds", "histogram", "ttft",
           "Histogram of time to first token in seconds.", buckets=TTFT_BUCKETS),
    Family("vllm:inter_token_latency_seconds", "histogram", "itl",
           "Histogram of inter-token latency in seconds.", buckets=ITL_BUCKETS, since=V0_10_2),
    Family("vllm:time_per_output_token_seconds", "histogram", "itl",
           "Histogram of time per output token in seconds. DEPRECATED.",
           buckets=ITL_BUCKETS, hidden_since=V0_12_0, until=V0_16_0),
    Family("vllm:request_time_per_output_token_seconds", "histogram", "req_tpot",
           "Histogram of time_per_output_token_seconds per request.",
           buckets=ITL_BUCKETS, since=V0_11_0),
    Family("vllm:e2e_request_latency_seconds", "histogram", "e2e",
           "Histogram of e2e request latency in seconds.", buckets=REQUEST_LATENCY_BUCKETS),
    Family("vllm:request_queue_time_seconds", "histogram", "queue",
           "Histogram of time spent in WAITING phase for request.",
           buckets=REQUEST_LATENCY_BUCKETS),
    Family("vllm:request_inference_time_seconds", "histogram", "inference_time",
           "Histogram of time spent in RUNNING phase for request.",
           buckets=REQUEST_LATENCY_BUCKETS),
    Family("vllm:request_prefill_time_seconds", "histogram", "prefill_time",
           "Histogram of time spent in PREFILL phase for request.",
           buckets=REQUEST_LATENCY_BUCKETS),
    Family("vllm:request_decode_time_seconds", "histogram", "decode_time",
           "Histogram of time spent in DECODE phase for request.",
           buckets=REQUEST_LATENCY_BUCKETS),
    Family("vllm:request_prompt_tokens", "histogram", "req_prompt_tokens",
           "Number of prefill tokens processed.", buckets=BUCKETS_1_2_5),
    Family("vllm:request_generation_tokens", "histogram", "req_gen_tokens",
           "Number of generation tokens processed.", buckets=BUCKETS_1_2_5),
    Family("vllm:request_max_num_generation_tokens", "histogram", "req_gen_tokens",
           "Histogram of maximum number of requested generation tokens.",
           buckets=BUCKETS_1_2_5),
    Family("vllm:request_params_max_tokens", "histogram", "req_params_max_tokens",
           "Histogram of the max_tokens request parameter.", buckets=BUCKETS_1_2_5),
    Family("vllm:request_params_n", "histogram", "req_params_n",
           "Histogram of the n request parameter.", buckets=PARAMS_N_BUCKETS),
    Family("vllm:request_num_preemptions", "histogram", "req_preemptions",
           "Histogram of the number of times a request was preempted.",
           buckets=REQUEST_NUM_PREEMPTIONS_BUCKETS, since=V0_33_0),
    Family("vllm:iteration_tokens_total", "histogram", "iteration_tokens",
           "Histogram of number of tokens per engine_step.", buckets=ITERATION_TOKENS_BUCKETS),
    Family("vllm:request_prefill_kv_computed_tokens", "histogram", "prefill_kv_computed",
           "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
           buckets=BUCKETS_1_2_5, since=(0, 13, 0)),
    # PerfMetricsProm: registered on every server, counted only with --enable-mfu-metrics.
    Family("vllm:estimated_flops_per_gpu", "counter", "perf_flops",
           "Estimated number of floating point operations per GPU.", since=V0_24_0),
    Family("vllm:estimated_read_bytes_per_gpu", "counter", "perf_read_bytes",
           "Estimated number of bytes read from memory per GPU.", since=V0_24_0),
    Family("vllm:estimated_write_bytes_per_gpu", "counter", "perf_write_bytes",
           "Estimated number of bytes written to memory per GPU.", since=V0_24_0),
    # KV connector / NIXL: registered per engine on every pod running NixlConnector. Which pod
    # records a transfer depends on who drives it: the decode pod for pull (it READs), the
    # prefill pod for NixlPushConnector (it WRITEs); see model.Deployment.transfer_recorder.
    Family("vllm:nixl_xfer_time_seconds", "histogram", "nixl_xfer",
           "Histogram of transfer duration for NIXL KV Cache transfers.",
           buckets=NIXL_XFER_TIME_BUCKETS, since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_post_time_seconds", "histogram", "nixl_post",
           "Histogram of transfer post time for NIXL KV Cache transfers.",
           buckets=NIXL_POST_TIME_BUCKETS, since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_bytes_transferred", "histogram", "nixl_bytes",
           "Histogram of bytes transferred per NIXL KV Cache transfers.",
           buckets=NIXL_BYTES_BUCKETS, since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_num_descriptors", "histogram", "nixl_descriptors",
           "Histogram of number of descriptors per NIXL KV Cache transfers.",
           buckets=NIXL_DESCRIPTORS_BUCKETS, since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_num_failed_transfers", "counter", "nixl_failed_transfers",
           "Number of failed NIXL KV Cache transfers.", since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_num_failed_notifications", "counter", "nixl_failed_notifications",
           "Number of failed NIXL KV Cache notifications.", since=V0_11_1, connector="nixl"),
    Family("vllm:nixl_num_kv_expired_reqs", "counter", "nixl_kv_expired",
           "Number of requests that had their KV expire (tracked on the P instance).",
           since=V0_16_0, connector="nixl"),
    Family("vllm:nixl_num_notifications_after_expiry", "counter", "nixl_notif_after_expiry",
           "Number of completion notifications for requests that were no longer tracked.",
           since=V0_33_0, connector="nixl"),
    # Mooncake is push-based: transfers are recorded on the prefill pod that sends.
    Family("vllm:mooncake_xfer_time_seconds", "histogram", "mc_xfer",
           "Histogram of transfer duration for Mooncake KV Cache transfers.",
           buckets=NIXL_XFER_TIME_BUCKETS, since=V0_33_0, connector="mooncake"),
    Family("vllm:mooncake_bytes_transferred", "histogram", "mc_bytes",
           "Histogram of bytes transferred per Mooncake KV Cache transfer.",
           buckets=NIXL_BYTES_BUCKETS, since=V0_33_0, connector="mooncake"),
    Family("vllm:mooncake_num_descriptors", "histogram", "mc_descriptors",
           "Histogram of number of descriptors per Mooncake KV Cache transfer.",
           buckets=NIXL_DESCRIPTORS_BUCKETS, since=V0_33_0, connector="mooncake"),
    Family("vllm:mooncake_num_failed_transfers", "counter", "mc_failed_transfers",
           "Number of failed Mooncake KV Cache transfers.", since=V0_33_0, connector="mooncake"),
    Family("vllm:mooncake_num_failed_recvs", "counter", "mc_failed_recvs",
           "Number of failed Mooncake KV Cache receives.", since=V0_33_0, connector="mooncake"),
    Family("vllm:mooncake_num_kv_expired_reqs", "counter", "mc_kv_expired",
           "Number of requests that had their KV expire (tracked on the P instance).",
           since=V0_33_0, connector="mooncake"),
)  # fmt: skip


def vllm_families(
    version: str | Version, *, nixl: bool = False, show_hidden: bool = False,
    connector: str | None = None, kv_consumer: bool = False,
) -> tuple[Family, ...]:
    """The families a vLLM of ``version`` exports.

    ``connector``: the KV connector metric set registered ("nixl", "mooncake" or None; ``nixl``
    is the older spelling of ``connector="nixl"``). ``kv_consumer``: a KV connector is
    configured with a kv_role that consumes KV (kv_consumer or kv_both), which adds the KV-fetch
    gauge on 0.33+ whether or not the connector has metrics of its own.
    ``show_hidden``: ``--show-hidden-metrics-for-version`` re-enables names deprecated one minor
    release earlier (so the old names of 0.11.x, or the old ITL name of 0.12-0.14).
    """
    v = parse_version(version) if isinstance(version, str) else version
    if nixl and connector is None:
        connector = "nixl"
    out = []
    for fam in VLLM_FAMILIES:
        if v < fam.since or (fam.until is not None and v >= fam.until):
            continue
        if fam.hidden_since is not None and v >= fam.hidden_since and not show_hidden:
            continue
        if fam.connector is not None and fam.connector != connector:
            continue
        if fam.kv_consumer and not kv_consumer:
            continue
        out.append(fam)
    return tuple(out)


def connector_metrics(kv_connector: str | None, version: str | Version) -> str | None:
    """The metric set ``kv_connector`` registers on a vLLM of ``version`` (None: none)."""
    if kv_connector is None or kv_connector not in CONNECTOR_METRICS:
        return None
    v = parse_version(version) if isinstance(version, str) else version
    kind, since = CONNECTOR_METRICS[kv_connector]
    return kind if v >= since else None


def vllm_has_nixl_metrics(version: str | Version) -> bool:
    """NIXL transfer metrics exist from vLLM 0.11.1 (0.11.0 only logged them)."""
    v = parse_version(version) if isinstance(version, str) else version
    return v >= V0_11_1


# --- EPP (reference sections 2 and 3.1) ------------------------------------------------------

GENERAL_LATENCY_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0,
    1200.0, 1800.0, 2700.0, 3600.0,
)  # fmt: skip
EPP_TTFT_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0,
)  # fmt: skip
# 32778 (not 32768) is what GAIE ships.
TOKEN_COUNT_BUCKETS = (
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
    32778.0, 65536.0, 131072.0, 262144.0, 524288.0, 1048576.0,
)  # fmt: skip
OUTPUT_TOKEN_BUCKETS = (
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
)  # fmt: skip
SCHEDULER_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)

DECISIONS = ("decode-only", "prefill-decode")
STREAMING = ("true", "false")
METRICS_SOURCE = "metrics-data-source"  # the datalayer source that scrapes the model servers
PD_PLUGIN = "pd-profile-handler"  # plugin_name / plugin_type of the llm-d-router counters


def _gaie_request_families(prefix: str, *, priority: bool) -> tuple[Family, ...]:
    """GAIE's per-objective request metrics (``inference_model_*`` / ``inference_objective_*``).

    client_golang ``*Vec`` children appear on first use, so these are ``lazy``: an idle EPP
    exports none of them.
    """
    model = ("model_name", "target_model_name")
    counter_labels = (*model, "priority") if priority else model
    return (
        Family(f"{prefix}_request", "counter", "epp_requests",
               "Counter of inference objective requests broken out for each model and target "
               "model.", labels=counter_labels, common_labels=False, lazy=True),
        Family(f"{prefix}_request_duration_seconds", "histogram", "epp_duration",
               "Inference objective response latency distribution in seconds for each model and "
               "target model.", labels=model, buckets=GENERAL_LATENCY_BUCKETS,
               common_labels=False, lazy=True),
        Family(f"{prefix}_input_tokens", "histogram", "epp_input_tokens",
               "Inference objective input token count distribution for requests in each model.",
               labels=model, buckets=TOKEN_COUNT_BUCKETS, common_labels=False, lazy=True),
        Family(f"{prefix}_output_tokens", "histogram", "epp_output_tokens",
               "Inference objective output token count distribution for requests in each model.",
               labels=model, buckets=OUTPUT_TOKEN_BUCKETS, common_labels=False, lazy=True),
        Family(f"{prefix}_running_requests", "gauge", "epp_running",
               "Inference objective number of running requests in each model.",
               labels=("model_name",), common_labels=False, lazy=True),
    )  # fmt: skip


def _pool_families(*, running: bool) -> tuple[Family, ...]:
    """``inference_pool_*``: set periodically from the model servers' scraped metrics."""
    fams = [
        Family("inference_pool_average_kv_cache_utilization", "gauge", "pool_kv",
               "The average kv cache utilization for an inference server pool.",
               labels=("name",), common_labels=False),
        Family("inference_pool_average_queue_size", "gauge", "pool_queue",
               "The average number of requests pending in the model server queue.",
               labels=("name",), common_labels=False),
        Family("inference_pool_ready_pods", "gauge", "pool_ready",
               "The number of ready pods in the inference server pool.",
               labels=("name",), common_labels=False),
        Family("inference_pool_per_pod_queue_size", "gauge", "pool_pod_queue",
               "The total number of requests pending in the model server queue for each "
               "underlying pod.", labels=("name", "model_server_pod"),
               key_label="model_server_pod", common_labels=False, dynamic=True),
    ]  # fmt: skip
    if running:
        fams.insert(
            2,
            Family("inference_pool_average_running_requests", "gauge", "pool_running",
                   "The average number of running requests across model servers in the pool.",
                   labels=("name",), common_labels=False),
        )  # fmt: skip
    return tuple(fams)


SCHEDULER_E2E = Family(
    "inference_extension_scheduler_e2e_duration_seconds", "histogram", "sched_e2e",
    "End-to-end scheduling latency distribution in seconds.",
    buckets=SCHEDULER_BUCKETS, common_labels=False, lazy=True,
)  # fmt: skip


def _decision_family(name: str, labels: tuple[str, ...]) -> Family:
    # The profile handler records request.TargetModel (disagg_profile_handler.go): the target.
    return Family(name, "counter", "decision", "Total number of P/D disaggregation decisions made",
                  labels=labels, key_label="decision_type", key_values=DECISIONS,
                  common_labels=False, lazy=True,
                  label_from=(("model_name", "target_model_name"),))  # fmt: skip


def _poll_errors_family(name: str) -> Family:
    # pkg/epp/datalayer/collector.go: one per failed Dispatch of a data source for an endpoint.
    return Family(name, "counter", "epp_poll_errors", "[ALPHA] Data-source poll errors per source type.",
                  labels=("source_type",), key_label="source_type", key_values=(METRICS_SOURCE,),
                  common_labels=False, lazy=True)  # fmt: skip


LLM_D_EPP_FAMILIES: tuple[Family, ...] = (
    Family("llm_d_epp_request", "counter", "epp_requests", "Total number of processed requests.",
           labels=("model_name", "target_model_name", "fairness_id", "priority"),
           common_labels=False, lazy=True),
    Family("llm_d_epp_request_duration_seconds", "histogram", "epp_duration",
           "End-to-end request latency distribution in seconds.",
           labels=("model_name", "target_model_name", "fairness_id", "priority"),
           buckets=GENERAL_LATENCY_BUCKETS, common_labels=False, lazy=True),
    Family("llm_d_epp_request_ttft_seconds", "histogram", "epp_ttft",
           "Time to first token in seconds, measured from request received to first response "
           "byte. For non-streaming requests, this equals total request duration.",
           labels=("model_name", "target_model_name", "fairness_id", "priority", "streaming"),
           key_label="streaming", key_values=STREAMING, buckets=EPP_TTFT_BUCKETS, common_labels=False,
           lazy=True),
    Family("llm_d_epp_request_input_tokens", "histogram", "epp_input_tokens",
           "Input token count distribution per request.",
           labels=("model_name", "target_model_name", "fairness_id", "priority"),
           buckets=TOKEN_COUNT_BUCKETS, common_labels=False, lazy=True),
    Family("llm_d_epp_request_output_tokens", "histogram", "epp_output_tokens",
           "Output token count distribution per request.",
           labels=("model_name", "target_model_name", "fairness_id", "priority"),
           buckets=OUTPUT_TOKEN_BUCKETS, common_labels=False, lazy=True),
    Family("llm_d_epp_request_running", "gauge", "epp_running",
           "Current number of active running requests.",
           labels=("model_name", "target_model_name", "fairness_id", "priority"),
           common_labels=False, lazy=True),
    Family("llm_d_epp_average_kv_cache_utilization", "gauge", "pool_kv",
           "The average kv cache utilization for an inference server pool.",
           labels=("name",), common_labels=False),
    Family("llm_d_epp_average_queue_size", "gauge", "pool_queue",
           "The average number of requests pending in the model server queue.",
           labels=("name",), common_labels=False),
    Family("llm_d_epp_average_running_requests", "gauge", "pool_running",
           "The average number of running requests across model servers in the pool.",
           labels=("name",), common_labels=False),
    Family("llm_d_epp_ready_endpoints", "gauge", "pool_ready",
           "The number of ready endpoints in the inference server pool.",
           labels=("name",), common_labels=False),
    Family("llm_d_epp_per_endpoint_queue_size", "gauge", "pool_pod_queue",
           "The total number of requests pending in the model server queue for each underlying "
           "endpoint.", labels=("name", "model_server_endpoint"),
           key_label="model_server_endpoint", common_labels=False, dynamic=True),
    Family("llm_d_epp_scheduler_e2e_duration_seconds", "histogram", "sched_e2e",
           "End-to-end scheduling latency distribution in seconds.",
           buckets=SCHEDULER_BUCKETS, common_labels=False, lazy=True),
)  # fmt: skip

# Label values the EPP puts on the request metrics besides the model names.
EPP_LABEL_VALUES = {
    "priority": "0",
    "fairness_id": "default",
    "streaming": "true",
    "plugin_name": PD_PLUGIN,
    "plugin_type": PD_PLUGIN,
}


@dataclass(frozen=True)
class EppProfile:
    """What one EPP build exports: its request-metric prefix, pool metrics, decision counters.

    ``releases`` are the contract keys (``contract/epp/<key>.json``) whose families this profile
    renders; tests/test_contract.py holds each rendered family to every one of them.
    """

    key: str
    description: str
    families: tuple[Family, ...]
    decision_counters: tuple[str, ...]  # exposed names (with _total), for documentation/tests
    releases: tuple[str, ...] = ()


def _profile(key: str, description: str, releases: tuple[str, ...],
             families: tuple[Family, ...]) -> EppProfile:  # fmt: skip
    counters = tuple(f.name + "_total" for f in families if f.source == "decision")
    return EppProfile(key, description, families, counters, releases)


_SCHED = "llm-d-inference-scheduler-"
_MODEL_DECISION = ("model_name", "decision_type")
_ROUTER_DECISION = ("plugin_name", "plugin_type", "model_name", "decision_type")

EPP_PROFILES: dict[str, EppProfile] = {
    p.key: p
    for p in (
        _profile(
            "inference_model",
            "llm-d-inference-scheduler v0.2/v0.3 (GAIE v0.5-v1.0): inference_model_* and "
            "inference_pool_*, no P/D decision counter yet",
            ("gaie-v0.5.1", "gaie-v1.0.0", f"{_SCHED}v0.2.1", f"{_SCHED}v0.3.2"),
            (*_gaie_request_families("inference_model", priority=False),
             *_pool_families(running=False), SCHEDULER_E2E),
        ),
        _profile(
            "inference_objective_v0_4",
            "llm-d-inference-scheduler v0.4 (GAIE v1.2): inference_objective_* and "
            "inference_pool_*, llm_d_inference_scheduler_pd_decision_total by decision_type only "
            "(no model_name)",
            (f"{_SCHED}v0.4.0",),
            (*_gaie_request_families("inference_objective", priority=False),
             *_pool_families(running=False), SCHEDULER_E2E,
             _decision_family("llm_d_inference_scheduler_pd_decision", ("decision_type",))),
        ),
        _profile(
            "inference_objective",
            "llm-d-inference-scheduler v0.5/v0.6 (GAIE v1.3): inference_objective_* and "
            "inference_pool_*, llm_d_inference_scheduler_pd_decision_total",
            (f"{_SCHED}v0.5.1", f"{_SCHED}v0.6.1"),
            (*_gaie_request_families("inference_objective", priority=False),
             *_pool_families(running=False), SCHEDULER_E2E,
             _decision_family("llm_d_inference_scheduler_pd_decision", _MODEL_DECISION)),
        ),
        _profile(
            "inference_objective_disagg_v0_7",
            "llm-d-inference-scheduler v0.7 (GAIE v1.4): as inference_objective plus "
            "llm_d_inference_scheduler_disagg_decision_total beside the deprecated pd_decision "
            "(no priority label, no average_running_requests yet)",
            (f"{_SCHED}v0.7.1",),
            (*_gaie_request_families("inference_objective", priority=False),
             *_pool_families(running=False), SCHEDULER_E2E,
             _decision_family("llm_d_inference_scheduler_pd_decision", _MODEL_DECISION),
             _decision_family("llm_d_inference_scheduler_disagg_decision", _MODEL_DECISION)),
        ),
        _profile(
            "inference_objective_disagg",
            "llm-d-inference-scheduler v0.8 (GAIE v1.5): as v0.7 plus the priority label and "
            "average_running_requests",
            (f"{_SCHED}v0.8.0",),
            (*_gaie_request_families("inference_objective", priority=True),
             *_pool_families(running=True), SCHEDULER_E2E,
             _decision_family("llm_d_inference_scheduler_pd_decision", _MODEL_DECISION),
             _decision_family("llm_d_inference_scheduler_disagg_decision", _MODEL_DECISION)),
        ),
        _profile(
            "llm_d_router",
            "llm-d-router v0.9/v0.10: dual emission of the legacy inference_* names and "
            "llm_d_epp_* (incl. llm_d_epp_ready_endpoints), four decision counters",
            ("llm-d-router-v0.9.0", "llm-d-router-v0.10.0", "llm-d-router-main"),
            (*_gaie_request_families("inference_objective", priority=True),
             *_pool_families(running=True), SCHEDULER_E2E, *LLM_D_EPP_FAMILIES,
             _decision_family("llm_d_inference_scheduler_pd_decision", _MODEL_DECISION),
             _decision_family("llm_d_epp_pd_decision", _ROUTER_DECISION),
             _decision_family("llm_d_inference_scheduler_disagg_decision", _MODEL_DECISION),
             _decision_family("llm_d_epp_disagg_decision", _ROUTER_DECISION),
             _poll_errors_family("llm_d_inference_scheduler_datalayer_poll_errors"),
             _poll_errors_family("llm_d_epp_datalayer_poll_errors")),
        ),
    )
}  # fmt: skip

# The Prometheus-generated series every target gets.
UP = Family("up", "gauge", "up", "Whether the target was scraped successfully.",
            common_labels=False)  # fmt: skip
