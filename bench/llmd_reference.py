"""llm-d's own Diagnostic Drill-Down, as the reference the benchmark measures ours against.

These are facts about llm-d's dashboard, restated (not its JSON): every panel's query, width and
kind, from `guides/recipes/observability/grafana/dashboards/llm-d-diagnostic-drilldown-dashboard.json`
in llm-d/llm-d at commit c95d732e9521c7eaa82651ab9c2f021d82e9c363 (PR #1880, "Update EPP metrics
prefix", June 2026; read from the fork zetxqx/llm-d, which carries that commit). Every panel is a
range query (`"range": true`), none sits in a collapsed row, and the dashboard's default range is
the last 6 hours. Its variables are `$namespace` and `$model_name`; the benchmark sets them as it
sets ours (the fleet's namespace, every model).

The data is the benchmark's own simulated fleet: the simulator exports no
`llm_d_epp_plugin_duration_seconds`, so "Routing Decision Latency" returns nothing and costs
next to nothing here; on a real EPP it costs more, so the ratio measured is if anything low.
"""

from dataclasses import dataclass

SOURCE = {
    "repo": "llm-d/llm-d",
    "path": "guides/recipes/observability/grafana/dashboards/llm-d-diagnostic-drilldown-dashboard.json",
    "commit": "c95d732e9521c7eaa82651ab9c2f021d82e9c363",
    "read_from": "zetxqx/llm-d",
}
TITLE = "llm-d Diagnostic Drill-Down"

_SEL = 'namespace=~"$namespace",model_name=~"$model_name"'


@dataclass(frozen=True)
class ReferencePanel:
    title: str
    width: int  # grid columns
    expr: str


DRILLDOWN: tuple[ReferencePanel, ...] = (
    ReferencePanel("KV Cache Utilization", 12, f"avg by(pod) (vllm:kv_cache_usage_perc{{{_SEL}}})"),
    ReferencePanel("Request Queue Lengths", 12, f"sum by(pod) (vllm:num_requests_waiting{{{_SEL}}})"),
    ReferencePanel("Model Throughput", 12,
                   f"sum by(model_name, pod) (rate(vllm:prompt_tokens_total{{{_SEL}}}[5m]) + "
                   f"rate(vllm:generation_tokens_total{{{_SEL}}}[5m]))"),
    ReferencePanel("Generation Token Rate", 12,
                   f"sum by(model_name, pod) (rate(vllm:generation_tokens_total{{{_SEL}}}[5m]))"),
    ReferencePanel("Queue Utilization", 12, f"avg by(pod) (vllm:num_requests_running{{{_SEL}}})"),
    ReferencePanel("Request Distribution", 12,
                   f'sum by(pod) (rate(inference_objective_request_total{{target_model_name!="",{_SEL}}}[5m]))'),
    ReferencePanel("Token Distribution", 12,
                   f"sum by(pod) (rate(vllm:prompt_tokens_total{{{_SEL}}}[5m]) + "
                   f"rate(vllm:generation_tokens_total{{{_SEL}}}[5m]))"),
    ReferencePanel("Idle GPU Time", 12,
                   f"1 - avg by(pod) (rate(vllm:iteration_tokens_total_count{{{_SEL}}}[5m]) > 0)"),
    ReferencePanel("Routing Decision Latency", 12,
                   'histogram_quantile(0.99, sum by(le, plugin_type) '
                   '(rate(llm_d_epp_plugin_duration_seconds_bucket{namespace=~"$namespace"}[5m])))'),
    ReferencePanel("Prefix Cache Hit Rate", 8,
                   f"sum(rate(vllm:prefix_cache_hits_total{{{_SEL}}}[5m])) / "
                   f"sum(rate(vllm:prefix_cache_queries_total{{{_SEL}}}[5m]))"),
    ReferencePanel("Per-Instance Hit Rate", 16,
                   f"sum by(pod) (rate(vllm:prefix_cache_hits_total{{{_SEL}}}[5m])) / "
                   f"sum by(pod) (rate(vllm:prefix_cache_queries_total{{{_SEL}}}[5m]))"),
    ReferencePanel("Prefill Worker Utilization", 12,
                   f'avg by(pod) (vllm:num_requests_running{{pod=~".*prefill.*",{_SEL}}})'),
    ReferencePanel("Decode Worker Utilization", 12,
                   f'avg by(pod) (vllm:kv_cache_usage_perc{{pod=~".*decode.*",{_SEL}}})'),
    ReferencePanel("Prefill Queue Length", 12,
                   f'sum by(pod) (vllm:num_requests_waiting{{pod=~".*prefill.*",{_SEL}}})'),
)
