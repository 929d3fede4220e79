"""The post-mortem's checklist, one record per check, and the verdict, each defined once.

A `Check` holds everything about one "not disaggregated" signal: the condition under which it
fails (PromQL over catalog signals, never a metric name), its title and pass/fail text, what the
doctor reads and how it words the measured value, the alert whose runbook explains a failure,
whether the collapse verdict silences that alert, and the status its drill-down panel shows.
Every consumer iterates over `CHECKS`:

    pdobs/signals/checklist.py   the `checklist` recording rule (one variant per check) and its status
    alerts/definitions.py        the Collapsed alert's list of failing checks
    dashboards/drilldown.py      one status panel per check in the top row
    pdobs/doctor/checklist.py    one row per check: measured, expected, result, reason, runbook
    delivery/alertmanager.py     which alerts the collapse verdict inhibits

Adding a check is a record here plus the signals its condition reads (pdobs/signals/). Read the
records as `checks.CHECKS` when they are used, never copied at import time: a test registers an
extra check by replacing the tuple.

The verdict, the checks' status codes and the KV-transfer status are enums holding code, text
and colour (and, for the verdict, the doctor's exit code and the alert it points at).
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, NamedTuple, TypeGuard

from pdobs.core.context import Ctx

Config = dict[str, Any]

NS = ("namespace",)
NS_MODEL = ("namespace", "model")
NEUTRAL = "#8e8e8e"  # grey: "does not apply", neither good nor bad
# NIXL transfer metrics exist from this vLLM version on (why a verdict can be CANNOT TELL).
NIXL_MIN_VLLM = "0.11.1"
# Mooncake's transfer metrics, and decode's prompt tokens by source (KV evidence on any connector).
MOONCAKE_MIN_VLLM = "0.33.0"
DELIVERY_MIN_VLLM = "0.16.0"


class Exit(IntEnum):
    """The doctor's exit codes. UNDECIDED: nothing is shown broken, nothing proven."""
    OK = 0
    FAILING = 1
    BAD_INPUT = 2
    UNDECIDED = 3


class Verdict(Enum):
    """Is it disaggregated? The codes are what the `verdict` recording rule returns."""

    DISAGGREGATED = (0, "DISAGGREGATED", "green", Exit.OK, None)
    COLLAPSED = (1, "COLLAPSED TO AGGREGATED", "red", Exit.FAILING, "PDDisaggregationCollapsed")
    AGGREGATED_BY_DESIGN = (2, "AGGREGATED BY DESIGN", NEUTRAL, Exit.OK, None)
    NO_TRAFFIC = (3, "NO TRAFFIC", NEUTRAL, Exit.UNDECIDED, None)
    CANNOT_TELL = (4, "CANNOT TELL", "orange", Exit.UNDECIDED, "PDKVTransferMetricsMissing")

    def __init__(self, code: int, text: str, color: str, exit_code: Exit, alert: str | None) -> None:
        self.code = code
        self.text = text
        self.color = color
        self.exit_code = exit_code
        self.alert = alert  # the alert whose runbook the doctor points at for this verdict, if any

    @classmethod
    def from_code(cls, code: int | None) -> "Verdict | None":
        return next((v for v in cls if v.code == code), None)


# Checks do not apply where the verdict is one of these: a contiguous run of codes, so a status
# signal can filter them with two comparisons.
NOT_APPLICABLE = (Verdict.AGGREGATED_BY_DESIGN, Verdict.NO_TRAFFIC)
if [v.code for v in NOT_APPLICABLE] != list(range(NOT_APPLICABLE[0].code, NOT_APPLICABLE[-1].code + 1)):
    raise AssertionError("the not-applicable verdict codes must be contiguous")


class Status(Enum):
    """Base of the status enums a drill-down panel maps to text and colour."""

    def __init__(self, code: int, text: str, color: str) -> None:
        self.code = code
        self.text = text
        self.color = color


class CheckState(Status):
    """`checklist_status`: the check's 0/1 where P/D is active, else the verdict code saying why
    the check does not apply, or NOT_EXPORTED where the check has nothing to measure."""
    PASS = (0, "PASS", "green")
    FAIL = (1, "FAIL", "red")
    NOT_DEPLOYED = (Verdict.AGGREGATED_BY_DESIGN.code, "NOT DEPLOYED", NEUTRAL)
    NO_TRAFFIC = (Verdict.NO_TRAFFIC.code, "NO TRAFFIC", NEUTRAL)
    NOT_EXPORTED = (5, "NOT EXPORTED", NEUTRAL)  # P/D active, the metric it reads is not exported


class NixlState(Status):
    """`kv_status`: is KV cache moving between prefill and decode (any connector)? The KV check's
    0/1, or the verdict code that explains why it cannot be judged."""
    FLOWING = (CheckState.PASS.code, "FLOWING", "green")
    ABSENT = (CheckState.FAIL.code, "ABSENT", "red")
    NOT_DEPLOYED = (Verdict.AGGREGATED_BY_DESIGN.code, "NOT DEPLOYED", NEUTRAL)
    IDLE = (Verdict.NO_TRAFFIC.code, "IDLE", NEUTRAL)
    NO_METRICS = (Verdict.CANNOT_TELL.code, "NO METRICS", "orange")


# --- what the doctor reads and shows --------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A signal the doctor reads for a check; its value reaches `Check.measure` under `name`."""
    name: str
    signal: str
    variant: Mapping[str, str] = field(default_factory=dict)
    level: tuple[str, ...] = NS_MODEL


class Measured(NamedTuple):
    text: str  # the measured value, worded
    value: float | None  # the number behind it (JSON output), None when there is none
    expected: str
    reason: str


Values = Mapping[str, float | None]
Measure = Callable[[Config, Values, bool], Measured]  # (config, readings by name, failing)


def number(value: float | None, fmt: str = ".3g") -> str:
    if value is None:
        return "none"
    if math.isnan(value):
        return "NaN"
    return format(value, fmt)


def millis(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "no samples"
    return f"{value * 1000:.1f} ms"


def percent(value: float) -> str:
    return f"{value:.1%}".replace(".0%", "%")


def finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True, eq=False)  # identity: records are singletons, and the engine cache keys on them
class Check:
    name: str  # the `signal` label of the checklist recording rule
    title: str  # drill-down panel title and doctor row
    text: str  # the check failing, as the Collapsed alert lists it
    # The PromQL clause that keeps a P/D-active deployment only where the check fails: it follows
    # "1 per active deployment" (`and on(...) (x > t)`, `unless on(...) (x >= t)`).
    fails: Callable[[Ctx], str]
    description: Callable[[Config], str]  # drill-down panel text: what PASS and FAIL mean
    readings: tuple[Reading, ...]
    measure: Measure
    alert: str  # the alert whose runbook explains a failure
    inhibited: bool = False  # the collapse verdict explains that alert, so Alertmanager holds it back
    # The status the drill-down panel shows; by default `checklist_status` for this check.
    status_signal: str = "checklist_status"
    status: type[Status] = CheckState
    # A verdict that already says this check cannot pass (its failure is that verdict's premise):
    # the doctor does not count the failure against the deployment there.
    premise_of: Verdict | None = None
    # A clause (`and on(...) x`) keeping only the active deployments where the check can be
    # measured; elsewhere it has no value (the doctor's N/A, the panel's NOT EXPORTED).
    applies: Callable[[Ctx], str] | None = None

    @property
    def panel_key(self) -> str:
        return f"check-{self.name}"

    @property
    def status_variant(self) -> dict[str, str]:
        return {"signal": self.name} if self.status_signal == "checklist_status" else {}


NOT_APPLICABLE_TEXT = ("NOT DEPLOYED: no prefill pods (aggregated serving, nothing to check). NO TRAFFIC: "
                       "decode pods serve too few requests to tell. Healthy P/D: green.")


# --- the checks ------------------------------------------------------------------------------------


def _kv_measure(cfg: Config, v: Values, failing: bool) -> Measured:
    window = cfg["prometheus"]["rate_window"]
    expected = "> 0 transfers/s or KV-delivered tokens/s"
    delivered = v["delivered"]
    if v["series"] is None and v["delivery"] is None:
        return Measured("no KV transfer series, no prompt tokens by source", None, expected,
                        "no KV evidence exported: no NIXL (vLLM older than "
                        f"{NIXL_MIN_VLLM}) or Mooncake (older than {MOONCAKE_MIN_VLLM}) transfer series, and "
                        f"no prompt tokens by source (older than {DELIVERY_MIN_VLLM}); no KV cache moved, or "
                        "nothing can show it")
    parts = []
    if v["series"] is not None:
        rate = v["transfers"] if v["transfers"] is not None else 0.0
        per_req = v["per_request"]
        parts.append(f"{number(rate)} transfers/s"
                     + (f" ({number(per_req, '.2f')}/decode req)" if finite(per_req) else ""))
    else:
        rate = None
    if v["delivery"] is not None:
        parts.append(f"{number(delivered or 0.0)} tokens/s delivered to decode")
    value = rate if rate is not None else delivered
    if failing:
        reason = f"KV evidence is exported but shows no KV cache moving in the last {window}"
    elif v["series"] is None:
        reason = ("decode receives prompt tokens by KV transfer (the connector exports no transfer "
                  "metrics of its own)")
    else:
        reason = "KV cache moves from prefill to decode pods"
    return Measured(", ".join(parts), value, expected, reason)


KV_TRANSFER = Check(
    name="nixl_transfers_absent",  # the historical `signal` label, kept for rules and links
    title="KV transfers",
    text="no KV transfer",
    # Absent or not increasing: no witness shows KV moving in the rate window. A connector that
    # exports no transfer metrics (Mooncake before vLLM 0.33) is judged by what decode received.
    fails=lambda c: f"unless {c.on(*NS_MODEL)} ({c.ref('kv_moving')})",
    description=lambda cfg: (
        "Does KV cache move from prefill to decode, on any connector? FLOWING (green): KV transfers "
        "(NIXL or Mooncake) completed in the rate window, or decode received prompt tokens by KV "
        "transfer. ABSENT (red): P/D is deployed and serving, yet neither shows KV moving (series "
        f"missing or flat). NO METRICS (orange): prefill works but vLLM exports no KV evidence at all "
        f"(older than {NIXL_MIN_VLLM} with NIXL, or older than {DELIVERY_MIN_VLLM} with another "
        f"connector). {NOT_APPLICABLE_TEXT}"),
    readings=(Reading("series", "kv_series"), Reading("transfers", "kv_transfers"),
              Reading("per_request", "kv_transfers_per_request"), Reading("delivery", "kv_delivery_series"),
              Reading("delivered", "kv_delivered_tokens")),
    measure=_kv_measure,
    alert="PDKVTransferAbsent",
    inhibited=True,
    status_signal="kv_status",
    status=NixlState,
    premise_of=Verdict.CANNOT_TELL,
)


def _one_value(reading: str, shown: Callable[[float], str], missing: str, expected: Callable[[Config], str],
               fails: str, passes: str) -> Measure:
    """A check measured by one reading: `shown` when it is a number, else `missing`."""

    def measure(cfg: Config, v: Values, failing: bool) -> Measured:
        value = v[reading]
        return Measured(shown(value) if finite(value) else missing, value, expected(cfg), fails if failing else passes)

    return measure


PREFILL_IDLE = Check(
    name="prefill_idle",
    title="Prefill worker utilisation",
    text="prefill workers idle",
    fails=lambda c: f"unless {c.on(*NS_MODEL)} ({c.ref('prefill_work_ratio')} >= {c.threshold('prefill_idle_ratio')})",
    description=lambda cfg: (
        "Do prefill pods work? PASS: they finish at least "
        f"{cfg['signals']['prefill_idle_ratio']:.0%} as many requests as decode pods (about 100% in healthy "
        f"P/D). FAIL: prefill pods are up but idle. {NOT_APPLICABLE_TEXT}"),
    readings=(Reading("ratio", "prefill_work_ratio"),),
    measure=_one_value("ratio", lambda x: f"{x:.2f} per decode req", "no requests",
                       lambda cfg: f">= {cfg['signals']['prefill_idle_ratio']:g} per decode req",
                       fails="prefill pods finish almost no requests: decode computes the prompts itself",
                       passes="prefill pods finish about one request per decode request"),
    alert="PDPrefillIdle",
    inhibited=True,
)


DECODE_DOES_ALL_WORK = Check(
    name="decode_does_all_work",
    title="Decode share of the work",
    text="decode does all the work",
    fails=lambda c: f"and {c.on(*NS_MODEL)} ({c.ref('decode_work_share')} > {c.threshold('decode_work_share')})",
    description=lambda cfg: (
        "Does decode do all the work? PASS: decode pods process at most "
        f"{cfg['signals']['decode_work_share']:.0%} of the engine tokens (prefill computes the prompts). FAIL: "
        f"decode computes the prompts itself. {NOT_APPLICABLE_TEXT}"),
    readings=(Reading("share", "decode_work_share"),),
    measure=_one_value("share", lambda x: f"{percent(x)} of tokens", "no tokens",
                       lambda cfg: f"<= {percent(cfg['signals']['decode_work_share'])}",
                       fails="decode pods process every token, prompts included",
                       passes="prefill pods process the prompt tokens"),
    alert="PDDisaggregationCollapsed",
)


def _ttft_measure(cfg: Config, v: Values, failing: bool) -> Measured:
    tol = cfg["signals"]["ttft_equal_tolerance"]
    ratio = v["ratio"]
    legs = f"decode {millis(v['decode'])} / prefill {millis(v['prefill'])}"
    if not finite(ratio):
        text, reason = legs, "prefill pods record no TTFT: they compute no prompts"
    else:
        text = f"{legs} = {ratio:.2f}"
        reason = ("TTFT is the same on both roles: decode computes the first token itself" if failing
                  else "decode TTFT differs from prefill TTFT (it waits for the KV pull, not a prefill)")
    return Measured(text, ratio, f"differs from 1 by >= {percent(tol)}", reason)


TTFT_ROLES_EQUAL = Check(
    name="ttft_roles_equal",
    title="TTFT prefill vs decode",
    text="TTFT(prefill) = TTFT(decode)",
    # A NaN ratio (prefill has no TTFT samples) fails the comparison, so it counts as equal.
    fails=lambda c: (f"unless {c.on(*NS_MODEL)} (abs({c.ref('ttft_decode_over_prefill')} - 1) >= "
                     f"{c.threshold('ttft_equal_tolerance')})"),
    description=lambda cfg: (
        "Are the two TTFTs different? PASS: mean decode TTFT differs from mean prefill TTFT by at "
        f"least {cfg['signals']['ttft_equal_tolerance']:.0%} (decode only pulls KV and runs one step). FAIL: "
        f"they are the same, or prefill has no TTFT at all. {NOT_APPLICABLE_TEXT}"),
    readings=(Reading("ratio", "ttft_decode_over_prefill"),
              Reading("prefill", "ttft_mean", {"role": "prefill"}), Reading("decode", "ttft_mean", {"role": "decode"})),
    measure=_ttft_measure,
    alert="PDDisaggregationCollapsed",
)


def _epp_measure(cfg: Config, v: Values, failing: bool) -> Measured:
    ready, up = v["ready"], v["up"]
    if ready is None:
        return Measured(f"no EPP series / {number(up)} up", None, "ready >= pods up",
                        "no EPP ready-pod series in this namespace: nothing to compare (is the EPP scraped?)")
    polls = v["poll_errors"]
    if failing and finite(polls) and polls > 0:
        reason = (f"the EPP sees {number(up - ready if up else None)} fewer pod(s) than are running and fails "
                  f"to poll model-server metrics ({number(polls)} datalayer poll errors/s): it cannot scrape "
                  "them, so it counts them as not ready")
    elif failing:
        reason = (f"the EPP sees {number(up - ready if up else None)} fewer pod(s) than are running "
                  "(often the prefill pod is not in its pool)")
    else:
        reason = "the EPP sees every model-server pod that is up"
    return Measured(f"{number(ready)} ready / {number(up)} up", ready, "ready >= pods up", reason)


EPP_READY_LT_PODS = Check(
    name="epp_ready_lt_pods",
    title="EPP ready pods vs pods up",
    text="EPP ready pods < model-server pods",
    fails=lambda c: f"and {c.on(*NS)} ({c.ref('epp_ready_lt_pods')})",
    description=lambda cfg: (
        "Does the EPP see every model-server pod? PASS: the EPP counts as many ready pods as there "
        "are pods exporting vLLM metrics in the namespace. FAIL: fewer (typically the prefill "
        "pod is invisible to the scheduler, or the EPP cannot poll a pod's metrics: datalayer poll "
        f"errors). {NOT_APPLICABLE_TEXT}"),
    readings=(Reading("ready", "epp_ready_pods_ns", level=NS), Reading("up", "vllm_pods_ns", level=NS),
              Reading("poll_errors", "epp_poll_errors_ns", level=NS)),
    measure=_epp_measure,
    alert="PDEPPReadyPodsMismatch",
    inhibited=True,
)


def _delivery_measure(cfg: Config, v: Values, failing: bool) -> Measured:
    expected = "> 0 tokens/s by KV transfer"
    if v["series"] is None:
        return Measured("no prompt tokens by source", None, expected,
                        f"vLLM older than {DELIVERY_MIN_VLLM} does not count prompt tokens by source: "
                        "nothing to measure")
    delivered = v["delivered"] if v["delivered"] is not None else 0.0
    ratio = v["ratio"]
    text = f"{number(delivered)} tokens/s" + (f" ({percent(ratio)} of uncached)" if finite(ratio) else "")
    reason = ("decode pods receive no prompt tokens by KV transfer: they compute every prompt themselves"
              if failing else "decode pods receive their prompts' KV cache from prefill")
    return Measured(text, delivered, expected, reason)


KV_DELIVERY = Check(
    name="kv_not_delivered",
    title="KV delivered to decode",
    text="decode receives no prompt tokens by KV transfer",
    fails=lambda c: f"unless {c.on(*NS_MODEL)} ({c.ref('kv_delivered_tokens')} > 0)",
    applies=lambda c: f"and {c.on(*NS_MODEL)} {c.ref('kv_delivery_series')}",
    description=lambda cfg: (
        "Do decode pods receive their prompts by KV transfer (any connector)? PASS: decode counts prompt "
        "tokens from source external_kv_transfer. FAIL: none, decode computes the prompts itself. NOT "
        f"EXPORTED: vLLM older than {DELIVERY_MIN_VLLM} does not count prompt tokens by source. "
        f"{NOT_APPLICABLE_TEXT}"),
    readings=(Reading("series", "kv_delivery_series"), Reading("delivered", "kv_delivered_tokens"),
              Reading("ratio", "kv_delivery_ratio")),
    measure=_delivery_measure,
    alert="PDKVTransferAbsent",
)

# The order the checklist reads them in (recording rules, drill-down, doctor, alert text).
# The post-mortem's five first, then the KV-delivery witness every connector has (vLLM 0.16+).
CHECKS: tuple[Check, ...] = (KV_TRANSFER, PREFILL_IDLE, DECODE_DOES_ALL_WORK, TTFT_ROLES_EQUAL, EPP_READY_LT_PODS,
                             KV_DELIVERY)


def by_name(name: str) -> Check | None:
    return next((c for c in CHECKS if c.name == name), None)
