"""The upstream facts the package's semantics rest on, as the committed contract records them.

Each test names the version and file the fact was read from; a `make contract` that changes one
of them fails here, so the change is seen before anything relies on the old fact.
"""

from __future__ import annotations

from typing import Any

from tools.contract import load


def vllm_metric(version: str, name: str) -> dict[str, Any] | None:
    found = [m for m in load.vllm(version)["metrics"] if m["name"] == name and not m["file"].startswith("vllm/engine/")]
    return found[0] if found else None


def epp_metric(key: str, name: str) -> dict[str, Any] | None:
    return load.epp_families(key).get(name)


def test_0_33_counts_notification_failures_in_failed_transfers():
    # vllm/distributed/kv_transfer/kv_connector/v1/nixl/stats.py (NixlPromMetrics)
    failed = vllm_metric("0.33.0", "vllm:nixl_num_failed_transfers")
    notif = vllm_metric("0.33.0", "vllm:nixl_num_failed_notifications")
    assert failed is not None and notif is not None
    assert failed["file"].endswith("nixl/stats.py")
    assert "including handshake and notification failures" in failed["help"]
    assert "also included in vllm:nixl_num_failed_transfers" in notif["help"]
    for version in ("0.24.0", "0.29.0"):
        old = vllm_metric(version, "vllm:nixl_num_failed_transfers")
        assert old is not None and old["help"] == "Number of failed NIXL KV Cache transfers."


def test_prompt_tokens_by_source_from_0_16_and_recomputed_gone_from_0_24():
    for version in load.vllm_versions():
        by_source = vllm_metric(version, "vllm:prompt_tokens_by_source")
        recomputed = vllm_metric(version, "vllm:prompt_tokens_recomputed")
        newer = load.version_key(version) >= (0, 16)
        assert (by_source is not None) == newer, version
        if by_source:
            assert by_source["labels"] == ["model_name", "engine", "source"]
            assert by_source["label_values"]["source"] == ["external_kv_transfer", "local_cache_hit", "local_compute"]
        assert (recomputed is not None) == (version == "0.16.0"), version


def test_new_p_d_signals_of_0_33():
    fetch = vllm_metric("0.33.0", "vllm:num_requests_kv_fetch_by_stage")
    assert fetch is not None and fetch["labels"] == ["model_name", "engine", "stage"]
    assert fetch["conditions"] == ["kv_transfer_config is not None and kv_transfer_config.is_kv_consumer"]
    assert vllm_metric("0.33.0", "vllm:nixl_num_notifications_after_expiry") is not None
    assert vllm_metric("0.29.0", "vllm:nixl_num_notifications_after_expiry") is None
    waiting = vllm_metric("0.24.0", "vllm:num_requests_waiting_by_reason")
    assert waiting is not None and waiting["label_values"]["reason"] == ["capacity", "deferred"]
    cached = vllm_metric("0.33.0", "vllm:prompt_tokens_cached_by_source")
    assert cached is not None and "p2p" in cached["label_values"]["source"]


def test_mooncake_metrics_only_from_0_33():
    names = ("vllm:mooncake_xfer_time_seconds", "vllm:mooncake_bytes_transferred",
             "vllm:mooncake_num_failed_transfers", "vllm:mooncake_num_failed_recvs",
             "vllm:mooncake_num_kv_expired_reqs", "vllm:mooncake_num_descriptors")  # fmt: skip
    for name in names:
        m = vllm_metric("0.33.0", name)
        assert m is not None and m["file"].endswith("mooncake/stats.py") and m["class"] == "MooncakePromMetrics"
        assert vllm_metric("0.29.0", name) is None and vllm_metric("0.24.0", name) is None


def test_finished_reason_values():
    expect = {"0.12.0": ["abort", "length", "stop"], "0.14.0": ["abort", "error", "length", "stop"],
              "0.24.0": ["abort", "error", "length", "repetition", "stop"]}  # fmt: skip
    for version, reasons in expect.items():
        m = vllm_metric(version, "vllm:request_success")
        assert m is not None and m["label_values"]["finished_reason"] == reasons


def test_epp_labels():
    # llm-d-inference-scheduler v0.4.0 pkg/metrics/metrics.go: by decision_type only.
    assert epp_metric("llm-d-inference-scheduler-v0.4.0",
                      "llm_d_inference_scheduler_pd_decision_total")["labels"] == ["decision_type"]  # fmt: skip
    v05 = epp_metric("llm-d-inference-scheduler-v0.5.1", "llm_d_inference_scheduler_pd_decision_total")
    assert v05["labels"] == ["model_name", "decision_type"]
    # llm-d-router pkg/epp/metrics/llm_d_router_metrics.go
    ttft = epp_metric("llm-d-router-v0.10.0", "llm_d_epp_request_ttft_seconds")
    assert ttft["labels"] == ["model_name", "target_model_name", "fairness_id", "priority", "streaming"]
    poll = epp_metric("llm-d-router-v0.10.0", "llm_d_epp_datalayer_poll_errors_total")
    assert poll["labels"] == ["source_type"]
    assert epp_metric("llm-d-router-v0.9.0", "llm_d_epp_datalayer_poll_errors_total") is not None
    # GAIE v1.6.0 has no EPP any more.
    assert load.epp("gaie-v1.6.0")["metrics"] == []
