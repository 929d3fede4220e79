"""The doctor's way to Prometheus: unreachable URLs, TLS, bearer token and basic auth.

A forwarding proxy in front of a real Prometheus (backfilled from the simulator) plays the
secured server; its certificate is made at test time with the openssl binary.
"""

import json

import pytest
import requests
from doctor_helpers import Proxy, self_signed_cert

from pdobs import cli
from pdobs.servers.prometheus import free_port
from simulator import scenarios

TOKEN = "s3cret-t0ken-value"
PASSWORD = "pa55-w0rd-value"


@pytest.fixture(scope="module")
def served(prometheus_for_scenario):
    return prometheus_for_scenario(scenarios.get("collapsed", namespace="transport", duration_min=20))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PROMETHEUS_TOKEN", "PROMETHEUS_USERNAME", "PROMETHEUS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def doctor(capsys, url, served, *args):
    code = cli.main(["doctor", "--prometheus", url, "--time", str(served.end_time), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_unreachable_url_names_the_url_and_why(capsys, served):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = doctor(capsys, url, served)
    assert (code, out) == (2, "")
    assert err == f"error: cannot reach Prometheus at {url}: connection refused (is Prometheus listening there? " \
                  "is the port-forward running?)\n"


def test_unresolvable_host_is_bad_input(capsys, served):
    code, _, err = doctor(capsys, "http://prometheus.invalid:9090", served, "--timeout", "5")
    assert code == 2
    assert "cannot reach Prometheus at http://prometheus.invalid:9090" in err


def test_a_path_that_is_not_the_api_is_bad_input(capsys, served):
    code, _, err = doctor(capsys, served.url + "/not-prometheus", served)
    assert code == 2
    assert f"{served.url}/not-prometheus/api/v1/query answered HTTP 404" in err and "path prefix" in err


def test_self_signed_tls_is_refused_by_default_and_accepted_with_its_ca(capsys, served, cert):
    with Proxy(served.url, cert=cert) as proxy:
        code, out, err = doctor(capsys, proxy.url, served)
        assert (code, out) == (2, "")
        assert err.startswith(f"error: cannot reach Prometheus at {proxy.url}: TLS certificate verification failed")
        assert "--ca-file" in err and "--insecure-skip-verify" in err
        assert proxy.paths == []  # nothing got through the handshake

        code, out, err = doctor(capsys, proxy.url, served, "--ca-file", str(cert[0]))
        assert (code, err) == (1, "")
        assert "Verdict:   COLLAPSED TO AGGREGATED" in out

        code, out, err = doctor(capsys, proxy.url, served, "--insecure-skip-verify")
        assert code == 1 and "COLLAPSED TO AGGREGATED" in out
        assert err == f"warning: not verifying the TLS certificate of {proxy.url} (--insecure-skip-verify)\n"


def test_a_wrong_ca_file_is_not_suggested_again(capsys, served, cert, tmp_path):
    other = self_signed_cert(tmp_path)  # a CA that did not sign the proxy's certificate
    with Proxy(served.url, cert=cert) as proxy:
        code, _, err = doctor(capsys, proxy.url, served, "--ca-file", str(other[0]))
    assert code == 2 and err.count("\n") == 1
    assert f"the CA in --ca-file {other[0]} did not sign it" in err and "pass --ca-file" not in err
    assert "--insecure-skip-verify" in err


def test_json_output_is_one_object_even_on_failure(capsys, served):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = doctor(capsys, url, served, "--output", "json")
    assert code == 2 and err.startswith("error: cannot reach Prometheus")
    assert json.loads(out) == {"error": err.removeprefix("error: ").strip(), "exit_code": 2}


def test_missing_ca_file_is_bad_input(capsys, served, tmp_path):
    code, _, err = doctor(capsys, served.url, served, "--ca-file", str(tmp_path / "nope.pem"))
    assert code == 2 and "--ca-file" in err and "no such file" in err


def test_401_without_credentials_says_how_to_give_them(capsys, served):
    with Proxy(served.url, token=TOKEN) as proxy:
        code, out, err = doctor(capsys, proxy.url, served)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: Prometheus at {proxy.url} answered 401 Unauthorized")
    assert "PROMETHEUS_TOKEN" in err and "--token-file" in err
    assert proxy.authorizations == [None]


def test_token_from_the_environment_is_sent_and_never_printed(capsys, monkeypatch, served):
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    with Proxy(served.url, token=TOKEN) as proxy:
        code, out, err = doctor(capsys, proxy.url, served, "--output", "json")
        code_text, out_text, err_text = doctor(capsys, proxy.url, served)
    assert (code, err, code_text, err_text) == (1, "", 1, "")
    assert '"verdict": "COLLAPSED TO AGGREGATED"' in out and "COLLAPSED TO AGGREGATED" in out_text
    assert len(proxy.authorizations) > 10
    assert set(proxy.authorizations) == {f"Bearer {TOKEN}"}
    assert TOKEN not in out + err + out_text + err_text


def test_wrong_token_is_401_and_not_echoed(capsys, monkeypatch, served):
    monkeypatch.setenv("PROMETHEUS_TOKEN", "wrong-" + TOKEN)
    with Proxy(served.url, token=TOKEN) as proxy:
        code, out, err = doctor(capsys, proxy.url, served)
    assert code == 2 and "answered 401" in err
    assert TOKEN not in out + err


def test_token_file_wins_over_the_environment(capsys, monkeypatch, served, tmp_path):
    monkeypatch.setenv("PROMETHEUS_TOKEN", "stale-value")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with Proxy(served.url, token=TOKEN) as proxy:
        code, out, err = doctor(capsys, proxy.url, served, "--token-file", str(token_file))
    assert (code, err) == (1, "")
    assert set(proxy.authorizations) == {f"Bearer {TOKEN}"}
    assert TOKEN not in out


def test_basic_auth_from_the_environment(capsys, monkeypatch, served):
    monkeypatch.setenv("PROMETHEUS_USERNAME", "doctor")
    monkeypatch.setenv("PROMETHEUS_PASSWORD", PASSWORD)
    with Proxy(served.url, basic=("doctor", PASSWORD)) as proxy:
        code, out, err = doctor(capsys, proxy.url, served)
    assert (code, err) == (1, "")
    assert len(set(proxy.authorizations)) == 1 and proxy.authorizations[0].startswith("Basic ")
    assert PASSWORD not in out


def test_credentials_in_the_url_are_never_printed(capsys, served):
    port = free_port()
    code, _, err = doctor(capsys, f"http://user:{PASSWORD}@127.0.0.1:{port}", served)
    assert code == 2 and f"http://127.0.0.1:{port}" in err
    assert PASSWORD not in err


def test_conflicting_credentials_are_bad_input(capsys, monkeypatch, served):
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    monkeypatch.setenv("PROMETHEUS_USERNAME", "doctor")
    code, _, err = doctor(capsys, served.url, served)
    assert code == 2 and "use one" in err
    assert TOKEN not in err


def test_proxy_really_requires_the_token(served):
    # Guards the tests above: without the header the proxy must refuse.
    with Proxy(served.url, token=TOKEN) as proxy:
        assert requests.get(proxy.url + "/api/v1/status/buildinfo", timeout=10).status_code == 401
        ok = requests.get(proxy.url + "/api/v1/status/buildinfo", timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def test_backend_without_rules_and_buildinfo_apis_still_works(capsys, served):
    with Proxy(served.url, missing=("/api/v1/rules", "/api/v1/status/buildinfo")) as proxy:
        code, out, err = doctor(capsys, proxy.url, served)
    assert (code, err) == (1, "")
    assert "/api/v1/rules" in proxy.paths and "/api/v1/status/buildinfo" in proxy.paths
    assert "no rules API and no recorded series" in out
    assert "COLLAPSED TO AGGREGATED" in out
