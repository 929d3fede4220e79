"""A small Prometheus HTTP API client for the doctor: auth, TLS, and errors a user can act on.

Secrets come from the environment or from files, never from the command line (a URL with
user:password@ is refused), and never appear in a message: errors name the URL and the reason, with
every credential scrubbed from what the server or a proxy answered. Each request has a total
deadline (`--timeout`) and a size cap, and an answer not shaped like the Prometheus API is a
PrometheusError (exit 2), never a traceback.
"""

import base64
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

from pdobs.core import httpbound

TOKEN_ENV = "PROMETHEUS_TOKEN"
USERNAME_ENV = "PROMETHEUS_USERNAME"
PASSWORD_ENV = "PROMETHEUS_PASSWORD"
# The largest answer read: the rules API of a big Prometheus is a few MiB.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


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

    def secrets(self) -> list[str]:
        """Every form in which a credential may come back in an answer."""
        out = [v for v in (self.token, self.password) if v]
        if self.username is not None:
            out.append(base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode())
        return out

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
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise PrometheusError("--prometheus: not a URL; expected one such as http://localhost:9090") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusError(f"--prometheus {redact(url)!r}: expected an http:// or https:// URL such as "
                              "http://localhost:9090")
    if parts.username is not None or parts.password is not None:
        raise PrometheusError(f"--prometheus {redact(url)}: credentials in the URL are refused (the command line "
                              f"is visible to every user in ps); set {USERNAME_ENV}/{PASSWORD_ENV} or "
                              "--username-file/--password-file")
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
    """Instant and range queries, rules and label values through the HTTP API, at one evaluation time."""

    def __init__(self, url: str, creds: Credentials, *, ca_file: Path | None = None, insecure: bool = False,
                 timeout: float = 30.0, time: float | None = None) -> None:
        self.url = check_url(url)
        self.shown = redact(self.url)
        # One evaluation time for every query, so the answers agree with each other.
        self.time = _time.time() if time is None else time
        if not (math.isfinite(timeout) and timeout > 0):
            raise PrometheusError(f"--timeout {timeout:g}: expected seconds above 0")
        self.timeout = timeout
        self.session = requests.Session()
        # Proxies and CA bundles from the environment are honoured as curl would; `verify` below wins.
        creds.apply(self.session)
        self._secrets = creds.secrets()
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
    def _clean(self, text: str) -> str:
        """Text from the server, one short line with every credential removed."""
        return httpbound.one_line(httpbound.scrub(text, self._secrets))

    def _call(self, method: str, path: str, data: Mapping[str, Any] | None = None,
              params: Any = None) -> Any:
        try:
            return self._send(method, path, data, params)
        except (PrometheusError, QueryError) as exc:
            # Whatever the message quotes came from the server or the network: scrub it once more.
            raise type(exc)(httpbound.scrub(str(exc), self._secrets)) from None

    def _send(self, method: str, path: str, data: Mapping[str, Any] | None, params: Any) -> Any:
        where = f"{self.shown}{path}"
        try:
            resp = httpbound.request(self.session, method, self.url + path, data=data, params=params,
                                     deadline=self.timeout, max_bytes=MAX_RESPONSE_BYTES, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            # Suggest only what was not tried already.
            fix = (f"the CA in --ca-file {self.ca_file} did not sign it (give the one that did)"
                   if self.ca_file else "pass --ca-file with the CA that signed it")
            raise PrometheusError(
                f"cannot reach Prometheus at {self.shown}: TLS certificate verification failed "
                f"({_reason(exc)}); {fix}, or --insecure-skip-verify if you accept the risk") from None
        except requests.exceptions.Timeout:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: no complete answer to {path} within "
                                  f"{self.timeout:g}s (raise --timeout, or check the URL)") from None
        except httpbound.ResponseTooLarge:
            raise PrometheusError(f"{where} answered more than {MAX_RESPONSE_BYTES // 2**20} MiB: not an answer the "
                                  "doctor reads (check the URL; narrow with --namespace)") from None
        except requests.exceptions.ConnectionError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: {self._clean(_reason(exc))}") from None
        except requests.RequestException as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown}: {exc.__class__.__name__}") from None
        if resp.status_code in (401, 403):
            hint = (f"set {TOKEN_ENV} (or --token-file) or {USERNAME_ENV}/{PASSWORD_ENV} to credentials "
                    "allowed to query it")
            reason = self._clean(resp.reason or "")
            raise PrometheusError(f"Prometheus at {self.shown} answered {resp.status_code} "
                                  f"{reason} to {path}: {hint}".replace("  ", " "))
        try:
            body = resp.json()
        except ValueError:
            kind = self._clean(resp.headers.get("Content-Type", "no content type").split(";")[0])[:60]
            raise PrometheusError(
                f"{where} answered HTTP {resp.status_code} with {kind}, not the Prometheus API: check the URL "
                "(include any path prefix, e.g. https://host/prometheus)") from None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusError(f"{where} did not answer like the Prometheus API: check the URL")
        if body["status"] != "success":
            kind = self._clean(str(body.get("errorType", "error")))[:40]
            message = self._clean(str(body.get("error", "")))
            if resp.status_code in (400, 422):
                raise QueryError(f"Prometheus at {self.shown} rejected a query ({kind}: {message})")
            raise PrometheusError(f"Prometheus at {self.shown} answered HTTP {resp.status_code} to {path} "
                                  f"({kind}: {message})")
        return body.get("data")

    def _malformed(self, path: str, what: str) -> PrometheusError:
        return PrometheusError(f"{self.shown}{path} answered success but {what}, which the Prometheus API never "
                               "sends: check the URL (is a proxy or another service answering?)")

    # --- API ------------------------------------------------------------------------------
    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant vector as (labels, value); POST, as inlined catalog queries are long."""
        data = {"query": promql, "time": f"{self.time:.3f}"}
        path = "/api/v1/query"
        result = self._call("POST", path, data=data)
        if not isinstance(result, dict):
            raise self._malformed(path, f"its data is {type(result).__name__}, not an object")
        if result.get("resultType") == "scalar":
            return [({}, self._sample(path, result.get("result")))]
        if result.get("resultType") != "vector" or not isinstance(result.get("result"), list):
            raise self._malformed(path, "its data is not an instant vector")
        out = []
        for item in result["result"]:
            metric = item.get("metric") if isinstance(item, dict) else None
            if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
                raise self._malformed(path, "a series has no label set")
            out.append((metric, self._sample(path, item.get("value"))))
        return out

    def _sample(self, path: str, pair: Any) -> float:
        """The value of a [time, "value"] pair; Prometheus sends "NaN" and "+Inf" as such."""
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
            raise self._malformed(path, "a sample is not a [time, \"value\"] pair")
        try:
            return float(pair[1])
        except ValueError:
            raise self._malformed(path, f"a sample value is {self._clean(pair[1])[:20]!r}, not a number") from None

    def query_range(self, promql: str, start: float, end: float,
                    step: float) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """A range query as (labels, [(time, value), ...]) per series; POST, like `query`."""
        data = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        result = self._call("POST", "/api/v1/query_range", data=data)
        return [(item["metric"], [(float(t), float(v)) for t, v in item.get("values", [])])
                for item in result.get("result", [])]

    def rules(self) -> list[dict[str, Any]] | None:
        """Loaded rule groups, or None where the backend has no rules API."""
        path = "/api/v1/rules"
        try:
            data = self._call("GET", path)
        except PrometheusError as exc:
            if " 404 " in str(exc) or "not the Prometheus API" in str(exc):
                return None
            raise
        groups = data.get("groups", []) if isinstance(data, dict) else None
        if not isinstance(groups, list) or not all(
                isinstance(g, dict) and isinstance(g.get("rules", []), list)
                and all(isinstance(r, dict) and all(isinstance(r.get(k, ""), str) for k in _RULE_TEXT_FIELDS)
                        for r in g.get("rules", []))
                for g in groups):
            raise self._malformed(path, "its rule groups are not shaped as the rules API's")
        return groups

    def label_values(self, label: str, match: str, lookback_seconds: float) -> list[str]:
        params = [("match[]", match), ("start", f"{self.time - lookback_seconds:.3f}"),
                  ("end", f"{self.time:.3f}")]
        path = f"/api/v1/label/{label}/values"
        values = self._call("GET", path, params=params) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self._malformed(path, "its data is not a list of label values")
        return values

    def buildinfo(self) -> dict[str, Any]:
        """The server's version; also the first contact, so connection errors surface here."""
        path = "/api/v1/status/buildinfo"
        try:
            info = self._call("GET", path) or {}
            if not isinstance(info, dict):
                raise self._malformed(path, f"its data is {type(info).__name__}, not an object")
            return {k: v for k, v in info.items() if isinstance(v, str)}
        except PrometheusError as exc:
            # Some backends (older Thanos, VictoriaMetrics) lack it; a query still proves the API.
            if " 404 " not in str(exc) and "not the Prometheus API" not in str(exc):
                raise
        self.query("1")
        return {}


_RULE_TEXT_FIELDS = ("name", "type", "query", "health", "lastError")


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
