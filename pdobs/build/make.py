"""The build, in two steps: the config becomes one typed model (`model`), then every file is
written from that model (`files`).

Dashboards are built first, so the alerts can link into them through the panel index; after
that nothing is rendered again: Mimir, Kubernetes, Grafana provisioning and import, Alertmanager,
the runbooks, the doctor and `push` all read the model.
"""

from collections.abc import Callable
from typing import Any

from alerts import render as alert_rules
from alerts.definitions import ALERTS
from dashboards import render as dashboards
from delivery import alertmanager, grafana, kubernetes
from pdobs.build.model import BuildModel
from recording_rules import render as recording_rules
from scaleout import mimir

Config = dict[str, Any]
FileStep = Callable[[Config, BuildModel], dict[str, str]]

# Each writes its files (path relative to the output folder -> content) from the model.
FILE_STEPS: tuple[FileStep, ...] = (
    recording_rules.render,
    dashboards.render,
    alert_rules.render,
    mimir.render,
    grafana.render,
    kubernetes.render,
    alertmanager.render,
)


def model(cfg: Config) -> BuildModel:
    boards = dashboards.build_all(cfg)
    return BuildModel(
        recording_groups=recording_rules.rule_groups(cfg),
        alert_groups=alert_rules.rule_groups(cfg, boards),
        dashboards=boards,
        runbook_urls={a.name: alert_rules.runbook_url(cfg, a.name) for a in ALERTS},
    )


def files(cfg: Config, built: BuildModel) -> dict[str, str]:
    out: dict[str, str] = {}
    for step in FILE_STEPS:
        for rel, content in step(cfg, built).items():
            if rel in out:
                raise AssertionError(f"two build steps write {rel}")
            out[rel] = content
    return out


def build(cfg: Config) -> dict[str, str]:
    """Every artefact of a build, by path."""
    return files(cfg, model(cfg))
