"""The delivery sections of the config: bad input fails with one line naming the field."""

import pytest

from pdobs.core import config

BAD = [
    ({"kubernetes": {"namespace": "Monitoring"}}, "kubernetes.namespace", "Kubernetes name"),
    ({"kubernetes": {"prometheus_rule_labels": {"release": "has space"}}}, "kubernetes.prometheus_rule_labels",
     "label"),
    ({"kubernetes": {"grafana_sidecar": {"label_value": 1}}}, "kubernetes.grafana_sidecar.label_value", "label value"),
    ({"kubernetes": {"grafana_operator": {"instance_selector": "dashboards"}}},
     "kubernetes.grafana_operator.instance_selector", "dashboards=grafana"),
    ({"kubernetes": {"grafana_sidecar": {"folder": "x"}}}, "kubernetes.grafana_sidecar.folder", "unknown key"),
    ({"grafana": {"provisioning": {"path": "dashboards"}}}, "grafana.provisioning.path", "absolute path"),
    ({"grafana": {"push": {"retries": 100}}}, "grafana.push.retries", "0 to 10"),
    ({"grafana": {"push": {"timeout_seconds": 0}}}, "grafana.push.timeout_seconds", "above 0"),
    ({"alertmanager": {"routing": {"critical": ["opsgenie"]}}}, "alertmanager.routing.critical", "pagerduty, slack"),
    ({"alertmanager": {"routing": {"page": ["pagerduty"]}}}, "alertmanager.routing.page", "unknown key"),
    ({"alertmanager": {"group_wait": "soon"}}, "alertmanager.group_wait", "duration"),
    ({"alertmanager": {"explained_group_wait": "10s"}}, "alertmanager.explained_group_wait", "at least group_wait"),
    ({"alertmanager": {"pagerduty": {"url": "events.pagerduty.com"}}}, "alertmanager.pagerduty.url", "http"),
    ({"alertmanager": {"slack": {"channel": "#two words"}}}, "alertmanager.slack.channel", "channel"),
    ({"alertmanager": {"slack": {"receiver": "pd-null"}}}, "alertmanager.slack.receiver", "distinct"),
    ({"alertmanager": {"pagerduty": {"routing_key": "abc"}}}, "alertmanager.pagerduty.routing_key", "unknown key"),
]


@pytest.mark.parametrize(("override", "field", "words"), BAD, ids=[b[1] for b in BAD])
def test_bad_delivery_config_names_the_field(override, field, words):
    with pytest.raises(config.ConfigError) as exc:
        config.load(overrides=override)
    message = str(exc.value)
    assert "\n" not in message
    assert field in message and words in message, message
