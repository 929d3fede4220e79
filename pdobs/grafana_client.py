"""A small client for the parts of Grafana's HTTP API that `build.py push` uses.

Endpoints (Grafana's documented legacy API, served by Grafana 9 to 12):
  GET  /api/folders/:uid            200 folder | 404 not found
  POST /api/folders                 200 created | 409 a folder with that title/uid exists
  GET  /api/dashboards/uid/:uid     200 {dashboard, meta} | 404 not found
  POST /api/dashboards/db           200 {id, uid, url, status, version} | 400 invalid |
                                    412 version-mismatch / name-exists / plugin-dashboard
and on any of them 401 (bad token), 403 (missing permission), 5xx.

It is tested against a local HTTP server that follows Grafana's documented HTTP API (status codes,
bodies, Bearer authentication), not against a real Grafana: tests/test_grafana_push.py.

Every failure becomes a `GrafanaError` with one line saying what to do. 5xx answers and failed
connections are retried with exponential backoff, a bounded number of times; a read timeout is
retried only for GETs, since a POST may have landed. The token only ever goes into the
Authorization header: no message, log or exception carries it.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3


class GrafanaError(Exception):
    """A request failed; the message is one line for the terminal. `fatal` errors (bad token,
    unreachable server) would fail every later request too, so callers stop at them."""

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal


@dataclass
class GrafanaClient:
    url: str
    token: str = field(repr=False)
    verify: bool | str = True  # False skips verification; a path is a CA bundle
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.session.headers.update({"Authorization": f"Bearer {self.token}",
                                     "Accept": "application/json",
                                     "User-Agent": "llm-d-pd-observability/build.py-push"})
        if not self.verify:
            # The user asked for it explicitly; one notice from us replaces a warning per request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    # --- transport --------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> requests.Response:
        target = f"{self.url}{path}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a
                # session-level verify=False, so --insecure-skip-verify must be said on every call.
                resp = self.session.request(method, target, json=body, timeout=self.timeout, verify=self.verify)
            except requests.exceptions.SSLError as exc:
                fix = (f"the CA in --ca-file {self.verify} did not sign it (give the one that did)"
                       if isinstance(self.verify, str) else "pass --ca-file with the CA that signed it")
                raise GrafanaError(
                    f"{method} {target}: TLS verification failed ({_reason(exc)}); {fix}, or "
                    "--insecure-skip-verify to skip verification", fatal=True) from exc
            except requests.exceptions.ReadTimeout as exc:
                if method != "GET" or last:
                    raise GrafanaError(
                        f"{method} {target}: no answer within {self.timeout:g}s; check Grafana is healthy, or raise "
                        "grafana.push.timeout_seconds" + (" (the write may have landed: re-run with --dry-run)"
                                                          if method != "GET" else ""), fatal=True) from exc
            except requests.exceptions.ConnectionError as exc:
                if last:
                    raise GrafanaError(
                        f"{method} {target}: cannot connect ({_reason(exc)}) after {attempt + 1} attempts; check "
                        "--grafana-url and that Grafana is running and reachable", fatal=True) from exc
            else:
                if resp.status_code < 500 or last:
                    return resp
            self.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                 ok: tuple[int, ...] = (200,), what: str = "") -> requests.Response:
        resp = self._send(method, path, body)
        if resp.status_code in ok:
            return resp
        raise self._error(method, path, resp, what)

    def _error(self, method: str, path: str, resp: requests.Response, what: str) -> GrafanaError:
        code = resp.status_code
        message, status = _body_message(resp)
        where = f"{method} {self.url}{path}"
        detail = f": {message}" if message else ""
        if code == 401:
            return GrafanaError(f"{where}: 401 Unauthorized{detail}; the token was rejected: put a valid "
                                "service-account token in GRAFANA_TOKEN or --token-file", status=code, fatal=True)
        if code == 403:
            return GrafanaError(f"{where}: 403 Forbidden{detail}; the token's service account may not {what}: "
                                "give it the Editor role (or folders:create and dashboards:write on the folder)",
                                status=code)
        if code == 404:
            return GrafanaError(f"{where}: 404 Not Found{detail}; check --grafana-url is Grafana's root URL "
                                "(with its sub-path, if any) and that the folder exists", status=code)
        if code == 412:
            hint = {
                "version-mismatch": "it was changed in Grafana since; pass --overwrite to replace it",
                "name-exists": "another dashboard with this title exists in the folder; rename or delete it, "
                               "or pass --overwrite",
                "plugin-dashboard": "a plugin owns it; remove the plugin's dashboard first",
            }.get(status, "pass --overwrite to replace the existing dashboard")
            return GrafanaError(f"{where}: 412 Precondition Failed ({status or 'no status'}){detail}; {hint}",
                                status=code)
        if code == 409:
            return GrafanaError(f"{where}: 409 Conflict{detail}; a folder with this title already exists under "
                                "another uid: pass --folder-uid <its uid> or rename grafana.folder.title",
                                status=code)
        if code == 400:
            return GrafanaError(f"{where}: 400 Bad Request{detail}; Grafana refused the content: this is a bug "
                                "in the rendered dashboard, please report it", status=code)
        if code >= 500:
            return GrafanaError(f"{where}: {code} from Grafana after {self.retries + 1} attempts{detail}; check "
                                "Grafana's health and logs, then re-run", status=code, fatal=True)
        return GrafanaError(f"{where}: unexpected {code}{detail}", status=code)

    # --- API ----------------------------------------------------------------------------------

    def get_folder(self, uid: str) -> dict[str, Any] | None:
        resp = self._request("GET", f"/api/folders/{uid}", ok=(200, 404), what="read folders")
        return None if resp.status_code == 404 else resp.json()

    def create_folder(self, uid: str, title: str) -> dict[str, Any]:
        return self._request("POST", "/api/folders", {"uid": uid, "title": title},
                             what="create folders").json()

    def get_dashboard(self, uid: str) -> dict[str, Any] | None:
        """{"dashboard": ..., "meta": ...}, or None when Grafana has no dashboard with this uid."""
        resp = self._request("GET", f"/api/dashboards/uid/{uid}", ok=(200, 404), what="read dashboards")
        return None if resp.status_code == 404 else resp.json()

    def save_dashboard(self, dashboard: Mapping[str, Any], folder_uid: str, overwrite: bool,
                       message: str) -> dict[str, Any]:
        body = {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": overwrite, "message": message}
        return self._request("POST", "/api/dashboards/db", body, what="write dashboards in this folder").json()


def _body_message(resp: requests.Response) -> tuple[str, str]:
    """Grafana's error body is {"message": ..., "status": ...}; anything else yields nothing."""
    try:
        data = resp.json()
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("message", ""))[:200], str(data.get("status", ""))


def _reason(exc: Exception) -> str:
    """The innermost cause in a few words (requests nests urllib3's errors several levels deep)."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "certificate verify failed",
                   "timed out", "No route to host", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
