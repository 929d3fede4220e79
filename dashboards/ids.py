"""The dashboards' uids: stable, because links, bookmarks and alert runbooks point at them."""

PERFORMANCE = "pd-performance"
COORDINATOR = "pd-coordinator"
DRILLDOWN = "pd-diagnostic-drilldown"
