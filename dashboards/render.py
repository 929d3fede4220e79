"""The three dashboards: built into the model from their specs, then written to
build/dashboards/<uid>.json from it."""

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from dashboards import coordinator, drilldown, performance
from dashboards.builder import build, render_json
from dashboards.spec import Dashboard
from pdobs.build.model import BuildModel, DashboardModel

Config = dict[str, Any]
MODULES: tuple[ModuleType, ...] = (performance, coordinator, drilldown)


def specs(cfg: Config) -> list[Dashboard]:
    return [m.dashboard(cfg) for m in MODULES]


def build_all(cfg: Config) -> Mapping[str, DashboardModel]:
    all_specs = specs(cfg)
    return {spec.uid: build(cfg, spec, all_specs) for spec in all_specs}


def render(cfg: Config, model: BuildModel) -> dict[str, str]:
    return {f"dashboards/{uid}.json": render_json(dict(board.json)) for uid, board in model.dashboards.items()}
