"""Which renderers make up a build. Each takes the validated config and returns
{path relative to the output folder: file content}.

POST_RENDERERS run afterwards and also receive the files rendered so far (read-only): delivery
repackages dashboards and rules for Grafana, Kubernetes and Alertmanager instead of rebuilding them.
"""

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from alerts import render as alerts
from dashboards import render as dashboards
from delivery import alertmanager as delivery_alertmanager
from delivery import grafana as delivery_grafana
from delivery import kubernetes as delivery_kubernetes
from recording_rules import render as recording_rules
from scaleout import mimir

Renderer = Callable[[dict[str, Any]], dict[str, str]]
PostRenderer = Callable[[dict[str, Any], Mapping[str, str]], dict[str, str]]

RENDERERS: list[Renderer] = [
    recording_rules.render,
    dashboards.render,
    alerts.render,
    mimir.render,
]


POST_RENDERERS: list[PostRenderer] = [
    delivery_grafana.render,
    delivery_kubernetes.render,
    delivery_alertmanager.render,
]


def _add(files: dict[str, str], new: dict[str, str]) -> None:
    for rel, content in new.items():
        if rel in files:
            raise AssertionError(f"two renderers write {rel}")
        files[rel] = content


def render_all(cfg: dict[str, Any], extra: Sequence[Renderer] = ()) -> dict[str, str]:
    """Every artefact; `extra` renderers run with the primary ones (tests add fixtures there)."""
    files: dict[str, str] = {}
    for renderer in [*RENDERERS, *extra]:
        _add(files, renderer(cfg))
    for post in POST_RENDERERS:
        _add(files, post(cfg, MappingProxyType(dict(files))))
    return files
