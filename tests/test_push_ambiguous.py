"""`build.py push` never retries a write blindly: after a 5xx, a timeout or a dropped connection it
reads Grafana back and decides (tests/grafana_api_server.py plays Grafana, saving and then
answering badly as a proxy in front of a busy Grafana does). HTML where JSON belongs and proxies
that echo request headers end in one line without the token."""

from pathlib import Path
from typing import Any

import pytest
from grafana_api_server import GrafanaAPI

from pdobs import cli, push

FOLDER_UID = "llm-d-pd"
DASHBOARDS = {"pd-a": {"uid": "pd-a", "title": "A", "panels": []}, "pd-b": {"uid": "pd-b", "title": "B", "panels": []}}


@pytest.fixture(autouse=True)
def small_dashboards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "rendered_dashboards", lambda cfg: DASHBOARDS)


def run(capsys: pytest.CaptureFixture[str], api: GrafanaAPI, cfg: Path, *flags: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(cfg), "push", "--grafana-url", api.url, *flags])
    out, err = capsys.readouterr()
    return code, out, err


def _count(api: GrafanaAPI, method: str, path: str) -> int:
    return api.seen().count((method, path))


def _posts_for(api: GrafanaAPI, uid: str) -> list[Any]:
    return [r for r in api.requests if r.path == "/api/dashboards/db" and r.body["dashboard"]["uid"] == uid]


def test_a_folder_saved_then_answered_500_is_found_by_reading_back(grafana, fast_config, capsys):
    grafana.fail("POST /api/folders", ("after", 500))
    code, out, err = run(capsys, grafana, fast_config)
    assert code == 0, err
    assert _count(grafana, "POST", "/api/folders") == 1, "never re-sent once it is there"
    assert _count(grafana, "GET", f"/api/folders/{FOLDER_UID}") == 2, "read back after the 500"
    assert f"folder {FOLDER_UID} (llm-d P/D): created" in out
    assert "409" not in err and "already exists" not in out + err


@pytest.mark.parametrize("answer", [("after", 502), ("after-hang", 2)], ids=["502", "timeout"])
def test_a_dashboard_saved_then_answered_badly_is_reported_saved(grafana, fast_config, capsys, answer):
    grafana.fail("POST /api/dashboards/db", answer)
    code, out, err = run(capsys, grafana, fast_config)
    assert code == 0, err
    assert len(_posts_for(grafana, "pd-a")) == 1, "one write; the read-back found it"
    assert grafana.dashboards["pd-a"]["dashboard"]["version"] == 1
    assert "pd-a: created, version 1, /d/pd-a/a, confirmed by reading it back" in out
    assert "failed" not in out + err


def test_an_update_saved_then_answered_502_is_told_apart_by_its_version(grafana, fast_config, capsys):
    assert run(capsys, grafana, fast_config)[0] == 0
    grafana.edit_in_ui("pd-a", title="edited by hand")
    grafana.requests.clear()
    grafana.fail("POST /api/dashboards/db", ("after", 502))
    code, out, err = run(capsys, grafana, fast_config, "--overwrite")
    assert code == 0, err
    assert len(_posts_for(grafana, "pd-a")) == 1
    assert grafana.dashboards["pd-a"]["dashboard"]["version"] == 3
    assert "pd-a: updated, version 3" in out and "confirmed by reading it back" in out


def test_a_write_that_did_not_land_is_sent_again_after_reading_back(grafana, fast_config, capsys):
    grafana.fail("POST /api/dashboards/db", 503)  # refused before saving
    code, out, err = run(capsys, grafana, fast_config)
    assert code == 0, err
    posts = _posts_for(grafana, "pd-a")
    assert len(posts) == 2 and posts[0].body == posts[1].body
    reads = [i for i, r in enumerate(grafana.requests) if r.path == "/api/dashboards/uid/pd-a"]
    writes = [i for i, r in enumerate(grafana.requests) if r in posts]
    assert reads[0] < writes[0] < reads[1] < writes[1], "the state was read back between the two writes"
    assert "confirmed" not in out


def test_a_write_that_never_lands_gives_up_after_the_configured_attempts(grafana, fast_config, capsys):
    grafana.fail("POST /api/dashboards/db", 500, 500, 500)
    code, _out, err = run(capsys, grafana, fast_config)
    assert code == 1
    assert len(_posts_for(grafana, "pd-a")) == 3  # 1 + retries (2), each after a read-back
    first = err.splitlines()[0]
    assert "pd-a" in first and "500" in first and "did not land, after 3 attempts" in first
    assert "pd-b: not attempted" in err


@pytest.mark.parametrize("key", [f"GET /api/folders/{FOLDER_UID}", "POST /api/dashboards/db"])
def test_an_html_page_where_json_belongs_is_one_line(grafana, fast_config, capsys, key):
    grafana.fail(key, ("html", 200))
    code, _out, err = run(capsys, grafana, fast_config)
    assert code == 1
    lines = [line for line in err.splitlines() if line]
    assert all(line.startswith("error: ") for line in lines) and "Traceback" not in err
    assert "answered 200 with text/html, not Grafana's JSON API" in lines[0] and "--grafana-url" in lines[0]


def test_a_proxy_echoing_the_request_headers_never_prints_the_token(grafana, fast_config, capsys):
    grafana.fail("POST /api/dashboards/db", ("echo", 400))
    code, _out, err = run(capsys, grafana, fast_config)
    assert code == 2
    assert "400 Bad Request: Authorization: *** rejected" in err
    assert grafana.token not in err
