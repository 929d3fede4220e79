"""What a deployment must run for a panel to have data.

A query that needs a feature may be empty on deployments without it; its panel says so through
`noValue` instead of a bare "No Data", and the behaviour tests only demand data where every
feature a query needs is present. Keys are referred to by `Query.needs`.
"""

FEATURES: dict[str, str] = {
    "pd": "P/D deployed (prefill pods up)",
    "kv": ("a KV connector exporting transfer metrics on a P/D deployment (NIXL on vLLM 0.11.1 or later, "
           "Mooncake on 0.33 or later)"),
    "nixl": "vLLM 0.11.1 or later with the NIXL connector on a P/D deployment",
    "kv_expired": "vLLM 0.16 or later with NIXL (0.33 with Mooncake) on a P/D deployment",
    "nixl_after_expiry": "vLLM 0.33 or later with the NIXL connector on a P/D deployment",
    "kv_delivery": "vLLM 0.16 or later on a P/D deployment (prompt tokens by source, any connector)",
    "kv_fetch": "vLLM 0.33 or later on a P/D deployment (pods whose kv_role consumes KV)",
    "error_reason": "vLLM 0.14 or later (requests finished with finished_reason error)",
    "epp_ttft": "llm-d-router v0.9 or later (client-side TTFT at the EPP)",
    "pd_decisions": "llm-d-inference-scheduler v0.5 or later (P/D decision counters per model)",
    "pd_decisions_v0_4": "llm-d-inference-scheduler v0.4 (P/D decision counters without a model label)",
    "epp_poll_errors": "llm-d-router v0.9 or later (datalayer poll errors)",
    "epp_pod_queue": "an EPP exporting GAIE's per-pod queue gauge",
    "targets_down": "a model-server target failing its scrape (none on a healthy deployment)",
    "alerts": "this project's alert rules loaded in Prometheus, and one of them firing",
}
