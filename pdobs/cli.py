"""The `pdobs` command (`python build.py` in a checkout runs the same thing).

Every subcommand takes --config (before or after its name) and --help; those that write files take
--out. No option takes a secret (tokens and passwords come from the environment or from files), no
option matches by prefix (`--tok VALUE` is not `--token-file VALUE`), and an unknown option is named
without repeating its value, which may be a secret typed in the wrong place. A mistake on the
command line, in the config or in a file is one line on stderr starting with "error:" and exit 2;
with `doctor --output json` stdout also gets {"error": ...}. Exit 1 is an internal error (a bug),
printed with its traceback.
"""

import argparse
import difflib
import itertools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from alerts import runbooks
from delivery import RenderError
from pdobs import __version__, config_docs, demo, doctor, output, push
from pdobs.build import make
from pdobs.core import config, paths
from pdobs.errors import CommandError, UsageError

DEFAULT_OUT = Path("build")
# Installed, there are no checkout docs to regenerate in place; write them beside the user.
DEFAULT_DOCS_OUT = paths.DOCS if paths.IN_CHECKOUT else Path("pdobs-docs")
WRITERS = ("build", "render", "docs")  # the subcommands that take --out


class Parser(argparse.ArgumentParser):
    """No abbreviated flags (`--insec` is not `--insecure-skip-verify`), and errors as exceptions so
    main() prints them as one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.argv: list[str] = []  # what main() parses, so an error can name the subcommand's --help

    def error(self, message: str) -> NoReturn:
        prog = self.prog
        if message.startswith("unrecognized arguments: "):
            unknown = message.removeprefix("unrecognized arguments: ").split()
            message = _unknown_message(unknown) + _did_you_mean(self, unknown)
            command = next((a for a in self.argv if a in _options(self)), None)
            prog = f"{prog} {command}" if command else prog
        raise UsageError(f"{self.prog}: {message} (see {prog} --help)")


def _options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Option strings of a parser and of each of its subcommands, by subcommand ('' for the top)."""
    found = {"": [s for a in parser._actions for s in a.option_strings]}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = [s for a in sub._actions for s in a.option_strings]
    return found


# Flags older versions took, and what replaced them.
RETIRED = {
    "--insecure": "the flag is --insecure-skip-verify, on push and doctor alike",
    "--duration-min": "the demo runs live now: it lasts as long as the alerts take to fire and resolve",
}


def _did_you_mean(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    known = _options(parser)
    hints = []
    for arg in unknown:
        flag = arg.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        if flag in RETIRED:
            hints.append(f"{flag}: {RETIRED[flag]}")
            continue
        where = [name for name, opts in known.items() if flag in opts]
        if where:
            hints.append(f"{flag} belongs to `{where[0]}`" if where[0] else f"{flag} goes before the subcommand")
            continue
        close = difflib.get_close_matches(flag, sorted({o for opts in known.values() for o in opts}), n=1,
                                        cutoff=0.75)
        if close:
            hints.append(f"did you mean {close[0]}?")
    return f" ({'; '.join(hints)})" if hints else ""


_OPTION_NAME = re.compile(r"^(--[A-Za-z][\w-]*|-[A-Za-z])$")


def _unknown_message(names: list[str]) -> str:
    # Only what looks like an option name is shown: "-hunter2" may be a value typed after a typo.
    names = [n if _OPTION_NAME.match(n) else "(an argument, not shown)" for n in names]
    shown = " ".join(dict.fromkeys(names)) or "(positional values)"
    return (f"unrecognized arguments: {shown} (values are not repeated; secrets are never taken on the command "
            "line: see --help)")


_NUMBER = re.compile(r"^-\d")


def unknown_options(p: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """Option names in `argv` that no parser knows, found before parsing: argparse would read an
    unknown option's value as the subcommand and echo it in its error."""
    known = {o for opts in _options(p).values() for o in opts}
    unknown = []
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and not _NUMBER.match(arg) and name not in known:
            unknown.append(name)
    return unknown


# --- the commands that live here ------------------------------------------------------------------

def _notices(cfg: dict[str, Any]) -> list[str]:
    default_url = config.load()["runbook_url"]
    if cfg["runbook_url"] == default_url:
        return ["notice: runbook_url is still the project's default; set runbook_url in your config to where "
                "you publish the runbooks (pdobs docs --out DIR writes them) so alert links open your copy"]
    return []


def _build(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    out = Path(args.out or DEFAULT_OUT)
    files = make.build(cfg)
    output.write_tree(out, files)
    print(f"wrote {len(files)} files to {out.resolve()}")
    for notice in _notices(cfg):
        print(notice, file=sys.stderr)
    return 0


def _docs(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    out = Path(args.out or DEFAULT_DOCS_OUT)
    try:
        written = [config_docs.write(out), *runbooks.write(cfg, out / "runbooks")]
    except runbooks.RunbookError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror})") from exc
    for path in written:
        print(f"wrote {path}")
    if not written[1:]:
        print(f"runbooks in {out / 'runbooks'} are up to date")
    return 0


def parser() -> Parser:
    # --config and --out are accepted before and after the subcommand; SUPPRESS keeps a value given
    # before it from being reset by the subcommand's default.
    config_opt = Parser(add_help=False)
    config_opt.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                            help="YAML file merged over the default config (pdobs/config/default.yaml)")
    out_opt = Parser(add_help=False)
    out_opt.add_argument("--out", type=Path, default=argparse.SUPPRESS, metavar="DIR", help="output folder")

    # `python build.py` in a checkout, `pdobs` once installed: messages name what the user typed.
    prog = "build.py" if sys.argv[0].endswith("build.py") else "pdobs"
    p = Parser(prog=prog, description="Dashboards, recording rules, alerts and a live doctor for llm-d prefill/decode "
                           "disaggregated serving. With no subcommand: build.",
               epilog="exit codes: 0 success, 2 bad input (one line naming what to fix), 1 internal error; "
                      "doctor and demo document their own")
    p.add_argument("--version", action="version", version=f"pdobs {__version__} (llm-d P/D observability)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="YAML file merged over the default config (pdobs/config/default.yaml)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder of build and docs (build default: ./build)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.add_parser("build", aliases=["render"], parents=[config_opt, out_opt],
                   help="render every artefact into --out (the default command)",
                   description="Render dashboards, recording rules, alerts, Grafana/Kubernetes/Alertmanager "
                               "delivery files and the Mimir namespace file into --out (default: ./build in the "
                               "current folder). The folder is replaced as a whole and atomically; one the build "
                               "did not make is never replaced.")
    sub.add_parser("docs", parents=[config_opt, out_opt],
                   help="write the config reference and the runbooks (with their generated sections)",
                   description="Write config-reference.md and runbooks/<Alert>.md into --out (default: the "
                               "checkout's docs/ when run from a clone, else ./pdobs-docs). Publish the runbooks "
                               "where runbook_url points.")
    doctor.add_parser(sub, [config_opt])
    demo.add_parser(sub, [config_opt])
    push.add_parser(sub, [config_opt])
    return p


COMMANDS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    None: _build, "build": _build, "render": _build, "docs": _docs, "doctor": doctor.command,
    "demo": demo.command, "push": push.command}


def _wants_json(argv: list[str]) -> bool:
    return "--output=json" in argv or any(a == "--output" and b == "json" for a, b in itertools.pairwise(argv))


def _fail(message: str, code: int, as_json: bool) -> int:
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}))
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    try:
        push.refuse_token_flags(argv)
        cli = parser()
        cli.argv = argv
        # Before parsing: argparse would take an unknown option's value for the subcommand and
        # repeat it in its error, and that value may be a secret typed in the wrong place.
        unknown = unknown_options(cli, argv)
        if unknown:
            command = next((a for a in argv if a in _options(cli)), None)
            prog = f"{cli.prog} {command}" if command else cli.prog
            raise UsageError(f"{cli.prog}: {_unknown_message(unknown)}{_did_you_mean(cli, unknown)} "
                             f"(see {prog} --help)")
        args = cli.parse_args(argv)
        if args.out is not None and args.command not in (None, *WRITERS):
            raise UsageError(f"--out: `{args.command}` writes no files; --out goes with build or docs")
        return COMMANDS[args.command](args)
    except CommandError as exc:
        return _fail(str(exc), exc.code, as_json)
    except (config.ConfigError, output.OutputError, RenderError, push.PushUsageError, demo.DemoError) as exc:
        return _fail(str(exc), 2, as_json)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`pdobs demo --list | head`): nothing more to say, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        traceback.print_exc()
        return _fail("internal error (a bug); the previous output is untouched", 1, as_json)


if __name__ == "__main__":
    sys.exit(main())
