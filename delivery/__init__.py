"""Delivery: turn the rendered dashboards and rules into what Grafana, Kubernetes and Alertmanager
take (file provisioning, import-by-hand JSON, manifests, a routing config).

These renderers run after the others (`pdobs.artefacts.POST_RENDERERS`) and read their output, so
a dashboard or rule is written once and only repackaged here.
"""
