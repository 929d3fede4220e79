"""The three Grafana dashboards: specs of catalog signals (spec.py and one module per dashboard),
and the builder that writes Grafana's current JSON model from them (builder.py)."""
