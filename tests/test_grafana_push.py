"""`build.py push` against a local server that follows Grafana's documented HTTP API
(tests/grafana_api_server.py), asserting on the exact requests it received."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from delivery_support import with_fixture
from grafana_api_server import GrafanaAPI

from pdobs import cli, push
from pdobs.core import config
from pdobs.grafana_client import GrafanaClient, GrafanaError
from pdobs.servers.prometheus import free_port

FOLDER_UID = "llm-d-pd"
FOLDER_TITLE = "llm-d P/D"


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return {uid: dict(board.json) for uid, board in sorted(with_fixture(config.load()).dashboards.items())}


@pytest.fixture(autouse=True)
def rendered_once(dashboards, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendering is tested elsewhere; one render per module keeps these tests quick.
    monkeypatch.setattr(push, "rendered_dashboards", lambda cfg: dashboards)


def run(capsys: pytest.CaptureFixture[str], url: str, *flags: str, cfg: Path | None = None) -> tuple[int, str, str]:
    argv = (["--config", str(cfg)] if cfg else []) + ["push", "--grafana-url", url, *flags]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_errors(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), err
    return lines


def test_first_push_creates_the_folder_then_each_dashboard(grafana, dashboards, capsys):
    code, out, err = run(capsys, grafana.url, "--message", "release 1.2")
    assert code == 0, err
    uids = list(dashboards)
    expected = [("GET", f"/api/folders/{FOLDER_UID}"), ("POST", "/api/folders")]
    for uid in uids:
        expected += [("GET", f"/api/dashboards/uid/{uid}"), ("POST", "/api/dashboards/db")]
    assert grafana.seen() == expected
    for req in grafana.requests:
        assert req.headers["Authorization"] == f"Bearer {grafana.token}"
        if req.method == "POST":
            assert req.headers["Content-Type"] == "application/json"
    assert grafana.requests[1].body == {"uid": FOLDER_UID, "title": FOLDER_TITLE}
    posts = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"]
    for uid, body in zip(uids, posts, strict=True):
        assert set(body) == {"dashboard", "folderUid", "overwrite", "message"}
        assert (body["folderUid"], body["overwrite"], body["message"]) == (FOLDER_UID, False, "release 1.2")
        sent = body["dashboard"]
        assert sent["uid"] == uid and sent["id"] is None and "version" not in sent
        assert "__inputs" not in sent, "the provisioning form, with the configured datasource"
        assert {k: v for k, v in sent.items() if k not in ("id", "version")} == \
               {k: v for k, v in dashboards[uid].items() if k not in ("id", "version")}
    assert set(grafana.dashboards) == set(uids)
    assert f"folder {FOLDER_UID} ({FOLDER_TITLE}): created" in out
    assert all(f"{uid}: created, version 1" in out for uid in uids)
    assert grafana.token not in out + err


def test_second_push_only_reads(grafana, capsys):
    assert run(capsys, grafana.url)[0] == 0
    grafana.requests.clear()
    code, out, err = run(capsys, grafana.url)
    assert code == 0, err
    assert grafana.seen("POST") == []
    assert out.count("unchanged, identical in Grafana, not written") == len(grafana.dashboards)


def test_a_dashboard_changed_in_grafana_is_replaced_only_with_overwrite(grafana, dashboards, capsys):
    assert run(capsys, grafana.url)[0] == 0
    uid, *others = list(dashboards)
    grafana.edit_in_ui(uid, title="edited by hand")
    grafana.requests.clear()

    code, out, err = run(capsys, grafana.url)
    assert code == 2
    (post,) = [r for r in grafana.requests if r.method == "POST"]
    assert post.body["overwrite"] is False and post.body["dashboard"]["uid"] == uid
    lines = _one_line_errors(err)
    assert any("412" in line and "version-mismatch" in line and "--overwrite" in line for line in lines)
    assert f"succeeded: {', '.join(f'{u} unchanged' for u in others)}" in lines[-1]
    assert grafana.dashboards[uid]["dashboard"]["title"] == "edited by hand"

    grafana.requests.clear()
    code, out, err = run(capsys, grafana.url, "--overwrite")
    assert code == 0, err
    (post,) = [r for r in grafana.requests if r.method == "POST"]
    assert post.body["overwrite"] is True
    assert grafana.dashboards[uid]["dashboard"]["title"] == dashboards[uid]["title"]
    assert f"{uid}: updated, version 3" in out


def test_dry_run_reports_new_changed_and_unchanged_without_writing(grafana, dashboards, capsys):
    uids = list(dashboards)
    grafana.add_folder(FOLDER_UID, FOLDER_TITLE)
    assert run(capsys, grafana.url)[0] == 0
    grafana.edit_in_ui(uids[0], panels=[])
    del grafana.dashboards[uids[1]]
    grafana.folders.clear()
    grafana.requests.clear()

    code, out, err = run(capsys, grafana.url, "--dry-run")
    assert code == 0, err
    assert {m for m, _ in grafana.seen()} == {"GET"}, "a dry run never writes"
    assert "dry run" in out
    assert f"folder {FOLDER_UID} ({FOLDER_TITLE}): missing, would be created" in out
    assert f"{uids[0]}: changed, differs in panels; needs --overwrite to be replaced" in out
    assert f"{uids[1]}: new, would be created" in out
    for uid in uids[2:]:
        assert f"{uid}: unchanged" in out
    code, out, err = run(capsys, grafana.url, "--dry-run", "--overwrite")
    assert f"{uids[0]}: changed, differs in panels, would be overwritten" in out


def test_custom_folder_uid(grafana, capsys):
    code, _out, err = run(capsys, grafana.url, "--folder-uid", "team-serving")
    assert code == 0, err
    assert grafana.requests[0].path == "/api/folders/team-serving"
    assert grafana.requests[1].body == {"uid": "team-serving", "title": FOLDER_TITLE}
    assert {e["folderUid"] for e in grafana.dashboards.values()} == {"team-serving"}


def test_rejected_token_stops_at_the_first_request(grafana, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong")
    code, out, err = run(capsys, grafana.url)
    assert code == 2
    assert grafana.seen() == [("GET", f"/api/folders/{FOLDER_UID}")]
    lines = _one_line_errors(err)
    assert "401" in lines[0] and "GRAFANA_TOKEN" in lines[0]
    assert "not pushed" in lines[-1] and "succeeded: none" in lines[-1]
    assert "glsa_wrong" not in out + err


def test_viewer_token_is_refused_for_each_dashboard_with_a_permission_hint(grafana, dashboards, capsys):
    grafana.add_folder(FOLDER_UID, FOLDER_TITLE)
    grafana.role = "Viewer"
    code, _out, err = run(capsys, grafana.url)
    assert code == 2
    assert len(grafana.seen("POST")) == len(dashboards), "a 403 on one dashboard does not stop the others"
    lines = _one_line_errors(err)
    assert sum("403" in line and "Editor" in line for line in lines) == len(dashboards)


def test_wrong_sub_path_says_to_check_the_url(capsys, monkeypatch):
    with GrafanaAPI(prefix="/grafana") as api:
        monkeypatch.setenv("GRAFANA_TOKEN", api.token)
        wrong = api.url.removesuffix("/grafana")
        code, _out, err = run(capsys, wrong)
        assert code == 2
        line = _one_line_errors(err)[0]
        assert "404" in line and "--grafana-url" in line
        code, _out, err = run(capsys, api.url)
        assert code == 0, err
        assert api.requests[-1].path == "/grafana/api/dashboards/db"


def test_name_exists_fails_one_dashboard_and_reports_the_others(grafana, dashboards, capsys):
    uids = list(dashboards)
    grafana.add_folder(FOLDER_UID, FOLDER_TITLE)
    squatter = {"id": 99, "uid": "someone-else", "title": dashboards[uids[1]]["title"], "version": 1}
    grafana.dashboards["someone-else"] = {"dashboard": squatter, "folderUid": FOLDER_UID}
    code, _out, err = run(capsys, grafana.url)
    assert code == 2
    lines = _one_line_errors(err)
    assert any(uids[1] in line and "name-exists" in line and "--overwrite" in line for line in lines)
    assert f"1 of {len(uids)} dashboards not pushed ({uids[1]})" in lines[-1]
    assert all(f"{u} created" in lines[-1] for u in uids if u != uids[1])
    assert set(grafana.dashboards) == {*uids, "someone-else"} - {uids[1]}


def test_5xx_is_retried_with_backoff_then_succeeds(grafana, fast_config, capsys):
    grafana.fail("POST /api/dashboards/db", 503, 502)
    code, _out, err = run(capsys, grafana.url, cfg=fast_config)
    assert code == 0, err
    posts = grafana.seen("POST")
    assert posts.count(("POST", "/api/dashboards/db")) == len(grafana.dashboards) + 2
    first_three = [r for r in grafana.requests if r.path == "/api/dashboards/db"][:3]
    assert first_three[0].body == first_three[1].body == first_three[2].body, "a retry resends the same body"


def test_persistent_5xx_gives_up_after_the_configured_attempts_and_says_which_succeeded(
        grafana, dashboards, fast_config, capsys):
    uids = list(dashboards)
    grafana.add_folder(FOLDER_UID, FOLDER_TITLE)
    # First dashboard fine; then the server breaks.
    grafana.fail(f"GET /api/dashboards/uid/{uids[1]}", 500, 500, 500)
    code, _out, err = run(capsys, grafana.url, cfg=fast_config)
    assert code == 1
    assert grafana.seen().count(("GET", f"/api/dashboards/uid/{uids[1]}")) == 3  # 1 + retries (2)
    lines = _one_line_errors(err)
    assert any(uids[1] in line and "500" in line and "after 3 attempts" in line for line in lines)
    assert any(f"{u}: not attempted" in line for u in uids[2:] for line in lines)
    assert f"succeeded: {uids[0]} created" in lines[-1]
    assert set(grafana.dashboards) == {uids[0]}


def test_timeout_is_one_line(grafana, fast_config, capsys):
    grafana.fail(f"GET /api/folders/{FOLDER_UID}", ("hang", 1), ("hang", 1), ("hang", 1))
    code, _out, err = run(capsys, grafana.url, cfg=fast_config)
    assert code == 1
    lines = _one_line_errors(err)
    assert "no answer within 0.5s" in lines[0] and "timeout_seconds" in lines[0]
    assert grafana.seen() == [("GET", f"/api/folders/{FOLDER_UID}")] * 3, "GETs are retried after a timeout"


def test_refused_connection_is_retried_then_one_line(fast_config, monkeypatch, capsys):
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_anything")
    port = free_port()  # free a moment ago, so nothing answers there
    code, _out, err = run(capsys, f"http://127.0.0.1:{port}", cfg=fast_config)
    assert code == 1
    line = _one_line_errors(err)[0]
    assert "connection refused" in line and "after 3 attempts" in line and "--grafana-url" in line


def test_token_from_a_file_and_never_from_the_command_line(grafana, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("GRAFANA_TOKEN")
    code, out, err = run(capsys, grafana.url)
    assert code == 2 and "set GRAFANA_TOKEN or pass --token-file" in err and grafana.requests == []
    token_file = tmp_path / "token"
    token_file.write_text(grafana.token + "\n")
    code, out, err = run(capsys, grafana.url, "--token-file", str(token_file))
    assert code == 0, err
    assert grafana.requests[0].headers["Authorization"] == f"Bearer {grafana.token}"
    (tmp_path / "empty").write_text("")
    code, out, err = run(capsys, grafana.url, "--token-file", str(tmp_path / "empty"))
    assert code == 2 and "empty" in err
    for flag in ([f"--token={grafana.token}"], ["--token", grafana.token]):
        code, out, err = run(capsys, grafana.url, *flag)
        assert code == 2 and "never taken on the command line" in err and grafana.token not in out + err


def test_plain_http_to_a_remote_host_warns(capsys, monkeypatch):
    assert push.check_url("http://grafana.example.com") != []
    assert push.check_url("http://127.0.0.1:3000") == []
    assert push.check_url("https://grafana.example.com") == []
    with pytest.raises(push.PushUsageError, match="http"):
        push.check_url("grafana.example.com")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_tls_is_verified_unless_insecure_is_explicit(certificate, monkeypatch, capsys):
    with GrafanaAPI(tls=certificate) as api:
        monkeypatch.setenv("GRAFANA_TOKEN", api.token)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        code, _out, err = run(capsys, api.url)
        assert code == 1
        line = _one_line_errors(err)[0]
        assert "TLS verification failed" in line and "--ca-file" in line and "--insecure-skip-verify" in line
        assert api.requests == [], "nothing is sent over an unverified connection"

        code, _out, err = run(capsys, api.url, "--insecure")
        assert code == 2 and "the flag is --insecure-skip-verify" in err  # one name everywhere

        code, _out, err = run(capsys, api.url, "--insecure-skip-verify")
        assert code == 0, err
        assert f"warning: not verifying the TLS certificate of {api.url} (--insecure-skip-verify)" in err
        assert api.seen()[-1] == ("POST", "/api/dashboards/db")

        code, _out, err = run(capsys, api.url, "--ca-file", str(certificate[0]))
        assert code == 0, err

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        code, _out, err = run(capsys, api.url)
        assert code == 0, err


def test_client_backoff_is_exponential_and_bounded():
    waits: list[float] = []
    with GrafanaAPI() as api:
        api.fail("GET /api/folders/x", 503, 503, 503, 503, 503)
        client = GrafanaClient(api.url, api.token, retries=3, backoff=0.5, sleep=waits.append)
        with pytest.raises(GrafanaError) as exc:
            client.get_folder("x")
        assert exc.value.status == 503 and exc.value.fatal
        assert waits == [0.5, 1.0, 2.0]
        assert len(api.requests) == 4
        assert api.token not in repr(client)


def test_push_renders_from_the_config(grafana, monkeypatch, capsys, tmp_path: Path):
    monkeypatch.undo()  # the real rendering path, once
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("grafana:\n  tags: [from-config]\n")
    code, _out, err = run(capsys, grafana.url, cfg=cfg)
    assert code == 0, err
    sent = [r.body["dashboard"] for r in grafana.requests if r.path == "/api/dashboards/db"]
    assert sent and all(d["tags"] == ["from-config"] for d in sent)
    assert json.dumps(sent).count("pd-delivery-fixture") == 0
