"""What the alerts and the firing-alerts panel read besides the checklist."""

from pdobs.core import promql
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals.builders import NS, ROLE_VARIANTS

# Every alert this project renders is named with this prefix (alert-name lint, firing-alerts panel).
ALERT_NAME_PREFIX = "PD"


def _model_server_targets_down(ctx: Ctx, v: Variant) -> str:
    # `up` carries target labels only: a model scope would match nothing, so it is dropped.
    sel = ctx.unscoped("model").vllm("up", v["role"])
    return f"count by ({ctx.by(*NS)}) ({sel} == 0)"


def _alerts_firing(ctx: Ctx, v: Variant) -> str:
    return ctx.series("ALERTS", NS, promql.matcher("alertname", "=~", ALERT_NAME_PREFIX + ".*"),
                      promql.matcher("alertstate", "=", "firing"))


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [
        Signal("model_server_targets_down", "namespace_role:vllm_targets_down:count", NS, "short",
               "Model-server scrape targets down (up == 0), per role; absent when none is down.",
               _model_server_targets_down, ROLE_VARIANTS),
        Signal("pd_alerts_firing", None, NS, "short",
               "This project's alerts firing now (Prometheus' ALERTS series).", _alerts_firing),
    ]
