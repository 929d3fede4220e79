"""Expand the alert-test specs in tests/rules/*.yaml into `promtool test rules` files.

A spec names a simulator scenario instead of listing input series, and says *when* to look in
terms of the config (`fault + for - eval`), so the durations come from the config the rules were
rendered with. Expected labels and descriptions are written out literally in the spec; the static
`summary` and the `runbook_url` are filled in from the definitions and the config.

Spec file::

    config: {}                 # overrides merged over pdobs/config/default.yaml for every group here
    groups:
    - name: A sentence saying what the group proves.
      scenario: collapsed      # a simulator scenario, or multi_cluster
      params: {duration_min: 30}
      fault_end_min: 12.5      # optional: end the scenario's open-ended fault here
      fault_min: 10            # optional: where a fault patched into a fault-free scenario starts
      patch:                   # optional edits of the simulated series (substring matches)
        drop: [[inference_pool_ready_pods]]
        set: [{match: [a_gauge], from: fault, value: 2}]       # a gauge's value from then on
        counters: [{match: [a_total, -prefill-], from: fault, per_second: 0.5}]  # grows from then on
        stop: [{match: ['job="gaie-pd-epp"'], from: fault}]   # series end there (a staleness marker)
        relabel: [{match: ['vllm:'], label: pod, to: pod_name, from: fault}]  # the label renamed from
                                       # then on (`to: null` drops it): old series end, new ones begin
      rule_files: [prometheus/alerts.yaml]   # optional: load only these of the build's rule files
      extra_series:                    # optional: literal promtool input series added as they are
      - {series: 'namespace:vllm_pods:count{namespace="llm-d"}', values: '_x4 2x56'}
      alerts:
      - alert: PDKVTransferAbsent      # or `all` (with an optional `except` list)
        at: fault + for - eval         # a time, a list of times, or {every: 1m, from: 0m, to: end}
        firing:                        # omitted or empty: the alert must not be firing
        - labels: {severity: critical, namespace: llm-d}
          description: ...
          annotations: {}              # further annotations (dashboard_url; {panel:<uid>:<title>}
                                       # stands for that panel's id)
      exprs:
      - signal: checklist              # a catalog signal (+ variant: {...}) or expr: <PromQL>
        round: 0.001                   # optional: compare round(value, 0.001)
        at: fault + 10m
        samples: [{labels: 'name{...}', value: 1}]

Times: a sum of terms joined by + and -: durations (`90s`, `15m`), `fault` (the scenario's fault
start, 0 without a fault), `fault_end`, `end` (the scenario's duration), `for` and `keep` (the
alert's `for` and `keep_firing_for`), `window` (the rate window), `eval` (the evaluation interval).

Run as a script (`make rule-tests`) to write the whole suite into build-tests/rule-tests/ (or the
folder given), then run it as-is from the repo root on either promtool line:

    python tests/alert_rules_gen.py [OUT_DIR]
    .tools/bin/promtool test rules build-tests/rule-tests/*.yaml

The folder holds, per spec file, the rules build.py renders from that spec's config
(`build-<spec>/`, from `configs/build-<spec>.yaml`) and one test file per group beside them;
promtool reads `rule_files` relative to the test file, so the folder works from anywhere. It
lives outside build/, which build.py replaces as a whole on every build.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts import definitions  # noqa: E402
from alerts import render as alert_render  # noqa: E402
from pdobs import cli, output, signals  # noqa: E402
from pdobs.build import make  # noqa: E402
from pdobs.core import config, promql  # noqa: E402
from simulator import render_promtool, scenarios  # noqa: E402

SPECS = ROOT / "tests" / "rules"
DEFAULT_OUT = ROOT / "build-tests" / "rule-tests"
RULE_FILES = ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_TERM = re.compile(r"\s*([+-])?\s*([a-z_]+|[0-9][0-9a-z]*)\s*")


class SpecError(ValueError):
    """A spec that cannot be expanded; the message names the file and group."""


@dataclass(frozen=True)
class Spec:
    path: Path
    config: Mapping[str, Any]
    groups: tuple[Mapping[str, Any], ...]

    @property
    def stem(self) -> str:
        return self.path.stem


def load_specs(folder: Path = SPECS) -> list[Spec]:
    specs = []
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        unknown = set(doc) - {"config", "groups"}
        if unknown:
            raise SpecError(f"{path.name}: unknown keys {sorted(unknown)}")
        specs.append(Spec(path, doc.get("config") or {}, tuple(doc.get("groups") or ())))
    return specs


def spec_config(spec: Spec) -> dict[str, Any]:
    return config.load(overrides=copy.deepcopy(dict(spec.config)))


# --- scenarios ---------------------------------------------------------------------------------


def build_scenario(group: Mapping[str, Any]) -> scenarios.Scenario:
    params = dict(group.get("params") or {})
    name = group["scenario"]
    if name == "multi_cluster":
        parts = params.pop("scenarios")
        clusters = tuple(params.pop("clusters"))
        sc = scenarios.multi_cluster(*parts, clusters=clusters, **params)
    else:
        sc = scenarios.get(name, **params)
    end = group.get("fault_end_min")
    if end is not None:
        start = fault_start(sc)
        runs = []
        for run in sc.runs:
            phases = tuple(replace(p, end_min=end) if p.start_min == start and p.end_min is None else p
                           for p in run.phases)
            if phases == run.phases:
                raise SpecError(f"{group['name']!r}: fault_end_min given but no open-ended fault at {start}")
            runs.append(replace(run, phases=phases))
        sc = replace(sc, runs=tuple(runs), truth={**sc.truth, "fault_end_min": end})
    return sc


def fault_start(sc: scenarios.Scenario, group: Mapping[str, Any] | None = None) -> float:
    """Minute the fault starts: the scenario's own, or the group's `fault_min` for a fault the
    group patches into a scenario that has none."""
    if group is not None and "fault_min" in group:
        if sc.truth.get("fault_start_min") is not None:
            raise SpecError(f"{group['name']!r}: fault_min given but the scenario has its own fault")
        return float(group["fault_min"])
    truth = sc.truth
    if "by_cluster" in truth:
        starts = [t["fault_start_min"] for t in truth["by_cluster"].values() if t.get("fault_start_min") is not None]
        return min(starts) if starts else 0.0
    start = truth.get("fault_start_min")
    return 0.0 if start is None else float(start)


def _matches(series: str, parts: Sequence[str]) -> bool:
    return all(p in series for p in parts)


def input_series(group: Mapping[str, Any], sc: scenarios.Scenario, times: TimeContext,
                 step_s: float) -> list[dict[str, str]]:
    lines = render_promtool.timelines(sc, step_s)
    patch = group.get("patch") or {}
    for parts in patch.get("drop", ()):
        dropped = [s for s in lines if _matches(s, parts)]
        if not dropped:
            raise SpecError(f"{group['name']!r}: patch drop {parts} matches no series")
        for s in dropped:
            del lines[s]
    for gauge in patch.get("set", ()):
        chosen = [s for s in lines if _matches(s, gauge["match"])]
        if not chosen:
            raise SpecError(f"{group['name']!r}: patch set {gauge['match']} matches no series")
        start = times.seconds(gauge["from"], None)
        for s in chosen:
            lines[s] = [float(gauge["value"]) if isinstance(v, float | int) and k * step_s >= start else v
                        for k, v in enumerate(lines[s])]
    for counter in patch.get("counters", ()):
        chosen = [s for s in lines if _matches(s, counter["match"])]
        if not chosen:
            raise SpecError(f"{group['name']!r}: patch counter {counter['match']} matches no series")
        start = times.seconds(counter["from"], None)
        inc = counter["per_second"] * step_s
        for s in chosen:
            samples = lines[s]
            total, out = 0.0, []
            for k, v in enumerate(samples):
                if isinstance(v, float | int) and v is not render_promtool.STALE:
                    if k * step_s > start:
                        total += inc
                    out.append(float(total))
                else:
                    out.append(v)
            lines[s] = out
    for stop in patch.get("stop", ()):
        chosen = [s for s in lines if _matches(s, stop["match"])]
        if not chosen:
            raise SpecError(f"{group['name']!r}: patch stop {stop['match']} matches no series")
        k0 = _first_step(times.seconds(stop["from"], None), step_s)
        for s in chosen:
            lines[s] = _ended(lines[s], k0)
    for rule in patch.get("relabel", ()):
        chosen = [s for s in lines if _matches(s, rule["match"])]
        if not chosen:
            raise SpecError(f"{group['name']!r}: patch relabel {rule['match']} matches no series")
        k0 = _first_step(times.seconds(rule.get("from", "0s"), None), step_s)
        for s in chosen:
            renamed = _relabelled(s, rule["label"], rule.get("to"), group)
            if renamed in lines:
                raise SpecError(f"{group['name']!r}: patch relabel makes {renamed} twice")
            samples = lines[s]
            lines[s] = _ended(samples, k0)
            lines[renamed] = [None] * min(k0, len(samples)) + samples[k0:]
    out = [{"series": s, "values": render_promtool.encode(v)} for s, v in lines.items() if v]
    return out + [dict(extra) for extra in group.get("extra_series") or ()]


def _first_step(seconds: float, step_s: float) -> int:
    return int(-(-seconds // step_s))


def _ended(samples: list[Any], k0: int) -> list[Any]:
    """The series up to step k0, where it ends with a staleness marker (as Prometheus writes one
    when a scrape no longer returns it) if it was live."""
    head = samples[:k0]
    if k0 < len(samples) and any(isinstance(v, float | int) and v is not render_promtool.STALE for v in head):
        head.append(render_promtool.STALE)
    return head


_LABEL = r'(?<=[{{,]){}="((?:[^"\\]|\\.)*)"'


def _relabelled(series: str, label: str, to: str | None, group: Mapping[str, Any]) -> str:
    """The series with `label` renamed to `to`, or dropped when `to` is None."""
    pattern = re.compile(_LABEL.format(re.escape(label)))
    found = pattern.search(series)
    if found is None:
        raise SpecError(f"{group['name']!r}: patch relabel: {series} has no label {label!r}")
    if to is not None:
        return series[:found.start()] + f'{to}="{found.group(1)}"' + series[found.end():]
    text = series[:found.start()] + series[found.end():]
    return text.replace(",,", ",").replace("{,", "{").replace(",}", "}")


# --- times -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeContext:
    cfg: Mapping[str, Any]
    fault_s: float
    fault_end_s: float | None
    end_s: float

    def seconds(self, text: str | int | float, alert: str | None) -> float:
        if isinstance(text, int | float):
            return float(text) * 60
        pos, total = 0, 0.0
        text = str(text).strip()
        while pos < len(text):
            m = _TERM.match(text, pos)
            if not m or m.end() == pos:
                raise SpecError(f"cannot read time {text!r} at {text[pos:]!r}")
            sign = -1 if m.group(1) == "-" else 1
            if pos > 0 and m.group(1) is None:
                raise SpecError(f"time {text!r}: terms need + or - between them")
            total += sign * self._term(m.group(2), alert, text)
            pos = m.end()
        if total < 0:
            raise SpecError(f"time {text!r} is before the start")
        return total

    def _term(self, term: str, alert: str | None, text: str) -> float:
        prom = self.cfg["prometheus"]
        if term == "fault":
            return self.fault_s
        if term == "fault_end":
            if self.fault_end_s is None:
                raise SpecError(f"time {text!r}: the scenario's fault never ends")
            return self.fault_end_s
        if term == "end":
            return self.end_s
        if term == "window":
            return promql.duration_seconds(prom["rate_window"])
        if term == "eval":
            return promql.duration_seconds(prom["evaluation_interval"])
        if term in ("for", "keep"):
            if alert is None or alert == "all":
                raise SpecError(f"time {text!r}: `{term}` needs a single alert")
            key = "for" if term == "for" else "keep_firing_for"
            return promql.duration_seconds(self.cfg["alerts"][alert][key])
        return promql.duration_seconds(term)

    def times(self, at: Any, alert: str | None) -> list[float]:
        if isinstance(at, Mapping):
            step = promql.duration_seconds(at["every"])
            start = self.seconds(at.get("from", "0s"), alert)
            stop = self.seconds(at.get("to", "end"), alert)
            out, t = [], start
            while t <= stop + 1e-9:
                out.append(t)
                t += step
            return out
        if isinstance(at, list):
            return [self.seconds(a, alert) for a in at]
        return [self.seconds(at, alert)]


def duration(seconds: float) -> str:
    return promql.format_duration(seconds)


# --- cases -------------------------------------------------------------------------------------


_PANEL = re.compile(r"\{panel:([a-z0-9-]+):([^}]+)\}")


def _panel_ids(cfg: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """(dashboard uid, panel title) -> panel id, from the build model's panel index."""
    return {(uid, ref.title): ref.id for uid, board in make.model(dict(cfg)).dashboards.items()
            for ref in board.panels.values()}


def _panel_id(ids: Mapping[tuple[str, str], int]) -> Callable[[re.Match[str]], str]:
    return lambda m: str(ids[(m.group(1), m.group(2))])


def _annotations(cfg: Mapping[str, Any], name: str, firing: Mapping[str, Any]) -> dict[str, str]:
    alert = definitions.BY_NAME[name]
    out = {
        "summary": alert.summary,
        "description": firing["description"],
        "runbook_url": alert_render.runbook_url(dict(cfg), name),
    }
    for key, text in (firing.get("annotations") or {}).items():
        # `{panel:<uid>:<title>}` is that panel's id in the dashboards build.py renders.
        if _PANEL.search(text):
            text = _PANEL.sub(_panel_id(_panel_ids(cfg)), text)
        out[key] = text
    return out


def alert_cases(cfg: Mapping[str, Any], case: Mapping[str, Any], times: TimeContext) -> list[dict[str, Any]]:
    name = case["alert"]
    enabled = [a.name for a in definitions.ALERTS if cfg["alerts"][a.name]["enabled"]]
    if name == "all":
        names = [n for n in enabled if n not in set(case.get("except") or ())]
        if case.get("firing"):
            raise SpecError("`alert: all` can only say that nothing fires")
    elif name in definitions.BY_NAME:
        names = [name]
    else:
        raise SpecError(f"unknown alert {name!r}")
    out = []
    for alert in names:
        exp = [{"exp_labels": dict(f["labels"]), "exp_annotations": _annotations(cfg, alert, f)}
               for f in case.get("firing") or ()]
        for t in times.times(case["at"], alert):
            out.append({"eval_time": duration(t), "alertname": alert, "exp_alerts": exp})
    return out


def expr_cases(cfg: Mapping[str, Any], case: Mapping[str, Any], times: TimeContext) -> list[dict[str, Any]]:
    if "signal" in case:
        expr = signals.query(signals.context(dict(cfg)), case["signal"], **(case.get("variant") or {}))
    else:
        expr = case["expr"]
    if "round" in case:
        # Ratios of floats differ in the last bits between Prometheus 2 and 3; promtool 2 compares
        # exactly. round() also drops the metric name from the result's labels.
        expr = f"round({expr}, {case['round']})"
    samples = [{"labels": s["labels"], "value": s["value"]} for s in case.get("samples") or ()]
    return [{"expr": expr, "eval_time": duration(t), "exp_samples": samples}
            for t in times.times(case["at"], None)]


def group_doc(cfg: Mapping[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("name", "scenario"):
        if key not in group:
            raise SpecError(f"a group lacks {key!r}: {dict(group)}")
    step_s = promql.duration_seconds(cfg["prometheus"]["scrape_interval"])
    sc = build_scenario(group)
    end = group.get("fault_end_min", sc.truth.get("fault_end_min"))
    times = TimeContext(cfg, fault_start(sc, group) * 60, None if end is None else end * 60, sc.duration_min * 60)
    alerts = [c for case in group.get("alerts") or () for c in alert_cases(cfg, case, times)]
    exprs = [c for case in group.get("exprs") or () for c in expr_cases(cfg, case, times)]
    out: dict[str, Any] = {"name": group["name"], "interval": duration(step_s),
                           "input_series": input_series(group, sc, times, step_s)}
    if alerts:
        out["alert_rule_test"] = alerts
    if exprs:
        out["promql_expr_test"] = exprs
    return out


def file_doc(cfg: Mapping[str, Any], group: Mapping[str, Any], build_dir: str) -> dict[str, Any]:
    files = list(group.get("rule_files") or RULE_FILES)
    if not files or set(files) - set(RULE_FILES):
        raise SpecError(f"rule_files {files}: expected some of {list(RULE_FILES)}")
    return {
        "rule_files": [f"{build_dir}/{rel}" for rel in files],
        "evaluation_interval": cfg["prometheus"]["evaluation_interval"],
        "tests": [group_doc(cfg, group)],
    }


# --- writing a whole suite ------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    spec: str
    index: int
    name: str
    path: Path


def slug(spec: Spec, index: int) -> str:
    return f"{spec.stem}-{index:02d}"


def render_build(cfg_overrides: Mapping[str, Any], out: Path) -> None:
    """Render the rules with build.py's command line (in this process: it is the same code path as
    `python build.py --config FILE --out DIR`), from a user config file, as a user would."""
    # In a folder of their own: `promtool test rules DIR/*.yaml` must match test files only.
    user = out.parent / "configs" / f"{out.name}.yaml"
    user.parent.mkdir(exist_ok=True)
    user.write_text(yaml.safe_dump(dict(cfg_overrides)))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["--config", str(user), "--out", str(out)])
    if code != 0:
        raise RuntimeError(f"build.py --config {user} failed ({code}): {err.getvalue()}")


def write_test_file(path: Path, document: Mapping[str, Any]) -> None:
    # libyaml's dumper: the input series make these files large.
    path.write_text(yaml.dump(dict(document), Dumper=_DUMPER, sort_keys=False, width=10_000))


def write_suite(out: Path, specs: Sequence[Spec] | None = None) -> list[Generated]:
    """Render one build per spec file and one promtool test file per group beside it."""
    out.mkdir(parents=True, exist_ok=True)
    generated = []
    for spec in specs if specs is not None else load_specs():
        build = out / f"build-{spec.stem}"
        render_build(spec.config, build)
        cfg = spec_config(spec)
        for i, group in enumerate(spec.groups):
            path = out / f"{slug(spec, i)}.yaml"
            try:
                doc = file_doc(cfg, group, build.name)
            except (SpecError, KeyError, TypeError) as exc:
                raise SpecError(f"{spec.path.name} group {i} ({group.get('name')!r}): {exc}") from exc
            write_test_file(path, doc)
            generated.append(Generated(spec.stem, i, group["name"], path))
    return generated


def write_folder(target: Path, specs: Sequence[Spec] | None = None) -> list[Generated]:
    """The whole suite as the content of `target`, swapped in at once by pdobs.output: a spec that
    fails to expand leaves the previous folder as it was, and a folder we did not make is refused."""
    with tempfile.TemporaryDirectory(prefix="rule-tests-") as tmp:
        generated = write_suite(Path(tmp), specs)
        # The nested rule builds carry build.py's own marker and lock; the outer write makes its own.
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*")
                 if p.is_file() and p.name not in (output.MARKER, output.LOCK)}
    output.write_tree(target, files)
    return [replace(g, path=target / g.path.name) for g in generated]


def main(argv: Sequence[str]) -> int:
    target = Path(argv[0]) if argv else DEFAULT_OUT
    try:
        generated = write_folder(target)
    except (SpecError, output.OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = os.path.relpath(target)
    print(f"{len(generated)} promtool test files in {shown}/; run them with\n"
          f"  .tools/bin/promtool test rules {shown}/*.yaml\n  .tools/bin/promtool-2 test rules {shown}/*.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
