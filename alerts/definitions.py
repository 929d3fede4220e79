"""The alerts, as data: what each one says, which labels it keeps and which catalog signals it reads.

Names are a contract (routing, inhibition and runbooks key on them). Severity, `for`,
`keep_firing_for`, the on/off switch and thresholds live in the config under `alerts.<name>`.
Expressions read the recording rules (both files are loaded together) through `signals.query`, so
no metric name appears here and per-pod series never enter an alert path.

`description` is a `str.format` string. Fields every alert gets (see alerts/render.py):
  {where}   "namespace <ns>" (and "of cluster <c>" when multi_cluster), templated
  {model}   the model label, templated
  {role}    the role label, templated
  {value}   the alert's $value through the alert's `value` humanize function
  {window}  the rate window of the recorded signals
  {for}     the alert's `for`
plus every key of the alert's config entry (thresholds), and what `fields` returns.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts import templates as T
from dashboards import ids
from pdobs import checks, signals
from pdobs.core import promql
from pdobs.core.context import Ctx

Settings = Mapping[str, Any]  # the alert's entry in cfg["alerts"]
ExprBuilder = Callable[[Ctx, Settings], str]
FieldBuilder = Callable[[Ctx, Settings], dict[str, str]]

NS = ("namespace",)
NS_MODEL = ("namespace", "model")
NS_ROLE = ("namespace", "role")

# Dashboard uids the alerts link to.
PERFORMANCE, COORDINATOR, DRILLDOWN = ids.PERFORMANCE, ids.COORDINATOR, ids.DRILLDOWN


@dataclass(frozen=True)
class Link:
    dashboard: str  # uid
    panel: str  # stable key of the panel that confirms the alert (the build fails if there is none)


@dataclass(frozen=True)
class Confirm:
    """A catalog signal a human reads to confirm the alert (runbook 'Confirm' section)."""
    text: str
    signal: str
    variant: Mapping[str, str]


@dataclass(frozen=True)
class AlertDef:
    name: str
    summary: str  # static text ending with a period
    description: str  # str.format template, see the module docstring
    value: str  # Prometheus humanize function for $value
    keys: tuple[str, ...]  # catalog label keys the alert carries (the cluster is added when multi-cluster)
    expr: ExprBuilder
    link: Link
    confirm: tuple[Confirm, ...]
    fields: FieldBuilder | None = None
    # Reads raw vLLM series beside the recorded ones: only an alert that watches whether the
    # recording rules run at all may (it must work without them).
    reads_raw: bool = False


# --- expression helpers -------------------------------------------------------------------------


def _q(ctx: Ctx, name: str, **variant: str) -> str:
    return signals.query(ctx, name, **variant)


def _per_model(ctx: Ctx, promql: str, agg: str = "sum") -> str:
    """Aggregate to the namespace/model level, dropping variant labels such as role or quantile."""
    return f"{agg} by ({ctx.by(*NS_MODEL)}) ({promql})"


def _failing(ctx: Ctx, signal: str) -> str:
    return f"({_q(ctx, 'checklist', signal=signal)} == 1)"


def _decode_rps(ctx: Ctx) -> str:
    return _per_model(ctx, _q(ctx, "requests", role="decode"))


# --- expressions ----------------------------------------------------------------------------------


def _fast_failing(ctx: Ctx, signal: str) -> str:
    return f"({_q(ctx, 'fast_signal', signal=signal)} == 1)"


# The collapse alerts have two paths under one `for`: the short-window evidence (pdobs/signals/
# fast.py) pages within minutes; the checklist over the rate window, while decode pods still start
# requests, covers traffic too sparse for the fast window's minimum count. The `for` keeps faults
# shorter than 2 minutes quiet on both (pdobs/config/default.yaml names those transients).


def _decode_start_rate(ctx: Ctx) -> str:
    """Requests decode pods start per second over the fast window, or finish over the rate window."""
    seconds = promql.duration_seconds(ctx.cfg["prometheus"]["fast_window"])
    started = _per_model(ctx, _q(ctx, "requests_started_fast", role="decode"))
    return f"({started} / {seconds:g}\nor {ctx.on(*NS_MODEL)}\n{_decode_rps(ctx)})"


def _kv_transfer_absent(ctx: Ctx, s: Settings) -> str:
    # Value: requests decode pods start per second (over the fast window: right from the start of
    # traffic). Absent or flat while P/D is active; the missing-metrics case (prefill busy, no KV
    # evidence at all) belongs to the warning.
    on = ctx.on(*NS_MODEL)
    fast = f"{_fast_failing(ctx, checks.KV_TRANSFER.name)}\nunless {on}\n{_q(ctx, 'fast_kv_unobservable')}"
    slow = (f"{_failing(ctx, checks.KV_TRANSFER.name)}\nand {on} ({_q(ctx, 'decode_starting')})\n"
            f"unless {on}\n{_q(ctx, 'kv_evidence_missing')}")
    return f"{_decode_start_rate(ctx)}\nand {on}\n(\n({fast})\nor {on}\n({slow})\n)"


def _kv_transfer_metrics_missing(ctx: Ctx, s: Settings) -> str:
    # Value: prefill completions per decode completion (proof that prefill works).
    return f"{_q(ctx, 'prefill_work_ratio')}\nand {ctx.on(*NS_MODEL)}\n{_q(ctx, 'kv_evidence_missing')}"


def _epp_ready_pods_mismatch(ctx: Ctx, s: Settings) -> str:
    # Value: the EPP's ready pods (the fragment keeps its left-hand side).
    return _q(ctx, "epp_ready_lt_pods")


def _prefill_idle(ctx: Ctx, s: Settings) -> str:
    # Value: prefill requests per decode request (started in the fast window, or finished over the
    # rate window); 0 when prefill has none at all.
    on = ctx.on(*NS_MODEL)
    fast = (f"({_q(ctx, 'prefill_start_ratio_fast')}\nor {on}\n{_q(ctx, 'fast_active')} * 0)\n"
            f"and {on}\n{_fast_failing(ctx, checks.PREFILL_IDLE.name)}")
    slow = (f"({_q(ctx, 'prefill_work_ratio')}\nor {on}\n{_q(ctx, 'pd_active')} * 0)\n"
            f"and {on}\n{_failing(ctx, checks.PREFILL_IDLE.name)}\nand {on} ({_q(ctx, 'decode_starting')})")
    return f"(\n{fast}\n)\nor {on}\n(\n{slow}\n)"


def _holding(ctx: Ctx) -> str:
    """The checklist signals that fail now, on either window (one series per signal)."""
    by = ctx.by(*NS_MODEL, extra=("signal",))
    return f"max by ({by}) (\n{_q(ctx, 'checklist')} == 1\nor on({by})\n{_q(ctx, 'fast_signal')} == 1\n)"


def _collapsed(ctx: Ctx, s: Settings) -> str:
    # Value: how many of the five checklist signals fail now (the fast evidence counts for two).
    on = ctx.on(*NS_MODEL)
    fast = f"{_fast_failing(ctx, checks.KV_TRANSFER.name)}\nand {on}\n{_fast_failing(ctx, checks.PREFILL_IDLE.name)}"
    slow = (f"{_failing(ctx, checks.KV_TRANSFER.name)}\nand {on}\n{_failing(ctx, checks.PREFILL_IDLE.name)}\n"
            f"and {on} ({_q(ctx, 'decode_starting')})")
    return (f"count by ({ctx.by(*NS_MODEL)}) (\n{_holding(ctx)}\n)\n"
            f"and {on}\n(\n({fast})\nor {on}\n({slow})\n)")


def _kv_transfer_failures(ctx: Ctx, s: Settings) -> str:
    # Over the fast window, so a failure burst drains from the ratio as soon as it ends and `for`
    # alone decides how long it must last. Failures over zero successful transfers give +Inf,
    # which is above any threshold: "failures while nothing succeeds" needs no branch of its own.
    return (f"{_q(ctx, 'kv_transfer_failures_fast')}\n/ {ctx.on(*NS_MODEL)}\n{_q(ctx, 'kv_transfers_fast')}\n"
            f"> {s['threshold']}")


# The recorded quantile PDKVTransferSlow reads; config validation demands it while the alert is on.
P95 = {"quantile": "0.95"}


def _kv_transfer_slow(ctx: Ctx, s: Settings) -> str:
    # Value: the p95 when it breaks its bound, else the mean; the description shows both.
    p95 = _per_model(ctx, _q(ctx, "kv_xfer_time_quantile", **P95), "max")
    mean = _per_model(ctx, _q(ctx, "kv_xfer_time_mean"), "max")
    return f"({p95} > {s['p95_seconds']})\nor\n({mean} > {s['mean_seconds']})"


def _kv_expired(ctx: Ctx, s: Settings) -> str:
    # Value: requests hit by an expired KV lease per decode completion (+Inf when decode finishes
    # nothing): expired on prefill, or (vLLM 0.33) completed after the expiry.
    return (f"{_q(ctx, 'kv_expired_events')}\n/ {ctx.on(*NS_MODEL)}\n{_decode_rps(ctx)}\n"
            f"> {s['threshold']}")


def _kv_load_errors(ctx: Ctx, s: Settings) -> str:
    # Value: the share of decode's finished requests that end with finished_reason="error",
    # kept only while KV transfers fail (an error for another reason is not this alert's).
    on = ctx.on(*NS_MODEL)
    errors = _per_model(ctx, _q(ctx, "requests_errored", role="decode"))
    return (f"{errors}\n/ {on}\n({_decode_rps(ctx)} > 0)\n> {s['threshold']}\n"
            f"and {on}\n({_q(ctx, 'kv_failures')} > 0)")


def _targets_down(ctx: Ctx, s: Settings) -> str:
    return f"{_q(ctx, 'model_server_targets_down')} > 0"


def _excluding(ctx: Ctx, s: Settings) -> Ctx:
    """The context without the namespaces the alert's `exclude_namespaces` names. A context that
    already scopes the namespace (a runbook's query for one namespace) keeps its own scope."""
    pattern = s["exclude_namespaces"]
    if not pattern or "namespace" in ctx.scope:
        return ctx
    return ctx.scoped(namespace=("!~", pattern))


def _roles_unresolved(ctx: Ctx, s: Settings) -> str:
    # Value: vLLM series without the pod label (the cause, first when both hold), else 0 where
    # pods are up and none has a role.
    c = _excluding(ctx, s)
    return f"{_q(c, 'vllm_series_without_pod')}\nor {ctx.on(*NS)}\n{_q(c, 'roles_unseen')} * 0"


def _epp_metrics_absent(ctx: Ctx, s: Settings) -> str:
    # Value: model-server pods up in the namespace.
    return _q(_excluding(ctx, s), "epp_unseen")


def _recording_rules_absent(ctx: Ctx, s: Settings) -> str:
    # Value: model-server pods up, counted from the raw series.
    return _q(ctx, "recording_rules_absent")


# --- description fields ---------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def _fast_window_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    return {"fast_window": ctx.cfg["prometheus"]["fast_window"]}


def _mismatch_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    polls = T.when_positive(
        ctx, NS, "epp_poll_errors_ns", {},
        " The EPP fails to poll model-server metrics ({} datalayer poll errors/s): it cannot scrape those "
        "pods, so it counts them as not ready; this is the usual cause.", "humanize")
    return {"pods": T.query_value(ctx, NS, "vllm_pods_ns", {}, "humanize"), "poll_errors": polls}


def _idle_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    return {"idle_ratio": _percent(ctx.threshold("prefill_idle_ratio"))}


def _collapsed_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    # Each failing check in the words of its record, in the checklist's order.
    words = {c.name: c.text for c in checks.CHECKS}
    failing = T.query_list(ctx, NS_MODEL, _holding, "signal", words)
    return {"signals": failing, "total": str(len(checks.CHECKS))}


def _failures_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    return {
        "measure": T.if_infinite(
            "KV transfers fail while no transfer succeeds",
            f"failed KV transfers are {T.value('humanizePercentage')} of completed transfers",
        ),
        "threshold": _percent(s["threshold"]),
        **_fast_window_fields(ctx, s),
    }


def _load_errors_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    return {"failures": T.query_value(ctx, NS_MODEL, "kv_failures", {}, "humanize"),
            "threshold": _percent(s["threshold"])}


def _slow_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    return {
        "p95": T.query_value(ctx, NS_MODEL, "kv_xfer_time_quantile", P95, "humanizeDuration"),
        "mean": T.query_value(ctx, NS_MODEL, "kv_xfer_time_mean", {}, "humanizeDuration"),
        "p95_bound": _seconds(s["p95_seconds"]),
        "mean_bound": _seconds(s["mean_seconds"]),
    }


def _expired_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    late = T.when_positive(
        ctx, NS_MODEL, "nixl_notifications_after_expiry", {},
        " {} transfers/s completed after their lease expired: decode may have read blocks prefill had "
        "already reused.", "humanize")
    return {
        "measure": T.if_infinite(
            "KV leases of some requests expired on prefill while decode finished no request",
            f"{T.value('humanizePercentage')} of requests had their KV lease expire on prefill "
            "before decode read their blocks",
        ),
        "late": late,
        "threshold": _percent(s["threshold"]),
    }


def _roles_fields(ctx: Ctx, s: Settings) -> dict[str, str]:
    pod = ctx.label("pod")
    roles = ctx.cfg["roles"]
    how = ("no pod name matches roles.pod_regex.prefill or roles.pod_regex.decode" if roles["mode"] == "pod_regex"
           else f"no pod carries the {roles['label']['name']} label with the roles.label prefill or decode value")
    lost = ("no pod can be counted or given a role" if roles["mode"] == "pod_regex"
            else "pods cannot be told apart or counted")
    return {"measure": T.if_positive(
        f"{T.value('humanize')} vLLM series carry no {pod} label (labels.pod): it was relabelled away or "
        f"renamed, so {lost}.",
        f"{T.query_value(ctx, NS, 'vllm_pods_ns', {}, 'humanize')} model-server pod(s) export vLLM metrics "
        f"but {how}.")}


# --- the alerts -------------------------------------------------------------------------------------

ALERTS: tuple[AlertDef, ...] = (
    AlertDef(
        name="PDKVTransferAbsent",
        summary="P/D deployment moves no KV cache between prefill and decode.",
        description=(
            "In {where}, model {model}: prefill pods are up and decode pods start {value} requests/s, "
            "yet no KV cache moved in the last {fast_window}: no KV transfer completed and decode received "
            "no prompt tokens by KV transfer (series absent or flat). Decode is computing the prompts "
            "itself: disaggregation has collapsed or is collapsing."
        ),
        value="humanize",
        keys=NS_MODEL,
        expr=_kv_transfer_absent,
        link=Link(COORDINATOR, "kv-status"),
        confirm=(
            Confirm("Short-window evidence: 1 = decode started requests and no KV transfer completed",
                    "fast_signal", {"signal": "nixl_transfers_absent"}),
            Confirm("KV transfers completed in the fast window (0 or empty: nothing moves)", "kv_transfers_fast", {}),
            Confirm("Requests started on decode in the fast window", "requests_started_fast", {"role": "decode"}),
            Confirm("KV transfer series present, NIXL or Mooncake (empty result: no series at all)",
                    "kv_series", {}),
            Confirm("KV transfers completed per second (0 or empty: nothing moves)", "kv_transfers", {}),
            Confirm("Prompt tokens per second decode received by KV transfer (vLLM 0.16+; 0 or empty: "
                    "nothing arrives)", "kv_delivered_tokens", {}),
            Confirm("Prefill pods exporting vLLM metrics", "vllm_pods", {"role": "prefill"}),
            Confirm("Requests finished per second on decode", "requests", {"role": "decode"}),
        ),
        fields=_fast_window_fields,
    ),
    AlertDef(
        name="PDKVTransferMetricsMissing",
        summary="P/D deployment exports no KV transfer evidence, so KV transfer cannot be verified.",
        description=(
            "In {where}, model {model}: prefill pods finish {value} of the requests decode pods finish, "
            "so prefill works, but vLLM exports no KV evidence: no NIXL or Mooncake transfer series and no "
            "prompt tokens by source. vLLM is older than 0.11.1 (NIXL) or 0.16 (any other connector); "
            "PDKVTransferAbsent cannot judge this deployment."
        ),
        value="humanizePercentage",
        keys=NS_MODEL,
        expr=_kv_transfer_metrics_missing,
        link=Link(COORDINATOR, "kv-status"),
        confirm=(
            Confirm("KV transfer series present (empty result confirms the alert)", "kv_series", {}),
            Confirm("Decode prompt-tokens-by-source series present (empty result confirms the alert)",
                    "kv_delivery_series", {}),
            Confirm("Prefill completions per decode completion (about 1 when prefill works)",
                    "prefill_work_ratio", {}),
        ),
    ),
    AlertDef(
        name="PDEPPReadyPodsMismatch",
        summary="The EPP sees fewer ready pods than model-server pods are up.",
        description=(
            "In {where}, the EPP counts only {value} of the {pods} model-server pods exporting metrics "
            "as ready (summed over its InferencePools).{poll_errors} Pods the EPP does not see get no "
            "traffic; a missing prefill pod makes decode compute every prompt."
        ),
        value="humanize",
        keys=NS,
        expr=_epp_ready_pods_mismatch,
        link=Link(DRILLDOWN, "epp-ready"),
        confirm=(
            Confirm("Pods the EPP considers ready, summed over the namespace's pools", "epp_ready_pods_ns", {}),
            Confirm("Model-server pods exporting vLLM metrics", "vllm_pods_ns", {}),
            Confirm("Ready pods per InferencePool", "epp_ready_pods", {}),
            Confirm("The EPP's failed data-source polls per second, by source_type (llm-d-router v0.9+)",
                    "epp_poll_errors", {}),
        ),
        fields=_mismatch_fields,
    ),
    AlertDef(
        name="PDPrefillIdle",
        summary="Prefill pods are up but do almost no work.",
        description=(
            "In {where}, model {model}: prefill pods take {value} of the requests decode pods take "
            "(idle below {idle_ratio}) while decode pods serve traffic. Decode is computing the prompts itself."
        ),
        value="humanizePercentage",
        keys=NS_MODEL,
        expr=_prefill_idle,
        link=Link(DRILLDOWN, checks.PREFILL_IDLE.panel_key),
        confirm=(
            Confirm("Requests started on prefill per request started on decode in the fast window",
                    "prefill_start_ratio_fast", {}),
            Confirm("Requests started per role in the fast window", "requests_started_fast", {}),
            Confirm("Prefill completions per decode completion", "prefill_work_ratio", {}),
            Confirm("Requests finished per second on prefill", "requests", {"role": "prefill"}),
            Confirm("Requests finished per second on decode", "requests", {"role": "decode"}),
        ),
        fields=_idle_fields,
    ),
    AlertDef(
        name="PDDisaggregationCollapsed",
        summary="P/D disaggregation has collapsed into aggregated serving.",
        description=(
            "In {where}, model {model}: no KV cache moves between prefill and decode and prefill pods "
            "are idle while decode pods serve traffic. {value} of the {total} 'not disaggregated' "
            "signals hold: {signals}."
        ),
        value="humanize",
        keys=NS_MODEL,
        expr=_collapsed,
        link=Link(DRILLDOWN, ids.VERDICT_PANEL),
        confirm=(
            Confirm("Short-window evidence for KV transfer and prefill work (1 failing, 0 passing)",
                    "fast_signal", {}),
            Confirm("The five checklist signals (1 failing, 0 passing)", "checklist", {}),
            Confirm("Verdict code (1 = collapsed to aggregated)", "verdict", {}),
        ),
        fields=_collapsed_fields,
    ),
    AlertDef(
        name="PDKVTransferFailures",
        summary="KV transfers are failing.",
        description=(
            "In {where}, model {model}: {measure} over the last {fast_window} (threshold {threshold}). "
            "Requests whose KV transfer fails are recomputed on decode, or end as errors (vLLM 0.24+)."
        ),
        value="humanizePercentage",
        keys=NS_MODEL,
        expr=_kv_transfer_failures,
        link=Link(COORDINATOR, "kv-failures"),
        confirm=(
            Confirm("Failed KV transfers in the fast window, each counted once", "kv_transfer_failures_fast", {}),
            Confirm("KV transfers completed in the fast window", "kv_transfers_fast", {}),
            Confirm("Failed KV transfers per completed transfer", "kv_failure_ratio", {}),
            Confirm("Failed KV transfers per second, each failure counted once (NIXL transfers, handshakes "
                    "and notifications; Mooncake sends and receives)", "kv_failures", {}),
            Confirm("Failed NIXL notifications per second (from vLLM 0.33 already among the failures)",
                    "nixl_failed_notifications", {}),
            Confirm("KV transfers completed per second", "kv_transfers", {}),
        ),
        fields=_failures_fields,
    ),
    AlertDef(
        name="PDKVTransferSlow",
        summary="KV transfers are slower than their configured bound.",
        description=(
            "In {where}, model {model}: KV transfers take {p95} at p95 (bound {p95_bound}) and "
            "{mean} on average (bound {mean_bound}) over the last {window}. Decode waits for the KV "
            "pull before its first token, so TTFT grows by as much."
        ),
        value="humanizeDuration",
        keys=NS_MODEL,
        expr=_kv_transfer_slow,
        link=Link(COORDINATOR, "kv-time"),
        confirm=(
            Confirm("Mean KV transfer time", "kv_xfer_time_mean", {}),
            Confirm("KV transfer time quantiles", "kv_xfer_time_quantile", {}),
            Confirm("Mean bytes per transfer", "kv_bytes_per_transfer", {}),
        ),
        fields=_slow_fields,
    ),
    AlertDef(
        name="PDKVTransferExpiredRequests",
        summary="KV blocks expire on prefill before decode reads them.",
        description=(
            "In {where}, model {model}: {measure} over the last {window} (threshold {threshold}).{late} "
            "Decode recomputes or fails those requests: the KV transfer is too slow or never starts."
        ),
        value="humanizePercentage",
        keys=NS_MODEL,
        expr=_kv_expired,
        link=Link(COORDINATOR, "kv-failures"),
        confirm=(
            Confirm("Requests whose KV lease expired on prefill, per second", "kv_expired", {}),
            Confirm("NIXL transfers completed after their lease expired, per second (vLLM 0.33+)",
                    "nixl_notifications_after_expiry", {}),
            Confirm("Requests finished per second on decode", "requests", {"role": "decode"}),
            Confirm("KV transfer time quantiles", "kv_xfer_time_quantile", {}),
        ),
        fields=_expired_fields,
    ),
    AlertDef(
        name="PDModelServerTargetsDown",
        summary="Model-server scrape targets are down.",
        description=(
            "In {where}, {value} {role} model-server target(s) have failed every scrape for at least "
            "{for}. Their pods are down or their metrics port is unreachable; the P/D signals of this "
            "namespace are incomplete."
        ),
        value="humanize",
        keys=NS_ROLE,
        expr=_targets_down,
        link=Link(DRILLDOWN, "targets-down"),
        confirm=(
            Confirm("Model-server targets down, per role", "model_server_targets_down", {}),
            Confirm("Model-server pods exporting vLLM metrics, per role", "vllm_pods", {}),
        ),
    ),
    # --- coverage: the package cannot see what it watches (the absent-alert pattern) -----------
    AlertDef(
        name="PDPodRolesUnresolved",
        summary="Model-server pods cannot be given a role or told apart, so the P/D checks are blind.",
        description=(
            "In {where}, {measure} Until that is fixed the P/D checks and alerts of this namespace "
            "(PDDisaggregationCollapsed included) cannot be trusted: they stay silent, or count pods "
            "wrongly, whatever happens."
        ),
        value="humanize",
        keys=NS,
        expr=_roles_unresolved,
        link=Link(DRILLDOWN, "epp-ready"),
        confirm=(
            Confirm("vLLM series without the pod label (empty result: every series has one)",
                    "vllm_series_without_pod", {}),
            Confirm("Model-server pods exporting vLLM metrics", "vllm_pods_ns", {}),
            Confirm("Model-server pods per role (empty result: no pod has a role)", "vllm_pods", {}),
        ),
        fields=_roles_fields,
    ),
    AlertDef(
        name="PDEPPMetricsAbsent",
        summary="Model-server pods are up but the EPP exports no metrics here.",
        description=(
            "In {where}, {value} model-server pod(s) with a P/D role export vLLM metrics, but no EPP "
            "ready-pod series exist. The 'EPP ready pods < model-server pods' check has nothing to compare "
            "and PDEPPReadyPodsMismatch cannot fire: the post-mortem's EPP failure would go unseen."
        ),
        value="humanize",
        keys=NS,
        expr=_epp_metrics_absent,
        link=Link(DRILLDOWN, "epp-ready"),
        confirm=(
            Confirm("Pods the EPP considers ready, summed over the namespace's pools (empty result "
                    "confirms the alert)", "epp_ready_pods_ns", {}),
            Confirm("Model-server pods per role", "vllm_pods", {}),
        ),
    ),
    AlertDef(
        name="PDRecordingRulesAbsent",
        summary="The P/D recording rules are not loaded or not evaluating, so every P/D alert is silent.",
        description=(
            "In {where}, {value} model-server pod(s) export vLLM metrics but the recorded series of this "
            "package have been absent for {for}: the recording rules are not loaded in this Prometheus "
            "(or ruler) or fail to evaluate. Every other P/D alert and the dashboards read those series, "
            "so they are silent and show No Data."
        ),
        value="humanize",
        keys=NS,
        expr=_recording_rules_absent,
        link=Link(DRILLDOWN, "alerts"),
        confirm=(
            Confirm("Model-server pods counted from the raw vLLM series", "vllm_pods_raw", {}),
            Confirm("The same count as recorded (empty result confirms the alert)", "vllm_pods_ns", {}),
        ),
        reads_raw=True,
    ),
    AlertDef(
        name="PDKVLoadErrors",
        summary="Decode requests end as errors because their KV cache fails to load.",
        description=(
            "In {where}, model {model}: {value} of the requests decode pods finish end with "
            "finished_reason=\"error\" over the last {window} (threshold {threshold}) while KV transfers "
            "fail ({failures} failures/s). vLLM 0.24+ ends a request whose KV load fails instead of "
            "recomputing its prompt (kv_load_failure_policy=fail, the default): clients get errors."
        ),
        value="humanizePercentage",
        keys=NS_MODEL,
        expr=_kv_load_errors,
        link=Link(COORDINATOR, "kv-load-errors"),
        confirm=(
            Confirm("Requests finished with an error per second on decode", "requests_errored",
                    {"role": "decode"}),
            Confirm("Requests finished per second on decode", "requests", {"role": "decode"}),
            Confirm("Failed KV transfers per second, each failure counted once", "kv_failures", {}),
        ),
        fields=_load_errors_fields,
    ),
)

BY_NAME: dict[str, AlertDef] = {a.name: a for a in ALERTS}
