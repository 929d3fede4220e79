"""Local stand-ins for PagerDuty's Events API v2 and a Slack incoming webhook.

One HTTP server on 127.0.0.1 records every POST: paths under /pagerduty/ answer as PagerDuty does
(202 with a dedup_key), anything else as a Slack webhook does (200 "ok"). Alertmanager is pointed at
them through the generated config (`alertmanager.pagerduty.url`, the Slack webhook URL file), so
what arrives is exactly what the real services would receive.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGERDUTY_PATH = "/pagerduty/v2/enqueue"
SLACK_PATH = "/slack/T000/B000/XXXX"


class Receiver:
    """Records each POST as (path, JSON body); `events` grows as notifications arrive."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                with receiver._lock:
                    receiver.events.append((self.path, body))
                if self.path.startswith("/pagerduty"):
                    status, reply = 202, json.dumps({"status": "success", "message": "Event processed",
                                                     "dedup_key": body.get("dedup_key", "")}).encode()
                else:
                    status, reply = 200, b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def pagerduty_url(self) -> str:
        return self.url + PAGERDUTY_PATH

    @property
    def slack_url(self) -> str:
        return self.url + SLACK_PATH

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.events)

    def pagerduty(self) -> list[dict[str, Any]]:
        return [b for p, b in self.snapshot() if p.startswith("/pagerduty")]

    def slack(self) -> list[dict[str, Any]]:
        return [b for p, b in self.snapshot() if p.startswith("/slack")]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
