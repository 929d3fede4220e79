"""Doctor and push against servers that misbehave: every request ends by its deadline, an endless
body is cut at the size cap, an answer not shaped like the API is a one-line error with exit 2,
and what a server echoes back never carries a credential."""

import base64
import time
from pathlib import Path

import pytest
from misbehaving_server import MAX_SECONDS, MisbehavingServer

from pdobs import cli, grafana_client, push
from pdobs.doctor import client as doctor_client

TOKEN = "s3cret-t0ken-value"
PASSWORD = "pa55-w0rd-value"
FAST = "grafana:\n  push:\n    timeout_seconds: 1\n    retries: 1\n    backoff_seconds: 0\n"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)


def doctor(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = cli.main(["doctor", "--prometheus", url, "--time", "1700000000", *args])
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("mode", ["drip-headers", "drip-body"])
def test_a_dripping_server_fails_the_doctor_by_its_deadline(capsys, mode: str):
    with MisbehavingServer(mode) as server:
        code, out, err, took = doctor(capsys, server.url, "--timeout", "3")
    assert (code, out) == (2, "")
    assert "no complete answer to /api/v1/status/buildinfo within 3s" in _one_line(err)
    # A per-read timeout never trips on a drip: without a total deadline this runs MAX_SECONDS.
    assert took < 3 + 7 < MAX_SECONDS


def test_an_endless_body_is_cut_at_the_cap(capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(doctor_client, "MAX_RESPONSE_BYTES", 1 << 20)
    with MisbehavingServer("endless") as server:
        code, _, err, _ = doctor(capsys, server.url)
    assert code == 2
    assert "answered more than 1 MiB" in _one_line(err)


def test_an_enormous_announced_body_is_refused_unread(capsys):
    with MisbehavingServer("huge-length") as server:
        code, _, err, _ = doctor(capsys, server.url)
    assert code == 2 and "answered more than 64 MiB" in _one_line(err)


BUILDINFO = {"status": "success", "data": {"version": "3.5.0"}}


@pytest.mark.parametrize(("query_answer", "hint"), [
    ({"status": "success", "data": None}, "its data is NoneType"),
    ({"status": "success", "data": "hello"}, "its data is str"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "abc"]}]}},
     "a sample value is 'abc'"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": "x", "value": [1, "1"]}]}},
     "no label set"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "not an instant vector"),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1, 2]}}, "not a [time"),
], ids=["null", "string", "abc", "labels", "matrix", "scalar"])
def test_a_malformed_query_answer_is_bad_input_not_collapse(capsys, query_answer, hint: str):
    answers = {"/api/v1/status/buildinfo": (200, BUILDINFO), "/api/v1/query": (200, query_answer)}
    with MisbehavingServer("json", answers) as server:
        code, out, err, _ = doctor(capsys, server.url)
    assert (code, out) == (2, ""), "exit 1 means 'collapsed'; a broken answer is exit 2"
    assert hint in _one_line(err) and "check the URL" in err


@pytest.mark.parametrize(("path", "answer", "call"), [
    ("/api/v1/rules", {"status": "success", "data": {"groups": "x"}}, lambda p: p.rules()),
    ("/api/v1/rules", {"status": "success", "data": {"groups": [{"rules": [{"name": 1}]}]}}, lambda p: p.rules()),
    ("/api/v1/rules", {"status": "success", "data": "hello"}, lambda p: p.rules()),
    ("/api/v1/label/__name__/values", {"status": "success", "data": {"a": 1}},
     lambda p: p.label_values("__name__", "{a=\"b\"}", 60)),
    ("/api/v1/status/buildinfo", {"status": "success", "data": ["x"]}, lambda p: p.buildinfo()),
], ids=["groups-string", "rule-name-int", "data-string", "label-values", "buildinfo"])
def test_malformed_rules_label_values_and_buildinfo_are_prometheus_errors(path, answer, call):
    """PrometheusError is what the doctor turns into exit 2 (the query cases above run it end to end)."""
    with MisbehavingServer("json", {path: (200, answer)}) as server:
        prom = doctor_client.Prometheus(server.url, doctor_client.Credentials(), timeout=5)
        with pytest.raises(doctor_client.PrometheusError, match="which the Prometheus API never sends"):
            call(prom)


def test_credentials_echoed_by_a_proxy_are_scrubbed(capsys, monkeypatch: pytest.MonkeyPatch):
    echo = f"upstream rejected Authorization: Bearer {TOKEN} (header Authorization=Bearer {TOKEN})"
    answers = {"/api/v1/status/buildinfo": (503, {"status": "error", "errorType": "unavailable", "error": echo})}
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    with MisbehavingServer("json", answers) as server:
        code, _, err, _ = doctor(capsys, server.url)
    assert code == 2 and "answered HTTP 503" in _one_line(err)
    assert TOKEN not in err and "Authorization: ***" in err

    monkeypatch.delenv("PROMETHEUS_TOKEN")
    monkeypatch.setenv("PROMETHEUS_USERNAME", "doctor")
    monkeypatch.setenv("PROMETHEUS_PASSWORD", PASSWORD)
    basic = base64.b64encode(f"doctor:{PASSWORD}".encode()).decode()
    answers = {"/api/v1/status/buildinfo": (401, {"status": "error"}, f"Unauthorized Basic {basic}")}
    with MisbehavingServer("json", answers) as server:
        code, _, err, _ = doctor(capsys, server.url)
    assert code == 2 and "answered 401" in _one_line(err)
    assert basic not in err and PASSWORD not in err


def test_a_non_finite_timeout_is_bad_input(capsys):
    for value in ("nan", "inf", "0"):
        code, _, err, _ = doctor(capsys, "http://127.0.0.1:9", "--timeout", value)
        assert code == 2 and "--timeout" in _one_line(err)


# --- push ---------------------------------------------------------------------------------------


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST)
    return path


@pytest.fixture(autouse=True)
def no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    # The transport is under test here, not the dashboards.
    monkeypatch.setattr(push, "rendered_dashboards", lambda cfg: {"d": {"uid": "d", "title": "D"}})


def _push(capsys: pytest.CaptureFixture[str], url: str, cfg: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    code = cli.main(["--config", str(cfg), "push", "--grafana-url", url])
    err = capsys.readouterr().err
    return code, err, time.monotonic() - started


@pytest.mark.parametrize("mode", ["drip-headers", "drip-body"])
def test_a_dripping_grafana_fails_push_by_its_deadline(capsys, fast_config: Path, mode: str):
    with MisbehavingServer(mode) as server:
        code, err, took = _push(capsys, server.url, fast_config)
    assert code == 1
    first = err.splitlines()[0]
    assert "no answer within 1s after 2 attempts" in first and "timeout_seconds" in first
    assert took < 2 * 1 + 8 < MAX_SECONDS
    assert len(server.paths) == 2, "a GET is retried once (retries: 1), each attempt bounded"


def test_an_endless_grafana_body_is_cut_at_the_cap(capsys, fast_config: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(grafana_client, "MAX_RESPONSE_BYTES", 1 << 20)
    with MisbehavingServer("endless") as server:
        code, err, _ = _push(capsys, server.url, fast_config)
    assert code == 1 and "answered more than 1 MiB" in err.splitlines()[0]
