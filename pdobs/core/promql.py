"""Small PromQL text helpers: durations, label matchers, regexes and selectors.

Everything that builds query text goes through here so quoting and matcher joining are done once.
The grammar is Prometheus' own, so what the config accepts is what promtool accepts:
- durations: prometheus/common model.ParseDuration (units in order y w d h m s ms, each once;
  ``0`` alone; at most 2^63-1 nanoseconds, Go's time.Duration);
- string literals: the PromQL lexer's (double or single quotes with Go escapes, or backticks);
- regexes: RE2 (Go's regexp is RE2), anchored as Prometheus anchors them, ``^(?s:...)$``.
"""

import functools
import re

import re2

_DURATION = re.compile(r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
                       r"(?:([0-9]+)s)?(?:([0-9]+)ms)?")
_UNIT_MS = (31_536_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
# Go's time.Duration is int64 nanoseconds; Prometheus refuses longer durations ("out of range").
MAX_DURATION_MS = (2**63 - 1) // 1_000_000
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCHER_HEAD = re.compile(r"\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
# What quote() must escape: the PromQL string's own syntax, and characters that would break the
# Go templates and YAML the query is embedded in (a backtick ends the raw strings of alerts/templates).
_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "`": "\\x60"}
_NEEDS_ESCAPE = re.compile(r'[\\"`\x00-\x1f\x7f-\x9f\u2028\u2029]')

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print each parse error on stderr itself


class MatcherError(ValueError):
    """A matcher string that Prometheus would reject."""


class DurationError(ValueError):
    """A duration Prometheus would reject; the message says why."""


class RegexError(ValueError):
    """A regular expression Prometheus (Go's RE2) would reject."""


def duration_ms(text: str) -> int:
    """Milliseconds in a Prometheus duration such as ``1h30m``; ``0`` is zero."""
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text) if text else None
    if match is None:
        raise DurationError(f"not a Prometheus duration: {text!r}")
    total = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_MS, strict=True) if n is not None)
    if total > MAX_DURATION_MS:
        raise DurationError("longer than Prometheus allows, about 292 years")
    return total


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``; ``0`` is zero."""
    return duration_ms(text) / 1000


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


def check_regex(pattern: str) -> None:
    """Raise RegexError unless Prometheus accepts `pattern` in a =~ matcher."""
    try:
        re2.compile(f"^(?s:{pattern})$", _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(f"not an RE2 regex: {detail}") from None
    # C++ RE2 knows \C (any byte); Go's regexp, which Prometheus uses, does not.
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if pattern[i + 1 : i + 2] == "C":
                raise RegexError("not an RE2 regex: invalid escape sequence: \\C")
            i += 2
        else:
            i += 1


def _read_escape(text: str, i: int, quote_char: str) -> tuple[bytes, int]:
    """Decode the escape at text[i] (just after the backslash) as the PromQL lexer does."""
    if i >= len(text):
        raise MatcherError("escape sequence not terminated")
    ch = text[i]
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch].encode(), i + 1
    if ch == quote_char:
        return ch.encode(), i + 1
    if ch in "01234567":
        digits, base, limit, start = 3, 8, 255, i
    elif ch in "xuU":
        digits, base, limit, start = {"x": 2, "u": 4, "U": 8}[ch], 16, 255 if ch == "x" else 0x10FFFF, i + 1
    else:
        raise MatcherError(f"unknown escape sequence \\{ch}; in a PromQL string write \\\\. for a regex's \\.")
    part = text[start : start + digits]
    allowed = "01234567" if base == 8 else "0123456789abcdefABCDEF"
    if len(part) < digits or any(c not in allowed for c in part):
        raise MatcherError(f"illegal character in escape sequence \\{ch}{part}")
    value = int(part, base)
    if value > limit or 0xD800 <= value < 0xE000:
        raise MatcherError("escape sequence is an invalid Unicode code point")
    # \x and octal escapes are bytes in Go strings; \u and \U are code points.
    raw = bytes([value]) if ch not in "uU" else chr(value).encode()
    return raw, start + digits


def _read_string(text: str) -> tuple[str, int]:
    """A PromQL string literal at the start of `text`: its value and the length it took."""
    if not text or text[0] not in "\"'`":
        raise MatcherError(f"expected a quoted value at {text[:40]!r}")
    quote_char = text[0]
    if quote_char == "`":
        end = text.find("`", 1)
        if end < 0:
            raise MatcherError("unterminated raw string")
        return text[1:end], end + 1
    out = bytearray()
    i = 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise MatcherError("unterminated quoted string")
        ch = text[i]
        if ch == quote_char:
            break
        if ch == "\\":
            raw, i = _read_escape(text, i + 1, quote_char)
            out += raw
        else:
            out += ch.encode()
            i += 1
    try:
        return out.decode(), i + 1
    except UnicodeDecodeError:
        raise MatcherError("escapes make invalid UTF-8") from None


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """Split ``a="x", b=~"y"`` into (name, op, unquoted value); raise MatcherError if malformed."""
    out: list[tuple[str, str, str]] = []
    rest = text.strip()
    while rest:
        head = _MATCHER_HEAD.match(rest)
        if not head:
            raise MatcherError(f"cannot parse matcher at {rest[:40]!r}")
        if head.group("name") == "__name__":
            raise MatcherError("__name__ cannot be matched here: the metric names come from the catalog")
        value, used = _read_string(rest[head.end():])
        if head.group("op") in ("=~", "!~"):
            try:
                check_regex(value)
            except RegexError as exc:
                raise MatcherError(f"bad regex {value[:40]!r} in matcher: {exc}") from None
        out.append((head.group("name"), head.group("op"), value))
        rest = rest[head.end() + used :].lstrip()
        if rest.startswith(","):
            rest = rest[1:]
            if not rest.strip():
                raise MatcherError("trailing comma")
        elif rest:
            raise MatcherError(f"expected ',' before {rest[:40]!r}")
    return out


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _QUOTE_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal (escaped so it also survives Go templates and YAML)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def matcher(name: str, op: str, value: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise MatcherError(f"bad label name {name!r}")
    return f"{name}{op}{quote(value)}"


@functools.lru_cache(maxsize=64)
def canonical_matchers(text: str) -> str:
    """Config matchers re-rendered in one canonical, promtool-safe form (``a="x", b=~"y"``)."""
    return ", ".join(matcher(name, op, value) for name, op, value in parse_matchers(text))


def join(*parts: str) -> str:
    """Join matcher strings, dropping empty ones."""
    return ", ".join(p.strip() for p in parts if p and p.strip())


def selector(metric: str, *matchers: str) -> str:
    inner = join(*matchers)
    return f"{metric}{{{inner}}}" if inner else metric
