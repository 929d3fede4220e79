"""The simulator's model: P/D semantics, counter behaviour, names per version and EPP family.

Metric names below are written out literally from the upstream metric definitions rather than
taken from simulator.metrics, so a typo there fails here.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict

import pytest

from simulator import scenarios as S
from simulator.render_live import LiveEndpoint, parse_exposition
from simulator.render_promtool import STALE, encode, input_series, timelines

SHORT = {"duration_min": 30}
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="([^"]*)"')
CUMULATIVE = ("_total", "_bucket", "_count", "_sum")


def split(series: str) -> tuple[str, dict[str, str]]:
    name, _, rest = series.partition("{")
    return name, dict(_LABEL.findall(rest))


def final_values(scenario: S.Scenario) -> dict[str, float]:
    """Last sample of every series still present at the end."""
    out = {}
    for series, samples in timelines(scenario).items():
        last = samples[-1] if samples else None
        if last is not None and last is not STALE and len(samples) == scenario.n_steps():
            out[series] = last
    return out


def select(values: dict[str, float], name: str, **labels: str) -> dict[str, float]:
    """Series named ``name`` whose labels contain ``labels`` (values are regexes)."""
    out = {}
    for series, v in values.items():
        n, lab = split(series)
        if n == name and all(re.fullmatch(rx, lab.get(k, "")) for k, rx in labels.items()):
            out[series] = v
    return out


def total(values: dict[str, float], name: str, **labels: str) -> float:
    return sum(select(values, name, **labels).values())


def family_names(scenario: S.Scenario) -> set[str]:
    return {split(s)[0] for s in timelines(scenario)}


# --- scenarios and truth ----------------------------------------------------------------------

TRUTH_KEYS = {
    "pd_deployed", "traffic", "nixl_series_present", "kv_transfer_active", "prefill_idle",
    "epp_ready_lt_pods", "ttft_roles_equal", "decode_does_all_work", "expected_verdict",
    "fault_start_min", "fault_end_min", "during_fault",
}  # fmt: skip

EXPECTED_VERDICTS = {
    "healthy_pd": "DISAGGREGATED",
    "collapsed": "COLLAPSED",
    "collapsed_from_start": "COLLAPSED",
    "collapsed_nixl_flat": "COLLAPSED",
    "aggregated": "AGGREGATED_BY_DESIGN",
    "idle_pd": "NO_TRAFFIC",
    "warmup": "DISAGGREGATED",
    "low_traffic": "DISAGGREGATED",
    "nixl_failing": "DISAGGREGATED",
    "nixl_slow": "DISAGGREGATED",
    "epp_mismatch_persistent": "DISAGGREGATED",
    "epp_mismatch_transient": "DISAGGREGATED",
    "rolling_update": "DISAGGREGATED",
    "pod_restart": "DISAGGREGATED",
    "scrape_gap": "DISAGGREGATED",
    "target_down": "DISAGGREGATED",
    "scale": "DISAGGREGATED",
    "old_vllm": "CANNOT_TELL",
    "epp_inference_model": "DISAGGREGATED",
    "epp_inference_objective": "DISAGGREGATED",
    "epp_inference_objective_disagg": "DISAGGREGATED",
    "epp_llm_d_router": "DISAGGREGATED",
}


def test_every_scenario_is_catalogued_with_a_verdict():
    assert set(S.ALL) == set(EXPECTED_VERDICTS)


@pytest.mark.parametrize("name", sorted(S.ALL))
def test_scenario_truth(name):
    s = S.get(name, **SHORT)
    assert TRUTH_KEYS <= set(s.truth)
    assert s.truth["expected_verdict"] == EXPECTED_VERDICTS[name]
    assert (s.truth["fault_start_min"] is None) == (s.truth["during_fault"] is None)


def test_post_mortem_truth_and_its_opposite():
    c = S.get("collapsed", **SHORT).truth
    assert c["pd_deployed"] and c["traffic"] and c["prefill_idle"] and c["decode_does_all_work"]
    assert not c["nixl_series_present"] and not c["kv_transfer_active"]
    assert c["epp_ready_lt_pods"] and c["ttft_roles_equal"]
    assert (c["epp_ready_pods"], c["vllm_pods_up"]) == (1, 2)
    h = S.get("healthy_pd", **SHORT).truth
    assert h["kv_transfer_observed"] and not h["prefill_idle"] and not h["epp_ready_lt_pods"]
    assert not h["ttft_roles_equal"] and not h["decode_does_all_work"]
    # A fault window is described while it lasts, the end state after it.
    t = S.get("epp_mismatch_transient", **SHORT).truth
    assert t["during_fault"]["epp_ready_lt_pods"] and not t["epp_ready_lt_pods"]
    assert (t["fault_start_min"], t["fault_end_min"]) == (10, 15)


def test_unknown_names_and_options_are_errors():
    with pytest.raises(KeyError, match="unknown scenario"):
        S.get("healthy")
    with pytest.raises(TypeError, match="unknown scenario option"):
        S.get("healthy_pd", pods=3)
    with pytest.raises(ValueError, match="epp_family"):
        S.get("healthy_pd", epp_family="gaie")


# --- counters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(S.ALL))
def test_counters_never_decrease_except_at_a_declared_restart(name):
    s = S.get(name, **SHORT)
    restarted = set(s.truth.get("restarted_pods", {}).values())
    restart_step = round(s.truth["restart_min"] * 2) if "restart_min" in s.truth else None
    resets = 0
    for series, samples in timelines(s).items():
        metric, labels = split(series)
        if not metric.endswith(CUMULATIVE):
            continue
        prev = None
        for step, v in enumerate(samples):
            if v is None or v is STALE:
                continue
            if prev is not None and v < prev:
                assert labels.get("pod") in restarted and step == restart_step, (series, step)
                assert v == 0
                resets += 1
            prev = v
    assert (resets > 0) == bool(restarted)


# --- P/D semantics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params",
    [("healthy_pd", {}), ("collapsed", {}), ("nixl_failing", {"fail_ratio": 0.2}),
     ("aggregated", {}), ("old_vllm", {}), ("epp_llm_d_router", {}),
     ("scale", {"prefill_pods": 2, "decode_pods": 3, "rps": 17.0}), ("pod_restart", {})],
)  # fmt: skip
def test_histogram_counts_agree_with_request_counters(name, params):
    scenario = S.get(name, **SHORT, **params)
    v = final_values(scenario)
    pods = {split(s)[1]["pod"] for s in v if split(s)[0] == "vllm:num_requests_running"}
    assert pods
    for pod in pods:
        finished = total(v, "vllm:request_success_total", pod=pod)
        for hist in ("time_to_first_token_seconds", "e2e_request_latency_seconds",
                     "request_queue_time_seconds", "request_prefill_time_seconds",
                     "request_decode_time_seconds", "request_inference_time_seconds",
                     "request_prompt_tokens", "request_generation_tokens"):  # fmt: skip
            assert total(v, f"vllm:{hist}_count", pod=pod) == finished, (pod, hist)
        assert total(v, "vllm:prompt_tokens_total", pod=pod) == total(
            v, "vllm:request_prompt_tokens_sum", pod=pod
        )
        assert total(v, "vllm:generation_tokens_total", pod=pod) == total(
            v, "vllm:request_generation_tokens_sum", pod=pod
        )
    # Every histogram child: cumulative buckets, +Inf == _count.
    children: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    counts: dict[tuple[str, str], float] = {}
    for series, value in v.items():
        metric, labels = split(series)
        if metric.endswith("_bucket"):
            le = labels.pop("le")
            key = (metric[: -len("_bucket")], repr(sorted(labels.items())))
            children[key].append((float(le), value))
        elif metric.endswith("_count"):
            counts[(metric[: -len("_count")], repr(sorted(labels.items())))] = value
    assert children
    for key, buckets in children.items():
        buckets.sort()
        assert [b for _, b in buckets] == sorted(b for _, b in buckets), key
        assert buckets[-1][0] == float("inf") and buckets[-1][1] == counts[key], key
    # The EPP saw each client request once; decode pods finished each once (unless a decode
    # pod's counters were reset by a restart).
    if "restarted_pods" in scenario.truth:
        return
    epp_requests = total(v, "inference_objective_request_total") + total(
        v, "inference_model_request_total"
    )
    assert epp_requests == total(v, "vllm:request_success_total", pod=".*-decode-.*")


def test_pd_request_accounting_on_both_roles():
    s = S.get("healthy_pd", **SHORT)
    v = final_values(s)
    n = total(v, "vllm:request_success_total", pod=".*-prefill-.*")
    assert n > 0
    # Each request finishes once on prefill with finished_reason="length" and 1 token ...
    assert total(v, "vllm:request_success_total", pod=".*-prefill-.*", finished_reason="length") == n
    assert total(v, "vllm:generation_tokens_total", pod=".*-prefill-.*") == n
    assert total(v, "vllm:request_params_max_tokens_sum", pod=".*-prefill-.*") == n
    # ... and once on decode; the prompt is counted on both.
    assert total(v, "vllm:request_success_total", pod=".*-decode-.*") == n
    assert total(v, "vllm:prompt_tokens_total", pod=".*-prefill-.*") == total(
        v, "vllm:prompt_tokens_total", pod=".*-decode-.*"
    )
    assert total(v, "vllm:inter_token_latency_seconds_count", pod=".*-prefill-.*") == 0
    # NIXL: recorded on decode, one transfer per request; prefill carries zero-valued children.
    assert total(v, "vllm:nixl_xfer_time_seconds_count", pod=".*-decode-.*") == n
    prefill_nixl = {k: x for k, x in v.items() if "nixl" in k and "-prefill-" in k}
    assert prefill_nixl and not any(prefill_nixl.values())
    # Decode TTFT includes the KV pull, which vLLM books as queue time on decode.
    q = total(v, "vllm:request_queue_time_seconds_sum", pod=".*-decode-.*") / n
    xfer = total(v, "vllm:nixl_xfer_time_seconds_sum", pod=".*-decode-.*") / n
    ttft_d = total(v, "vllm:time_to_first_token_seconds_sum", pod=".*-decode-.*") / n
    ttft_p = total(v, "vllm:time_to_first_token_seconds_sum", pod=".*-prefill-.*") / n
    assert xfer < q < ttft_d and ttft_d != pytest.approx(ttft_p, rel=0.05)
    # Work: prefill computes uncached prompt tokens, decode the generated ones.
    prompt, hit, out = 1024, 512, 96
    assert total(v, "vllm:iteration_tokens_total_sum", pod=".*-prefill-.*") == n * (prompt - hit)
    assert total(v, "vllm:iteration_tokens_total_sum", pod=".*-decode-.*") == n * out


def test_collapse_moves_all_work_to_decode():
    s = S.get("collapsed", fault_start_min=10, **SHORT)
    series = timelines(s)
    at_fault, end = 21, s.n_steps() - 1  # first scrape after minute 10, last scrape

    def delta(name: str, pod_rx: str) -> float:
        out = 0.0
        for key, samples in series.items():
            n, labels = split(key)
            if n == name and re.fullmatch(pod_rx, labels.get("pod", "")):
                out += samples[end] - samples[at_fault]
        return out

    assert delta("vllm:request_success_total", ".*-prefill-.*") == 0
    assert delta("vllm:iteration_tokens_total_sum", ".*-prefill-.*") == 0
    decode_requests = delta("vllm:request_success_total", ".*-decode-.*")
    assert decode_requests > 0
    # The decode pod now prefills too: uncached prompt + output tokens per request.
    assert delta("vllm:iteration_tokens_total_sum", ".*-decode-.*") == decode_requests * (512 + 96)
    assert not any(n.startswith("vllm:nixl_") for n in family_names(s))  # vLLM 0.11.0
    assert any(n.startswith("vllm:nixl_") for n in family_names(S.get("collapsed_nixl_flat")))


# --- names per version and EPP family ------------------------------------------------------------


def vllm_names(version: str) -> set[str]:
    names = family_names(S.get("healthy_pd", vllm_version=version, duration_min=2))
    return {n for n in names if n.startswith("vllm:")}


def test_vllm_names_follow_the_renames():
    v10 = vllm_names("0.10.1")
    assert {"vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc",
            "vllm:gpu_prefix_cache_queries_total", "vllm:gpu_prefix_cache_hits_total",
            "vllm:time_per_output_token_seconds_bucket"} <= v10  # fmt: skip
    assert "vllm:inter_token_latency_seconds_bucket" not in v10
    assert not {n for n in v10 if "nixl" in n}
    v102 = vllm_names("0.10.2")
    assert {"vllm:inter_token_latency_seconds_bucket",
            "vllm:time_per_output_token_seconds_bucket"} <= v102  # fmt: skip
    v110 = vllm_names("0.11.0")
    assert "vllm:gpu_cache_usage_perc" not in v110  # hidden in 0.11
    assert "vllm:time_per_output_token_seconds_bucket" in v110
    assert not {n for n in v110 if "nixl" in n}
    v12 = vllm_names("0.12.0")
    assert {"vllm:nixl_xfer_time_seconds_bucket", "vllm:nixl_post_time_seconds_sum",
            "vllm:nixl_bytes_transferred_count", "vllm:nixl_num_descriptors_bucket",
            "vllm:nixl_num_failed_transfers_total", "vllm:nixl_num_failed_notifications_total",
            "vllm:prefix_cache_queries_total", "vllm:external_prefix_cache_hits_total",
            "vllm:iteration_tokens_total_bucket", "vllm:request_success_total",
            "vllm:num_preemptions_total"} <= v12  # fmt: skip
    assert not {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds_bucket",
                "vllm:nixl_num_failed_transfers"} & v12  # fmt: skip
    v16 = vllm_names("0.16.0")
    assert {"vllm:nixl_num_kv_expired_reqs_total", "vllm:prompt_tokens_by_source_total",
            "vllm:request_prefill_kv_computed_tokens_bucket"} <= v16  # fmt: skip
    shown = family_names(S.get("healthy_pd", vllm_version="0.11.1", show_hidden_metrics=True,
                               duration_min=2))  # fmt: skip
    assert "vllm:gpu_cache_usage_perc" in shown


def test_vllm_bucket_boundaries():
    v = final_values(S.get("healthy_pd", duration_min=2))
    les = defaultdict(set)
    for series in v:
        n, labels = split(series)
        if "le" in labels:
            les[n].add(labels["le"])
    assert les["vllm:time_to_first_token_seconds_bucket"] >= {"0.001", "0.04", "1.0", "2560.0"}
    assert len(les["vllm:time_to_first_token_seconds_bucket"]) == 23
    assert min(les["vllm:request_queue_time_seconds_bucket"], key=float) == "0.3"
    assert "8.589934592e+09" in les["vllm:nixl_bytes_transferred_bucket"]
    assert max((x for x in les["vllm:iteration_tokens_total_bucket"] if x != "+Inf"),
               key=float) == "16384.0"  # fmt: skip


EPP_NAMES = {
    "inference_model": {
        "inference_model_request_total", "inference_model_request_duration_seconds_bucket",
        "inference_model_input_tokens_sum", "inference_model_output_tokens_count",
        "inference_model_running_requests", "inference_pool_ready_pods",
        "inference_pool_average_kv_cache_utilization", "inference_pool_average_queue_size",
        "inference_pool_per_pod_queue_size",
        "inference_extension_scheduler_e2e_duration_seconds_bucket",
    },
    "inference_objective": {
        "inference_objective_request_total", "inference_objective_request_duration_seconds_sum",
        "inference_objective_running_requests", "inference_pool_ready_pods",
        "inference_pool_per_pod_queue_size", "llm_d_inference_scheduler_pd_decision_total",
    },
    "inference_objective_disagg": {
        "inference_objective_request_total", "inference_pool_average_running_requests",
        "llm_d_inference_scheduler_pd_decision_total",
        "llm_d_inference_scheduler_disagg_decision_total",
    },
    "llm_d_router": {
        "inference_objective_request_total", "inference_pool_ready_pods",
        "llm_d_epp_request_total", "llm_d_epp_request_duration_seconds_bucket",
        "llm_d_epp_request_ttft_seconds_count", "llm_d_epp_ready_endpoints",
        "llm_d_epp_average_kv_cache_utilization", "llm_d_epp_per_endpoint_queue_size",
        "llm_d_epp_pd_decision_total", "llm_d_epp_disagg_decision_total",
        "llm_d_inference_scheduler_pd_decision_total",
        "llm_d_inference_scheduler_disagg_decision_total",
    },
}  # fmt: skip


@pytest.mark.parametrize("family", sorted(EPP_NAMES))
def test_epp_names_per_family(family):
    names = family_names(S.get("healthy_pd", epp_family=family, duration_min=2))
    assert EPP_NAMES[family] <= names
    absent_prefixes = {
        "inference_model": ("inference_objective_", "llm_d_", "inference_pool_average_running"),
        "inference_objective": ("inference_model_", "llm_d_epp_",
                                "llm_d_inference_scheduler_disagg", "inference_pool_average_running"),
        "inference_objective_disagg": ("inference_model_", "llm_d_epp_"),
        "llm_d_router": ("inference_model_",),
    }[family]  # fmt: skip
    assert not {n for n in names if n.startswith(absent_prefixes)}


def test_epp_labels_and_lazy_children():
    v = final_values(S.get("epp_llm_d_router", **SHORT))
    (decision,) = select(v, "llm_d_epp_pd_decision_total")
    labels = split(decision)[1]
    assert labels["decision_type"] == "prefill-decode"  # decode-only never happened: no child
    assert {"plugin_name", "plugin_type", "model_name"} <= set(labels)
    (ttft,) = select(v, "llm_d_epp_request_ttft_seconds_count")
    assert {"fairness_id", "priority", "streaming", "target_model_name"} <= set(split(ttft)[1])
    queues = select(v, "inference_pool_per_pod_queue_size")
    # `pod` is the EPP's own pod; the model server is `model_server_pod`.
    assert {split(s)[1]["model_server_pod"] for s in queues} == set(
        S.get("healthy_pd").truth["pods"].values()
    )
    assert all(split(s)[1]["pod"].startswith("gaie-pd-epp-") for s in queues)
    assert all(split(s)[1]["job"] == "gaie-pd-epp" for s in queues)
    idle = family_names(S.get("idle_pd", **SHORT))
    assert "inference_pool_ready_pods" in idle and "inference_objective_request_total" not in idle
    collapsed = final_values(S.get("collapsed", **SHORT))
    kinds = {split(s)[1]["decision_type"]
             for s in select(collapsed, "llm_d_inference_scheduler_pd_decision_total")}  # fmt: skip
    assert kinds == {"prefill-decode", "decode-only"}


# --- labels, identity, determinism ----------------------------------------------------------------


def test_target_labels_pod_names_and_role_label():
    s = S.get("healthy_pd", role_label="llm_d_ai_role", duration_min=2)
    seen_roles = set()
    for series in timelines(s):
        name, labels = split(series)
        if labels["job"] == "gaie-pd-epp":
            assert "llm_d_ai_role" not in labels and labels["container"] == "epp"
            continue
        role = labels["llm_d_ai_role"]
        seen_roles.add(role)
        assert re.fullmatch(rf"ms-pd-llm-d-modelservice-{role}-[b-z2-9]{{10}}-[b-z2-9]{{5}}",
                            labels["pod"])  # fmt: skip
        assert labels["job"] == f"llm-d/ms-pd-llm-d-modelservice-{role}-podmonitor"
        port = "8000" if role == "prefill" else "8200"
        assert labels["instance"].endswith(f":{port}") and labels["container"] == "vllm"
        if name.startswith("vllm:") and name != "vllm:cache_config_info":
            assert labels["model_name"] == "Qwen/Qwen3-0.6B" and labels["engine"] == "0"
    assert seen_roles == {"prefill", "decode"}


def test_multi_cluster_same_names_told_apart_by_cluster():
    s = S.multi_cluster("healthy_pd", "collapsed", **SHORT)
    assert s.truth["clusters"] == ["east", "west"]
    assert s.truth["by_cluster"]["west"]["expected_verdict"] == "COLLAPSED"
    pods = defaultdict(set)
    for series in timelines(s):
        labels = split(series)[1]
        pods[labels["cluster"]].add((labels["namespace"], labels["pod"]))
    assert set(pods) == {"east", "west"} and pods["east"] == pods["west"]


def test_deterministic_and_seeded():
    assert input_series(S.get("healthy_pd", jitter=0.2, seed=7, duration_min=10)) == input_series(
        S.get("healthy_pd", jitter=0.2, seed=7, duration_min=10)
    )
    a = S.get("healthy_pd", seed=1, duration_min=2).truth["pods"]
    b = S.get("healthy_pd", seed=2, duration_min=2).truth["pods"]
    assert a.keys() == b.keys() and a != b


def test_rolling_update_gets_a_new_replicaset_hash():
    s = S.get("epp_mismatch_transient", **SHORT)
    old, new = s.truth["pods"]["decode-0"], s.truth["pods"]["decode-r2-0"]
    assert old.rsplit("-", 2)[0] == new.rsplit("-", 2)[0] and old.split("-")[-2] != new.split("-")[-2]
    up = {split(k)[1]["pod"]: v for k, v in timelines(s).items() if k.startswith("up{")}
    assert up[old][30] is STALE and up[new][19] is None and up[new][20] == 1


# --- promtool notation --------------------------------------------------------------------------


def expand(values: str) -> list[object]:
    """promtool's expansion of the notation, repeated addition included."""
    out: list[object] = []
    for token in values.split():
        if token == "stale":
            out.append(STALE)
        elif token.startswith("_"):
            out.extend([None] * (int(token[2:]) if "x" in token else 1))
        elif "x" in token:
            head, times = token.rsplit("x", 1)
            m = re.fullmatch(r"(-?[0-9.]+)(?:([+-])([0-9.]+))?", head)
            assert m, token
            acc = float(m.group(1))
            step = float(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            for _ in range(int(times) + 1):
                out.append(acc)
                acc += step
        else:
            out.append(float(token))
    return out


@pytest.mark.parametrize("name", ["healthy_pd", "pod_restart", "scrape_gap", "target_down",
                                  "epp_mismatch_transient", "nixl_slow"])  # fmt: skip
def test_expanding_notation_reproduces_every_sample_exactly(name):
    s = S.get(name, jitter=0.1, **SHORT)
    raw = timelines(s)
    rendered = {x["series"]: x["values"] for x in input_series(s)}
    assert rendered.keys() == raw.keys()
    for series, samples in raw.items():
        assert expand(rendered[series]) == samples, series
    assert sum(len(v) for v in rendered.values()) < 60 * sum(len(v) for v in raw.values())


def test_encode_merges_runs():
    assert encode([0.0, 5.0, 10.0, 15.0, 15.0, 15.0, 15.0, None, None, STALE]) == (
        "0+5x3 15x2 _x2 stale"
    )
    assert encode([0.5, 1e-05]) == "0.5 0.00001"


# --- live endpoint without Prometheus ------------------------------------------------------------


def test_live_endpoint_advances_and_switches_without_resetting_counters():
    collapsed = S.get("collapsed", fault_start_min=0, **SHORT)
    with LiveEndpoint(collapsed, speed=1200) as ep:  # 20 scenario minutes per second
        def totals() -> tuple[float, float]:
            status, text = ep.exposition()
            assert status == 200
            v = parse_exposition(text)
            p = sum(x for k, x in v.items()
                    if k.startswith("vllm:request_success_total") and "-prefill-" in k)
            d = sum(x for k, x in v.items()
                    if k.startswith("vllm:request_success_total") and "-decode-" in k)
            return p, d  # fmt: skip

        p0, d0 = totals()
        time.sleep(0.3)
        p1, d1 = totals()
        assert p1 == p0 == 0 and d1 > d0
        ep.switch(S.get("healthy_pd", **SHORT))
        time.sleep(0.3)
        p2, d2 = totals()
        assert p2 > 0 and d2 > d1
        pod = collapsed.truth["pods"]["decode-0"]
        status, text = ep.exposition(f"-/llm-d/{pod}")
        assert status == 200 and 'pod="' not in text and "vllm:request_success_total{" in text
        assert ep.exposition("-/llm-d/nope")[0] == 404
    down = S.get("target_down", fault_start_min=0, **SHORT)
    with LiveEndpoint(down, speed=600) as ep:
        time.sleep(0.1)
        assert ep.exposition(f"-/llm-d/{down.truth['down_pods']['decode-1']}")[0] == 503


def test_simulator_never_reads_the_signal_catalog():
    # The simulator must model the exporters from the reference, not from the catalog it checks.
    import ast
    from pathlib import Path

    # pdobs.core.promql: the project's one Prometheus duration formatter; core knows no signal.
    allowed = {"pdobs.servers.tools", "pdobs.core.paths", "pdobs.core.promql", "pdobs.servers.prometheus"}
    for path in Path(S.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pdobs":
                names = {f"pdobs.{a.name}" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            else:
                continue
            for name in names:
                if name == "pdobs" or name.startswith("pdobs."):
                    assert name in allowed, (path, name)
