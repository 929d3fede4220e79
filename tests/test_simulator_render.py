"""The three renderings agree with each other and load into the real tools."""

from __future__ import annotations

import io
import subprocess

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from pdobs.servers.tools import tool_path
from simulator import scenarios as S
from simulator.render_live import LiveEndpoint
from simulator.render_openmetrics import iter_chunks
from simulator.render_promtool import (
    STALE,
    rule_test_file,
    rule_test_group,
    timelines,
    write_rule_test_file,
)

SHORT = {"duration_min": 30}

# Raw queries over every kind of series, at times before, around and after the faults.
QUERIES = [
    "up",
    "vllm:request_success_total",
    "sum by (namespace, pod) (rate(vllm:request_success_total[5m]))",
    'histogram_quantile(0.95, sum by (namespace, le) '
    '(rate(vllm:time_to_first_token_seconds_bucket{pod=~".*-decode-.*"}[5m])))',
    "sum by (namespace, pod) (vllm:iteration_tokens_total_sum)",
    "vllm:kv_cache_usage_perc",
    "vllm:num_requests_waiting",
    "inference_pool_ready_pods",
    "inference_pool_per_pod_queue_size",
    "sum by (namespace, decision_type) "
    "(increase(llm_d_inference_scheduler_pd_decision_total[10m]))",
    "sum by (namespace) (rate(vllm:nixl_xfer_time_seconds_count[5m]))",
    "count by (namespace) (vllm:nixl_xfer_time_seconds_count)",
    "sum by (namespace) (rate(inference_objective_request_duration_seconds_sum[5m]))",
]
RAW_QUERIES = [q for q in QUERIES if "(" not in q]
MINUTES = [3, 9, 12, 16, 22, 29]


@pytest.fixture(scope="module")
def mixed() -> S.Scenario:
    """A collapse with flat NIXL series next to a scrape gap, in one set of series."""
    return S.combine(
        S.get("collapsed_nixl_flat", namespace="ns-collapsed", **SHORT),
        S.get("scrape_gap", namespace="ns-gap", **SHORT),
        name="mixed",
    )


def selector(metric: dict[str, str]) -> str:
    labels = dict(metric)
    name = labels.pop("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def lookback_blind_spots(scenario: S.Scenario) -> set[tuple[str, int]]:
    """(metric name, minute) pairs within 5 minutes after that metric went stale somewhere.

    OpenMetrics cannot carry a staleness marker, so there the backfilled server still sees the
    last sample (5-minute lookback) while promtool, fed ``stale``, sees nothing."""
    spots = set()
    for series, samples in timelines(scenario).items():
        name = series.split("{", 1)[0]
        for step, v in enumerate(samples):
            if v is STALE:
                for minute in MINUTES:
                    if 0 <= minute * 60 - step * 30 < 300:
                        spots.add((name, minute))
    return spots


def expr_cases(served, queries: list[str], skip: set[tuple[str, int]] = frozenset()) -> list[dict]:
    cases = []
    for expr in queries:
        for minute in MINUTES:
            if any(name in expr and minute == m for name, m in skip):
                continue
            result = served.query(expr, minute=minute)
            cases.append({
                "expr": expr,
                "eval_time": f"{minute}m",
                "exp_samples": [{"labels": selector(r["metric"]), "value": float(r["value"][1])}
                                for r in result],
            })  # fmt: skip
    return cases


def run_promtool(binary: str, path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool_path(binary)), "test", "rules", str(path)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_backfill_holds_exactly_the_simulated_series(prometheus_for_scenario, mixed):
    served = prometheus_for_scenario(mixed)
    stored = served.server.series('{__name__=~".+"}', served.start_time, served.end_time)
    assert len(stored) == len(timelines(mixed))
    # promtool cuts blocks at 2-hour boundaries (aligned to the epoch): a run across one makes two.
    windows = {int(ts // 7200) for ts in (served.start_time, served.end_time)}
    assert served.backfill.samples > 0 and served.backfill.files == len(windows)


def test_promtool_and_backfilled_prometheus_give_the_same_answers(
    prometheus_for_scenario, mixed, tmp_path
):
    served = prometheus_for_scenario(mixed)
    skip = lookback_blind_spots(mixed)
    # Only the hidden prefill pod's per-pod queue child disappears (at the gap's end, 11.5 min).
    assert {name for name, _ in skip} == {"inference_pool_per_pod_queue_size"}
    cases = expr_cases(served, QUERIES, skip)
    answered = [c for c in cases if c["exp_samples"]]
    assert len(answered) >= 0.9 * len(cases)  # the comparison is not between empty answers
    rules = tmp_path / "no-rules.yaml"
    rules.write_text("groups: []\n")
    doc = rule_test_file(
        [rule_test_group(mixed, name="The backfilled server's answers, through promtool.",
                         promql_expr_tests=cases)],
        rule_files=[rules],
    )  # fmt: skip
    proc = run_promtool("promtool", write_rule_test_file(tmp_path / "equivalence.yaml", doc))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_input_series_load_on_promtool_2(prometheus_for_scenario, mixed, tmp_path):
    # Range selectors are left-open only from Prometheus 3, so 2.x is compared on raw samples.
    served = prometheus_for_scenario(mixed)
    rules = tmp_path / "no-rules.yaml"
    rules.write_text("groups: []\n")
    doc = rule_test_file(
        [rule_test_group(mixed, name="Raw samples read the same on Prometheus 2.",
                         promql_expr_tests=expr_cases(served, RAW_QUERIES,
                                                      lookback_blind_spots(mixed)))],
        rule_files=[rules],
    )  # fmt: skip
    proc = run_promtool("promtool-2", write_rule_test_file(tmp_path / "raw.yaml", doc))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_openmetrics_documents_pass_a_strict_parser():
    # prometheus_client's OpenMetrics parser mishandles several timestamped points per metric,
    # so every scrape step is checked as its own document (what one chunk per step writes).
    scenario = S.combine(
        S.get("epp_llm_d_router", namespace="a", duration_min=12),
        S.get("old_vllm", namespace="b", duration_min=12),
        S.get("epp_mismatch_transient", namespace="c", duration_min=12, fault_start_min=4,
              gap_min=3),
        S.get("target_down", namespace="d", duration_min=12, fault_start_min=4),
    )  # fmt: skip
    steps = 0
    seen: set[str] = set()
    for _, _, writer, chunk in iter_chunks(scenario, start_time=1_700_000_010, chunk_s=30):
        buf = io.StringIO()
        assert writer.write(chunk, buf) > 0
        text = buf.getvalue()
        assert text.endswith("# EOF\n")
        if steps in (0, 1, 8, 9, 14, 24):  # start, first traffic, faults, after, end
            seen.update(f.name for f in text_string_to_metric_families(text))
        steps += 1
    assert steps == scenario.n_steps()
    assert {"vllm:request_success", "llm_d_epp_request", "vllm:gpu_cache_usage_perc",
            "vllm:nixl_xfer_time_seconds", "up"} <= seen  # fmt: skip


# The only lint findings allowed are upstream's own naming, which is the point: vLLM's colons and
# its `vllm:iteration_tokens_total` histogram, and llm-d-router's `llm_d_` (read as "d" = days).
ALLOWED_LINT = (
    "metric names should not contain ':'",
    'non-counter metrics should not have "_total" suffix',
    "metric names should not contain abbreviated units",
)


@pytest.mark.parametrize("per_target", [True, False])
def test_live_exposition_passes_promtool_check_metrics(per_target):
    scenario = S.get("epp_llm_d_router", **SHORT)
    with LiveEndpoint(scenario, speed=600) as ep:
        slug = f"-/llm-d/{scenario.truth['pods']['decode-0']}" if per_target else None
        status, text = ep.exposition(slug)
    assert status == 200 and "vllm:nixl_xfer_time_seconds_bucket" in text
    proc = subprocess.run(
        [str(tool_path("promtool")), "check", "metrics"],
        input=text, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    findings = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode in (0, 3), findings  # 3: lint findings only, no parse error
    unexpected = [f for f in findings if not f.endswith(ALLOWED_LINT)]
    assert not unexpected, unexpected
