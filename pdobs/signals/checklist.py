"""The post-mortem's five "not disaggregated" signals, the verdict, and the status codes the
dashboards show for them."""

from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import NS, NS_MODEL

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
# checklist_status: the checklist's 0/1 where P/D is active, else the verdict code saying why
# the check does not apply (codes 2 and 3 are VERDICTS codes).
CHECK_STATES = {0: "PASS", 1: "FAIL", 2: "NOT DEPLOYED", 3: "NO TRAFFIC"}
# nixl_status: is KV cache moving between prefill and decode?
NIXL_STATES = {0: "FLOWING", 1: "ABSENT", 2: "NOT DEPLOYED", 3: "IDLE", 4: "NO METRICS"}


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


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [
        Signal("checklist", "namespace_model:pd_signal:failing", NS_MODEL, "short",
               "The post-mortem's five 'not disaggregated' signals: 1 failing, 0 passing, absent "
               "when P/D is not deployed or there is no traffic.", _checklist,
               tuple({"signal": s} for s in CHECKLIST)),
        Signal("verdict", "namespace_model:pd_verdict:code", NS_MODEL, "short",
               "Is it disaggregated? " + ", ".join(f"{k} {v}" for k, v in VERDICTS.items()) + ".",
               _verdict),
        Signal("checklist_status", None, NS_MODEL, "short",
               "Checklist signal or why it does not apply: "
               + ", ".join(f"{k} {t}" for k, t in CHECK_STATES.items()) + ".",
               _checklist_status, tuple({"signal": s} for s in CHECKLIST)),
        Signal("nixl_status", None, NS_MODEL, "short",
               "KV transfer status: " + ", ".join(f"{k} {t}" for k, t in NIXL_STATES.items()) + ".",
               _nixl_status),
    ]
