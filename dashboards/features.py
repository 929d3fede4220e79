"""What a deployment must run for a panel to have data.

A query that needs a feature may be empty on deployments without it; its panel says so through
`noValue` instead of a bare "No Data", and the behaviour tests only demand data where every
feature a query needs is present. Keys are referred to by `Query.needs`.
"""

FEATURES: dict[str, str] = {
    "pd": "P/D deployed (prefill pods up)",
    "nixl": "vLLM 0.11.1 or later with the NIXL connector on a P/D deployment",
    "nixl_expired": "vLLM 0.16 or later on a P/D deployment",
    "epp_ttft": "llm-d-router v0.9 or later (client-side TTFT at the EPP)",
    "pd_decisions": "llm-d-inference-scheduler v0.4 or later (P/D decision counters)",
    "epp_pod_queue": "an EPP exporting GAIE's per-pod queue gauge",
    "targets_down": "a model-server target failing its scrape (none on a healthy deployment)",
    "alerts": "this project's alert rules loaded in Prometheus, and one of them firing",
}
