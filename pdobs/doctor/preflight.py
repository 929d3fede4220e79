"""What goes wrong before the metrics do: families and versions, rules, roles, targets, gotchas.

Every check reads Prometheus only (series, rules); name tables come from the catalog.
"""

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pdobs import signals
from pdobs.checks import MOONCAKE_MIN_VLLM, NIXL_MIN_VLLM
from pdobs.core import promql
from pdobs.doctor.client import Prometheus
from pdobs.doctor.model import INFO, OK, WARN, Finding
from pdobs.doctor.queries import Key, Reader
from pdobs.signals import doctor as doctor_signals

Config = dict[str, Any]
Version = tuple[int, ...]

NAMES_LOOKBACK_SECONDS = 3600.0  # how far back "this name exists" looks, for other people's rules


def _version(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


def _show(v: Version) -> str:
    return ".".join(map(str, v))


Bound = tuple[Version, str] | None


def version_bounds(names: set[str]) -> tuple[Bound, Bound]:
    """(at least, below) vLLM versions implied by which names exist, each with its reason."""
    lower: Bound = None
    upper: Bound = None
    for marker in doctor_signals.VLLM_VERSION_MARKERS:
        if (marker.name in names) != marker.present:
            continue
        v = _version(marker.version)
        if marker.op == ">=" and (lower is None or v > lower[0]):
            lower = (v, marker.why)
        elif marker.op == "<" and (upper is None or v < upper[0]):
            upper = (v, marker.why)
    return lower, upper


def infer_vllm_version(names: set[str]) -> tuple[str | None, list[str]]:
    """A version range from which names exist, and the evidence; None when nothing narrows it."""
    lower, upper = version_bounds(names)
    evidence = [f"{op} {_show(b[0])}: {b[1]}" for op, b in ((">=", lower), ("<", upper)) if b]
    if lower and upper and lower[0] >= upper[0]:
        return (f"mixed (one pod {lower[1]}, another {upper[1]}: pods on different vLLM versions?)", evidence)
    if lower and upper:
        return f"{_show(lower[0])} or later, older than {_show(upper[0])}", evidence
    if lower:
        return f"{_show(lower[0])} or later", evidence
    if upper:
        return f"older than {_show(upper[0])}", evidence
    return None, evidence


def _by_namespace(rows: list[dict[str, Any]], r: Reader) -> dict[Key, set[str]]:
    ns_level = r.keys("namespace")
    out: dict[Key, set[str]] = defaultdict(set)
    for row in rows:
        out[tuple(row.get(n, "") for n in ns_level)].add(row["__name__"])
    return out


def _ns(key: Key) -> str:
    return "/".join(key)


# --- families and versions ------------------------------------------------------------------------


def families(r: Reader) -> tuple[list[Finding], dict[Key, str], dict[Key, set[str]]]:
    """Findings on vLLM and EPP families, the vLLM version text per namespace, and vLLM names."""
    vllm = _by_namespace(r.rows("vllm_metric_names"), r)
    epp = _by_namespace(r.rows("epp_metric_names"), r)
    findings, versions = [], {}
    for key in sorted(vllm):
        names = vllm[key]
        version, evidence = infer_vllm_version(names)
        lower, upper = version_bounds(names)
        if version:
            versions[key] = version
        nixl = any(n.startswith(doctor_signals.NIXL_SERIES_PREFIX) for n in names)
        mooncake = any(n.startswith(doctor_signals.MOONCAKE_SERIES_PREFIX) for n in names)
        text = f"{len(names)} metric names; version {version or 'not narrowed down'}"
        if mooncake and not nixl:
            text += "; KV transfer metrics from Mooncake"
        elif not nixl:
            text += (f"; no KV transfer metrics (NIXL before vLLM {NIXL_MIN_VLLM}, Mooncake before "
                     f"{MOONCAKE_MIN_VLLM}, or another connector)")
        findings.append(Finding("vllm", OK, text, _ns(key),
                                {"names": len(names), "version": version, "evidence": evidence, "nixl": nixl,
                                 "mooncake": mooncake,
                                 "at_least": _show(lower[0]) if lower else None,
                                 "below": _show(upper[0]) if upper else None}))
    for key in sorted(set(vllm) | set(epp)):
        names = epp.get(key, set())
        found = [f for f in doctor_signals.EPP_FAMILIES if any(n.startswith(f.prefix) for n in names)]
        details = {"families": [f.prefix + "*" for f in found]}
        if not found:
            findings.append(Finding(
                "epp", WARN, "no EPP metrics: the ready-pods check has nothing to compare (is the EPP scraped? "
                "its /metrics needs a bearer token unless metrics auth is off)", _ns(key), details))
            continue
        text = "; ".join(f"{f.prefix}* ({f.versions})" for f in found)
        request = [f.prefix for f in found if f.prefix in doctor_signals.EPP_REQUEST_FAMILIES]
        level = INFO
        if key not in vllm:
            level, text = WARN, text + "; no vLLM pods in this namespace, so the EPP is compared with none"
        elif len(request) > 1 and doctor_signals.EPP_REQUEST_FAMILIES[-1] in request:
            level, text = WARN, text + "; several EPP versions export here at once"
        findings.append(Finding("epp", level, text, _ns(key), details))
    return findings, versions, vllm


# --- rules -------------------------------------------------------------------------------------------


def _our_rule_names(cfg: Config) -> tuple[set[str], set[str]]:
    records = {s.record for s in signals.signals(cfg).values() if s.record}
    alerts = {name for name, a in cfg["alerts"].items() if a["enabled"]}
    return records, alerts


def rules(cfg: Config, prom: Prometheus, groups: list[dict[str, Any]] | None) -> list[Finding]:
    records, alerts = _our_rule_names(cfg)
    if groups is None:
        # No rules API (some backends): look for one recorded series instead.
        verdict = signals.signals(cfg)["verdict"].record
        present = bool(prom.query(f"count({verdict})"))
        return [Finding("rules", OK if present else WARN,
                        "no rules API; recorded series found" if present else
                        "no rules API and no recorded series: the dashboards would show No Data; load "
                        "build/prometheus/recording-rules.yaml", details={"recorded_series": present})]
    loaded_records: dict[str, dict[str, Any]] = {}
    loaded_alerts: set[str] = set()
    group_names: set[str] = set()
    for group in groups:
        for rule in group.get("rules", []):
            if rule.get("type") == "recording" and rule.get("name") in records:
                loaded_records[rule["name"]] = rule
                group_names.add(group.get("name", ""))
            elif rule.get("type") == "alerting" and rule.get("name") in alerts:
                loaded_alerts.add(rule["name"])
    broken = sorted({f"{name}: {rule.get('lastError', '')}" for name, rule in loaded_records.items()
                     if rule.get("health") not in (None, "ok", "unknown")})
    details = {"recording_loaded": len(loaded_records), "recording_expected": len(records),
               "alerts_loaded": sorted(loaded_alerts), "alerts_expected": sorted(alerts),
               "groups": sorted(group_names), "errors": broken}
    alert_text = f"alerts {len(loaded_alerts)} of {len(alerts)}"
    if not loaded_records:
        return [Finding("rules", WARN, (
            f"recording rules not loaded (none of our {len(records)} recorded names), {alert_text}: the "
            "dashboards read recorded "
            f"series and show No Data; load build/prometheus/recording-rules.yaml (run `make build`); the "
            "doctor does not need them"), details=details)]
    level = OK if len(loaded_records) == len(records) and not broken else WARN
    text = (f"recording rules loaded ({len(loaded_records)} of {len(records)} recorded names, "
            f"{len(group_names)} groups), {alert_text}")
    if len(loaded_records) < len(records):
        text += "; some are missing: load the file from the current build"
    if broken:
        text += f"; {len(broken)} failing, e.g. {broken[0]}"
    return [Finding("rules", level, text, details=details)]


def explain_missing(token: str, names: set[str]) -> str | None:
    """Why a metric name someone queries returns nothing, when the fix is known; else None."""
    if token in names:
        return None
    if token + doctor_signals.COUNTER_SUFFIX in names:
        return (f"{token}, which does not exist: counters are exported with {doctor_signals.COUNTER_SUFFIX} "
                f"({token}{doctor_signals.COUNTER_SUFFIX}), so it reads nothing")
    base, suffix = token, ""
    for s in doctor_signals.HISTOGRAM_SUFFIXES:
        if token.endswith(s):
            base, suffix = token[: -len(s)], s
    if base in doctor_signals.RENAMED:
        new, when = doctor_signals.RENAMED[base]
        if new + suffix in names:
            return f"{token}, which is gone ({when}); this Prometheus has {new}{suffix}"
    for family in doctor_signals.EPP_REQUEST_FAMILIES:
        if token.startswith(family):
            for other in doctor_signals.EPP_REQUEST_FAMILIES:
                twin = other + token[len(family):]
                if other != family and twin in names:
                    return f"{token}, which does not exist: this EPP exports {twin} (another EPP version's name)"
    return None


def foreign_rules(cfg: Config, groups: list[dict[str, Any]] | None, names: set[str]) -> list[Finding]:
    """Other people's rules (llm-d's shipped ones, the user's) that query names that are not there."""
    if not groups:
        return []
    records, alerts = _our_rule_names(cfg)
    token = re.compile(doctor_signals.METRIC_NAME_TOKEN)
    seen: dict[str, list[str]] = defaultdict(list)
    problems: dict[str, str] = {}
    for group in groups:
        for rule in group.get("rules", []):
            if rule.get("name") in records or rule.get("name") in alerts:
                continue
            for name in set(token.findall(rule.get("query", ""))):
                why = explain_missing(name, names)
                if why:
                    problems[name] = why
                    seen[name].append(f"{group.get('name', '?')}/{rule.get('name', '?')}")
    return [Finding("gotcha", WARN, f"rule {', '.join(seen[n][:3])} reads {problems[n]}",
                    details={"metric": n, "rules": seen[n]}) for n in sorted(problems)]


def known_names(prom: Prometheus) -> set[str]:
    pattern = f"{doctor_signals.VLLM_NAME_PATTERN}|{doctor_signals.EPP_NAME_PATTERN}"
    match = "{" + promql.matcher("__name__", "=~", pattern) + "}"
    return set(prom.label_values("__name__", match, NAMES_LOOKBACK_SECONDS))


# --- roles, targets, EPP KV gauge ------------------------------------------------------------------


def _role_how(cfg: Config) -> str:
    roles = cfg["roles"]
    if roles["mode"] == "pod_regex":
        return (f"roles.mode=pod_regex: prefill {roles['pod_regex']['prefill']!r}, "
                f"decode {roles['pod_regex']['decode']!r}")
    lab = roles["label"]
    return f"roles.mode=label: {lab['name']}={lab['prefill']!r} or {lab['decode']!r}"


def _pods(rows: Iterable[dict[str, Any]], r: Reader) -> dict[str, list[str]]:
    ns_level, pod = r.keys("namespace"), r.ctx.label("pod")
    out: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        out[_ns(tuple(row.get(n, "") for n in ns_level))].append(row.get(pod, "?"))
    return {k: sorted(v) for k, v in out.items()}


def roles(cfg: Config, r: Reader) -> list[Finding]:
    pod = r.ctx.label("pod")
    # Series without the pod label have their own finding: they are no pod to name.
    none = _pods((row for row in r.rows("vllm_pods_without_role") if row.get(pod)), r)
    both = _pods(r.rows("vllm_pods_with_both_roles"), r)
    how = _role_how(cfg)
    findings = []
    ns_level = r.keys("namespace")
    for row in r.rows("vllm_series_without_pod"):
        ns = _ns(tuple(row.get(n, "") for n in ns_level))
        findings.append(Finding("roles", WARN, (
            f"{int(row['value'])} vLLM series carry no {pod} label (labels.pod): it was relabelled away or "
            "renamed, so pods cannot be told apart or given a role and every P/D check here is blind; restore "
            "the label in the scrape config or set labels.pod"), ns, {"series": int(row["value"]), "blind": True}))
    for ns, pods in sorted(none.items()):
        findings.append(Finding("roles", WARN, (
            f"{len(pods)} pod(s) match neither role ({how}): {', '.join(pods[:5])}; they count in no per-role "
            "signal: fix roles in the config"), ns, {"pods": pods}))
    for ns, pods in sorted(both.items()):
        findings.append(Finding("roles", WARN, (
            f"{len(pods)} pod(s) match both roles ({how}): {', '.join(pods[:5])}; make the regexes disjoint"),
            ns, {"pods": pods}))
    if not findings:
        findings.append(Finding("roles", OK, f"every pod has exactly one role ({how})"))
    return findings


def targets(r: Reader) -> list[Finding]:
    rows = r.rows("targets_down")
    ns_level = r.keys("namespace")
    down: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        who = row.get(r.ctx.label("pod")) or row.get("instance", "?")
        down[_ns(tuple(row.get(n, "") for n in ns_level))].append(f"{row.get('job', '?')}/{who}")
    return [Finding("targets", WARN, f"{len(v)} scrape target(s) down: {', '.join(sorted(v)[:5])}; their pods "
                    "vanish from every signal", ns, {"targets": sorted(v)}) for ns, v in sorted(down.items())]


def clusters(cfg: Config, r: Reader) -> list[Finding]:
    """Series from several clusters while multi_cluster is off get merged into one deployment."""
    if cfg["multi_cluster"]:
        return []
    label = cfg["labels"]["cluster"]
    values = sorted({row.get(label, "") for row in r.rows("vllm_clusters")} - {""})
    if len(values) < 2:
        return []
    return [Finding("clusters", WARN, (
        f"vLLM series carry {len(values)} values of the {label} label ({', '.join(values[:5])}) but multi_cluster "
        "is off: pods of different clusters with the same namespace are counted together; set multi_cluster: true"),
        details={"clusters": values})]


def epp_kv_gauge(r: Reader) -> list[Finding]:
    rows = r.rows("epp_kv_reads_missing_metric")
    pools = _pods(({**row, r.ctx.label("pod"): row.get("name", "?")} for row in rows), r)
    return [Finding("gotcha", WARN, (
        f"EPP pool(s) {', '.join(p)} report KV-cache utilisation 0 while vLLM pods report KV usage: the EPP "
        f"reads {doctor_signals.EPP_KV_OLD_METRIC}, which this vLLM no longer exports; run the EPP with "
        f"{doctor_signals.EPP_KV_FLAG}"), ns, {"pools": p}) for ns, p in sorted(pools.items())]


def run(cfg: Config, r: Reader) -> tuple[list[Finding], dict[Key, str]]:
    """All pre-flight findings, and the vLLM version text per namespace."""
    found, versions, _ = families(r)
    groups = r.prom.rules()
    found += rules(cfg, r.prom, groups)
    found += roles(cfg, r)
    found += clusters(cfg, r)
    found += targets(r)
    found += epp_kv_gauge(r)
    found += foreign_rules(cfg, groups, known_names(r.prom))
    return found, versions

