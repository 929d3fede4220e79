"""A deployment and its behaviour over time, stepped one scrape at a time.

The three renderings (promtool ``input_series``, timestamped OpenMetrics, live ``/metrics``) all
read the same :class:`Simulation`, so they cannot disagree about what a scenario means.

How the numbers are made (vLLM 0.12 semantics, reference section 1.4):

* Client requests arrive at ``rps``; the EPP sends each one either ``prefill-decode`` (when a
  prefill pod is routable and the EPP runs the P/D profile handler) or ``decode-only``.
* A ``prefill-decode`` request finishes once on a prefill pod (``finished_reason="length"``, one
  generated token, the full prompt counted in ``prompt_tokens``) and once on a decode pod (the
  prompt counted again, the real output). The decode pod pulls the KV blocks over NIXL: one
  transfer handle per request, recorded only on the decode side; the pull wait is booked as
  *queue* time on decode and so lands in decode TTFT.
* A ``decode-only`` request (collapsed P/D, aggregated serving, warm-up) is prefilled and decoded
  on the decode pod; no transfer.
* ``vllm:iteration_tokens_total`` sums the tokens each engine step computed: uncached prompt
  tokens on whichever pod prefilled, generated tokens on decode.
* Every histogram ``_count`` equals the matching request counter (TTFT, E2E, queue, prefill,
  decode and inference times are all observed once per finished request); ITL is observed
  ``output_tokens - 1`` times per decode request.
* Gauges are time-averaged instantaneous values (Little's law: arrival rate x time in state),
  rounded to 1/4096, so averages over a window are exact and deterministic.
* Sums are rounded to multiples of 2**-16 s and counts are integers, so every cumulative value is
  exactly representable: the promtool rendering's expanding notation reproduces the very same
  floats the OpenMetrics rendering writes.

Randomness only comes from ``jitter`` (default 0) through a seeded generator, so a scenario is a
pure function of its parameters.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from simulator.metrics import (
    BUCKETS_1_2_5,
    EPP_LABEL_VALUES,
    EPP_PROFILES,
    UP,
    Family,
    buckets_1_2_5,
    connector_metrics,
    parse_version,
    vllm_families,
)

ROLES = ("prefill", "decode")
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s SafeEncodeString, used for pod name hashes
_SUM_QUANTUM = 65536.0  # 2**16: sums are multiples of 1/65536
_GAUGE_QUANTUM = 4096.0


def _hash_text(parts: Sequence[object], length: int) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return "".join(_K8S_ALPHABET[b % len(_K8S_ALPHABET)] for b in digest[:length])


def _hash_int(parts: Sequence[object]) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def format_le(bound: float) -> str:
    """An ``le`` value as prometheus_client writes it (``floatToGoString``): 1.0, 2.5e+09, +Inf.

    Prometheus 3 normalises ``le`` to this form on ingestion too, so a query with ``le="1.0"``
    works on every rendering.
    """
    if math.isinf(bound):
        return "+Inf"
    text = repr(float(bound))
    dot = text.find(".")
    if bound > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_labels(labels: Sequence[tuple[str, str]]) -> str:
    """``a="b",c="d"`` (no braces) for exposition and PromQL selectors alike."""
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)


# --- what is deployed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A model-server pod. ``key`` (``prefill-0``, ``decode-1``, ``decode-r2-0``) is how
    scenarios refer to it; ``name`` is what Kubernetes calls it."""

    key: str
    role: str
    name: str
    ip: str
    start_min: float | None = None  # None: running before the scenario starts
    end_min: float | None = None  # None: still running when it ends

    def exists(self, minute: float) -> bool:
        if self.start_min is not None and minute < self.start_min:
            return False
        return self.end_min is None or minute < self.end_min


@dataclass(frozen=True)
class Deployment:
    """One llm-d model-service release plus its EPP, as Prometheus would discover it.

    Pod names follow llm-d-modelservice (``<release>-llm-d-modelservice-<role>-<rs hash>-<id>``),
    vLLM targets are PodMonitor targets (``job="<ns>/<release>-llm-d-modelservice-<role>-
    podmonitor"``, ``instance=<pod IP>:8000`` on prefill and ``:8200`` on decode, where vLLM sits
    behind the routing sidecar), the EPP a ServiceMonitor target (``job="<pool>-epp"``).
    ``role_label`` adds a relabelled role label (e.g. ``llm_d_ai_role``) to every vLLM target, as
    a user relabelling ``llm-d.ai/role`` would get. ``cluster`` adds a ``cluster`` label to every
    series (an external label or relabelling in a multi-cluster setup).
    """

    namespace: str = "llm-d"
    release: str = "ms-pd"
    model_name: str = "Qwen/Qwen3-0.6B"
    pool_name: str = "gaie-pd"
    prefill_pods: int = 1
    decode_pods: int = 1
    vllm_version: str = "0.12.0"
    epp_family: str = "inference_objective"
    cluster: str | None = None
    role_label: str | None = None
    # NixlConnector (pull; NixlPullConnector in 0.24+), NixlPushConnector, MooncakeConnector, or
    # None: aggregated serving, no KV connector.
    kv_connector: str | None = "NixlConnector"
    # True: every pod runs kv_role kv_both (llm-d's guides up to vLLM 0.16); False: kv_producer
    # on prefill, kv_consumer on decode (vLLM 0.24+ deprecates kv_both).
    kv_both: bool = True
    # What a failed KV load does to the decode request: "recompute" the prompt locally or
    # "fail" it (finished_reason="error"). None: vLLM's default (recompute < 0.24 <= fail).
    kv_load_failure_policy: str | None = None
    pd_scheduler: bool = True  # the EPP runs the P/D profile handler (decision counters)
    # The model name clients send, when an InferenceModelRewrite (or a LoRA adapter's name) makes
    # it differ from the served model: the EPP's request metrics carry it as model_name, the
    # served one as target_model_name; vLLM and the decision counters carry the served one.
    epp_model_name: str | None = None
    nixl_metrics: bool | None = None  # None: whatever the vLLM version exports
    show_hidden_metrics: bool = False
    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.45
    num_gpu_blocks: int = 8192
    block_size: int = 16
    num_layers: int = 28  # Qwen3-0.6B; sets NIXL descriptors per transfer
    seed: int = 0
    extra_pods: tuple[Pod, ...] = ()
    retired: tuple[tuple[str, float], ...] = ()  # (pod key, minute it is deleted)

    def __post_init__(self) -> None:
        if self.epp_family not in EPP_PROFILES:
            raise ValueError(
                f"epp_family {self.epp_family!r}: expected one of {sorted(EPP_PROFILES)}"
            )
        if self.prefill_pods < 0 or self.decode_pods < 0:
            raise ValueError("pod counts must be >= 0")
        parse_version(self.vllm_version)

    def make_pod(
        self, role: str, index: int, *, revision: int = 1, start_min: float | None = None
    ) -> Pod:
        """A pod of ``role``; a new ``revision`` gets a new ReplicaSet hash, as a rollout does."""
        rs_hash = _hash_text((self.seed, self.release, role, revision), 10)
        suffix = _hash_text((self.seed, self.release, role, revision, index), 5)
        h = _hash_int((self.seed, self.release, role, revision, index))
        ip = f"10.{128 + h % 64}.{(h >> 8) % 256}.{2 + (h >> 16) % 250}"
        key = f"{role}-{index}" if revision == 1 else f"{role}-r{revision}-{index}"
        name = f"{self.release}-llm-d-modelservice-{role}-{rs_hash}-{suffix}"
        return Pod(key, role, name, ip, start_min)

    @cached_property
    def pods(self) -> tuple[Pod, ...]:
        base = [self.make_pod("prefill", i) for i in range(self.prefill_pods)]
        base += [self.make_pod("decode", i) for i in range(self.decode_pods)]
        ends = dict(self.retired)
        out = [replace(p, end_min=ends[p.key]) if p.key in ends else p for p in base]
        return (*out, *self.extra_pods)

    def pod(self, key: str) -> Pod:
        for p in self.pods:
            if p.key == key:
                return p
        raise KeyError(f"no pod {key!r} in deployment (have {[p.key for p in self.pods]})")

    def pod_keys(self, role: str) -> frozenset[str]:
        return frozenset(p.key for p in self.pods if p.role == role)

    @cached_property
    def epp_pod_name(self) -> str:
        return (
            f"{self.pool_name}-epp-{_hash_text((self.seed, self.pool_name, 'epp'), 10)}-"
            f"{_hash_text((self.seed, self.pool_name, 'epp', 0), 5)}"
        )

    @property
    def epp_job(self) -> str:
        return f"{self.pool_name}-epp"

    @property
    def kv_metrics(self) -> str | None:
        """The KV connector metric set vLLM registers: "nixl", "mooncake" or None."""
        kind = connector_metrics(self.kv_connector, self.vllm_version)
        if self.nixl_metrics is not None and self.kv_connector is not None:
            return "nixl" if self.nixl_metrics and kind in (None, "nixl") else None
        return kind

    @property
    def exports_nixl(self) -> bool:
        """Whether vLLM registers the NIXL transfer metrics at all."""
        return self.kv_metrics == "nixl"

    @property
    def transfer_recorder(self) -> str | None:
        """The role whose pods record a KV transfer: the side that drives it.

        Pull NIXL: decode READs the blocks. NixlPushConnector: prefill WRITEs them
        (nixl/push_worker.py pops its ``_sending_transfers``). Mooncake is push-based too.
        """
        if self.kv_connector is None:
            return None
        return "prefill" if self.kv_connector in ("NixlPushConnector", "MooncakeConnector") else "decode"

    @property
    def failure_policy(self) -> str:
        if self.kv_load_failure_policy is not None:
            return self.kv_load_failure_policy
        return "fail" if parse_version(self.vllm_version) >= (0, 24, 0) else "recompute"

    def kv_consumer(self, role: str) -> bool:
        """Whether pods of ``role`` consume KV (kv_consumer or kv_both)."""
        return self.kv_connector is not None and (self.kv_both or role == "decode")

    def vllm_target_labels(self, pod: Pod) -> tuple[tuple[str, str], ...]:
        labels: list[tuple[str, str]] = []
        if self.cluster:
            labels.append(("cluster", self.cluster))
        port = 8000 if pod.role == "prefill" else 8200
        labels += [
            ("namespace", self.namespace),
            ("pod", pod.name),
            ("job", f"{self.namespace}/{self.release}-llm-d-modelservice-{pod.role}-podmonitor"),
            ("instance", f"{pod.ip}:{port}"),
            ("container", "vllm"),
            ("endpoint", "metrics"),
        ]
        if self.role_label:
            labels.append((self.role_label, pod.role))
        return tuple(labels)

    def epp_target_labels(self) -> tuple[tuple[str, str], ...]:
        h = _hash_int((self.seed, self.pool_name, "epp-ip"))
        labels: list[tuple[str, str]] = []
        if self.cluster:
            labels.append(("cluster", self.cluster))
        labels += [
            ("namespace", self.namespace),
            ("pod", self.epp_pod_name),
            ("job", self.epp_job),
            ("instance", f"10.{128 + h % 64}.{(h >> 8) % 256}.{2 + (h >> 16) % 250}:9090"),
            ("container", "epp"),
            ("endpoint", "http-metrics"),
            ("service", self.epp_job),
        ]
        return tuple(labels)

    def vllm_context(self) -> dict[str, str]:
        """Constant label values of vLLM series."""
        return {
            "_max_model_len": str(self.max_model_len),
            "model_name": self.model_name,
            "engine": "0",
            "block_size": str(self.block_size),
            "cache_dtype": "auto",
            "enable_prefix_caching": "True",
            "gpu_memory_utilization": str(self.gpu_memory_utilization),
            "num_gpu_blocks": str(self.num_gpu_blocks),
        }

    def epp_context(self) -> dict[str, str]:
        return {
            **EPP_LABEL_VALUES,
            "model_name": self.epp_model_name or self.model_name,
            "target_model_name": self.model_name,
            "name": self.pool_name,
        }

    def vllm_families_for(self, role: str) -> tuple[Family, ...]:
        return self._role_families[role]

    @cached_property
    def _role_families(self) -> dict[str, tuple[Family, ...]]:
        out = {}
        for role in ROLES:
            out[role] = vllm_families(self.vllm_version, connector=self.kv_metrics,
                                      show_hidden=self.show_hidden_metrics,
                                      kv_consumer=self.kv_consumer(role))  # fmt: skip
        return out

    @cached_property
    def vllm_families(self) -> tuple[Family, ...]:
        """Every family some pod of this deployment exports (decode's set holds prefill's)."""
        return self._role_families["decode"]

    @cached_property
    def epp_families(self) -> tuple[Family, ...]:
        fams = EPP_PROFILES[self.epp_family].families
        if not self.pd_scheduler:  # no P/D profile handler: the decision counters never move
            fams = tuple(f for f in fams if f.source != "decision")
        return fams

    @property
    def kv_capacity_tokens(self) -> int:
        return self.num_gpu_blocks * self.block_size


# --- how it behaves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """Traffic, latencies and faults in force at one minute. Latencies are means in seconds."""

    rps: float = 10.0  # client requests per second into the pool
    prompt_tokens: int = 1024
    output_tokens: int = 96
    cache_hit_ratio: float = 0.5  # share of prompt tokens found in the local prefix cache
    stop_ratio: float = 0.9  # decode requests finishing with "stop" (the rest hit max_tokens)
    jitter: float = 0.0  # +- relative noise on the arrival rate
    sigma: float = 0.25  # log-normal spread of latency observations
    token_sigma: float = 0.3  # log-normal spread of token-count observations
    prefill_queue_s: float = 0.005  # prefill pod: waiting before scheduled
    prefill_compute_s: float = 0.04  # prefill pod: the prompt's forward pass
    decode_first_step_s: float = 0.006  # decode pod: first step after the KV arrived
    itl_s: float = 0.005
    local_queue_s: float = 0.003  # decode pod prefilling itself (decode-only request)
    local_prefill_s: float = 0.012
    nixl_xfer_s: float = 0.02
    nixl_post_s: float = 0.002
    nixl_handshake_s: float = 0.004  # part of the KV pull wait that is not the transfer itself
    nixl_fail_ratio: float = 0.0  # failed / attempted transfers
    nixl_notif_fail_ratio: float = 0.0  # failed NIXL notifications per successful transfer
    kv_bytes_per_token: int = 114688  # Qwen3-0.6B: 28 layers x 8 KV heads x 128 x 2 x bf16
    epp_overhead_s: float = 0.003
    epp_scheduling_s: float = 0.0004
    streaming_ratio: float = 1.0  # client requests that stream (the rest get the answer in one piece)
    epp_poll_errors_per_s: float = 0.0  # the EPP's failed polls of model-server metrics (llm-d-router)
    preemptions_per_min: float = 0.0
    epp_hidden: frozenset[str] = frozenset()  # pod keys the EPP does not count as ready
    down: frozenset[str] = frozenset()  # pod keys whose scrape fails (up == 0, serving nothing)
    restarts: tuple[tuple[str, int], ...] = ()  # (pod key, restarts so far): counters reset
    scrape_missed: bool = False  # Prometheus takes no sample of anything (its own outage)

    def restart_count(self, key: str) -> int:
        for k, n in self.restarts:
            if k == key:
                return n
        return 0


@dataclass(frozen=True)
class Phase:
    """Condition changes in force from ``start_min`` (inclusive) to ``end_min`` (exclusive)."""

    start_min: float
    end_min: float | None
    changes: tuple[tuple[str, Any], ...]

    @staticmethod
    def of(start_min: float, end_min: float | None, **changes: Any) -> Phase:
        for name in changes:
            if name not in Conditions.__dataclass_fields__:
                raise TypeError(f"unknown condition {name!r}")
        return Phase(start_min, end_min, tuple(changes.items()))

    def active(self, minute: float) -> bool:
        return self.start_min <= minute and (self.end_min is None or minute < self.end_min)


@dataclass(frozen=True)
class Run:
    """A deployment with its base conditions and the phases (faults) applied over them."""

    deployment: Deployment
    base: Conditions = field(default_factory=Conditions)
    phases: tuple[Phase, ...] = ()

    def conditions_at(self, minute: float) -> Conditions:
        c = self.base
        for ph in self.phases:
            if ph.active(minute):
                c = replace(c, **dict(ph.changes))
        return c


# --- the engine ---------------------------------------------------------------------------------

Obs = tuple[float, float, float]  # (count, mean, log-normal sigma); sigma 0 = all at the mean


@dataclass
class SeriesInfo:
    """One exposed series: ``name{<target labels>,<metric labels>}``."""

    name: str
    metric_labels: str  # rendered, no braces, includes le
    target: int  # Target.tid


@dataclass
class MetricInfo:
    """One child of a family on one target: the series that form one OpenMetrics MetricPoint."""

    family: Family
    target: int
    sids: list[int] = field(default_factory=list)


class Registry:
    """Stable ids for every series ever exposed, grouped by family for exposition."""

    def __init__(self) -> None:
        self.series: list[SeriesInfo] = []
        self.metrics: list[MetricInfo] = []
        self.families: dict[str, Family] = {}
        self.family_metrics: dict[str, list[int]] = {}
        self._sid: dict[tuple[int, str], int] = {}
        self._mid: dict[tuple[int, str, str], int] = {}

    def metric(self, tid: int, fam: Family, child: str) -> int:
        key = (tid, fam.name, child)
        mid = self._mid.get(key)
        if mid is None:
            mid = len(self.metrics)
            self._mid[key] = mid
            self.metrics.append(MetricInfo(fam, tid))
            self.families.setdefault(fam.name, fam)
            self.family_metrics.setdefault(fam.name, []).append(mid)
        return mid

    def sid(self, tid: int, mid: int, name: str, metric_labels: str) -> int:
        key = (tid, f"{name}{{{metric_labels}}}")
        sid = self._sid.get(key)
        if sid is None:
            sid = len(self.series)
            self._sid[key] = sid
            self.series.append(SeriesInfo(name, metric_labels, tid))
            self.metrics[mid].sids.append(sid)
        return sid


@dataclass
class Layout:
    """Where each series of one target sits in its value list, and how each is updated."""

    sids: list[int]
    keys: list[str]
    counters: list[tuple[int, str]]
    gauges: list[tuple[int, str]]
    hists: list[tuple[int, tuple[float, ...], str]]  # (first bucket index, bounds, activity key)


class Target:
    """A scrape target: one vLLM pod or one EPP pod, with its cumulative values."""

    def __init__(
        self, tid: int, ident: str, kind: str, labels: tuple[tuple[str, str], ...]
    ) -> None:
        self.tid = tid
        self.ident = ident
        self.kind = kind  # "vllm" | "epp"
        self.labels = labels
        self.label_str = render_labels(labels)
        self.layout: Layout | None = None
        self.layout_key: object = None
        self.values: list[float] = []
        self.lazy_on: frozenset[str] = frozenset()
        self.restarts = 0
        self.up_sid = -1
        self.up_mid = -1
        # Per-target carries that keep integer splits exact over time.
        self.carry: dict[str, float] = {}

    def label(self, name: str) -> str | None:
        for k, v in self.labels:
            if k == name:
                return v
        return None


@dataclass
class FrameEntry:
    target: Target
    up: float  # 1 scraped, 0 scrape failed (then ``target.values`` must not be read)


@dataclass
class Frame:
    """What Prometheus would store at one scrape. Entries are only valid until the next step."""

    step: int
    minute: float
    missed: bool  # no sample at all was taken (Prometheus itself down)
    entries: list[FrameEntry]


class _Buckets:
    """Cumulative bucket increments for ``n`` log-normal observations around ``mean``.

    Cached, since with steady traffic the same (n, mean) recurs every step; entries are
    ``(index, increment)`` pairs with the zero increments left out."""

    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[float, ...], float, float, float], list[tuple[int, int]]]
        self._cache = {}

    def increments(
        self, bounds: tuple[float, ...], n: float, mean: float, sigma: float
    ) -> list[tuple[int, int]]:
        key = (bounds, n, mean, sigma)
        got = self._cache.get(key)
        if got is not None:
            return got
        if sigma <= 0 or mean <= 0:
            fractions = [1.0 if mean <= b else 0.0 for b in bounds]
        else:
            mu = math.log(mean) - sigma * sigma / 2
            scale = sigma * math.sqrt(2.0)
            fractions = [0.5 * (1 + math.erf((math.log(b) - mu) / scale)) if b > 0 else 0.0
                         for b in bounds]  # fmt: skip
        # round() of a non-decreasing fraction keeps the buckets cumulative.
        got = [(j, c) for j, f in enumerate(fractions) if (c := round(n * f))]
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = got
        return got


def _q_sum(x: float) -> float:
    return round(x * _SUM_QUANTUM) / _SUM_QUANTUM


def _q_gauge(x: float) -> float:
    return round(x * _GAUGE_QUANTUM) / _GAUGE_QUANTUM


def _split(total: int, weights: Mapping[str, float], carry: dict[str, float]) -> dict[str, int]:
    """Split ``total`` integer requests over keys by weight; remainders carry to later steps."""
    wsum = sum(weights.values())
    if total == 0 or wsum <= 0:
        return dict.fromkeys(weights, 0)
    out: dict[str, int] = {}
    for k, w in weights.items():
        carry[k] = carry.get(k, 0.0) + total * w / wsum
        out[k] = int(carry[k])
    left = total - sum(out.values())
    for k in sorted(weights, key=lambda k: carry[k] - out[k], reverse=True)[:left]:
        out[k] += 1
    for k in weights:
        carry[k] -= out[k]
    return out


def _take(carry: dict[str, float], key: str, amount: float) -> int:
    """Integer part of a running total (for splits such as stop/length or failed transfers)."""
    carry[key] = carry.get(key, 0.0) + amount
    n = int(carry[key] + 1e-9)
    carry[key] -= n
    return n


class _RunState:
    def __init__(self, index: int, run: Run, minute_offset: float) -> None:
        self.index = index
        self.run = run
        self.minute_offset = minute_offset
        dep = run.deployment
        self.rng = random.Random(_hash_int((dep.seed, dep.cluster, dep.namespace, index)))
        self.arrivals = 0.0
        self.carry: dict[str, float] = {}


class Simulation:
    """Steps a set of runs (one per deployment) scrape by scrape.

    ``advance()`` returns the next :class:`Frame`; step 0 is the scenario's minute 0. Counters
    start at 0 at step 0 (and for a pod that appears or restarts, at its first step).
    ``switch()`` swaps the behaviour for a live endpoint while every counter keeps growing.
    """

    def __init__(self, runs: Sequence[Run], step_s: float = 30.0) -> None:
        if step_s <= 0:
            raise ValueError("step_s must be > 0")
        self.step_s = float(step_s)
        self.registry = Registry()
        self.targets: dict[str, Target] = {}
        self.targets_by_tid: list[Target] = []
        self.step = 0
        self._buckets = _Buckets()
        self._runs = [_RunState(i, r, 0.0) for i, r in enumerate(runs)]

    # -- public ------------------------------------------------------------------------------

    def switch(self, runs: Sequence[Run], at_minute: float = 0.0) -> None:
        """From the next step on, play ``runs`` starting at their minute ``at_minute``.

        Targets are matched by identity (cluster, namespace, pod), so a pod present in both keeps
        its counters; pods only in the old runs disappear (their series go stale)."""
        offset = at_minute - self.step * self.step_s / 60.0
        self._runs = [_RunState(i, r, offset) for i, r in enumerate(runs)]

    def advance(self) -> Frame:
        k = self.step
        minute = k * self.step_s / 60.0
        entries: list[FrameEntry] = []
        missed = False
        for rs in self._runs:
            run_minute = minute + rs.minute_offset
            cond = rs.run.conditions_at(run_minute)
            missed = missed or cond.scrape_missed
            entries.extend(self._step_run(rs, cond, run_minute, first=(k == 0)))
        self.step += 1
        return Frame(k, minute, missed, entries)

    def frames(self, n_steps: int) -> Iterator[Frame]:
        for _ in range(n_steps):
            yield self.advance()

    # -- internals ---------------------------------------------------------------------------

    def _target(self, ident: str, kind: str, labels: tuple[tuple[str, str], ...]) -> Target:
        t = self.targets.get(ident)
        if t is None:
            t = Target(len(self.targets), ident, kind, labels)
            t.up_mid = self.registry.metric(t.tid, UP, "")
            t.up_sid = self.registry.sid(t.tid, t.up_mid, "up", "")
            self.targets[ident] = t
            self.targets_by_tid.append(t)
        return t

    def _step_run(
        self, rs: _RunState, cond: Conditions, minute: float, *, first: bool
    ) -> list[FrameEntry]:
        dep = rs.run.deployment
        dt = self.step_s
        present = [p for p in dep.pods if p.exists(minute)]
        scraped = {p.key: p.key not in cond.down for p in present}
        routable = [p for p in present if scraped[p.key] and p.key not in cond.epp_hidden]
        r_prefill = [p for p in routable if p.role == "prefill"]
        r_decode = [p for p in routable if p.role == "decode"]

        # Client arrivals this step (none at step 0: counters start from zero).
        noise = 1.0 + cond.jitter * (2.0 * rs.rng.random() - 1.0) if cond.jitter else 1.0
        n_total = 0
        if not first and r_decode:  # with no decode pod to take them, requests just fail
            before = rs.arrivals
            rs.arrivals += cond.rps * dt * noise
            n_total = int(rs.arrivals) - int(before)
        # The P/D profile handler sends a request through prefill only when it can pick a
        # prefill pod; otherwise it falls back to decode-only (the post-mortem's collapse).
        disagg = bool(r_prefill) and dep.pd_scheduler and dep.kv_connector is not None
        n_pd = n_total if disagg else 0
        n_local = n_total - n_pd
        rate_total = cond.rps if r_decode else 0.0
        rate_pd = rate_total if disagg else 0.0

        prefill_split = _split(n_pd, {p.key: 1.0 for p in r_prefill}, rs.carry)
        decode_split = _split(n_total, {p.key: 1.0 for p in r_decode}, rs.carry)
        prefill_rate = rate_pd / len(r_prefill) if r_prefill else 0.0
        decode_rate = rate_total / len(r_decode) if r_decode else 0.0
        capacity = float(dep.kv_capacity_tokens)

        entries: list[FrameEntry] = []
        vllm_gauges: dict[str, tuple[float, float, float]] = {}  # pod name -> kv, waiting, running
        ctx = dep.vllm_context()
        for pod in present:
            ident = f"{dep.cluster or ''}/{dep.namespace}/{pod.name}"
            t = self._target(ident, "vllm", dep.vllm_target_labels(pod))
            fresh = t.layout is None or t.restarts != cond.restart_count(pod.key)
            if fresh:
                t.restarts = cond.restart_count(pod.key)
                t.values = []
                t.layout = None
                t.lazy_on = frozenset()
            if not scraped[pod.key]:
                entries.append(FrameEntry(t, 0.0))
                continue
            if pod.role == "prefill":
                n = prefill_split.get(pod.key, 0)
                rate = prefill_rate if pod in r_prefill else 0.0
                act = self._prefill_activity(t, dep, cond, n, rate, capacity)
            else:
                n = decode_split.get(pod.key, 0)
                rate = decode_rate if pod in r_decode else 0.0
                if disagg:
                    act = self._decode_activity(t, dep, cond, n, 0, rate, 0.0, capacity)
                else:
                    act = self._decode_activity(t, dep, cond, 0, n, 0.0, rate, capacity)
            if cond.preemptions_per_min and not first:
                act["preemptions"] = _take(t.carry, "preempt", cond.preemptions_per_min * dt / 60)
            self._ensure_layout(t, dep.vllm_families_for(pod.role), ctx, act, ())
            self._apply(t, act, counters=not fresh)
            if pod in routable:
                vllm_gauges[pod.name] = (act["kv_usage"], act["waiting"], act["running"])
            entries.append(FrameEntry(t, 1.0))

        # The EPP pod.
        t = self._target(f"{dep.cluster or ''}/{dep.namespace}/{dep.epp_pod_name}", "epp",
                         dep.epp_target_labels())  # fmt: skip
        act = self._epp_activity(t, dep, cond, n_pd, n_local, rate_pd, rate_total - rate_pd,
                                 vllm_gauges)  # fmt: skip
        self._ensure_layout(t, dep.epp_families, dep.epp_context(), act, tuple(vllm_gauges))
        self._apply(t, act, counters=not first)
        entries.append(FrameEntry(t, 1.0))
        return entries

    # -- activity: what happened on one target during one step ------------------------------

    def _latency(self, cond: Conditions) -> dict[str, float]:
        pull = cond.nixl_handshake_s + cond.nixl_xfer_s
        decode_t = max(cond.output_tokens - 1, 0) * cond.itl_s
        return {
            "p_ttft": cond.prefill_queue_s + cond.prefill_compute_s,
            "pull": pull,
            "r_ttft": pull + cond.decode_first_step_s,
            "l_ttft": cond.local_queue_s + cond.local_prefill_s,
            "decode_t": decode_t,
        }

    def _transfers(
        self, dep: Deployment, cond: Conditions, ok: int, failed: int, uncached: int
    ) -> dict[str, Any]:
        """What the pod that drives the transfers records: ``ok`` done, ``failed`` not."""
        s = cond.sigma
        blocks = math.ceil(uncached / dep.block_size)
        prefix = {"nixl": "nixl", "mooncake": "mc"}.get(dep.kv_metrics or "")
        if prefix is None:
            return {}
        out: dict[str, Any] = {
            f"{prefix}_xfer": [(ok, cond.nixl_xfer_s, s)],
            f"{prefix}_bytes": [(ok, uncached * cond.kv_bytes_per_token, 0.0)],
            f"{prefix}_descriptors": [(ok, blocks * dep.num_layers, 0.0)],
            f"{prefix}_failed_transfers": failed,
        }
        if prefix == "nixl":
            out["nixl_post"] = [(ok, cond.nixl_post_s, s)]
        return out

    def _prefill_activity(
        self, t: Target, dep: Deployment, cond: Conditions, n: int, rate: float, capacity: float
    ) -> dict[str, Any]:
        lat = self._latency(cond)
        p = cond.prompt_tokens
        hit = round(p * cond.cache_hit_ratio)
        s, ts = cond.sigma, cond.token_sigma
        # KV blocks stay pinned on prefill until decode has read them.
        hold = lat["p_ttft"] + lat["pull"]
        waiting = _q_gauge(rate * cond.prefill_queue_s)
        act: dict[str, Any] = {
            "success:length": n,
            "prompt_tokens": n * p,
            "generation_tokens": n,
            "prefix_queries": n * p,
            "prefix_hits": n * hit,
            "ext_prefix_queries": n * p,
            "ext_prefix_hits": 0,
            "prompt_by_source:local_compute": n * (p - hit),
            "prompt_by_source:local_cache_hit": n * hit,
            "prompt_cached": n * hit,
            "cached_by_source:device": n * hit,
            "ttft": [(n, lat["p_ttft"], s)],
            "e2e": [(n, lat["p_ttft"], s)],
            "queue": [(n, cond.prefill_queue_s, s)],
            "prefill_time": [(n, cond.prefill_compute_s, s)],
            "decode_time": [(n, 0.0, 0.0)],
            "inference_time": [(n, cond.prefill_compute_s, s)],
            "req_prompt_tokens": [(n, p, ts)],
            "req_gen_tokens": [(n, 1, 0.0)],
            "req_params_max_tokens": [(n, 1, 0.0)],  # the sidecar forces max_tokens=1
            "req_params_n": [(n, 1, 0.0)],
            "req_preemptions": [(n, 0.0, 0.0)],
            "iteration_tokens": [(n, p - hit, 0.0)],
            "prefill_kv_computed": [(n, p - hit, ts)],
            "running": _q_gauge(rate * lat["p_ttft"]),
            "waiting": waiting,
            "waiting_by_reason:capacity": waiting,
            "kv_usage": _q_gauge(min(0.98, rate * hold * p / capacity)),
            "sleep:awake": 1.0,
            "cache_config_info": 1.0,
        }
        if dep.transfer_recorder == "prefill":
            # The prefill pod WRITEs each request's blocks to decode (NIXL push, Mooncake).
            failed = min(n, _take(t.carry, "xfer_fail", n * cond.nixl_fail_ratio))
            act.update(self._transfers(dep, cond, n - failed, failed, p - hit))
        if dep.transfer_recorder == "decode" and dep.exports_nixl:
            # A lost "done" notification leaves the blocks pinned until their lease expires.
            act["nixl_kv_expired"] = _take(t.carry, "notif_fail", n * cond.nixl_notif_fail_ratio)
        return act

    def _decode_activity(
        self, t: Target, dep: Deployment, cond: Conditions, n_r: int, n_l: int,
        rate_r: float, rate_l: float, capacity: float,
    ) -> dict[str, Any]:  # fmt: skip
        """``n_r`` requests prefilled remotely (KV transferred in), ``n_l`` prefilled here.

        A failed KV load is recomputed here (policy "recompute") or ends the request with
        ``finished_reason="error"`` (policy "fail", vLLM 0.24+'s default).
        """
        lat = self._latency(cond)
        p, g = cond.prompt_tokens, cond.output_tokens
        hit = round(p * cond.cache_hit_ratio)
        s, ts = cond.sigma, cond.token_sigma
        stop_base = n_r + n_l
        failed = min(n_r, _take(t.carry, "xfer_fail", n_r * cond.nixl_fail_ratio))
        ok = n_r - failed
        errors = failed if dep.failure_policy == "fail" else 0
        if errors:
            n_r -= errors  # the failed requests end here, before any token
            stop_base -= errors
        n = n_r + n_l
        stop = _take(t.carry, "stop", stop_base * cond.stop_ratio)
        recomputed = failed - errors
        local = n_l + recomputed  # a failed pull means decode computes the prompt itself
        running = rate_r * (lat["r_ttft"] + lat["decode_t"]) + rate_l * (
            lat["l_ttft"] + lat["decode_t"]
        )
        batch = max(1, round(running))
        decode_iters = math.ceil(n * g / batch) if n * g else 0
        uncached = p - hit
        waiting = _q_gauge(rate_r * lat["pull"] + rate_l * cond.local_queue_s)
        deferred = _q_gauge(rate_r * lat["pull"])  # waiting for remote KV
        act: dict[str, Any] = {
            "success:stop": stop,
            "success:length": n - stop,
            "prompt_tokens": n * p,
            "generation_tokens": n * g,
            "prefix_queries": (n + errors) * p,
            "prefix_hits": (n + errors) * hit,
            "ext_prefix_queries": (n_r + errors) * p,
            "ext_prefix_hits": ok * uncached,
            "prompt_by_source:local_compute": local * uncached,
            "prompt_by_source:local_cache_hit": n * hit,
            "prompt_by_source:external_kv_transfer": ok * uncached,
            "prompt_cached": n * hit,
            "prompt_recomputed": recomputed * uncached,
            "cached_by_source:device": (n + errors) * hit,
            "cached_by_source:p2p": ok * uncached,
            "ttft": [(n_r, lat["r_ttft"], s), (n_l, lat["l_ttft"], s)],
            "queue": [(n_r, lat["pull"], s), (n_l, cond.local_queue_s, s)],
            "prefill_time": [(n_r, cond.decode_first_step_s, s), (n_l, cond.local_prefill_s, s)],
            "decode_time": [(n, lat["decode_t"], s)],
            "inference_time": [
                (n_r, cond.decode_first_step_s + lat["decode_t"], s),
                (n_l, cond.local_prefill_s + lat["decode_t"], s),
            ],
            "e2e": [
                (n_r, lat["r_ttft"] + lat["decode_t"], s),
                (n_l, lat["l_ttft"] + lat["decode_t"], s),
            ],
            "itl": [(n * max(g - 1, 0), cond.itl_s, s)],
            "req_tpot": [(n, cond.itl_s, s)],
            "req_prompt_tokens": [(n, p, ts)],
            "req_gen_tokens": [(n, g, ts)],
            "req_params_max_tokens": [(n, g, 0.0)],
            "req_params_n": [(n, 1, 0.0)],
            "req_preemptions": [(n, 0.0, 0.0)],
            "iteration_tokens": [
                (decode_iters, (n * g / decode_iters) if decode_iters else 0.0, 0.0),
                (local, uncached, 0.0),
            ],
            "prefill_kv_computed": [(ok, 1, 0.0), (local, uncached, ts)],
            "running": _q_gauge(running),
            "waiting": waiting,
            "waiting_by_reason:capacity": waiting - deferred,
            "waiting_by_reason:deferred": deferred,
            "kv_fetch:waiting_to_start": _q_gauge(rate_r * cond.nixl_handshake_s),
            "kv_fetch:in_progress": _q_gauge(rate_r * cond.nixl_xfer_s),
            "kv_usage": _q_gauge(min(0.98, running * (p + g / 2) / capacity)),
            "sleep:awake": 1.0,
            "cache_config_info": 1.0,
        }
        if errors:
            # Every finished request is observed once, errors too (they end after the KV wait).
            act["success:error"] = errors
            for key, value in (("e2e", lat["pull"]), ("queue", lat["pull"]), ("prefill_time", 0.0),
                               ("decode_time", 0.0), ("inference_time", 0.0),
                               ("req_prompt_tokens", p), ("req_gen_tokens", 0.0),
                               ("req_params_max_tokens", g), ("req_params_n", 1),
                               ("req_preemptions", 0.0)):  # fmt: skip
                act[key] = [*act[key], (errors, value, 0.0)]
        if dep.transfer_recorder == "decode":
            act.update(self._transfers(dep, cond, ok, failed, uncached))
        elif dep.kv_metrics == "mooncake":
            act["mc_failed_recvs"] = failed  # decode learns the push did not arrive
        if dep.exports_nixl and cond.nixl_notif_fail_ratio:
            notif = _take(t.carry, "notif_fail", ok * cond.nixl_notif_fail_ratio)
            act["nixl_failed_notifications"] = notif
            if parse_version(dep.vllm_version) >= (0, 33, 0):
                # 0.33 counts notification (and handshake) failures as failed transfers too.
                act["nixl_failed_transfers"] = act.get("nixl_failed_transfers", 0) + notif
        return act

    def _epp_activity(
        self, t: Target, dep: Deployment, cond: Conditions, n_pd: int, n_local: int,
        rate_pd: float, rate_local: float, gauges: Mapping[str, tuple[float, float, float]],
    ) -> dict[str, Any]:  # fmt: skip
        lat = self._latency(cond)
        s, ts = cond.sigma, cond.token_sigma
        over = cond.epp_overhead_s
        e2e_pd = lat["p_ttft"] + lat["r_ttft"] + lat["decode_t"] + over
        e2e_l = lat["l_ttft"] + lat["decode_t"] + over
        n = n_pd + n_local
        ready = len(gauges)
        # A non-streaming response's first byte is the whole answer: its "TTFT" is the duration.
        s_pd = _take(t.carry, "stream_pd", n_pd * cond.streaming_ratio)
        s_l = _take(t.carry, "stream_l", n_local * cond.streaming_ratio)
        act: dict[str, Any] = {
            "epp_requests": n,
            "epp_duration": [(n_pd, e2e_pd, s), (n_local, e2e_l, s)],
            "epp_ttft:true": [(s_pd, lat["p_ttft"] + lat["r_ttft"] + over, s),
                              (s_l, lat["l_ttft"] + over, s)],
            "epp_ttft:false": [(n_pd - s_pd, e2e_pd, s), (n_local - s_l, e2e_l, s)],
            "epp_poll_errors:metrics-data-source": _take(t.carry, "poll_errors",
                                                         cond.epp_poll_errors_per_s * self.step_s),
            "epp_input_tokens": [(n, cond.prompt_tokens, ts)],
            "epp_output_tokens": [(n, cond.output_tokens, ts)],
            "epp_running": _q_gauge(rate_pd * e2e_pd + rate_local * e2e_l),
            "sched_e2e": [(n, cond.epp_scheduling_s, s)],
            "decision:prefill-decode": n_pd,
            "decision:decode-only": n_local,
            "pool_ready": float(ready),
            "pool_kv": _q_gauge(sum(g[0] for g in gauges.values()) / ready) if ready else 0.0,
            "pool_queue": _q_gauge(sum(g[1] for g in gauges.values()) / ready) if ready else 0.0,
            "pool_running": _q_gauge(sum(g[2] for g in gauges.values()) / ready) if ready else 0.0,
        }  # fmt: skip
        for pod_name, (_, waiting, _) in gauges.items():
            act[f"pool_pod_queue:{pod_name}"] = waiting
        return act

    # -- layout and update -------------------------------------------------------------------

    def _ensure_layout(
        self, t: Target, fams: tuple[Family, ...], ctx: Mapping[str, str],
        act: Mapping[str, Any], dynamic: tuple[str, ...],
    ) -> None:  # fmt: skip
        lazy_on = t.lazy_on
        for fam in fams:
            if not fam.lazy:
                continue
            for kv in fam.key_values or (None,):
                key = fam.activity_key(kv)
                if key not in lazy_on and _has_activity(act.get(key)):
                    lazy_on = lazy_on | {key}
        layout_key = (id(fams), lazy_on, dynamic)
        if t.layout is not None and layout_key == t.layout_key:
            return
        old = dict(zip(t.layout.keys, t.values, strict=True)) if t.layout else {}
        t.layout = self._build_layout(t, fams, ctx, lazy_on, dynamic)
        t.layout_key = layout_key
        t.lazy_on = lazy_on
        t.values = [old.get(k, 0.0) for k in t.layout.keys]

    def _build_layout(
        self, t: Target, fams: tuple[Family, ...], ctx: Mapping[str, str],
        lazy_on: frozenset[str], dynamic: tuple[str, ...],
    ) -> Layout:  # fmt: skip
        reg = self.registry
        lay = Layout([], [], [], [], [])

        def add(mid: int, name: str, labels: str) -> int:
            lay.sids.append(reg.sid(t.tid, mid, name, labels))
            lay.keys.append(f"{name}{{{labels}}}")
            return len(lay.sids) - 1

        max_len = int(ctx.get("_max_model_len", "4096"))
        for fam in fams:
            key_values: tuple[str | None, ...]
            if fam.dynamic:
                key_values = dynamic
            else:
                key_values = fam.key_values or (None,)
            for kv in key_values:
                akey = fam.activity_key(kv)
                if fam.lazy and akey not in lazy_on:
                    continue
                pairs = [
                    (name, kv if name == fam.key_label and kv is not None else ctx[fam.context_key(name)])
                    for name in fam.all_labels()
                ]
                labels = render_labels(pairs)
                mid = reg.metric(t.tid, fam, labels)
                if fam.kind == "counter":
                    lay.counters.append((add(mid, fam.name + "_total", labels), akey))
                elif fam.kind == "gauge":
                    lay.gauges.append((add(mid, fam.name, labels), akey))
                else:
                    bounds = fam.buckets
                    if bounds == BUCKETS_1_2_5:
                        bounds = buckets_1_2_5(max_len)
                    sep = "," if labels else ""
                    first = -1
                    for b in (*bounds, math.inf):
                        i = add(mid, fam.name + "_bucket", f'{labels}{sep}le="{format_le(b)}"')
                        first = i if first < 0 else first
                    add(mid, fam.name + "_count", labels)
                    add(mid, fam.name + "_sum", labels)
                    lay.hists.append((first, bounds, akey))
        return lay

    def _apply(self, t: Target, act: Mapping[str, Any], *, counters: bool) -> None:
        lay = t.layout
        assert lay is not None
        vals = t.values
        for i, key in lay.gauges:
            vals[i] = float(act.get(key, 0.0))
        if not counters:
            return
        for i, key in lay.counters:
            inc = act.get(key)
            if inc:
                vals[i] += inc
        increments = self._buckets.increments
        for first, bounds, key in lay.hists:
            obs = act.get(key)
            if not obs:
                continue
            nb = len(bounds)
            for n, mean, sigma in obs:
                if n <= 0:
                    continue
                for j, c in increments(bounds, n, mean, sigma):
                    vals[first + j] += c
                vals[first + nb] += n  # +Inf
                vals[first + nb + 1] += n  # _count
                vals[first + nb + 2] += _q_sum(n * mean)  # _sum


def _has_activity(value: Any) -> bool:
    if not value:
        return False
    if isinstance(value, list):
        return any(o[0] > 0 for o in value)
    return bool(value > 0)
