"""A small Prometheus HTTP API client for the doctor: auth, TLS, and errors a user can act on.

Secrets come from the environment or from files, never from the command line, and never appear in
a message: errors name the URL (with any user:password@ part removed) and the reason only.
"""

import math
import os
import time as _time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

TOKEN_ENV = "PROMETHEUS_TOKEN"
USERNAME_ENV = "PROMETHEUS_USERNAME"
PASSWORD_ENV = "PROMETHEUS_PASSWORD"


class PrometheusError(Exception):
    """Prometheus cannot be reached or refuses us; one line naming the URL and why (exit 2)."""


class QueryError(Exception):
    """Prometheus rejected a query the doctor built: a bug or an incompatible backend (exit 1)."""


class CredentialsError(Exception):
    """A credentials file or variable is unusable (exit 2)."""


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def apply(self, session: requests.Session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.username is not None:
            session.auth = (self.username, self.password or "")

    @property
    def kind(self) -> str:
        return "bearer token" if self.token else "basic auth" if self.username is not None else "none"


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise CredentialsError(f"{what} file {path}: cannot read it ({exc.strerror})") from exc
    if not value:
        raise CredentialsError(f"{what} file {path} is empty")
    return value


def credentials(env: Mapping[str, str] | None = None, token_file: Path | None = None,
                username_file: Path | None = None, password_file: Path | None = None) -> Credentials:
    """Bearer token or basic auth; a file given on the command line wins over the environment."""
    env = os.environ if env is None else env
    token = _read_secret(token_file, "token") if token_file else env.get(TOKEN_ENV) or None
    username = _read_secret(username_file, "username") if username_file else env.get(USERNAME_ENV) or None
    password = _read_secret(password_file, "password") if password_file else env.get(PASSWORD_ENV) or None
    if token and (username or password):
        raise CredentialsError(f"both a bearer token and basic auth are set; use one (unset {TOKEN_ENV} or "
                               f"{USERNAME_ENV}/{PASSWORD_ENV})")
    if password and not username:
        raise CredentialsError(f"a password is set but no username: set {USERNAME_ENV} or --username-file")
    return Credentials(token=token, username=username, password=password)


def redact(url: str) -> str:
    """The URL without user:password@, so it can be printed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusError(f"--prometheus {redact(url)!r}: expected an http:// or https:// URL such as "
                              "http://localhost:9090")
    return url.rstrip("/")


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause of a connection failure, without the URL (we print our own)."""
    cause: BaseException | None = exc
    while cause is not None and (cause.__cause__ or cause.__context__):
        cause = cause.__cause__ or cause.__context__
    text = str(cause or exc)
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused (is Prometheus listening there? is the port-forward running?)"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name does not resolve"
    return text.split("] ", 1)[-1] if "] " in text else text


class Prometheus:
    """Instant queries, rules and label values through the HTTP API, at one evaluation time."""

    def __init__(self, url: str, creds: Credentials, *, ca_file: Path | None = None, insecure: bool = False,
                 timeout: float = 30.0, time: float | None = None) -> None:
        self.url = check_url(url)
        self.shown = redact(self.url)
        # One evaluation time for every query, so the answers agree with each other.
        self.time = _time.time() if time is None else time
        self.timeout = timeout
        self.session = requests.Session()
        # Proxies and CA bundles from the environment are honoured as curl would; `verify` below wins.
        creds.apply(self.session)
        if ca_file is not None and not ca_file.is_file():
            raise CredentialsError(f"--ca-file {ca_file}: no such file")
        self.verify: bool | str = False if insecure else str(ca_file) if ca_file else True
        self.ca_file = ca_file
        if insecure:
            # The user asked for it; one line from the command beats a warning per request.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)

    def close(self) -> None:
        self.session.close()

    # --- transport ------------------------------------------------------------------------
    def _call(self, method: str, path: str, data: Mapping[str, Any] | None = None,
              params: Any = None) -> Any:
        where = f"{self.shown}{path}"
        try:
            resp = self.session.request(method, self.url + path, data=data, params=params,
                                        timeout=self.timeout, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            # Suggest only what was not tried already.
            fix = (f"the CA in --ca-file {self.ca_file} did not sign it (give the one that did)"
                   if self.ca_file else "pass --ca-file with the CA that signed it")
            raise PrometheusError(
                f"cannot reach Prometheus at {self.shown}: TLS certificate verification failed "
                f"({_reason(exc)}); {fix}, or --insecure-skip-verify if you accept the risk") from None
        except requests.exceptions.Timeout:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: no answer within "
                                  f"{self.timeout:g}s (raise --timeout, or check the URL)") from None
        except requests.exceptions.ConnectionError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: {exc.__class__.__name__}") from None
        if resp.status_code in (401, 403):
            hint = (f"set {TOKEN_ENV} (or --token-file) or {USERNAME_ENV}/{PASSWORD_ENV} to credentials "
                    "allowed to query it")
            raise PrometheusError(f"Prometheus at {self.shown} answered {resp.status_code} "
                                  f"{resp.reason or ''} to {path}: {hint}".replace("  ", " "))
        try:
            body = resp.json()
        except ValueError:
            kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise PrometheusError(
                f"{where} answered HTTP {resp.status_code} with {kind}, not the Prometheus API: check the URL "
                "(include any path prefix, e.g. https://host/prometheus)") from None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusError(f"{where} did not answer like the Prometheus API: check the URL")
        if body["status"] != "success":
            kind, message = body.get("errorType", "error"), body.get("error", "")
            if resp.status_code in (400, 422):
                raise QueryError(f"Prometheus at {self.shown} rejected a query ({kind}: {message})")
            raise PrometheusError(f"Prometheus at {self.shown} answered HTTP {resp.status_code} to {path} "
                                  f"({kind}: {message})")
        return body.get("data")

    # --- API ------------------------------------------------------------------------------
    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant vector as (labels, value); POST, as inlined catalog queries are long."""
        data = {"query": promql, "time": f"{self.time:.3f}"}
        result = self._call("POST", "/api/v1/query", data=data)
        if result.get("resultType") == "scalar":
            return [({}, float(result["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in result.get("result", [])]

    def rules(self) -> list[dict[str, Any]] | None:
        """Loaded rule groups, or None where the backend has no rules API."""
        try:
            return self._call("GET", "/api/v1/rules").get("groups", [])
        except PrometheusError as exc:
            if " 404 " in str(exc) or "not the Prometheus API" in str(exc):
                return None
            raise

    def label_values(self, label: str, match: str, lookback_seconds: float) -> list[str]:
        params = [("match[]", match), ("start", f"{self.time - lookback_seconds:.3f}"),
                  ("end", f"{self.time:.3f}")]
        return list(self._call("GET", f"/api/v1/label/{label}/values", params=params) or [])

    def buildinfo(self) -> dict[str, Any]:
        """The server's version; also the first contact, so connection errors surface here."""
        try:
            return self._call("GET", "/api/v1/status/buildinfo") or {}
        except PrometheusError as exc:
            # Some backends (older Thanos, VictoriaMetrics) lack it; a query still proves the API.
            if " 404 " not in str(exc) and "not the Prometheus API" not in str(exc):
                raise
        self.query("1")
        return {}


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
