#!/usr/bin/env python3
"""`python build.py ...` in a checkout: the same command line as the installed `pdobs` (see README)."""

import sys

# Before any project import (3.11 syntax: a traceback on older Pythons), in syntax any Python parses.
if sys.version_info < (3, 11):  # noqa: UP036 - the point is to say so on older Pythons
    sys.stderr.write("error: llm-d P/D observability needs Python 3.11 or newer, this is %d.%d; run `make build` "  # noqa: UP031
                     "(it makes a .venv) or use python3.11+\n" % tuple(sys.version_info[:2]))
    sys.exit(2)

from pdobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
