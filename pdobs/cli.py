"""Command line of build.py. Exit codes: 0 success, 2 bad input, 1 internal error."""

import argparse
import sys
import traceback
from pathlib import Path

from alerts import runbooks
from delivery import RenderError
from pdobs import config_docs, demo, doctor, output, push
from pdobs.build import make
from pdobs.core import config, paths


class UsageError(Exception):
    """Bad input that is not a config problem (flags, files); one line for the terminal."""


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    try:
        push.refuse_token_flags(sys.argv[1:] if argv is None else argv)
    except push.PushUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
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
