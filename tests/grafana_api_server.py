"""A local HTTP server that follows Grafana's documented HTTP API for folders and dashboards.

It implements what `build.py push` uses, with the documented status codes and bodies
(grafana/grafana docs/sources/developers/http_api/dashboard.md and folder.md):
  GET  /api/folders/:uid         200 | 404
  POST /api/folders              200 | 400 (no title) | 409 (uid or title taken)
  GET  /api/dashboards/uid/:uid  200 {dashboard, meta} | 404
  POST /api/dashboards/db        200 {id, uid, url, status, version, slug} | 400 (folder not found) |
                                 404 (an id that does not exist) | 412 version-mismatch / name-exists
and 401 for a missing or wrong Bearer token, 403 for writes by a Viewer. Saving follows
Grafana's rules: `id` null finds the dashboard by uid; without overwrite, a uid that exists must
come with its current version, and a title already used in the folder by another uid is refused.

Every request is recorded (method, path, headers, JSON body) for the tests to assert on, and
failures can be injected: a status code, or a hang longer than the client's timeout, instead of
handling the request; ("after", status) or ("after-hang", seconds) after handling it (the write
landed, the answer says otherwise, as a proxy in front of a busy Grafana does); ("html", status) an
HTML page (a login page or a proxy's error page) instead of the API's JSON; ("echo", status) an
error quoting the request's headers, as some proxies do.
"""

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaAPI:
    token: str = "glsa_test_token_0123456789"
    role: str = "Editor"  # Viewer: every write is 403
    prefix: str = ""  # a Grafana served under a sub-path answers 404 elsewhere
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {dashboard, folderUid}
    requests: list[Recorded] = field(default_factory=list)
    # "METHOD /path" -> queue of injected answers: an int status, ("hang", seconds), ("after", status),
    # ("after-hang", seconds), ("html", status) or ("echo", status)
    inject: dict[str, list[Any]] = field(default_factory=dict)
    tls: tuple[Path, Path] | None = None  # (cert, key)
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- test helpers -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def fail(self, key: str, *answers: Any) -> None:
        self.inject.setdefault(key, []).extend(answers)

    def seen(self, method: str | None = None) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if method in (None, r.method)]

    def add_folder(self, uid: str, title: str) -> None:
        self.folders[uid] = self._folder(uid, title)

    def edit_in_ui(self, uid: str, **changes: Any) -> None:
        """What a person saving the dashboard in Grafana does: new content, next version."""
        stored = self.dashboards[uid]["dashboard"]
        stored.update(changes)
        stored["version"] += 1

    def __enter__(self) -> "GrafanaAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # --- the API ------------------------------------------------------------------------------

    def _folder(self, uid: str, title: str) -> dict[str, Any]:
        with self._lock:
            fid, self._next_id = self._next_id, self._next_id + 1
        return {"id": fid, "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/{_slug(title)}",
                "hasAcl": False, "canSave": True, "canEdit": True, "canAdmin": True, "version": 1}

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(method, h.path, dict(h.headers.items()), body))
        path = h.path
        key = f"{method} {path.removeprefix(self.prefix)}"
        queue = self.inject.get(key)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, tuple) and answer[0] == "hang":
                time.sleep(answer[1])
                return _reply(h, 200, {})
            if isinstance(answer, tuple) and answer[0] == "html":
                return _reply_html(h, answer[1])
            if isinstance(answer, tuple) and answer[0] == "echo":
                # A proxy that quotes the request, headers and all, in its error.
                return _reply(h, answer[1], {"message": f"Authorization: {h.headers.get('Authorization')} rejected; "
                                                        f"headers {dict(h.headers)}"})
            if isinstance(answer, tuple) and answer[0] in ("after", "after-hang"):
                h.pd_after = answer  # type: ignore[attr-defined]  # handled below, answered by _reply
            else:
                return _reply(h, answer, {"message": f"injected {answer}"})
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return _reply(h, 401, {"message": "invalid API key"})
        if not path.startswith(self.prefix + "/api/"):
            return _reply(h, 404, {"message": "Not found"})
        path = path.removeprefix(self.prefix)
        if method == "POST" and self.role == "Viewer":
            return _reply(h, 403, {"message": "You'll need additional permissions to perform this action."})
        if method == "GET" and (m := re.fullmatch(r"/api/folders/([\w-]+)", path)):
            folder = self.folders.get(m.group(1))
            return _reply(h, 200, folder) if folder else _reply(h, 404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            return self._create_folder(h, body or {})
        if method == "GET" and (m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path)):
            return self._get_dashboard(h, m.group(1))
        if method == "POST" and path == "/api/dashboards/db":
            return self._save_dashboard(h, body or {})
        return _reply(h, 404, {"message": "Not found"})

    def _create_folder(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        uid, title = body.get("uid", ""), body.get("title")
        if not title:
            return _reply(h, 400, {"message": "folder title cannot be empty"})
        if uid in self.folders or any(f["title"] == title for f in self.folders.values()):
            return _reply(h, 409, {"message": "a folder with the same name already exists"})
        self.folders[uid] = self._folder(uid, title)
        return _reply(h, 200, self.folders[uid])

    def _get_dashboard(self, h: BaseHTTPRequestHandler, uid: str) -> None:
        entry = self.dashboards.get(uid)
        if entry is None:
            return _reply(h, 404, {"message": "Dashboard not found"})
        dash = entry["dashboard"]
        meta = {"slug": _slug(dash.get("title", "")), "url": f"/d/{uid}/{_slug(dash.get('title', ''))}",
                "folderUid": entry["folderUid"], "version": dash["version"], "provisioned": False}
        return _reply(h, 200, {"dashboard": dash, "meta": meta})

    def _save_dashboard(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        dash = body.get("dashboard")
        if not isinstance(dash, dict) or not dash.get("title"):
            return _reply(h, 400, {"message": "Dashboard title cannot be empty"})
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.folders:
            return _reply(h, 400, {"message": "folder not found", "status": "not-found"})
        overwrite = bool(body.get("overwrite"))
        uid = dash.get("uid")
        if dash.get("id") is not None and not any(e["dashboard"]["id"] == dash["id"] for e in self.dashboards.values()):
            return _reply(h, 404, {"message": "Dashboard not found", "status": "not-found"})
        existing = self.dashboards.get(uid)
        if existing and not overwrite and dash.get("version") != existing["dashboard"]["version"]:
            return _reply(h, 412, {"message": "The dashboard has been changed by someone else",
                                   "status": "version-mismatch"})
        same_title = [u for u, e in self.dashboards.items()
                      if u != uid and e["folderUid"] == folder_uid and e["dashboard"]["title"] == dash["title"]]
        if same_title and not overwrite:
            return _reply(h, 412, {"message": "A dashboard with the same name in the folder already exists",
                                   "status": "name-exists"})
        stored = json.loads(json.dumps(dash))
        if existing:
            stored["id"] = existing["dashboard"]["id"]
            stored["version"] = existing["dashboard"]["version"] + 1
        else:
            with self._lock:
                stored["id"], self._next_id = self._next_id, self._next_id + 1
            stored["version"] = 1
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid}
        slug = _slug(stored["title"])
        return _reply(h, 200, {"id": stored["id"], "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                               "version": stored["version"], "slug": slug})


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _reply(h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    after = getattr(h, "pd_after", None)
    if after is not None and after[0] == "after-hang":
        time.sleep(after[1])
    elif after is not None:
        status, body = after[1], {"message": f"injected {after[1]} after handling the request"}
    data = json.dumps(body).encode()
    try:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a timeout test)


def _reply_html(h: BaseHTTPRequestHandler, status: int) -> None:
    data = b"<!doctype html><html><body><h1>Sign in</h1><form>...</form></body></html>\n"
    h.send_response(status)
    h.send_header("Content-Type", "text/html; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
