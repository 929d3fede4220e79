#!/usr/bin/env python3
"""Render every artefact of llm-d P/D observability into build/ (see README)."""

import sys

from pdobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
