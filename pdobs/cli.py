"""Command line of build.py. Exit codes: 0 success, 2 bad input, 1 internal error.

No option takes a secret (tokens and passwords come from the environment or from files), no
option matches by prefix (`--tok VALUE` is not `--token-file VALUE`), and an unknown option is
named without repeating its value, which may be a secret typed in the wrong place.
"""

import argparse
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts import runbooks
from delivery import RenderError
from pdobs import config_docs, demo, doctor, output, push
from pdobs.build import make
from pdobs.core import config, paths


class UsageError(Exception):
    """Bad input that is not a config problem (flags, files); one line for the terminal."""


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching, whose errors never repeat an unknown argument; the
    subcommands' parsers are of this class too (argparse makes them with type(parent))."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(_unknown_message([a.split("=", 1)[0] for a in extras if a.startswith("-")]))
        return parsed

    def option_strings(self) -> set[str]:
        """Every option of this parser and of its subcommands."""
        known: set[str] = set()
        for action in self._actions:
            known.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    known |= sub.option_strings() if isinstance(sub, Parser) else set()
        return known


_OPTION_NAME = re.compile(r"^(--[A-Za-z][\w-]*|-[A-Za-z])$")


def _unknown_message(names: list[str]) -> str:
    # Only what looks like an option name is shown: "-hunter2" may be a value typed after a typo.
    names = [n if _OPTION_NAME.match(n) else "(an argument, not shown)" for n in names]
    shown = " ".join(dict.fromkeys(names)) or "(positional values)"
    return (f"unrecognized arguments: {shown} (values are not repeated; secrets are never taken on the command "
            "line: see --help)")


_NUMBER = re.compile(r"^-\d")


def unknown_options(p: Parser, argv: Sequence[str]) -> list[str]:
    """Option names in `argv` that no parser knows, found before parsing: argparse would read an
    unknown option's value as the subcommand and echo it in its error."""
    known = p.option_strings()
    unknown = []
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and not _NUMBER.match(arg) and name not in known:
            unknown.append(name)
    return unknown


def _render(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    files = make.build(cfg)
    output.write_tree(args.out, files)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _docs(args: argparse.Namespace) -> int:
    config_docs.write()
    print(f"wrote {paths.DOCS / 'config-reference.md'}")
    try:
        for path in runbooks.write():
            print(f"wrote {path}")
    except runbooks.RunbookError as exc:
        raise UsageError(str(exc)) from exc
    return 0


def parser() -> Parser:
    p = Parser(
        prog="build.py",
        description="Render dashboards, recording rules and alerts for llm-d P/D serving.",
    )
    p.add_argument("--config", type=Path, help="YAML file merged over pdobs/config/default.yaml")
    p.add_argument("--out", type=Path, default=paths.ROOT / "build",
                   help="output folder, replaced as a whole (default: build/)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("render", help="render every artefact (the default)")
    sub.add_parser("docs", help="regenerate docs/config-reference.md and the runbooks' generated sections")
    doctor.add_parser(sub)
    demo.add_parser(sub)
    push.add_parser(sub)
    return p


COMMANDS = {None: _render, "render": _render, "docs": _docs, "doctor": doctor.command, "demo": demo.command,
            "push": push.command}


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    try:
        push.refuse_token_flags(given)
    except push.PushUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    p = parser()
    unknown = unknown_options(p, given)
    if unknown:
        print(f"{p.prog}: error: {_unknown_message(unknown)}", file=sys.stderr)
        return 2
    args = p.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (config.ConfigError, output.OutputError, UsageError, RenderError, push.PushUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print("error: internal error (a bug); the previous output is untouched", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
