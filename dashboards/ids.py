"""The dashboards' uids, and the key of the panel other artefacts point at most: stable, because
links, bookmarks, alert annotations and runbooks point at them."""

PERFORMANCE = "pd-performance"
COORDINATOR = "pd-coordinator"
DRILLDOWN = "pd-diagnostic-drilldown"

# The drill-down's verdict panel (alerts and the doctor link to it; each check's panel key is
# pdobs.checks.Check.panel_key).
VERDICT_PANEL = "verdict"
