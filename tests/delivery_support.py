"""Shared by the delivery tests: the build with a fixture dashboard added, and what to parametrize over.

The fixture covers what the real dashboards may not (a collapsed row, a panel pinned to the
configured datasource, a constant variable); the real dashboards and alerts are covered as soon as
the build renders them, since the parameters come from the build itself.
"""

import json
from pathlib import Path
from typing import Any

from dashboards.builder import canonical
from pdobs.build import make
from pdobs.build.model import BuildModel, DashboardModel
from pdobs.core import config, paths

FIXTURE_UID = "pd-delivery-fixture"
FIXTURE = paths.ROOT / "tests" / "fixtures" / "delivery" / "dashboard.json"


def fixture_json() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def fixture_dashboard(data: dict[str, Any] | None = None) -> DashboardModel:
    """The fixture (or `data` in its place) as a dashboard of the build model."""
    data = fixture_json() if data is None else data
    return DashboardModel(data["uid"], data["title"], canonical(data), {})


def with_fixture(cfg: dict[str, Any], data: dict[str, Any] | None = None) -> BuildModel:
    return make.model(cfg).with_dashboards(fixture_dashboard(data))


_RENDERED: dict[str, tuple[dict[str, Any], dict[str, str], BuildModel]] = {}


def _build(overrides: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str], BuildModel]:
    key = json.dumps(overrides, sort_keys=True)
    if key not in _RENDERED:
        cfg = config.load(overrides=overrides)
        model = with_fixture(cfg)
        _RENDERED[key] = cfg, make.files(cfg, model), model
    return _RENDERED[key]


def render(overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(config, build files with the fixture dashboard); memoized per overrides, so callers must
    not mutate what they get."""
    cfg, files, _ = _build(overrides)
    return cfg, files


_DEFAULT_MODEL = _build(None)[2]
DASHBOARD_UIDS = sorted(_DEFAULT_MODEL.dashboards)
ALERTS = _DEFAULT_MODEL.alerts


def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path
