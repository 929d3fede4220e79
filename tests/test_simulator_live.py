"""A real Prometheus scrapes the simulator's live endpoint."""

from __future__ import annotations

from simulator import scenarios as S

SPEED = 120  # two scenario minutes per wall-clock second
SHORT = {"duration_min": 30}


def test_prometheus_scrapes_each_simulated_target_and_sees_the_fix(
    live_endpoint, prometheus_server
):
    broken = S.combine(
        S.get("collapsed", namespace="ns-a", fault_start_min=0, **SHORT),
        S.get("target_down", namespace="ns-b", fault_start_min=0, **SHORT),
    )
    endpoint = live_endpoint(broken, speed=SPEED)
    prom = prometheus_server(
        scrape_configs=endpoint.scrape_configs(scrape_interval_s=1),
        scrape_interval="1s", evaluation_interval="1s",
    )  # fmt: skip
    down_pod = broken.truth["parts"]["ns-b"]["down_pods"]["decode-1"]

    # Every target is scraped on its own, with the PodMonitor / ServiceMonitor labels.
    prom.wait_for('count(up{namespace="ns-a"} == 1) == 3', timeout_s=30)
    prom.wait_for(f'up{{namespace="ns-b",pod="{down_pod}"}} == 0', timeout_s=30)
    jobs = {r["metric"]["job"] for r in prom.query('up{namespace="ns-a"}')}
    assert jobs == {"ns-a/ms-pd-llm-d-modelservice-prefill-podmonitor",
                    "ns-a/ms-pd-llm-d-modelservice-decode-podmonitor", "gaie-pd-epp"}  # fmt: skip
    # A vLLM counter grows with wall-clock time; the collapsed prefill pod stays idle.
    decode = 'vllm:request_success_total{namespace="ns-a",pod=~".*-decode-.*"}'
    prefill = 'vllm:request_success_total{namespace="ns-a",pod=~".*-prefill-.*"}'
    prom.wait_for(f"sum(increase({decode}[5s])) > 0", timeout_s=30)
    assert prom.query_value(f"sum({prefill})") == 0
    assert not prom.query(f'vllm:request_success_total{{pod="{down_pod}"}}')

    # The fix: the same pods, now healthy. Counters continue, the prefill pod starts working
    # and the target that was down is scraped again.
    before = prom.query_value(f"sum({decode})")
    endpoint.switch(S.combine(
        S.get("healthy_pd", namespace="ns-a", **SHORT),
        S.get("healthy_pd", namespace="ns-b", decode_pods=2, **SHORT),
    ))  # fmt: skip
    prom.wait_for(f"sum(increase({prefill}[5s])) > 0", timeout_s=30)
    prom.wait_for(f'up{{namespace="ns-b",pod="{down_pod}"}} == 1', timeout_s=30)
    assert prom.query_value(f"sum({decode})") >= before
    assert prom.query_value(f"sum(resets({decode}[1m]))") == 0


def test_prometheus_scrapes_all_targets_from_one_endpoint_with_honor_labels(
    live_endpoint, prometheus_server
):
    scenario = S.get("healthy_pd", **SHORT)
    endpoint = live_endpoint(scenario, speed=SPEED)
    prom = prometheus_server(
        scrape_configs=endpoint.scrape_configs(scrape_interval_s=1, per_target=False),
        scrape_interval="1s", evaluation_interval="1s",
    )  # fmt: skip
    # The exposition's own labels win: per-pod `up` and series with their real job/pod.
    prom.wait_for('up{job="llm-d/ms-pd-llm-d-modelservice-decode-podmonitor"} == 1', timeout_s=30)
    prom.wait_for('sum(increase(vllm:request_success_total{pod=~".*-prefill-.*"}[5s])) > 0',
                  timeout_s=30)  # fmt: skip
    assert prom.query_value('up{job="pd-simulator"}') == 1  # the endpoint itself
    pods = {r["metric"]["pod"] for r in prom.query("vllm:num_requests_running")}
    assert pods == {scenario.truth["pods"]["prefill-0"], scenario.truth["pods"]["decode-0"]}
