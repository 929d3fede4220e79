"""The build model: everything a build produces, typed, made from the config once.

Rule groups, alerts and dashboards (each with an index of its panels by stable key) live here
before any file is written. Whatever links one artefact to another reads this model: an alert's
`dashboard_url` and a runbook's panel pointer read the panel index, the doctor its panel ids and
runbook URLs, Mimir, Kubernetes and Alertmanager the rule groups, Grafana provisioning, import
and push the dashboards. Nothing is rendered twice and nothing is parsed back.

The dataclasses are frozen; the mappings and the dashboard JSON they hold are read-only by
convention (consumers that change a dashboard, such as the import form, copy it first).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

JSON = dict[str, Any]


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr, **({"labels": dict(self.labels)} if self.labels else {})}


@dataclass(frozen=True)
class AlertingRule:
    name: str
    expr: str
    for_: str
    keep_firing_for: str | None  # None: not written (a zero duration)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @property
    def severity(self) -> str:
        return self.labels["severity"]

    def as_dict(self) -> dict[str, Any]:
        keep = {} if self.keep_firing_for is None else {"keep_firing_for": self.keep_firing_for}
        return {"alert": self.name, "expr": self.expr, "for": self.for_, **keep, "labels": dict(self.labels),
                "annotations": dict(self.annotations)}


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval: str
    rules: tuple[RecordingRule | AlertingRule, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "interval": self.interval, "rules": [r.as_dict() for r in self.rules]}


class PanelRef(NamedTuple):
    """A panel (or row) of a dashboard: its stable key, the id Grafana knows it by, its title."""
    key: str
    id: int
    title: str


@dataclass(frozen=True)
class DashboardModel:
    uid: str
    title: str
    json: Mapping[str, Any]  # the Grafana JSON, keys in canonical (sorted) order
    panels: Mapping[str, PanelRef]  # by stable panel key

    def panel(self, key: str) -> PanelRef:
        if key not in self.panels:
            raise KeyError(f"dashboard {self.uid} has no panel {key!r}; known: {sorted(self.panels)}")
        return self.panels[key]

    def path(self, key: str) -> str:
        """/d/<uid>?viewPanel=<id> of the panel with this key."""
        return f"/d/{self.uid}?viewPanel={self.panel(key).id}"


@dataclass(frozen=True)
class BuildModel:
    recording_groups: tuple[RuleGroup, ...]
    alert_groups: tuple[RuleGroup, ...]
    dashboards: Mapping[str, DashboardModel]  # by uid
    runbook_urls: Mapping[str, str]  # alert name -> runbook URL, for every defined alert

    @property
    def rule_groups(self) -> tuple[RuleGroup, ...]:
        """Every rule group, recording groups first (alerts read the recorded series)."""
        return self.recording_groups + self.alert_groups

    @property
    def alerts(self) -> tuple[AlertingRule, ...]:
        return tuple(r for g in self.alert_groups for r in g.rules if isinstance(r, AlertingRule))

    def with_dashboards(self, *extra: DashboardModel) -> "BuildModel":
        """This model with more dashboards (the delivery tests add a fixture that way)."""
        return replace(self, dashboards={**self.dashboards, **{d.uid: d for d in extra}})
