"""Load the embedded default config, merge a user file over it, validate, and explain errors.

Every error is one line naming the field path, the bad value and what is expected, so a user can
fix a typo without reading the schema.
"""

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pdobs.core import paths, promql

Config = dict[str, Any]


class ConfigError(Exception):
    """Bad user input; the message is a single line meant for the terminal."""


def load_schema() -> dict[str, Any]:
    with paths.CONFIG_SCHEMA.open() as fh:
        return yaml.safe_load(fh)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where}: not valid YAML; fix the syntax") from exc


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
    return f"{where}: got {error.instance!r}; expected {expect or error.message}"


def _custom_formats(schema: dict[str, Any], instance: Any, where: list[Any],
                    root: dict[str, Any]) -> list[str]:
    """Check the x-format keywords jsonschema knows nothing about (matchers, regexes)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = root["$defs"][name]
        return _custom_formats({**target, **{k: v for k, v in schema.items() if k != "$ref"}},
                               instance, where, root)
    problems: list[str] = []
    fmt = schema.get("x-format")
    if fmt and isinstance(instance, str):
        try:
            if fmt == "matchers":
                promql.parse_matchers(instance)
            elif fmt == "regex":
                re.compile(instance)
        except (promql.MatcherError, re.error) as exc:
            problems.append(f"{_path(where)}: got {instance!r} ({exc}); expected {schema['x-expect']}")
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
    return problems


def validate(cfg: Any) -> Config:
    schema = load_schema()
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
            user = {}
        if not isinstance(user, dict):
            kind = type(user).__name__
            raise ConfigError(f"config file {user_file}: expected a mapping at the top level, got {kind}")
        cfg = merge(cfg, user)
    if overrides:
        cfg = merge(cfg, overrides)
    return validate(cfg)
