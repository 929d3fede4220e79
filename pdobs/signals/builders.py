"""Aggregation levels and the builders many signals share.

A builder turns a context and a variant into PromQL. The ones here join a metric's historical
names with `or` after aggregation, preferred name first, so one query works on any vLLM or EPP
version (version drift is normalised where the signal is defined, never downstream).
"""

from pdobs.core.context import ROLES, Ctx, Variant
from pdobs.core.engine import Builder

NS = ("namespace",)
NS_MODEL = ("namespace", "model")
NS_POOL = ("namespace", "pool")
NS_MODEL_POD = ("namespace", "model", "pod")
ROLE_VARIANTS: tuple[Variant, ...] = tuple({"role": r} for r in ROLES)
# Per-pod signals: all pods, or one role.
POD_VARIANTS: tuple[Variant, ...] = ({}, *ROLE_VARIANTS)

# Every vLLM pod exports this gauge in every version, so its presence means "pod is up".
POD_PRESENCE_METRIC = "vllm:num_requests_running"
# The scope keys the EPP's request metrics ignore (`Signal.unscoped`): their model_name is the
# model the client asked for, while vLLM and the P/D decision counters carry the target model.
# Under a model rewrite (InferenceModelRewrite) or with LoRA adapters the two differ, so a model
# filter taken from the model servers would empty them: they are filtered by namespace only.
EPP_CLIENT_MODEL = ("model",)


def vllm_sum_rate(names: tuple[str, ...], level: tuple[str, ...] = NS_MODEL,
                  extra_by: tuple[str, ...] = (), matchers: str = "") -> Builder:
    """sum(rate()) of a vLLM counter per role, trying each historical name in turn."""

    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*level, extra=extra_by)
        return " or ".join(
            f"sum by ({by}) (rate({ctx.vllm(n, v.get('role'), matchers)}[{ctx.window}]))"
            for n in names
        )

    return build


def vllm_gauge(agg: str, names: tuple[str, ...], level: tuple[str, ...] = NS_MODEL) -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*level)
        return " or ".join(f"{agg} by ({by}) ({ctx.vllm(n, v.get('role'))})" for n in names)

    return build


def epp_sum_rate(names: tuple[str, ...], level: tuple[str, ...] = NS_MODEL,
                 extra_by: tuple[str, ...] = (), matchers: str = "") -> Builder:
    def build(ctx: Ctx, v: Variant) -> str:
        by = ctx.by(*level, extra=extra_by)
        per_model = "model" in level
        return " or ".join(
            f"sum by ({by}) (rate({ctx.epp(n, per_model=per_model, extra=matchers)}[{ctx.window}]))"
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


def distinct_pods(ctx: Ctx, level: tuple[str, ...], selector: str) -> str:
    # The inner count folds data-parallel engines (one series each) into one per pod.
    by = ctx.by(*level)
    return f"count by ({by}) (count by ({by}, {ctx.label('pod')}) ({selector}))"
