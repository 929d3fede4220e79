"""Render the three dashboards to build/dashboards/<uid>.json, and find panels for links."""

from types import ModuleType
from typing import Any

from dashboards import coordinator, drilldown, performance
from dashboards.builder import Built, build, panel_path, render_json
from dashboards.spec import Dashboard

Config = dict[str, Any]
MODULES: tuple[ModuleType, ...] = (performance, coordinator, drilldown)


def specs(cfg: Config) -> list[Dashboard]:
    return [m.dashboard(cfg) for m in MODULES]


def build_all(cfg: Config) -> dict[str, Built]:
    all_specs = specs(cfg)
    return {spec.uid: build(cfg, spec, all_specs) for spec in all_specs}


def render(cfg: Config) -> dict[str, str]:
    return {f"dashboards/{uid}.json": render_json(built.json) for uid, built in build_all(cfg).items()}


def panel_url(cfg: Config, uid: str, key: str) -> str:
    """Link to one panel (for alert runbooks and annotations): absolute when grafana.url is set."""
    built = build_all(cfg)[uid]
    if key not in built.ids:
        raise KeyError(f"dashboard {uid} has no panel {key!r}; known: {sorted(built.ids)}")
    return cfg["grafana"]["url"].rstrip("/") + panel_path(uid, built.ids[key])
