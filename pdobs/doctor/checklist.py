"""The post-mortem's five signals and the verdict, for every deployment in scope.

PASS/FAIL and the verdict are the catalog's own `checklist` and `verdict` signals, inlined, so the
doctor, the alerts and the dashboards can never disagree. The measured values beside them are the
quantities those signals compare with the configured thresholds.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dashboards import builder as dashboards
from dashboards import drilldown, ids
from dashboards import render as dashboards_render
from dashboards.spec import SCOPE_VARS
from pdobs.doctor.model import CANNOT_TELL, FAIL, NOT_APPLICABLE, PASS, Check, Deployment
from pdobs.doctor.queries import Key, Reader, label_dict, project
from pdobs.signals import checklist as checklist_signals
from pdobs.signals import doctor as doctor_signals

Config = dict[str, Any]

DASHBOARD_UID = ids.DRILLDOWN
VERDICT_PANEL = "verdict"  # panel keys in the drill-down: "verdict" and "check-<signal>"
# Dashboard variable of each level key (issue 5's variables).
DASHBOARD_VARS = SCOPE_VARS  # label key -> dashboard variable name

# Which runbook explains a failing signal, and which one a verdict points at.
SIGNAL_ALERT = {
    "nixl_transfers_absent": "PDKVTransferAbsent",
    "prefill_idle": "PDPrefillIdle",
    "decode_does_all_work": "PDDisaggregationCollapsed",
    "ttft_roles_equal": "PDDisaggregationCollapsed",
    "epp_ready_lt_pods": "PDEPPReadyPodsMismatch",
}
VERDICT_ALERT = {1: "PDDisaggregationCollapsed", 4: "PDKVTransferMetricsMissing"}

# Titles when the drill-down has no panel for a signal (it normally has: its titles win).
TITLES = {
    "nixl_transfers_absent": "KV transfers (NIXL)",
    "prefill_idle": "Prefill worker utilisation",
    "decode_does_all_work": "Decode share of the work",
    "ttft_roles_equal": "TTFT prefill vs decode",
    "epp_ready_lt_pods": "EPP ready pods vs pods up",
}

NS_MODEL = ("namespace", "model")
NS = ("namespace",)


@dataclass
class Measures:
    """Every number the table shows, per deployment key (namespace-level ones per namespace)."""
    pods: dict[str, dict[Key, float]]
    requests: dict[str, dict[Key, float]]
    nixl_series: dict[Key, float]
    nixl_transfers: dict[Key, float]
    nixl_per_request: dict[Key, float]
    prefill_ratio: dict[Key, float]
    decode_share: dict[Key, float]
    ttft: dict[str, dict[Key, float]]
    ttft_ratio: dict[Key, float]
    epp_ready: dict[Key, float]
    pods_up: dict[Key, float]
    checklist: dict[str, dict[Key, float]]
    verdict: dict[Key, float]
    deployments: list[Key]


def measure(r: Reader) -> Measures:
    roles = ("prefill", "decode")
    found = r.by(NS_MODEL, "vllm_deployments")
    return Measures(
        pods={role: r.by(NS_MODEL, "vllm_pods", role=role) for role in roles},
        requests={role: r.by(NS_MODEL, "requests", role=role) for role in roles},
        nixl_series=r.by(NS_MODEL, "nixl_series"),
        nixl_transfers=r.by(NS_MODEL, "nixl_transfers"),
        nixl_per_request=r.by(NS_MODEL, "nixl_transfers_per_request"),
        prefill_ratio=r.by(NS_MODEL, "prefill_work_ratio"),
        decode_share=r.by(NS_MODEL, "decode_work_share"),
        ttft={role: r.by(NS_MODEL, "ttft_mean", role=role) for role in roles},
        ttft_ratio=r.by(NS_MODEL, "ttft_decode_over_prefill"),
        epp_ready=r.by(NS, "epp_ready_pods_ns"),
        pods_up=r.by(NS, "vllm_pods_ns"),
        checklist={s: r.by(NS_MODEL, "checklist", signal=s) for s in checklist_signals.CHECKLIST},
        verdict=r.by(NS_MODEL, "verdict"),
        deployments=sorted(found),
    )


# --- formatting -------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = ".3g") -> str:
    if value is None:
        return "none"
    if math.isnan(value):
        return "NaN"
    return format(value, fmt)


def _ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "no samples"
    return f"{value * 1000:.1f} ms"


def _pct(value: float) -> str:
    return f"{value:.1%}".replace(".0%", "%")


# --- the five checks -------------------------------------------------------------------------


def _status(m: Measures, signal: str, key: Key) -> str:
    value = m.checklist[signal].get(key)
    if value is None:
        return NOT_APPLICABLE
    return FAIL if value >= 1 else PASS


def _nixl(cfg: Config, m: Measures, key: Key, status: str) -> tuple[str, float | None, str, str]:
    window = cfg["prometheus"]["rate_window"]
    if key not in m.nixl_series:
        return ("no NIXL series", None, "> 0 transfers/s",
                "no NIXL transfer series: no KV cache moved, or vLLM exports none "
                f"(older than {doctor_signals.NIXL_MIN_VLLM}, or a KV connector other than NIXL)")
    rate = m.nixl_transfers.get(key, 0.0)
    per_req = m.nixl_per_request.get(key)
    measured = f"{_num(rate)} transfers/s" + (f" ({_num(per_req, '.2f')}/decode req)" if per_req is not None
                                              and math.isfinite(per_req) else "")
    reason = (f"NIXL series exist but did not increase in the last {window}: no KV cache moved"
              if status == FAIL else "KV cache moves from prefill to decode pods")
    return measured, rate, "> 0 transfers/s", reason


def _prefill(cfg: Config, m: Measures, key: Key, status: str) -> tuple[str, float | None, str, str]:
    t = cfg["signals"]["prefill_idle_ratio"]
    value = m.prefill_ratio.get(key)
    measured = (f"{value:.2f} per decode req" if value is not None and math.isfinite(value)
                else "no requests")
    reason = ("prefill pods finish almost no requests: decode computes the prompts itself" if status == FAIL
              else "prefill pods finish about one request per decode request")
    return measured, value, f">= {t:g} per decode req", reason


def _decode(cfg: Config, m: Measures, key: Key, status: str) -> tuple[str, float | None, str, str]:
    t = cfg["signals"]["decode_work_share"]
    value = m.decode_share.get(key)
    measured = f"{_pct(value)} of tokens" if value is not None and math.isfinite(value) else "no tokens"
    reason = ("decode pods process every token, prompts included" if status == FAIL
              else "prefill pods process the prompt tokens")
    return measured, value, f"<= {_pct(t)}", reason


def _ttft(cfg: Config, m: Measures, key: Key, status: str) -> tuple[str, float | None, str, str]:
    tol = cfg["signals"]["ttft_equal_tolerance"]
    ratio = m.ttft_ratio.get(key)
    prefill, decode = m.ttft["prefill"].get(key), m.ttft["decode"].get(key)
    legs = f"decode {_ms(decode)} / prefill {_ms(prefill)}"
    if ratio is None or not math.isfinite(ratio):
        measured = legs
        reason = "prefill pods record no TTFT: they compute no prompts"
    else:
        measured = f"{legs} = {ratio:.2f}"
        reason = ("TTFT is the same on both roles: decode computes the first token itself" if status == FAIL
                  else "decode TTFT differs from prefill TTFT (it waits for the KV pull, not a prefill)")
    return measured, ratio, f"differs from 1 by >= {_pct(tol)}", reason


def _epp(cfg: Config, m: Measures, key: Key, status: str) -> tuple[str, float | None, str, str]:
    ns_key = key[:-1]
    ready, up = m.epp_ready.get(ns_key), m.pods_up.get(ns_key)
    if ready is None:
        return (f"no EPP series / {_num(up)} up", None, "ready >= pods up",
                "no EPP ready-pod series in this namespace: nothing to compare (is the EPP scraped?)")
    reason = (f"the EPP sees {_num(up - ready if up else None)} fewer pod(s) than are running "
              "(often the prefill pod is not in its pool)" if status == FAIL
              else "the EPP sees every model-server pod that is up")
    return f"{_num(ready)} ready / {_num(up)} up", ready, "ready >= pods up", reason


MEASURE: dict[str, Callable[[Config, Measures, Key, str], tuple[str, float | None, str, str]]] = {
    "nixl_transfers_absent": _nixl,
    "prefill_idle": _prefill,
    "decode_does_all_work": _decode,
    "ttft_roles_equal": _ttft,
    "epp_ready_lt_pods": _epp,
}


def _not_applicable_reason(code: int | None) -> str:
    if code == 2:
        return "no prefill pods: aggregated by design, nothing to disaggregate"
    if code == 3:
        return "no traffic on decode pods: the checks need requests"
    return "P/D is not active here (see the verdict)"


# --- verdict ---------------------------------------------------------------------------------


def _verdict_reason(cfg: Config, m: Measures, key: Key, code: int | None, failing: list[str],
                    version: str | None) -> str:
    prefill, decode = int(m.pods["prefill"].get(key, 0)), int(m.pods["decode"].get(key, 0))
    if code == 0:
        per_req = m.nixl_per_request.get(key)
        extra = f", {per_req:.2f} per decode request" if per_req is not None and math.isfinite(per_req) else ""
        return f"KV cache moves from prefill to decode ({_num(m.nixl_transfers.get(key))} transfers/s{extra})"
    if code == 1:
        return (f"prefill pods are up and decode pods serve traffic, but no KV cache moves; "
                f"{len(failing)} of {len(checklist_signals.CHECKLIST)} signals fail")
    if code == 2:
        return f"no prefill pods: {decode} decode pod(s) serve requests themselves"
    if code == 3:
        if decode == 0:
            return f"{prefill} prefill pod(s) but no decode pod"
        rate = m.requests["decode"].get(key, 0.0)
        return (f"decode pods finish {_num(rate)} requests/s, under signals.min_request_rate "
                f"({cfg['signals']['min_request_rate']:g}); send traffic and run again")
    if code == 4:
        seen = f"; vLLM here is {version}" if version else ""
        return (f"prefill pods work but no NIXL transfer metrics exist: vLLM older than {doctor_signals.NIXL_MIN_VLLM} "
                f"exposes none, or the KV connector is not NIXL{seen}")
    roles = cfg["roles"]
    how = (f"pod names matching roles.pod_regex ({roles['pod_regex']['prefill']!r} / "
           f"{roles['pod_regex']['decode']!r})" if roles["mode"] == "pod_regex"
           else f"label {roles['label']['name']}={roles['label']['prefill']}|{roles['label']['decode']}")
    return f"no pod's role can be determined from {how}; fix roles in the config (see the roles finding)"


def _runbook(cfg: Config, code: int | None, failing: list[str]) -> str | None:
    alert = VERDICT_ALERT.get(code or -1) or next((SIGNAL_ALERT[s] for s in failing), None)
    if alert is None:
        return None
    return cfg["runbook_url"].format(alert=alert, alert_lower=alert.lower())


@dataclass(frozen=True)
class PanelRef:
    id: int
    title: str


def drilldown_panels(cfg: Config) -> dict[str, PanelRef]:
    """The drill-down's panels by key, with the ids the rendered dashboard gives them."""
    spec = drilldown.dashboard(cfg)
    built = dashboards.build(cfg, spec, dashboards_render.specs(cfg))
    return {p.ident: PanelRef(built.ids[p.ident], p.title) for row in spec.rows for p in row.panels}


def _panel(panels: dict[str, PanelRef], code: int | None, failing: list[str]) -> PanelRef | None:
    """The panel that shows the problem: the verdict when it is one, else the first failing signal."""
    key = VERDICT_PANEL if code in VERDICT_ALERT or not failing else f"check-{failing[0]}"
    return panels.get(key) or panels.get(VERDICT_PANEL)


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


def deployments(cfg: Config, r: Reader, versions: dict[Key, str]) -> list[Deployment]:
    """`versions`: the inferred vLLM version text per namespace key, for the CANNOT TELL reason."""
    m = measure(r)
    level = r.keys(*NS_MODEL)
    ns_level = r.keys(*NS)
    aliases = dict(zip(level, r.ctx.keys(*NS_MODEL), strict=True))
    panels = drilldown_panels(cfg)
    out = []
    for key in m.deployments:
        raw = m.verdict.get(key)
        code = None if raw is None or math.isnan(raw) else int(raw)
        checks = []
        for signal in checklist_signals.CHECKLIST:
            status = _status(m, signal, key)
            measured, value, expected, reason = MEASURE[signal](cfg, m, key, status)
            if status == NOT_APPLICABLE:
                reason = _not_applicable_reason(code)
            value = value if value is not None and math.isfinite(value) else None  # JSON has no NaN
            title = panels[f"check-{signal}"].title if f"check-{signal}" in panels else TITLES[signal]
            checks.append(Check(signal, title, measured, value, expected, status, reason))
        failing = [c.signal for c in checks if c.status == FAIL]
        labels = label_dict(level, key, aliases)
        version = versions.get(project(key, level, ns_level))
        out.append(Deployment(
            labels=labels,
            prefill_pods=int(m.pods["prefill"].get(key, 0)),
            decode_pods=int(m.pods["decode"].get(key, 0)),
            checks=checks,
            verdict=checklist_signals.VERDICTS.get(code, CANNOT_TELL) if code is not None else CANNOT_TELL,
            verdict_code=code,
            reason=_verdict_reason(cfg, m, key, code, failing, version),
            runbook=_runbook(cfg, code, failing),
            dashboard=dashboard_link(cfg, labels, _panel(panels, code, failing)),
        ))
    return out
