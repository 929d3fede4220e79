"""Delivery: turn the build model's dashboards and rules into what Grafana, Kubernetes and
Alertmanager take (file provisioning, import-by-hand JSON, manifests, a routing config).

Each renderer here reads the model (pdobs/build/model.py), so a dashboard or rule is made once
and only repackaged here: nothing is rendered again or parsed back from a file.
"""


class RenderError(Exception):
    """Rendered content that cannot be delivered (too large, placeholders left); one line."""
