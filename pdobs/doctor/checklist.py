"""The post-mortem's checklist and the verdict, for every deployment in scope.

PASS/FAIL and the verdict are the catalog's own `checklist` and `verdict` signals, inlined, so the
doctor, the alerts and the dashboards can never disagree. Each row comes from a check record
(pdobs/checks.py): its title, the signals it reads for the measured value, how it words that
value, and the alert whose runbook explains a failure.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dashboards import ids
from dashboards.spec import SCOPE_VARS
from pdobs import checks
from pdobs.build.model import BuildModel, PanelRef
from pdobs.checks import DELIVERY_MIN_VLLM, NIXL_MIN_VLLM, Verdict, finite, number
from pdobs.doctor.model import FAIL, NOT_APPLICABLE, PASS, Check, Deployment
from pdobs.doctor.queries import Key, Reader, label_dict, project

Config = dict[str, Any]

DASHBOARD_UID = ids.DRILLDOWN
# Dashboard variable of each level key.
DASHBOARD_VARS = SCOPE_VARS  # label key -> dashboard variable name

NS_MODEL = ("namespace", "model")
NS = ("namespace",)


@dataclass
class Measures:
    """What the verdict's explanation needs, per deployment key (the checks read their own)."""
    pods: dict[str, dict[Key, float]]
    requests: dict[str, dict[Key, float]]
    kv_transfers: dict[Key, float]
    kv_per_request: dict[Key, float]
    kv_delivered: dict[Key, float]
    verdict: dict[Key, float]
    deployments: list[Key]
    # Blind namespaces (pdobs/signals/coverage.py), by namespace key.
    without_pod_label: dict[Key, float]
    roles_unseen: dict[Key, float]


def measure(r: Reader) -> Measures:
    roles = ("prefill", "decode")
    return Measures(
        pods={role: r.by(NS_MODEL, "vllm_pods", role=role) for role in roles},
        requests={role: r.by(NS_MODEL, "requests", role=role) for role in roles},
        kv_transfers=r.by(NS_MODEL, "kv_transfers"),
        kv_per_request=r.by(NS_MODEL, "kv_transfers_per_request"),
        kv_delivered=r.by(NS_MODEL, "kv_delivered_tokens"),
        verdict=r.by(NS_MODEL, "verdict"),
        deployments=sorted(r.by(NS_MODEL, "vllm_deployments")),
        without_pod_label=r.by(NS, "vllm_series_without_pod"),
        roles_unseen=r.by(NS, "roles_unseen"),
    )


# --- the checks --------------------------------------------------------------------------------


def _status(r: Reader, check: checks.Check, key: Key) -> str:
    value = r.by(NS_MODEL, "checklist", signal=check.name).get(key)
    if value is None:
        return NOT_APPLICABLE
    return FAIL if value >= 1 else PASS


def _readings(r: Reader, check: checks.Check, key: Key) -> dict[str, float | None]:
    """The check's readings for one deployment, each at its own level (e.g. the namespace)."""
    level = r.keys(*NS_MODEL)
    return {reading.name: r.by(reading.level, reading.signal, **reading.variant).get(
                project(key, level, r.keys(*reading.level)))
            for reading in check.readings}


def _not_applicable_reason(verdict: Verdict | None) -> str:
    if verdict is Verdict.AGGREGATED_BY_DESIGN:
        return "no prefill pods: aggregated by design, nothing to disaggregate"
    if verdict is Verdict.NO_TRAFFIC:
        return "no traffic on decode pods: the checks need requests"
    return "P/D is not active here (see the verdict)"


def check_row(cfg: Config, r: Reader, check: checks.Check, key: Key, verdict: Verdict | None) -> Check:
    status = _status(r, check, key)
    measured = check.measure(cfg, _readings(r, check, key), status == FAIL)
    # A check with nothing to measure on an active deployment says why in its own words.
    unmeasured = check.applies is not None and verdict is not None and verdict not in checks.NOT_APPLICABLE
    reason = _not_applicable_reason(verdict) if status == NOT_APPLICABLE and not unmeasured else measured.reason
    value = measured.value if finite(measured.value) else None  # JSON has no NaN
    return Check(check.name, check.title, measured.text, value, measured.expected, status, reason)


# --- verdict ---------------------------------------------------------------------------------


def _verdict_reason(cfg: Config, m: Measures, key: Key, verdict: Verdict | None, failing: list[str],
                    version: str | None) -> str:
    prefill, decode = int(m.pods["prefill"].get(key, 0)), int(m.pods["decode"].get(key, 0))
    if verdict is Verdict.DISAGGREGATED:
        transfers, delivered = m.kv_transfers.get(key), m.kv_delivered.get(key)
        if transfers is None:  # a connector without transfer metrics: decode's own count proves it
            return (f"KV cache moves from prefill to decode ({number(delivered)} prompt tokens/s delivered to "
                    "decode by KV transfer)")
        per_req = m.kv_per_request.get(key)
        extra = f", {per_req:.2f} per decode request" if finite(per_req) else ""
        return f"KV cache moves from prefill to decode ({number(transfers)} transfers/s{extra})"
    if verdict is Verdict.COLLAPSED:
        return (f"prefill pods are up and decode pods serve traffic, but no KV cache moves; "
                f"{len(failing)} of {len(checks.CHECKS)} signals fail")
    if verdict is Verdict.AGGREGATED_BY_DESIGN:
        return f"no prefill pods: {decode} decode pod(s) serve requests themselves"
    if verdict is Verdict.NO_TRAFFIC:
        if decode == 0:
            return f"{prefill} prefill pod(s) but no decode pod"
        rate = m.requests["decode"].get(key, 0.0)
        return (f"decode pods finish {number(rate)} requests/s, under signals.min_request_rate "
                f"({cfg['signals']['min_request_rate']:g}); send traffic and run again")
    if verdict is Verdict.CANNOT_TELL:
        seen = f"; vLLM here is {version}" if version else ""
        return (f"prefill pods work but vLLM exports no KV evidence: no NIXL transfer metrics (older than "
                f"{NIXL_MIN_VLLM}) or another connector's, and no prompt tokens by source (older than "
                f"{DELIVERY_MIN_VLLM}){seen}")
    return _roles_unseen_reason(cfg)


def _roles_unseen_reason(cfg: Config) -> str:
    roles = cfg["roles"]
    how = (f"pod names matching roles.pod_regex ({roles['pod_regex']['prefill']!r} / "
           f"{roles['pod_regex']['decode']!r})" if roles["mode"] == "pod_regex"
           else f"label {roles['label']['name']}={roles['label']['prefill']}|{roles['label']['decode']}")
    return f"no pod's role can be determined from {how}; fix roles in the config (see the roles finding)"


# The alert that says a namespace is blind; its runbook explains every blind verdict.
BLIND_ALERT = "PDPodRolesUnresolved"


def _blind(cfg: Config, m: Measures, ns: Key) -> str | None:
    """Why the package cannot see the deployments of a namespace, or None when it can."""
    series = m.without_pod_label.get(ns)
    if series is not None:
        pod = cfg["labels"]["pod"]
        return (f"{number(series)} vLLM series carry no {pod} label (labels.pod): relabelled away or renamed, "
                "so pods cannot be told apart or given a role and no check here can be trusted; restore the "
                "label or set labels.pod (see the roles finding)")
    if ns in m.roles_unseen:
        return _roles_unseen_reason(cfg)
    return None


def _alert(verdict: Verdict | None, failing: list[str]) -> str | None:
    """The alert whose runbook explains it: the verdict's, else the first failing check's."""
    if verdict is not None and verdict.alert:
        return verdict.alert
    return next((c.alert for c in checks.CHECKS if c.name in failing), None)


def _runbook(model: BuildModel, verdict: Verdict | None, failing: list[str]) -> str | None:
    alert = _alert(verdict, failing)
    return model.runbook_urls[alert] if alert is not None else None


def _panel(panels: Mapping[str, PanelRef], verdict: Verdict | None, failing: list[str]) -> PanelRef | None:
    """The panel that shows the problem: the verdict when it is one, else the first failing check."""
    first = next((c for c in checks.CHECKS if c.name in failing), None)
    explained = verdict is not None and verdict.alert is not None
    key = ids.VERDICT_PANEL if explained or first is None else first.panel_key
    return panels.get(key) or panels.get(ids.VERDICT_PANEL)


def dashboard_link(cfg: Config, labels: dict[str, str], panel: PanelRef | None) -> str:
    base = cfg["grafana"]["url"].rstrip("/")
    name = f'panel "{panel.title}"' if panel else "the top row"
    if not base:
        return (f"dashboard uid {DASHBOARD_UID} (build/dashboards/{DASHBOARD_UID}.json), {name}; "
                "set grafana.url for a link")
    params = {f"var-{DASHBOARD_VARS[k]}": v for k, v in labels.items()}
    if panel:
        params["viewPanel"] = str(panel.id)
    return f"{base}/d/{DASHBOARD_UID}?{urlencode(params)} ({name})"


def deployments(cfg: Config, r: Reader, versions: dict[Key, str], model: BuildModel) -> list[Deployment]:
    """`versions`: the inferred vLLM version text per namespace key, for the CANNOT TELL reason;
    `model`: the build, whose drill-down panel ids and runbook URLs the report points at."""
    m = measure(r)
    level = r.keys(*NS_MODEL)
    ns_level = r.keys(*NS)
    aliases = dict(zip(level, r.ctx.keys(*NS_MODEL), strict=True))
    panels = model.dashboards[DASHBOARD_UID].panels
    out = []
    for key in m.deployments:
        raw = m.verdict.get(key)
        code = None if raw is None or math.isnan(raw) else int(raw)
        verdict = Verdict.from_code(code)
        rows = [check_row(cfg, r, check, key, verdict) for check in checks.CHECKS]
        failing = [c.signal for c in rows if c.status == FAIL]
        labels = label_dict(level, key, aliases)
        ns = project(key, level, ns_level)
        blind = _blind(cfg, m, ns)
        out.append(Deployment(
            labels=labels,
            prefill_pods=int(m.pods["prefill"].get(key, 0)),
            decode_pods=int(m.pods["decode"].get(key, 0)),
            checks=rows,
            # Blind: whatever the verdict signal computed from what little it sees, it cannot tell.
            verdict=(Verdict.CANNOT_TELL if blind else verdict or Verdict.CANNOT_TELL).text,
            verdict_code=code,
            reason=blind or _verdict_reason(cfg, m, key, verdict, failing, versions.get(ns)),
            runbook=model.runbook_urls.get(BLIND_ALERT) if blind else _runbook(model, verdict, failing),
            dashboard=dashboard_link(cfg, labels, _panel(panels, verdict, failing)),
            blind=blind,
        ))
    return out
