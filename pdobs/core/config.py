"""Load the embedded default config, merge a user file over it, validate, and explain errors.

Every error is one line (at most MAX_MESSAGE characters) naming the field path, the bad value and
what is expected, so a user can fix a typo without reading the schema. The user file is untrusted
input: it is read with a size cap, decoded as strict UTF-8 and parsed with a loader that bounds
nesting and alias expansion (a "YAML bomb" fails fast), and every value is checked for what the
outputs cannot carry (non-finite numbers, control characters, template delimiters).
"""

import copy
import math
import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from pdobs.core import paths, promql, yamlio

Config = dict[str, Any]

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few KiB
MAX_NODES = 10_000  # YAML nodes after alias expansion; the default config has a few hundred
MAX_DEPTH = 32  # nesting of mappings and sequences; the schema needs 5
MAX_MESSAGE = 200
_SHOWN = 60  # characters of a bad value quoted in a message
_USERINFO = re.compile(r"//[^/@\s]*@")  # user:password@ in a URL, never echoed


class ConfigError(Exception):
    """Bad user input; the message is a single short line meant for the terminal."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _shown(value: Any) -> str:
    """repr(value), cut short: a message never carries a whole (possibly expanded) value."""
    if isinstance(value, dict | list) and len(value) > 8:
        return f"<a {type(value).__name__} of {len(value)} items>"
    text = _USERINFO.sub("//***@", repr(value))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def load_schema() -> dict[str, Any]:
    with paths.CONFIG_SCHEMA.open() as fh:
        return yaml.safe_load(fh)


class _LimitedLoader(yamlio.UniqueKeyLoader):
    """SafeLoader that refuses deep nesting and counts nodes as they are composed (aliases with
    their full expansion), so a billion-laughs file stops after MAX_NODES instead of exploding."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open: list[str | None] = []  # anchors of the nodes being composed, outermost first
        self._nodes = 0

    def _limit(self, what: str) -> None:
        mark = self.peek_event().start_mark
        raise yaml.YAMLError(f"line {mark.line + 1}: {what}")

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                self._limit(f"alias *{event.anchor} refers to itself")
            node = super().compose_node(parent, index)
            self._nodes += _expanded_size(node, {})
        else:
            self._nodes += 1
            self._open.append(getattr(event, "anchor", None))
            if len(self._open) > MAX_DEPTH:
                self._limit(f"nested more than {MAX_DEPTH} levels deep")
            try:
                node = super().compose_node(parent, index)
            finally:
                self._open.pop()
        if self._nodes > MAX_NODES:
            self._limit(f"more than {MAX_NODES} values once aliases are expanded")
        return node


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in `node` with every alias expanded (shared subtrees counted once per use)."""
    key = id(node)
    if key in memo:
        return memo[key]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo)
            if size > MAX_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo) + _expanded_size(v, memo)
            if size > MAX_NODES:
                break
    memo[key] = size
    return size


def read_limited(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """At most `limit` bytes of `path` (a FIFO or /dev/zero included); ConfigError past it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ConfigError(f"config file {path}: larger than {limit // 1024} KiB; a config is a few KiB: "
                          "is this the right file?")
    return data


def _decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"config file {path}: is UTF-16 text; save it as UTF-8")
    if b"\x00" in data:
        raise ConfigError(f"config file {path}: contains NUL bytes (UTF-16 or a binary file?); save it as UTF-8 text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text (byte {exc.start} is not valid UTF-8); "
                          "save it as UTF-8") from None


def parse_yaml(text: str) -> Any:
    """YAML through the limited loader; yaml.YAMLError on bad syntax or a limit passed."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> Any:
    text = _decode(path, read_limited(path))
    try:
        return parse_yaml(text)
    except RecursionError:
        raise ConfigError(f"config file {path}: nested too deeply") from None
    except yamlio.DuplicateKeyError as exc:
        raise ConfigError(f"config file {path} line {exc.problem_mark.line + 1}: {exc.problem}; "
                          "keep one and merge their settings") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            raise ConfigError(f"config file {path} line {mark.line + 1}: not valid YAML; fix the syntax") from None
        raise ConfigError(f"config file {path} {exc}; simplify the file") from None


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in the override replaces the base."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _subschema_expect(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "x-expect" in schema:
        return schema["x-expect"]
    if error.validator == "enum":
        return "one of " + ", ".join(map(str, error.validator_value))
    if error.validator == "type":
        return f"a {error.validator_value}"
    return error.message


def _known_keys(schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    keys = set(schema.get("properties", {}))
    if "$ref" in schema:
        keys |= set(_known_keys(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root))
    return sorted(keys)


def _describe(error: jsonschema.ValidationError, root: dict[str, Any]) -> str:
    where = _path(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = _known_keys(error.schema, root)
        extra = re.findall(r"'([^']+)'", error.message)
        unknown = next((k for k in extra if k not in known), extra[0] if extra else "?")
        prefix = f"{where}.{unknown}" if error.absolute_path else unknown
        return f"{prefix}: unknown key; expected one of: {', '.join(known)} (check the spelling)"
    if error.validator == "required":
        missing = re.findall(r"'([^']+)'", error.message)[0]
        return f"{where}: missing required key '{missing}'"
    expect = error.schema.get("x-expect") if isinstance(error.schema, dict) else None
    if error.validator in ("pattern", "minLength", "not", "minimum", "maximum",
                           "exclusiveMinimum", "exclusiveMaximum", "type", "enum",
                           "uniqueItems", "minItems"):
        # A keyword inside a $ref'd definition carries the definition's wording; find it.
        expect = expect or _subschema_expect(error)
    return f"{where}: got {_shown(error.instance)}; expected {expect or error.message}"


# Characters no output can carry safely: control characters (a newline ends a PromQL string, names
# a file with a newline, splits a message) and Unicode line/paragraph separators.
_BAD_CATEGORIES = ("Cc", "Zl", "Zp")
# Alert annotations are Prometheus templates and several Alertmanager fields are templates: a
# config string carrying a template delimiter would be executed there.
_TEMPLATE_OPEN = "{{"


def _value_problems(value: Any, where: list[Any]) -> list[str]:
    """Values no schema keyword catches: NaN/infinite numbers (YAML .nan, .inf, 1e400) and strings
    with control characters or template delimiters, in keys as well as values."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{_path(where)}: got {value!r}; expected a finite number (a NaN or infinite bound never fires)"]
    if isinstance(value, str):
        bad = next((c for c in value if unicodedata.category(c) in _BAD_CATEGORIES), None)
        if bad is not None:
            return [f"{_path(where)}: got {_shown(value)}; expected no control characters or line breaks "
                    f"(found U+{ord(bad):04X})"]
        if _TEMPLATE_OPEN in value:
            return [f"{_path(where)}: got {_shown(value)}; expected no '{{{{' (the value is embedded in "
                    "Prometheus and Alertmanager templates)"]
        return []
    problems: list[str] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            problems += _value_problems(key, [*where, key]) if isinstance(key, str) else []
            problems += _value_problems(sub, [*where, key])
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            problems += _value_problems(sub, [*where, i])
    return problems


def _check_format(fmt: str, value: str) -> None:
    """Raise ValueError (with the reason) when `value` is not of the x-format `fmt`."""
    if fmt == "matchers":
        promql.parse_matchers(value)
    elif fmt == "regex":
        promql.check_regex(value)
    elif fmt in ("duration", "positive_duration"):
        if promql.duration_ms(value) == 0 and fmt == "positive_duration":
            raise promql.DurationError("zero, which Prometheus and Alertmanager read as 'unset'")
    elif fmt == "url":
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise ValueError("no host")
        if parts.username is not None or parts.password is not None:
            # The URL is copied into alerts, hence into Slack and PagerDuty messages.
            raise ValueError("credentials in the URL would be copied into every alert; remove user:password@")
    else:
        raise AssertionError(f"unknown x-format {fmt}")


def _custom_formats(schema: dict[str, Any], instance: Any, where: list[Any],
                    root: dict[str, Any]) -> list[str]:
    """Check the x-format keywords jsonschema knows nothing about (matchers, regexes, durations)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = root["$defs"][name]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        # Local properties extend the referenced ones (an alert's thresholds beside `for`).
        merged["properties"] = {**target.get("properties", {}), **schema.get("properties", {})}
        return _custom_formats(merged, instance, where, root)
    problems: list[str] = []
    fmt = schema.get("x-format")
    if fmt and isinstance(instance, str):
        try:
            _check_format(fmt, instance)
        except ValueError as exc:
            problems.append(f"{_path(where)}: got {_shown(instance)} ({exc}); expected {schema['x-expect']}")
    if isinstance(instance, dict):
        for key, value in instance.items():
            sub = schema.get("properties", {}).get(key)
            if sub is not None:
                problems += _custom_formats(sub, value, [*where, key], root)
    return problems


def _semantic_checks(cfg: Config) -> list[str]:
    problems = []
    prom = cfg["prometheus"]
    scrape = promql.duration_seconds(prom["scrape_interval"])
    window = promql.duration_seconds(prom["rate_window"])
    if window < 4 * scrape:
        problems.append(
            f"prometheus.rate_window: got {prom['rate_window']!r}; expected at least four "
            f"scrape intervals ({promql.format_duration(4 * scrape)}) so rate() always has samples"
        )
    fast = promql.duration_seconds(prom["fast_window"])
    # Three scrapes: increase() keeps two samples whatever the phase of scrapes and evaluations.
    if fast < 3 * scrape or fast >= window:
        problems.append(
            f"prometheus.fast_window: got {prom['fast_window']!r}; expected at least three scrape "
            f"intervals ({promql.format_duration(3 * scrape)}) and less than rate_window ({prom['rate_window']})"
        )
    am = cfg["alertmanager"]
    if promql.duration_seconds(am["explained_group_wait"]) < promql.duration_seconds(am["group_wait"]):
        problems.append(f"alertmanager.explained_group_wait: got {am['explained_group_wait']!r}; expected at "
                        f"least group_wait ({am['group_wait']}), or the verdict arrives too late to inhibit")
    names = {"alertmanager.default_receiver": am["default_receiver"],
             "alertmanager.pagerduty.receiver": am["pagerduty"]["receiver"],
             "alertmanager.slack.receiver": am["slack"]["receiver"]}
    seen: dict[str, str] = {}
    for field, name in names.items():
        if name in seen:
            problems.append(f"{field}: got {name!r}, already the name of {seen[name]}; expected a distinct "
                            "receiver name (Alertmanager rejects duplicates)")
            break
        seen[name] = field
    # PDKVTransferSlow compares the recorded p95 of the transfer time with its bound.
    if cfg["alerts"]["PDKVTransferSlow"]["enabled"] and 0.95 not in cfg["signals"]["quantiles"]:
        problems.append("alerts.PDKVTransferSlow.p95_seconds: needs 0.95 in signals.quantiles; add it there "
                        "or disable alerts.PDKVTransferSlow")
    return problems


def validate(cfg: Any) -> Config:
    schema = load_schema()
    problems = _value_problems(cfg, [])
    if problems:
        raise ConfigError("config error: " + problems[0])
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise ConfigError("config error: " + _describe(errors[0], schema))
    problems = _custom_formats(schema, cfg, [], schema) + _semantic_checks(cfg)
    if problems:
        raise ConfigError("config error: " + problems[0])
    return cfg


def load(user_file: Path | None = None, overrides: Config | None = None) -> Config:
    """Defaults, merged with the user file and then with in-code overrides, validated."""
    cfg = _read_yaml(paths.DEFAULT_CONFIG)
    if user_file is not None:
        user = _read_yaml(user_file)
        if user is None:
            # An empty file is almost always the wrong file (or a failed write), not "no changes".
            raise ConfigError(f"config file {user_file}: empty (no settings); put your overrides in it, "
                              "or leave --config out to use the defaults")
        if not isinstance(user, dict):
            kind = type(user).__name__
            raise ConfigError(f"config file {user_file}: expected a mapping at the top level, got {kind}")
        cfg = merge(cfg, user)
    if overrides:
        cfg = merge(cfg, overrides)
    return validate(cfg)
