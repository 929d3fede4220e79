"""Servers for the doctor's transport tests: a forwarding proxy in front of a real Prometheus that
can demand a bearer token or basic auth and can speak TLS with a certificate made at test time."""

import base64
import contextlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from pdobs.build import make
from pdobs.servers.prometheus import free_port


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made by the openssl binary."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class Proxy:
    """Forwards every request to `upstream` once the credentials match; records what it was sent."""

    def __init__(self, upstream: str, *, token: str | None = None, basic: tuple[str, str] | None = None,
                 cert: tuple[Path, Path] | None = None, missing: tuple[str, ...] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.missing = missing  # API paths answered with a plain-text 404, as backends without them do
        self.expected = (f"Bearer {token}" if token else
                         "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode() if basic else None)
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one TLS handshake per client, as real servers do

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                proxy.paths.append(self.path)
                proxy.authorizations.append(self.headers.get("Authorization"))
                if proxy.expected and self.headers.get("Authorization") != proxy.expected:
                    body = b'{"status":"error","errorType":"unauthorized","error":"unauthorized"}'
                    self.send_response(401, "Unauthorized")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path.split("?")[0] in proxy.missing:
                    body = b"404 page not found\n"
                    self.send_response(404, "Not Found")
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                headers = {"Content-Type": self.headers["Content-Type"]} if data else {}
                resp = requests.request(method, proxy.upstream + self.path, data=data, headers=headers, timeout=30)
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        scheme = "http"
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Proxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def proxy(upstream: str, **kwargs: object) -> Iterator[Proxy]:
    with Proxy(upstream, **kwargs) as p:  # type: ignore[arg-type]
        yield p


RULE_FILES = ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml")


def write_rule_files(cfg: dict, out: Path) -> list[Path]:
    """Our rule files as `make build` writes them, under `out`, for a test Prometheus to load."""
    files = make.build(cfg)
    paths = []
    for rel in RULE_FILES:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(files[rel])
        paths.append(out / rel)
    return paths
