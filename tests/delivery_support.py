"""Shared by the delivery tests: the build with a fixture dashboard added, and what to parametrize over.

The fixture covers what the real dashboards may not (a collapsed row, a panel pinned to the
configured datasource, a constant variable); the real dashboards and alerts are covered as soon as
the build renders them, since the parameters come from the build itself.
"""

import json
from pathlib import Path
from typing import Any

from delivery import inputs
from pdobs import artefacts
from pdobs.core import config, paths

FIXTURE_UID = "pd-delivery-fixture"
FIXTURE = paths.ROOT / "tests" / "fixtures" / "delivery" / "dashboard.json"


def fixture_renderer(cfg: dict[str, Any]) -> dict[str, str]:
    return {f"dashboards/{FIXTURE_UID}.json": FIXTURE.read_text()}


_RENDERED: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}


def render(overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(config, build files with the fixture dashboard); memoized per overrides, so callers must
    not mutate what they get."""
    key = json.dumps(overrides, sort_keys=True)
    if key not in _RENDERED:
        cfg = config.load(overrides=overrides)
        _RENDERED[key] = cfg, artefacts.render_all(cfg, extra=[fixture_renderer])
    return _RENDERED[key]


_DEFAULT_FILES = render()[1]
DASHBOARD_UIDS = sorted(inputs.dashboards(_DEFAULT_FILES))
ALERTS = inputs.alerts(_DEFAULT_FILES)


def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path
