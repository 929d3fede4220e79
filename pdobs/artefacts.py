"""Which renderers make up a build. Each takes the validated config and returns
{path relative to the output folder: file content}."""

from collections.abc import Callable
from typing import Any

from alerts import render as alerts
from dashboards import render as dashboards
from recording_rules import render as recording_rules

Renderer = Callable[[dict[str, Any]], dict[str, str]]

RENDERERS: list[Renderer] = [
    recording_rules.render,
    dashboards.render,
    alerts.render,
]


def render_all(cfg: dict[str, Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for renderer in RENDERERS:
        for rel, content in renderer(cfg).items():
            if rel in files:
                raise AssertionError(f"two renderers write {rel}")
            files[rel] = content
    return files
