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

Every failure becomes a `GrafanaError` with one line saying what to do. Each request has a total
deadline (grafana.push.timeout_seconds) and a size cap. GETs are retried after a 5xx, a failed
connection or a timeout, with exponential backoff, a bounded number of times. A write (POST) is
never retried blindly: after a 5xx, a timeout or a dropped connection it may have landed, so the
state is read back (the folder by uid, the dashboard by uid, version and content) and the write
is sent again only when it did not land. An answer that is not Grafana's JSON (a login page, a
proxy) is an error, never a traceback. The token only ever goes into the Authorization header: no
message, log or exception carries it, and it is scrubbed from anything the server answers.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import urllib3

from pdobs.core import httpbound

# Dashboards are a few hundred KiB; anything far larger is not Grafana's API answering.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
T = TypeVar("T")


class GrafanaError(Exception):
    """A request failed; the message is one line for the terminal. `fatal` errors (bad token,
    unreachable server) would fail every later request too, so callers stop at them."""

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal


class AmbiguousWrite(GrafanaError):
    """A write got a 5xx, a timeout or a dropped connection: it may or may not have landed."""


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
        """GETs with retries; a POST once, raising AmbiguousWrite when it may have landed."""
        target = f"{self.url}{path}"
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a
                # session-level verify=False, so --insecure-skip-verify must be said on every call.
                resp = httpbound.request(self.session, method, target, json=body, deadline=self.timeout,
                                         max_bytes=MAX_RESPONSE_BYTES, verify=self.verify)
            except requests.exceptions.SSLError as exc:
                fix = (f"the CA in --ca-file {self.verify} did not sign it (give the one that did)"
                       if isinstance(self.verify, str) else "pass --ca-file with the CA that signed it")
                raise GrafanaError(
                    f"{method} {target}: TLS verification failed ({_reason(exc)}); {fix}, or "
                    "--insecure-skip-verify to skip verification", fatal=True) from None
            except httpbound.ResponseTooLarge:
                raise GrafanaError(f"{method} {target}: answered more than {MAX_RESPONSE_BYTES // 2**20} MiB, which "
                                   "is not Grafana's API: check --grafana-url", fatal=True) from None
            except requests.exceptions.Timeout:
                if method != "GET":
                    raise AmbiguousWrite(f"{method} {target}: no answer within {self.timeout:g}s") from None
                if last:
                    raise GrafanaError(
                        f"{method} {target}: no answer within {self.timeout:g}s after {attempt + 1} attempts; check "
                        "Grafana is healthy, or raise grafana.push.timeout_seconds", fatal=True) from None
            except requests.exceptions.ConnectionError as exc:
                if method != "GET":
                    raise AmbiguousWrite(f"{method} {target}: connection failed ({_reason(exc)})") from None
                if last:
                    raise GrafanaError(
                        f"{method} {target}: cannot connect ({_reason(exc)}) after {attempt + 1} attempts; check "
                        "--grafana-url and that Grafana is running and reachable", fatal=True) from None
            except requests.RequestException as exc:
                raise GrafanaError(f"{method} {target}: {type(exc).__name__}; check --grafana-url",
                                   fatal=True) from None
            else:
                if resp.status_code >= 500 and method != "GET":
                    message, _ = _body_message(resp, self.token)
                    raise AmbiguousWrite(f"{method} {target}: {resp.status_code} from Grafana"
                                         + (f": {message}" if message else ""), status=resp.status_code)
                if resp.status_code < 500 or last:
                    return resp
            self.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def write(self, path: str, body: Mapping[str, Any], what: str,
              landed: Callable[[], T | None]) -> dict[str, Any] | T:
        """POST `body`; after an ambiguous answer `landed()` reads the state back: what it returns
        (not None) means the write took effect, None that it did not, and it is sent again."""
        for attempt in range(self.retries + 1):
            try:
                return self._json("POST", path, self._request("POST", path, body, what=what))
            except AmbiguousWrite as exc:
                found = landed()
                if found is not None:
                    return found
                if attempt == self.retries:
                    raise GrafanaError(f"{exc}; read back, it did not land, after {attempt + 1} attempts; check "
                                       "Grafana's health and logs, then re-run", status=exc.status,
                                       fatal=True) from None
            self.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, resp: requests.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            kind = httpbound.one_line(resp.headers.get("Content-Type", "no content type").split(";")[0], 60)
            raise GrafanaError(f"{method} {self.url}{path}: answered {resp.status_code} with {kind}, not Grafana's "
                               "JSON API (a login page or a proxy?): check --grafana-url", status=resp.status_code,
                               fatal=True)
        return data

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                 ok: tuple[int, ...] = (200,), what: str = "") -> requests.Response:
        resp = self._send(method, path, body)
        if resp.status_code in ok:
            return resp
        raise self._error(method, path, resp, what)

    def _error(self, method: str, path: str, resp: requests.Response, what: str) -> GrafanaError:
        code = resp.status_code
        message, status = _body_message(resp, self.token)
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
        path = f"/api/folders/{uid}"
        resp = self._request("GET", path, ok=(200, 404), what="read folders")
        return None if resp.status_code == 404 else self._json("GET", path, resp)

    def create_folder(self, uid: str, title: str) -> dict[str, Any]:
        return self.write("/api/folders", {"uid": uid, "title": title}, "create folders",
                          landed=lambda: self.get_folder(uid))

    def get_dashboard(self, uid: str) -> dict[str, Any] | None:
        """{"dashboard": ..., "meta": ...}, or None when Grafana has no dashboard with this uid."""
        path = f"/api/dashboards/uid/{uid}"
        resp = self._request("GET", path, ok=(200, 404), what="read dashboards")
        return None if resp.status_code == 404 else self._json("GET", path, resp)

    def save_dashboard(self, dashboard: Mapping[str, Any], folder_uid: str, overwrite: bool, message: str,
                       landed: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        """POST /api/dashboards/db; `landed` reads back after an ambiguous answer (see write())."""
        body = {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": overwrite, "message": message}
        return self.write("/api/dashboards/db", body, "write dashboards in this folder", landed)


def _body_message(resp: requests.Response, token: str) -> tuple[str, str]:
    """Grafana's error body is {"message": ..., "status": ...}; anything else yields nothing. Both
    come back as one short line without credentials (a proxy may echo our headers)."""
    try:
        data = resp.json()
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    clean = [httpbound.one_line(httpbound.scrub(str(data.get(k, "")), [token])) for k in ("message", "status")]
    return clean[0], clean[1][:40]


def _reason(exc: Exception) -> str:
    """The innermost cause in a few words (requests nests urllib3's errors several levels deep)."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "certificate verify failed",
                   "timed out", "No route to host", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
