"""Which rule-file fields each ruler accepts, as data, so a test can keep ours portable.

Prometheus, Thanos Rule and the Cortex/Mimir rulers parse rule files with (a fork of) Prometheus'
rulefmt; Thanos parses strictly (an unknown field is an error), Mimir/Cortex keep only the fields
of their protobuf rule group (anything else is silently lost when the group is stored). vmalert has
its own parser with more group options. Sources: Prometheus rulefmt; Thanos pkg/rules/manager.go
(rulefmt.RuleGroup inline + partial_response_strategy); Mimir pkg/ruler/rulespb/rules.proto
(RuleGroupDesc, RuleDesc); vmalert's documentation of groups and rules. Which release of each
first evaluates keep_firing_for is in docs/scaling-out.md.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RULE_FIELDS = frozenset({"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"})


@dataclass(frozen=True)
class Ruler:
    name: str
    group_fields: frozenset[str]
    rule_fields: frozenset[str]


RULERS: tuple[Ruler, ...] = (
    Ruler("Prometheus 3.5", frozenset({"name", "interval", "query_offset", "limit", "labels", "rules"}),
          RULE_FIELDS),
    Ruler("Prometheus 2.53", frozenset({"name", "interval", "query_offset", "limit", "rules"}),
          RULE_FIELDS),
    Ruler("Thanos Rule", frozenset({"name", "interval", "query_offset", "limit", "rules", "partial_response_strategy"}),
          RULE_FIELDS),
    Ruler("Mimir ruler", frozenset({"name", "interval", "rules", "source_tenants", "evaluation_delay", "query_offset",
                                    "align_evaluation_time_on_interval"}),
          RULE_FIELDS),
    Ruler("Cortex ruler", frozenset({"name", "interval", "rules"}), RULE_FIELDS),
    Ruler("vmalert", frozenset({"name", "interval", "eval_offset", "eval_delay", "eval_alignment", "limit", "type",
                                "concurrency", "labels", "params", "headers", "notifier_headers", "debug", "rules"}),
          RULE_FIELDS | {"debug", "update_entries_limit"}),
)


def portable_fields() -> tuple[frozenset[str], frozenset[str]]:
    """Group and rule fields every ruler above accepts."""
    groups = frozenset.intersection(*(r.group_fields for r in RULERS))
    rules = frozenset.intersection(*(r.rule_fields for r in RULERS))
    return groups, rules


def unsupported(groups: Sequence[Mapping[str, Any]], ruler: Ruler) -> Iterator[str]:
    """Each group or rule field in `groups` that `ruler` does not accept, as 'group: field'."""
    for group in groups:
        for key in set(group) - ruler.group_fields:
            yield f"{group.get('name')}: group field {key!r}"
        for rule in group.get("rules", ()):
            for key in set(rule) - ruler.rule_fields:
                yield f"{group.get('name')} / {rule.get('alert') or rule.get('record')}: rule field {key!r}"
