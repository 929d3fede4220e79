"""Named, parameterised scenarios with the ground truth their consumers assert against.

Every scenario function takes keyword arguments only: pod counts, ``rps``, ``duration_min``,
``fault_start_min`` (where a fault exists), ``vllm_version``, ``epp_family``, plus any
:class:`~simulator.model.Deployment` option (``namespace``, ``release``, ``model_name``,
``pool_name``, ``cluster``, ``role_label``, ``seed``, ``nixl_metrics``, ``show_hidden_metrics``,
...) and any traffic condition (``prompt_tokens``, ``output_tokens``, ``cache_hit_ratio``,
``jitter``, latencies such as ``itl_s``). Unknown keywords raise ``TypeError``.

``Scenario.truth`` is derived from the scenario's *conditions* (never from the generated series,
which would make it agree with itself). The signal keys describe the state at the end of the
scenario; ``truth["during_fault"]`` holds the same keys in the middle of the fault window:

``pd_deployed``         prefill pods exist
``traffic``             client requests are being served
``nixl_series_present`` vLLM exports the NIXL transfer series (>= 0.11.1 with NixlConnector)
``kv_series_present``   vLLM exports its KV connector's transfer series (NIXL, or Mooncake 0.33+)
``kv_delivery_series_present`` vLLM exports ``prompt_tokens_by_source`` (0.16+, on every pod)
``kv_transfer_active``  KV blocks really move prefill -> decode (whether observable or not)
``kv_transfer_observed`` ... and the connector's transfer series (NIXL or Mooncake) show it
``kv_delivered``        ... and decode's ``prompt_tokens_by_source{source="external_kv_transfer"}``
                        shows it (on any connector)
``prefill_idle``        prefill pods exist but complete no requests
``decode_does_all_work`` decode pods prefill and decode every request themselves
``ttft_roles_equal``    post-mortem signal 4: P/D deployed, traffic, and the prefill role has no
                        TTFT observations of its own (so "TTFT prefill = TTFT decode")
``epp_ready_lt_pods``   the EPP counts fewer ready pods than there are vLLM pods exporting metrics
``expected_verdict``    AGGREGATED_BY_DESIGN (no prefill pods) / NO_TRAFFIC / COLLAPSED (prefill
                        idle while decode serves, or KV evidence exported but every transfer
                        fails) / DISAGGREGATED (KV moves and some KV evidence is exported:
                        connector series or prompt_tokens_by_source) /
                        CANNOT_TELL (prefill busy but no KV evidence of any kind)
``fault_start_min`` / ``fault_end_min``  minutes from the start (None: no fault / never ends)

plus descriptive keys: ``prefill_pods``, ``decode_pods`` (running at the end), ``vllm_pods_up``,
``epp_ready_pods``, ``namespace``, ``cluster``, ``vllm_version``, ``epp_family``, ``rps``,
``nixl_fail_ratio``, ``nixl_xfer_s``, ``pods`` (key -> pod name), ``kv_connector``,
``kv_metrics`` ("nixl" / "mooncake" / None), ``kv_transfer_recorded_by`` (the role whose pods
record transfers: decode for NIXL pull, prefill for NIXL push and Mooncake), and
``kv_load_failure_policy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.metrics import parse_version
from simulator.model import Conditions, Deployment, Phase, Run, Simulation

VERDICTS = ("DISAGGREGATED", "COLLAPSED", "AGGREGATED_BY_DESIGN", "NO_TRAFFIC", "CANNOT_TELL")

_DEPLOYMENT_OPTIONS = frozenset(Deployment.__dataclass_fields__) - {
    "prefill_pods", "decode_pods", "vllm_version", "epp_family", "extra_pods", "retired",
}  # fmt: skip
_STATE_CONDITIONS = frozenset({"epp_hidden", "down", "restarts", "scrape_missed", "rps"})
_TRAFFIC_OPTIONS = frozenset(Conditions.__dataclass_fields__) - _STATE_CONDITIONS

# The post-mortem's numbers for a decode pod prefilling by itself on a time-sliced GPU
# (TTFT 54.9 ms, ITL 17.5 ms) against the aggregated baseline's (15 ms, 5 ms).
_COLLAPSE_LATENCY = {"local_queue_s": 0.01, "local_prefill_s": 0.0449, "itl_s": 0.0175}


@dataclass(frozen=True)
class Scenario:
    """A named set of runs (one per deployment/cluster) with its ground truth."""

    name: str
    description: str
    runs: tuple[Run, ...]
    duration_min: float
    params: Mapping[str, Any] = field(default_factory=dict)
    truth: Mapping[str, Any] = field(default_factory=dict)

    @property
    def deployment(self) -> Deployment:
        """The (first) deployment."""
        return self.runs[0].deployment

    def simulation(self, step_s: float = 30.0) -> Simulation:
        return Simulation(self.runs, step_s)

    def n_steps(self, step_s: float = 30.0) -> int:
        """Samples per series from minute 0 to ``duration_min`` inclusive."""
        return math.floor(self.duration_min * 60 / step_s + 1e-9) + 1


# --- truth --------------------------------------------------------------------------------------


def signals_at(run: Run, minute: float) -> dict[str, Any]:
    """The ground-truth signals of one run at one minute."""
    dep = run.deployment
    cond = run.conditions_at(minute)
    present = [p for p in dep.pods if p.exists(minute)]
    up = [p for p in present if p.key not in cond.down]
    ready = [p for p in up if p.key not in cond.epp_hidden]
    prefill_ready = [p for p in ready if p.role == "prefill"]
    decode_ready = [p for p in ready if p.role == "decode"]
    pd_deployed = any(p.role == "prefill" for p in present)
    traffic = cond.rps > 0 and bool(decode_ready)
    disagg = bool(prefill_ready) and dep.pd_scheduler and dep.kv_connector is not None
    nixl = dep.exports_nixl
    active = traffic and disagg and cond.nixl_fail_ratio < 1.0
    prefill_idle = pd_deployed and not (traffic and disagg)
    kv_series = dep.kv_metrics is not None
    # vllm:prompt_tokens_by_source{source="external_kv_transfer"} (0.16+) counts the prompt
    # tokens that arrived by KV transfer on any connector: KV evidence even without its metrics
    # (and, at 0 without a connector, evidence that none arrives).
    delivery_series = parse_version(dep.vllm_version) >= (0, 16, 0)
    evidence = kv_series or delivery_series
    if not pd_deployed:
        verdict = "AGGREGATED_BY_DESIGN"
    elif not traffic:
        verdict = "NO_TRAFFIC"
    elif prefill_idle:
        verdict = "COLLAPSED"
    elif active and evidence:
        verdict = "DISAGGREGATED"
    elif evidence:
        # KV evidence is exported and prefill works, yet no transfer succeeds: no KV cache
        # moves, so decode recomputes (or fails) every prompt; a collapse, not an unknown.
        verdict = "COLLAPSED"
    else:
        verdict = "CANNOT_TELL"
    return {
        "pd_deployed": pd_deployed,
        "traffic": traffic,
        "nixl_series_present": nixl,
        "kv_series_present": kv_series,
        "kv_delivery_series_present": delivery_series,
        "kv_transfer_active": active,
        "kv_transfer_observed": active and kv_series,
        "kv_delivered": active and delivery_series,
        "prefill_idle": prefill_idle,
        "decode_does_all_work": traffic and not disagg,
        "ttft_roles_equal": pd_deployed and traffic and not disagg,
        "epp_ready_lt_pods": len(ready) < len(up),
        "expected_verdict": verdict,
        "prefill_pods": sum(p.role == "prefill" for p in present),
        "decode_pods": sum(p.role == "decode" for p in present),
        "vllm_pods_up": len(up),
        "epp_ready_pods": len(ready),
        "rps": cond.rps,
        "nixl_fail_ratio": cond.nixl_fail_ratio,
        "nixl_xfer_s": cond.nixl_xfer_s,
        "kv_connector": dep.kv_connector,
        "kv_metrics": dep.kv_metrics,
        "kv_transfer_recorded_by": dep.transfer_recorder if kv_series else None,
        "kv_load_failure_policy": dep.failure_policy if dep.kv_connector else None,
    }


def _truth(
    run: Run, duration_min: float, fault_start: float | None, fault_end: float | None
) -> dict[str, Any]:
    dep = run.deployment
    truth = signals_at(run, duration_min)
    during = None
    if fault_start is not None:
        end = fault_end if fault_end is not None else duration_min
        during = signals_at(run, (fault_start + end) / 2)
    truth.update(
        fault_start_min=fault_start,
        fault_end_min=fault_end,
        during_fault=during,
        namespace=dep.namespace,
        cluster=dep.cluster,
        vllm_version=dep.vllm_version,
        epp_family=dep.epp_family,
        pods={p.key: p.name for p in dep.pods},
    )
    return truth


# --- building blocks ----------------------------------------------------------------------------


def _split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    dep_kw: dict[str, Any] = {}
    traffic_kw: dict[str, Any] = {}
    for key, value in options.items():
        if key in _DEPLOYMENT_OPTIONS:
            dep_kw[key] = value
        elif key in _TRAFFIC_OPTIONS:
            traffic_kw[key] = value
        else:
            raise TypeError(
                f"unknown scenario option {key!r}; deployment options: "
                f"{sorted(_DEPLOYMENT_OPTIONS)}, traffic options: {sorted(_TRAFFIC_OPTIONS)}"
            )
    return dep_kw, traffic_kw


def _scenario(
    name: str,
    description: str,
    params: Mapping[str, Any],
    deployment: Deployment,
    base: Conditions,
    phases: tuple[Phase, ...] = (),
    *,
    duration_min: float,
    fault_start: float | None = None,
    fault_end: float | None = None,
) -> Scenario:
    if duration_min <= 0:
        raise ValueError("duration_min must be > 0")
    run = Run(deployment, base, phases)
    return Scenario(
        name=name,
        description=description,
        runs=(run,),
        duration_min=duration_min,
        params=dict(params),
        truth=_truth(run, duration_min, fault_start, fault_end),
    )


def _setup(
    *,
    prefill_pods: int,
    decode_pods: int,
    rps: float,
    vllm_version: str,
    epp_family: str,
    options: Mapping[str, Any],
    deployment_defaults: Mapping[str, Any] | None = None,
) -> tuple[Deployment, Conditions]:
    dep_kw, traffic_kw = _split_options(options)
    dep = Deployment(
        prefill_pods=prefill_pods,
        decode_pods=decode_pods,
        vllm_version=vllm_version,
        epp_family=epp_family,
        **{**(deployment_defaults or {}), **dep_kw},
    )
    return dep, Conditions(rps=rps, **traffic_kw)


def _params(local: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in local.items() if k != "options"}
    out.update(local.get("options", {}))
    return out


# --- the scenarios ------------------------------------------------------------------------------


def healthy_pd(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """Working P/D: every request prefilled on a prefill pod, KV pulled over NIXL by decode."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    return _scenario("healthy_pd", healthy_pd.__doc__ or "", params, dep, base,
                     duration_min=duration_min)  # fmt: skip


def collapsed(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 26.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    vllm_version: str = "0.11.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """The post-mortem: the EPP stops seeing the prefill pods (ready pods 1 of 2), so every
    request goes decode-only; prefill pods stay up and idle, decode does all the work at the
    post-mortem's latencies, and the vLLM of that stack (0.11.0 by default) exports no NIXL
    series at all. Healthy P/D before ``fault_start_min``. On vLLM >= 0.11.1 the same collapse
    shows flat NIXL series instead (see ``collapsed_nixl_flat``)."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    latency = {k: v for k, v in _COLLAPSE_LATENCY.items() if k not in options}
    phase = Phase.of(fault_start_min, None, epp_hidden=dep.pod_keys("prefill"), **latency)
    return _scenario("collapsed", collapsed.__doc__ or "", params, dep, base, (phase,),
                     duration_min=duration_min, fault_start=fault_start_min)  # fmt: skip


def collapsed_from_start(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 26.0,
    duration_min: float = 60,
    vllm_version: str = "0.11.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """The post-mortem as it happened: collapsed from the first request on (the EPP never sees
    the prefill pods), so there is no healthy minute to compare with. Takes ``collapsed``'s
    parameters but ``fault_start_min``, which is 0."""
    params = _params(locals())
    s = collapsed(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                  duration_min=duration_min, fault_start_min=0, vllm_version=vllm_version,
                  epp_family=epp_family, **options)  # fmt: skip
    return replace(s, name="collapsed_from_start",
                   description=collapsed_from_start.__doc__ or "", params=params)  # fmt: skip


def collapsed_nixl_flat(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 26.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """The same collapse on a vLLM that exports NIXL metrics: the series exist (children are
    pre-created on every pod) but stop increasing at ``fault_start_min``."""
    params = _params(locals())
    s = collapsed(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                  duration_min=duration_min, fault_start_min=fault_start_min,
                  vllm_version=vllm_version, epp_family=epp_family, **options)  # fmt: skip
    return replace(s, name="collapsed_nixl_flat",
                   description=collapsed_nixl_flat.__doc__ or "", params=params)  # fmt: skip


def aggregated(
    *,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """Aggregated serving by design (llm-d's inference-scheduling guide): decode pods only, no
    KV connector so no NIXL series, no P/D profile handler so no decision counters. The pods are
    still named ``-decode-`` as llm-d's aggregated guides name them."""
    params = _params(locals())
    defaults = {"kv_connector": None, "pd_scheduler": False, "gpu_memory_utilization": 0.9,
                "release": "ms-inference-scheduling", "pool_name": "gaie-inference-scheduling"}  # fmt: skip
    dep, base = _setup(prefill_pods=0, decode_pods=decode_pods, rps=rps, vllm_version=vllm_version,
                       epp_family=epp_family, options=options, deployment_defaults=defaults)  # fmt: skip
    return _scenario("aggregated", aggregated.__doc__ or "", params, dep, base,
                     duration_min=duration_min)  # fmt: skip


def idle_pd(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    duration_min: float = 60,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """P/D deployed and healthy but no traffic: vLLM series flat at 0, NIXL children present
    at 0, the EPP's request metrics not created yet."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=0.0,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    return _scenario("idle_pd", idle_pd.__doc__ or "", params, dep, base,
                     duration_min=duration_min)  # fmt: skip


def warmup(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 5,
    nixl_delay_min: float = 1.5,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """No traffic until ``fault_start_min``; then requests arrive while the prefill pods are
    not yet ready in the EPP, so for ``nixl_delay_min`` minutes they run decode-only and NIXL
    stays flat; after that, healthy P/D. The fault window is the warm-up. While it lasts it is a
    collapse from the start of traffic (nothing tells the two apart), so it is benign only while
    shorter than the 2 minutes under which no fault pages; the default is 1.5."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    end = fault_start_min + nixl_delay_min
    phases = (
        Phase.of(0, fault_start_min, rps=0.0),
        Phase.of(fault_start_min, end, epp_hidden=dep.pod_keys("prefill")),
    )
    return _scenario("warmup", warmup.__doc__ or "", params, dep, base, phases,
                     duration_min=duration_min, fault_start=fault_start_min, fault_end=end)  # fmt: skip


def nixl_failing(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    fail_ratio: float = 0.05,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """From ``fault_start_min``, ``fail_ratio`` of attempted NIXL transfers fail
    (``failed / (failed + successful) == fail_ratio``, i.e. failed_total grows at
    ``fail_ratio / (1 - fail_ratio)`` of ``nixl_xfer_time_seconds_count``); the decode pod
    recomputes those prompts itself."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    phase = Phase.of(fault_start_min, None, nixl_fail_ratio=fail_ratio)
    return _scenario("nixl_failing", nixl_failing.__doc__ or "", params, dep, base, (phase,),
                     duration_min=duration_min, fault_start=fault_start_min)  # fmt: skip


def nixl_slow(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    xfer_s: float = 0.8,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """From ``fault_start_min`` each NIXL transfer takes ``xfer_s`` on average (healthy:
    0.02 s); decode queue time and TTFT grow by the same amount."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    phase = Phase.of(fault_start_min, None, nixl_xfer_s=xfer_s)
    return _scenario("nixl_slow", nixl_slow.__doc__ or "", params, dep, base, (phase,),
                     duration_min=duration_min, fault_start=fault_start_min)  # fmt: skip


def epp_mismatch_persistent(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 2,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    hidden_pod: str = "decode-1",
    poll_errors_per_s: float = 0.0,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """From ``fault_start_min`` the EPP stops counting ``hidden_pod`` as ready (and routes
    nothing to it) while it keeps running and exporting metrics. P/D still works through the
    other pods. ``poll_errors_per_s`` > 0 makes the cause the EPP failing to poll the pod's
    metrics (llm-d-router's datalayer poll errors, at that rate, while the fault lasts)."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    dep.pod(hidden_pod)
    phase = Phase.of(fault_start_min, None, epp_hidden=frozenset({hidden_pod}),
                     epp_poll_errors_per_s=poll_errors_per_s)
    return _scenario("epp_mismatch_persistent", epp_mismatch_persistent.__doc__ or "", params,
                     dep, base, (phase,), duration_min=duration_min,
                     fault_start=fault_start_min)  # fmt: skip


def epp_mismatch_transient(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    gap_min: float = 5,
    pod: str = "decode-0",
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """A rolling update of ``pod``: at ``fault_start_min`` a surge pod of the new ReplicaSet
    (new hash in its name) starts exporting metrics but the EPP only counts it ready
    ``gap_min`` minutes later, when the old pod is deleted (its series go stale)."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    old = dep.pod(pod)
    index = int(old.key.rsplit("-", 1)[1])
    new = dep.make_pod(old.role, index, revision=2, start_min=fault_start_min)
    end = fault_start_min + gap_min
    dep = replace(dep, extra_pods=(*dep.extra_pods, new), retired=((old.key, end),))
    phase = Phase.of(fault_start_min, end, epp_hidden=frozenset({new.key}))
    return _scenario("epp_mismatch_transient", epp_mismatch_transient.__doc__ or "", params,
                     dep, base, (phase,), duration_min=duration_min,
                     fault_start=fault_start_min, fault_end=end)  # fmt: skip


def pod_restart(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    down_min: float = 1.0,
    pod: str = "decode-0",
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """``pod``'s container restarts at ``fault_start_min``: its scrape fails for
    ``down_min`` minutes (``up`` 0, series stale, no traffic), then it comes back under the
    same pod name with every counter reset to 0. ``truth["restarted_pods"]`` names it."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    dep.pod(pod)
    end = fault_start_min + down_min
    phases = (
        Phase.of(fault_start_min, end, down=frozenset({pod})),
        Phase.of(end, None, restarts=((pod, 1),)),
    )
    s = _scenario("pod_restart", pod_restart.__doc__ or "", params, dep, base, phases,
                  duration_min=duration_min, fault_start=fault_start_min, fault_end=end)  # fmt: skip
    return replace(s, truth={**s.truth, "restarted_pods": {pod: dep.pod(pod).name},
                             "restart_min": end})  # fmt: skip


def scrape_gap(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    gap_min: float = 1.5,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """Prometheus takes no sample of anything for ``gap_min`` minutes (3 scrapes at 30 s):
    missing samples, no staleness markers, counters continue afterwards."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    end = fault_start_min + gap_min
    phase = Phase.of(fault_start_min, end, scrape_missed=True)
    return _scenario("scrape_gap", scrape_gap.__doc__ or "", params, dep, base, (phase,),
                     duration_min=duration_min, fault_start=fault_start_min, fault_end=end)  # fmt: skip


def target_down(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 2,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    pod: str = "decode-1",
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """From ``fault_start_min`` model server ``pod`` cannot be scraped: ``up`` == 0, its other
    series absent (stale), the EPP no longer counts it and traffic moves to the other pods."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    dep.pod(pod)
    phase = Phase.of(fault_start_min, None, down=frozenset({pod}))
    s = _scenario("target_down", target_down.__doc__ or "", params, dep, base, (phase,),
                  duration_min=duration_min, fault_start=fault_start_min)  # fmt: skip
    return replace(s, truth={**s.truth, "down_pods": {pod: dep.pod(pod).name}})


def scale(
    *,
    prefill_pods: int = 4,
    decode_pods: int = 8,
    rps: float = 80.0,
    duration_min: float = 60,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """Healthy P/D at any size; requests spread evenly over each role's pods."""
    params = _params(locals())
    s = healthy_pd(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                   duration_min=duration_min, vllm_version=vllm_version, epp_family=epp_family,
                   **options)  # fmt: skip
    return replace(s, name="scale", description=scale.__doc__ or "", params=params)


def low_traffic(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 0.1,
    duration_min: float = 60,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """Healthy P/D at one request every 10 s (``rps`` 0.1): a few KV transfers per scrape, so
    short windows hold few of anything and must still not read as "no KV moved"."""
    params = _params(locals())
    s = healthy_pd(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                   duration_min=duration_min, vllm_version=vllm_version, epp_family=epp_family,
                   **options)  # fmt: skip
    return replace(s, name="low_traffic", description=low_traffic.__doc__ or "", params=params)


def rolling_update(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    fault_start_min: float = 10,
    ready_min: float = 1.0,
    handover_min: float = 0.5,
    vllm_version: str = "0.12.0",
    epp_family: str = "inference_objective",
    **options: Any,
) -> Scenario:
    """A rolling update of every model-server pod, prefill first, one at a time (maxSurge 1,
    maxUnavailable 0): from ``fault_start_min`` each pod's replacement (a new ReplicaSet, so new
    pod names and counters from 0) starts, loads the model for ``ready_min`` minutes while the
    EPP does not count it, then the old pod is deleted; the EPP counts the new pod
    ``handover_min`` minutes later, so a role with one pod has none routable for that long (with
    the only prefill pod: requests run decode-only, a short collapse)."""
    params = _params(locals())
    dep, base = _setup(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                       vllm_version=vllm_version, epp_family=epp_family, options=options)  # fmt: skip
    start = fault_start_min
    new_pods, retired, phases = [], [], []
    for old in dep.pods:
        index = int(old.key.rsplit("-", 1)[1])
        new = dep.make_pod(old.role, index, revision=2, start_min=start)
        ready = start + ready_min
        new_pods.append(new)
        retired.append((old.key, ready))
        phases.append(Phase.of(start, ready + handover_min, epp_hidden=frozenset({new.key})))
        start = ready + handover_min
    dep = replace(dep, extra_pods=(*dep.extra_pods, *new_pods), retired=tuple(retired))
    return _scenario("rolling_update", rolling_update.__doc__ or "", params, dep, base, tuple(phases),
                     duration_min=duration_min, fault_start=fault_start_min, fault_end=start)  # fmt: skip


def old_vllm(
    *,
    prefill_pods: int = 1,
    decode_pods: int = 1,
    rps: float = 10.0,
    duration_min: float = 60,
    vllm_version: str = "0.10.2",
    epp_family: str = "inference_model",
    **options: Any,
) -> Scenario:
    """Healthy P/D on a vLLM without NIXL metrics (< 0.11.1) and its old names
    (``gpu_cache_usage_perc``, ``gpu_prefix_cache_*``, both ITL names on 0.10.2-0.11.x): KV
    does move, but nothing can show it, so the verdict is CANNOT_TELL."""
    params = _params(locals())
    s = healthy_pd(prefill_pods=prefill_pods, decode_pods=decode_pods, rps=rps,
                   duration_min=duration_min, vllm_version=vllm_version, epp_family=epp_family,
                   **options)  # fmt: skip
    return replace(s, name="old_vllm", description=old_vllm.__doc__ or "", params=params)


def _epp_variant(name: str, family: str, version: str) -> Callable[..., Scenario]:
    def scenario(**params: Any) -> Scenario:
        params.setdefault("epp_family", family)
        params.setdefault("vllm_version", version)
        s = healthy_pd(**params)
        return replace(s, name=name, description=scenario.__doc__ or "",
                       params={**s.params, **params})  # fmt: skip

    scenario.__name__ = name
    scenario.__doc__ = (f"Healthy P/D with the {family} EPP metric family (vLLM {version} by "
                        f"default); takes healthy_pd's parameters.")  # fmt: skip
    return scenario


epp_inference_model = _epp_variant("epp_inference_model", "inference_model", "0.11.1")
epp_inference_objective = _epp_variant("epp_inference_objective", "inference_objective", "0.12.0")
epp_inference_objective_disagg = _epp_variant(
    "epp_inference_objective_disagg", "inference_objective_disagg", "0.14.0"
)
epp_llm_d_router = _epp_variant("epp_llm_d_router", "llm_d_router", "0.16.0")


# --- vLLM 0.24 / 0.33 with each KV connector ---------------------------------------------------

# The connectors of the 0.24+ profiles, all run with kv_producer on prefill and kv_consumer on
# decode (0.24+ deprecates kv_both for NIXL; Mooncake requires the split roles).
CONNECTORS = {
    "nixl_pull": "NixlConnector",
    "nixl_push": "NixlPushConnector",
    "mooncake": "MooncakeConnector",
}
UPSTREAM_VERSIONS = {"v0_24": "0.24.0", "v0_33": "0.33.0"}


def _connector_variant(kind: str, connector: str, version_key: str) -> Callable[..., Scenario]:
    name = f"{kind}_{connector}_{version_key}"
    version = UPSTREAM_VERSIONS[version_key]
    base = healthy_pd if kind == "healthy" else collapsed

    def scenario(**params: Any) -> Scenario:
        params.setdefault("kv_connector", CONNECTORS[connector])
        params.setdefault("kv_both", False)
        params.setdefault("vllm_version", version)
        params.setdefault("epp_family", "llm_d_router")
        s = base(**params)
        return replace(s, name=name, description=scenario.__doc__ or "",
                       params={**s.params, **params})  # fmt: skip

    what = ("healthy P/D" if kind == "healthy" else
            "the post-mortem's collapse (prefill hidden from the EPP from fault_start_min)")  # fmt: skip
    scenario.__name__ = name
    scenario.__doc__ = (f"vLLM {version} with {CONNECTORS[connector]} (kv_producer/kv_consumer) "
                        f"and llm-d-router: {what}; takes {base.__name__}'s parameters.")  # fmt: skip
    return scenario


# Deployments on today's vLLM, each connector healthy and collapsed. The verdict suites run them
# beside ALL (tests/rules/upstream.yaml on both promtool lines, tests/test_dashboards_prometheus.py,
# tests/test_doctor_scenarios.py, tests/test_simulator_upstream.py); they stay out of ALL itself,
# which sizes the detection benchmark (bench/) and the demo's list.
UPSTREAM: dict[str, Callable[..., Scenario]] = {
    f.__name__: f
    for f in (
        _connector_variant(kind, connector, version)
        for version in UPSTREAM_VERSIONS for connector in CONNECTORS
        for kind in ("healthy", "collapsed")
    )
}  # fmt: skip


ALL: dict[str, Callable[..., Scenario]] = {
    f.__name__: f
    for f in (
        healthy_pd, collapsed, collapsed_from_start, collapsed_nixl_flat, aggregated, idle_pd,
        warmup, low_traffic, nixl_failing, nixl_slow, epp_mismatch_persistent,
        epp_mismatch_transient, rolling_update, pod_restart, scrape_gap, target_down, scale,
        old_vllm, epp_inference_model, epp_inference_objective, epp_inference_objective_disagg,
        epp_llm_d_router,
    )
}  # fmt: skip


def get(name: str, **params: Any) -> Scenario:
    """``ALL[name](**params)`` (or ``UPSTREAM[name]``) with a clear error for an unknown name."""
    factory = ALL.get(name) or UPSTREAM.get(name)
    if factory is None:
        raise KeyError(f"unknown scenario {name!r}; known: {sorted(ALL) + sorted(UPSTREAM)}")
    return factory(**params)


def multi_cluster(
    *scenarios: Scenario | str,
    clusters: tuple[str, ...] = ("east", "west"),
    **params: Any,
) -> Scenario:
    """Several clusters with the same namespace and pod names, told apart only by a
    ``cluster`` label on every series. Each argument is a scenario or a scenario name (built with
    ``params``). ``truth`` holds ``clusters`` and ``by_cluster`` (cluster -> that scenario's
    truth); the top-level signal keys are not set, since clusters differ."""
    if not scenarios:
        scenarios = ("healthy_pd", "collapsed")
    if len(clusters) < len(scenarios):
        raise ValueError("need one cluster name per scenario")
    built = [get(s, **params) if isinstance(s, str) else s for s in scenarios]
    runs: list[Run] = []
    by_cluster: dict[str, Any] = {}
    duration = max(s.duration_min for s in built)
    for cluster, s in zip(clusters, built, strict=False):
        for run in s.runs:
            runs.append(replace(run, deployment=replace(run.deployment, cluster=cluster)))
        by_cluster[cluster] = {**s.truth, "cluster": cluster, "scenario": s.name}
    name = "multi_cluster(" + ",".join(s.name for s in built) + ")"
    return Scenario(
        name=name,
        description=multi_cluster.__doc__ or "",
        runs=tuple(runs),
        duration_min=duration,
        params={"scenarios": [s.name for s in built], "clusters": list(clusters), **params},
        truth={"clusters": list(clusters[: len(built)]), "by_cluster": by_cluster},
    )


def combine(*scenarios: Scenario, name: str | None = None) -> Scenario:
    """Several scenarios rendered together (e.g. one per namespace, so one Prometheus can answer
    for all of them). Their deployments must differ in namespace or cluster. ``truth`` holds
    ``parts``: ``"<namespace>"`` (or ``"<cluster>/<namespace>"``) -> that scenario's truth."""
    if not scenarios:
        raise ValueError("combine needs at least one scenario")
    parts: dict[str, Any] = {}
    runs: list[Run] = []
    for s in scenarios:
        for run in s.runs:
            dep = run.deployment
            key = f"{dep.cluster}/{dep.namespace}" if dep.cluster else dep.namespace
            if key in parts:
                raise ValueError(f"two scenarios share namespace/cluster {key!r}")
            parts[key] = {**s.truth, "scenario": s.name}
            runs.append(run)
    return Scenario(
        name=name or "combine(" + ",".join(s.name for s in scenarios) + ")",
        description=combine.__doc__ or "",
        runs=tuple(runs),
        duration_min=max(s.duration_min for s in scenarios),
        params={"scenarios": [s.name for s in scenarios]},
        truth={"parts": parts},
    )
