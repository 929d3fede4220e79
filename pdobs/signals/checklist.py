"""The checklist signals (one variant per record of pdobs/checks.py), the verdict, and the status
codes the dashboards show for them."""

from pdobs import checks
from pdobs.checks import CheckState, NixlState, Verdict
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import NS_MODEL


def _variants() -> tuple[Variant, ...]:
    return tuple({"signal": c.name} for c in checks.CHECKS)


def _check(name: str) -> checks.Check:
    check = checks.by_name(name)
    if check is None:
        raise KeyError(f"no check {name!r} in pdobs.checks.CHECKS")
    return check


def _checklist(ctx: Ctx, v: Variant) -> str:
    """1 where the check fails, 0 where it passes, only where P/D is active (and the check can be
    measured)."""
    check = _check(v["signal"])
    zero = f"({ctx.ref('pd_active')}) * 0"
    if check.applies is not None:
        zero = f"(\n{zero}\n{check.applies(ctx)}\n)"
    return f"(\n  ({zero} + 1)\n  {check.fails(ctx)}\n)\nor\n{zero}"


def _code(expr: str, state: Verdict | CheckState) -> str:
    """`expr` turned into the verdict's (or state's) code wherever it has a value."""
    return f"{expr} * 0 + {state.code}" if state.code else f"{expr} * 0"


def _verdict(ctx: Ctx, v: Variant) -> str:
    by = ctx.by(*NS_MODEL)
    on = ctx.on(*NS_MODEL)
    prefill = f"sum by ({by}) ({ctx.ref('vllm_pods', role='prefill')})"
    decode = f"sum by ({by}) ({ctx.ref('vllm_pods', role='decode')})"
    active = f"({ctx.ref('pd_active')})"
    failing = ctx.ref("checklist", signal=checks.KV_TRANSFER.name)
    # The first branch that has a value wins, so the order is the verdict's precedence.
    branches = [
        _code(f"({ctx.ref('kv_evidence_missing')})", Verdict.CANNOT_TELL),
        f"{_code(active, Verdict.COLLAPSED)} and {on} ({failing} == 1)",
        _code(active, Verdict.DISAGGREGATED),
        _code(f"({prefill} > 0)", Verdict.NO_TRAFFIC),
        _code(f"({decode} > 0)", Verdict.AGGREGATED_BY_DESIGN),
    ]
    return "\nor\n".join(f"({b})" for b in branches)


def _not_applicable(ctx: Ctx) -> str:
    # A verdict saying the checks do not apply: the comparisons filter, keeping the code.
    first, last = checks.NOT_APPLICABLE[0].code, checks.NOT_APPLICABLE[-1].code
    return f"(({ctx.ref('verdict')} >= {first}) < {last + 1})"


def _one_series(ctx: Ctx, expr: str) -> str:
    # The branches of a status come from differently named series (checklist, verdict): over a
    # time range that crosses a state change a panel would get one series per branch and a stat
    # panel would show two values. Exactly one branch exists per namespace/model at any instant,
    # so keeping only those labels joins them into one series.
    return f"max by ({ctx.by(*NS_MODEL)}) (\n{expr}\n)"


def _checklist_status(ctx: Ctx, v: Variant) -> str:
    on = ctx.on(*NS_MODEL)
    expr = f"{ctx.ref('checklist', **v)}\nor {on}\n{_not_applicable(ctx)}"
    if _check(v["signal"]).applies is not None:
        # Evaluated yet without a value: the check has nothing to measure here.
        expr += f"\nor {on}\n{_code(ctx.ref('verdict'), CheckState.NOT_EXPORTED)}"
    return _one_series(ctx, expr)


def _kv_status(ctx: Ctx, v: Variant) -> str:
    # CANNOT TELL means prefill works but no KV evidence is exported: say so rather than "absent".
    return _one_series(ctx, f"({ctx.ref('verdict')} == {NixlState.NO_METRICS.code})\nor {ctx.on(*NS_MODEL)}\n"
                            f"{ctx.ref('checklist', signal=checks.KV_TRANSFER.name)}\nor {ctx.on(*NS_MODEL)}\n"
                            f"{_not_applicable(ctx)}")


def _codes(states: type[CheckState] | type[NixlState] | type[Verdict]) -> str:
    return ", ".join(f"{s.code} {s.text}" for s in states)


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [
        Signal("checklist", "namespace_model:pd_signal:failing", NS_MODEL, "short",
               "The post-mortem's 'not disaggregated' signals: 1 failing, 0 passing, absent "
               "when P/D is not deployed or there is no traffic.", _checklist, _variants()),
        Signal("verdict", "namespace_model:pd_verdict:code", NS_MODEL, "short",
               f"Is it disaggregated? {_codes(Verdict)}.", _verdict),
        Signal("checklist_status", None, NS_MODEL, "short",
               f"Checklist signal or why it does not apply: {_codes(CheckState)}.", _checklist_status, _variants()),
        Signal("kv_status", None, NS_MODEL, "short", f"KV transfer status: {_codes(NixlState)}.", _kv_status),
    ]
