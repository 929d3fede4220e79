"""The three Grafana dashboards, defined with grafanalib from the signal catalog."""
