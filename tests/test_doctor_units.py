"""The doctor's pure parts: version inference, stale-name explanations, credentials, URL redaction."""

import pytest

from pdobs.core import config
from pdobs.doctor import client, preflight
from pdobs.doctor.model import EXIT_FAILING, EXIT_OK, EXIT_UNDECIDED, FAIL, PASS, Check, Deployment, Report


@pytest.mark.parametrize(("names", "expected"), [
    ({"vllm:nixl_xfer_time_seconds_count", "vllm:inter_token_latency_seconds_count"}, "0.11.1 or later"),
    ({"vllm:nixl_xfer_time_seconds_count", "vllm:inter_token_latency_seconds_count",
      "vllm:gpu_cache_usage_perc"}, "0.11.1 or later, older than 0.12.0"),
    ({"vllm:inter_token_latency_seconds_count", "vllm:gpu_cache_usage_perc"}, "0.10.2 or later, older than 0.12.0"),
    ({"vllm:time_to_first_token_seconds_count"}, "older than 0.10.2"),
    ({"vllm:request_prefill_kv_computed_tokens_count", "vllm:inter_token_latency_seconds_count"}, "0.13.0 or later"),
])
def test_vllm_version_is_inferred_from_the_names_that_exist(names, expected):
    version, evidence = preflight.infer_vllm_version(names)
    assert version == expected
    assert evidence


def test_contradicting_markers_say_mixed_versions():
    version, _ = preflight.infer_vllm_version({"vllm:nixl_xfer_time_seconds_count", "vllm:gpu_cache_usage_perc",
                                               "vllm:inter_token_latency_seconds_count"})
    assert version == "0.11.1 or later, older than 0.12.0"  # consistent: a 0.11.x with hidden metrics shown
    version, _ = preflight.infer_vllm_version({"vllm:request_prefill_kv_computed_tokens_count",
                                               "vllm:gpu_cache_usage_perc"})
    assert version is not None and version.startswith("mixed")


def test_missing_total_suffix_is_explained():
    why = preflight.explain_missing("vllm:num_preemptions", {"vllm:num_preemptions_total"})
    assert why is not None and "_total" in why and "vllm:num_preemptions_total" in why
    assert preflight.explain_missing("vllm:num_preemptions_total", {"vllm:num_preemptions_total"}) is None


def test_renamed_and_other_family_names_are_explained():
    why = preflight.explain_missing("vllm:gpu_cache_usage_perc", {"vllm:kv_cache_usage_perc"})
    assert why is not None and "vllm:kv_cache_usage_perc" in why
    why = preflight.explain_missing("vllm:time_per_output_token_seconds_bucket",
                                    {"vllm:inter_token_latency_seconds_bucket"})
    assert why is not None and "vllm:inter_token_latency_seconds_bucket" in why
    why = preflight.explain_missing("inference_objective_request_total", {"inference_model_request_total"})
    assert why is not None and "inference_model_request_total" in why
    # Unknown names stay silent: an error counter that never fired is not a misspelling.
    assert preflight.explain_missing("inference_objective_request_error_total", set()) is None


def test_foreign_rules_with_stale_names_are_reported_and_ours_are_not():
    cfg = config.load()
    groups = [
        {"name": "llm-d-shipped", "rules": [
            {"type": "alerting", "name": "Preemptions", "query": "rate(vllm:num_preemptions[5m]) > 1"},
            {"type": "recording", "name": "x:kv:avg", "query": "avg(vllm:gpu_cache_usage_perc)"},
        ]},
        # Our own rules read old names on purpose (`or` fallbacks); never report them.
        {"name": "ours", "rules": [{"type": "recording", "name": "namespace_model_role:vllm_kv_cache_usage:avg",
                                    "query": "avg(vllm:gpu_cache_usage_perc)"}]},
    ]
    names = {"vllm:num_preemptions_total", "vllm:kv_cache_usage_perc"}
    found = preflight.foreign_rules(cfg, groups, names)
    texts = [f.message for f in found]
    assert len(found) == 2, texts
    assert any("llm-d-shipped/Preemptions" in t and "_total" in t for t in texts)
    assert any("llm-d-shipped/x:kv:avg" in t and "vllm:kv_cache_usage_perc" in t for t in texts)
    assert all("ours/" not in t for t in texts)


def test_credentials_come_from_env_or_files_and_conflicts_are_refused(tmp_path):
    assert client.credentials(env={"PROMETHEUS_TOKEN": "t0k"}).token == "t0k"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert client.credentials(env={"PROMETHEUS_TOKEN": "t0k"}, token_file=token_file).token == "from-file"
    basic = client.credentials(env={"PROMETHEUS_USERNAME": "u", "PROMETHEUS_PASSWORD": "p"})
    assert (basic.username, basic.password, basic.kind) == ("u", "p", "basic auth")
    assert "p" not in repr(basic).replace("password", "").replace("username='u'", "")
    with pytest.raises(client.CredentialsError, match="use one"):
        client.credentials(env={"PROMETHEUS_TOKEN": "t", "PROMETHEUS_USERNAME": "u"})
    with pytest.raises(client.CredentialsError, match="no username"):
        client.credentials(env={"PROMETHEUS_PASSWORD": "p"})
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(client.CredentialsError, match="empty"):
        client.credentials(env={}, token_file=empty)
    with pytest.raises(client.CredentialsError, match="cannot read"):
        client.credentials(env={}, token_file=tmp_path / "missing")


def test_urls_are_printed_without_userinfo():
    assert client.redact("https://user:secret@prom.example:9443/prometheus") == "https://prom.example:9443/prometheus"
    with pytest.raises(client.PrometheusError, match="expected an http"):
        client.check_url("prom.example:9090")


def _dep(code, statuses):
    checks = [Check(f"s{i}", "t", "m", None, "e", s, "r") for i, s in enumerate(statuses)]
    return Deployment({"namespace": "n", "model": "m"}, 1, 1, checks, "V", code, "why", None, "d")


def test_exit_codes_follow_the_verdict_and_the_checks():
    assert _dep(0, [PASS] * 5).exit_code == EXIT_OK
    assert _dep(2, ["N/A"] * 5).exit_code == EXIT_OK
    assert _dep(0, [PASS] * 4 + [FAIL]).exit_code == EXIT_FAILING  # disaggregated, but the EPP misses a pod
    assert _dep(1, [FAIL] * 5).exit_code == EXIT_FAILING
    assert _dep(3, ["N/A"] * 5).exit_code == EXIT_UNDECIDED
    cannot_tell = _dep(4, [FAIL] + [PASS] * 4)
    cannot_tell.checks[0].signal = "nixl_transfers_absent"
    assert cannot_tell.exit_code == EXIT_UNDECIDED  # no NIXL metrics on an old vLLM is not a failure
    cannot_tell.checks[-1].status = FAIL
    assert cannot_tell.exit_code == EXIT_FAILING
    assert _dep(None, ["N/A"] * 5).exit_code == EXIT_UNDECIDED
    report = Report("u", 0.0, None, {}, [], [_dep(0, [PASS] * 5), _dep(3, ["N/A"] * 5)])
    assert report.exit_code == EXIT_UNDECIDED
    report.deployments.append(_dep(1, [FAIL] * 5))
    assert report.exit_code == EXIT_FAILING
