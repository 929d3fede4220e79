"""Coverage: can the package see what it watches? (the kubernetes-mixin's absent-alert pattern)

Every P/D signal reads vLLM series per role and every alert reads our recorded series. When the
pod label is relabelled away, no pod matches a role, the EPP is not scraped or the recording rules
are not loaded, those signals do not turn bad: they vanish, and every check and alert built on
them goes quiet. These signals say so, per namespace; the blind-monitoring alerts and the doctor
read them.

"Blind" is decided per namespace: vLLM pods are up and none of them has a role (so neither
prefill nor decode is seen), or vLLM series carry no pod label at all. An aggregated-by-design
llm-d deployment is not blind: its pods are named `-decode-` and match the decode role.
"""

from pdobs.core import promql
from pdobs.core.context import Ctx, Variant
from pdobs.core.engine import Signal
from pdobs.signals import vllm
from pdobs.signals.builders import NS, POD_PRESENCE_METRIC


def _series_without_pod(ctx: Ctx, v: Variant) -> str:
    # A label relabelled away reads as the empty value. Namespace level: a model scope must not
    # narrow it when inlined (the recorded series has no model label).
    sel = ctx.unscoped("model").vllm(POD_PRESENCE_METRIC, None, promql.matcher(ctx.label("pod"), "=", ""))
    return f"count by ({ctx.by(*NS)}) ({sel})"


def _roles_unseen(ctx: Ctx, v: Variant) -> str:
    # `vllm_pods` without a role selects both role variants: any pod with a role keeps it quiet.
    return f"{ctx.ref('vllm_pods_ns')}\nunless {ctx.on(*NS)}\n{ctx.ref('vllm_pods')}"


def _epp_unseen(ctx: Ctx, v: Variant) -> str:
    # Only namespaces whose pods have a role (llm-d's naming): a plain vLLM namespace has no EPP
    # by design, and one without roles is `roles_unseen`'s.
    on = ctx.on(*NS)
    return (f"{ctx.ref('vllm_pods_ns')}\nand {on}\n{ctx.ref('vllm_pods')}\n"
            f"unless {on}\n{ctx.ref('epp_ready_pods_ns')}")


def _recording_rules_absent(ctx: Ctx, v: Variant) -> str:
    return f"{ctx.ref('vllm_pods_raw')}\nunless {ctx.on(*NS)}\n{ctx.ref('vllm_pods_ns')}"


def signals(quantiles: tuple[float, ...], window: str) -> list[Signal]:
    return [
        Signal("vllm_series_without_pod", "namespace:vllm_series_without_pod:count", NS, "short",
               "vLLM pod-presence series that carry no pod label (relabelled away or renamed); absent "
               "when every series has one.", _series_without_pod),
        Signal("roles_unseen", None, NS, "short",
               "Namespaces where model-server pods export vLLM metrics but none matches a role: "
               "neither prefill nor decode is seen (value: the pods).", _roles_unseen),
        Signal("epp_unseen", None, NS, "short",
               "Namespaces where model-server pods with a role are up but the EPP exports no "
               "ready-pod series (value: the pods).", _epp_unseen),
        Signal("vllm_pods_raw", None, NS, "short",
               "Model-server pods up in the namespace, counted from the raw vLLM series (the "
               "expression vllm_pods_ns records), for where the recording rules may be missing.",
               vllm.pods_ns),
        Signal("recording_rules_absent", None, NS, "short",
               "Namespaces with vLLM pods but no recorded pods count (vllm_pods_ns): the recording rules are not "
               "loaded in this Prometheus or not evaluating (value: the pods).", _recording_rules_absent),
    ]
