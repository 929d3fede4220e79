"""The doctor on two clusters with the same namespace and pod names (a Thanos-style global view)."""

import json

import pytest

from pdobs import cli
from pdobs.demo.story import TRUTH_VERDICT
from simulator import scenarios


@pytest.fixture(scope="module")
def served(prometheus_for_scenario):
    return prometheus_for_scenario(scenarios.multi_cluster("healthy_pd", "collapsed", duration_min=20))


@pytest.fixture
def multi_cluster(tmp_path):
    path = tmp_path / "multi.yaml"
    path.write_text("multi_cluster: true\n")
    return str(path)


def run(capsys, served, *args):
    code = cli.main(["doctor", "--prometheus", served.url, "--time", str(served.end_time), "--output", "json", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def test_each_cluster_gets_its_own_verdict(capsys, served, multi_cluster):
    code, data, err = run(capsys, served, "--config", multi_cluster)
    assert err == "" and code == 1
    by_cluster = served.scenario.truth["by_cluster"]
    got = {d["labels"]["cluster"]: d["verdict"] for d in data["deployments"]}
    assert got == {c: TRUTH_VERDICT[t["expected_verdict"]] for c, t in by_cluster.items()}
    assert not [f for f in data["findings"] if f["area"] == "clusters"]


def test_cluster_scope(capsys, served, multi_cluster):
    healthy = next(c for c, t in served.scenario.truth["by_cluster"].items()
                   if t["expected_verdict"] == "DISAGGREGATED")
    code, data, _ = run(capsys, served, "--config", multi_cluster, "--cluster", healthy)
    assert code == 0
    assert [d["labels"]["cluster"] for d in data["deployments"]] == [healthy]


def test_several_clusters_without_multi_cluster_are_flagged(capsys, served):
    _, data, _ = run(capsys, served)
    (finding,) = [f for f in data["findings"] if f["area"] == "clusters"]
    assert finding["level"] == "warn" and "set multi_cluster: true" in finding["message"]
    assert finding["details"]["clusters"] == sorted(served.scenario.truth["clusters"])
