"""HTTP requests bounded in time and size, on top of requests; and scrubbing of secrets from text.

requests' `timeout` bounds each socket read, not the request: a server that drips a byte a second
never trips it, and a body without end is read into memory until MemoryError. Here a request runs
in a worker thread that streams the body and stops past `max_bytes`; the caller waits at most
`deadline` seconds in all (connect, headers, body). When the deadline passes during the body, the
connection's socket is shut down so the worker ends at once; during the headers the worker is a
daemon thread that ends when the server closes the connection or the process exits.
"""

import re
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests

_CHUNK = 64 * 1024


class DeadlineExceeded(requests.exceptions.ReadTimeout):
    """No complete answer within the deadline (a ReadTimeout: a write may have landed)."""


class ResponseTooLarge(requests.exceptions.RequestException):
    """The answer is larger than the cap; the body was not read further."""


def _abort(resp: requests.Response | None) -> None:
    raw = getattr(resp, "raw", None)
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _read(resp: requests.Response, max_bytes: int, stop: threading.Event) -> requests.Response:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        resp.close()
        raise ResponseTooLarge(f"answer of {int(declared)} bytes, more than the {max_bytes} allowed")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(_CHUNK):
        if stop.is_set():
            break
        size += len(chunk)
        if size > max_bytes:
            resp.close()
            raise ResponseTooLarge(f"answer larger than the {max_bytes} bytes allowed")
        chunks.append(chunk)
    # What requests does itself once a streamed body is read: .content, .json() and .text use it.
    resp._content = b"".join(chunks)
    resp._content_consumed = True
    return resp


def request(session: requests.Session, method: str, url: str, *, deadline: float, max_bytes: int,
            **kwargs: Any) -> requests.Response:
    """session.request(...) with its body read, or DeadlineExceeded / ResponseTooLarge / what
    requests raises. `deadline` is in seconds for the whole request."""
    box: dict[str, Any] = {}
    done, stop = threading.Event(), threading.Event()

    def work() -> None:
        try:
            resp = session.request(method, url, stream=True, timeout=deadline, **kwargs)
            box["resp"] = resp
            box["value"] = _read(resp, max_bytes, stop)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=work, name="pdobs-http", daemon=True).start()
    if not done.wait(deadline):
        stop.set()
        _abort(box.get("resp"))
        raise DeadlineExceeded(f"no complete answer within {deadline:g}s "
                               f"(waited {time.monotonic() - started:.1f}s)")
    if "error" in box:
        raise box["error"]
    return box["value"]


_AUTH_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key|cookie)(['\"]?\s*[:=]\s*['\"]?)"
                          r"(?:(?:bearer|basic|token)\s+)?[^'\",;}\s)]+")
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic|bearer|basic|BEARER|BASIC)(\s+)[A-Za-z0-9._~+/=-]{8,}"
                         r"|\b(token)([=:]\s*)[^\s&'\",;]{6,}")
_USERINFO = re.compile(r"(//)[^/@\s]*@")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without credentials: the given secret values, Authorization-like headers, Bearer or
    Basic values and user:password@ in URLs (a proxy may echo request headers into an error)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1) or m.group(3)}{m.group(2) or m.group(4)}***", text)
    return _USERINFO.sub(r"\1***@", text)


def one_line(text: str, limit: int = 200) -> str:
    """Server-supplied text as one short line for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
