"""A local HTTP server on 127.0.0.1 that misbehaves on purpose: drips its answer a byte at a time,
sends a body without end, announces an enormous one, or answers fixed JSON per path. Every
connection ends when the server stops, so a client left blocked on it is released."""

import json
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

DRIP_SECONDS = 0.25  # between bytes: far below any per-read timeout, so only a total deadline helps
MAX_SECONDS = 60  # a drip ends after this, so a client without a deadline "succeeds" late
ENDLESS_LIMIT = 256 * 1024 * 1024  # bytes an endless body sends at most


class MisbehavingServer:
    """mode: "drip-headers", "drip-body", "endless", "huge-length", or "json" with `answers`
    (path without query -> (status, JSON body or HTML bytes[, reason phrase])); every other path of
    "json" is a 404."""

    def __init__(self, mode: str, answers: Mapping[str, tuple[int, Any]] | None = None) -> None:
        self.mode = mode
        self.answers = dict(answers or {})
        self.stop = threading.Event()
        self.paths: list[str] = []
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> "MisbehavingServer":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _request(self, conn: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return ""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                       if k.strip().lower() == "content-length"), 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        path = lines[0].split(" ")[1]
        self.paths.append(path)
        return path

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        started = time.monotonic()
        for i in range(len(data)):
            if self.stop.is_set() or time.monotonic() - started > MAX_SECONDS:
                return
            conn.sendall(data[i:i + 1])
            time.sleep(DRIP_SECONDS)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self.stop.is_set():
                path = self._request(conn)
                if not path:
                    return
                self._answer(conn, path)
        except OSError:
            pass  # the client went away (its deadline) or the server stopped
        finally:
            conn.close()

    def _answer(self, conn: socket.socket, path: str) -> None:
        body = b'{"status":"success","data":{"version":"3.5.0"}}'
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode())
        if self.mode == "drip-headers":
            self._drip(conn, head + body)
        elif self.mode == "drip-body":
            conn.sendall(head)
            self._drip(conn, body)
        elif self.mode == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
            chunk, sent = b'{"status":"success","data":"' + b"x" * 65536, 0
            while not self.stop.is_set() and sent < ENDLESS_LIMIT:
                conn.sendall(chunk)
                sent += len(chunk)
            conn.shutdown(socket.SHUT_RDWR)
        elif self.mode == "huge-length":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n")
            conn.sendall(b"{" * 65536)
        else:
            status, answer, *reason = self.answers.get(path.split("?")[0], (404, {"message": "not found"}))
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            ctype = "text/html" if isinstance(answer, bytes) else "application/json"
            conn.sendall(f"HTTP/1.1 {status} {reason[0] if reason else 'X'}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
