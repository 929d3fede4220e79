"""Small PromQL text helpers: durations, label matchers and selectors.

Everything that builds query text goes through here so quoting and matcher joining are done once.
"""

import re

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCHER = re.compile(
    r'\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*")\s*'
)


class MatcherError(ValueError):
    """A matcher string that Prometheus would reject."""


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``; ``0`` is zero."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds`, to the millisecond: ``1h30m``, ``1m30s``,
    ``500ms``, ``0s``. Both Prometheus lines read the compound form."""
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError(f"a Prometheus duration cannot be negative: {seconds}s")
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """Split ``a="x", b=~"y"`` into (name, op, unquoted value); raise MatcherError if malformed."""
    out: list[tuple[str, str, str]] = []
    rest = text.strip()
    while rest:
        match = _MATCHER.match(rest)
        if not match:
            raise MatcherError(f"cannot parse matcher at {rest[:40]!r}")
        value = match.group("value")[1:-1].encode().decode("unicode_escape")
        if match.group("op") in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise MatcherError(f"bad regex {value!r} in matcher: {exc}") from exc
        out.append((match.group("name"), match.group("op"), value))
        rest = rest[match.end() :]
        if rest.startswith(","):
            rest = rest[1:]
            if not rest.strip():
                raise MatcherError("trailing comma")
        elif rest:
            raise MatcherError(f"expected ',' before {rest[:40]!r}")
    return out


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matcher(name: str, op: str, value: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise MatcherError(f"bad label name {name!r}")
    return f"{name}{op}{quote(value)}"


def join(*parts: str) -> str:
    """Join matcher strings, dropping empty ones."""
    return ", ".join(p.strip() for p in parts if p and p.strip())


def selector(metric: str, *matchers: str) -> str:
    inner = join(*matchers)
    return f"{metric}{{{inner}}}" if inner else metric
