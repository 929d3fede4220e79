"""`make demo`: a scenario in a local Prometheus, the doctor's verdict on it, everything stopped."""

import io
import re
import subprocess

import pytest
import requests

from alerts import render as alert_rules
from pdobs import cli, demo
from pdobs.build import make
from pdobs.core import config, paths
from recording_rules import render as recording_rules


@pytest.fixture
def build_dir(tmp_path):
    """The rule files `make build` writes, enough for the demo to load and list them."""
    cfg = config.load()
    every = make.build(cfg)
    files = {rel: every[rel] for rel in (recording_rules.RULE_FILE, alert_rules.RULE_FILE)}
    for rel in demo.RULE_FILES:
        (tmp_path / "build" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "build" / rel).write_text(files[rel])
    return tmp_path / "build"


def _url(text: str) -> str:
    match = re.search(r"^Prometheus (http://127\.0\.0\.1:\d+) ", text, re.M)
    assert match, text
    return match.group(1)


def test_collapsed_demo_shows_the_collapse_and_stops_prometheus(build_dir):
    out = io.StringIO()
    result, expected = demo.run("collapsed", out=out, build_dir=build_dir, duration_min=20)
    text = out.getvalue()
    assert expected == "COLLAPSED TO AGGREGATED"
    assert [d.verdict for d in result.deployments] == [expected]
    assert "Verdict:   COLLAPSED TO AGGREGATED" in text
    assert "the doctor's verdict matches it" in text
    assert "recording rules loaded" in text  # the built rule files were loaded into the demo server
    assert "Prometheus rules" in text and "prometheus/recording-rules.yaml" in text
    assert text.rstrip().endswith("Stopped Prometheus and removed its data.")
    with pytest.raises(requests.ConnectionError):
        requests.get(_url(text) + "/-/ready", timeout=2)


def test_demo_without_a_build_says_to_run_make_build(tmp_path):
    out = io.StringIO()
    result, expected = demo.run("healthy_pd", out=out, build_dir=tmp_path / "none", duration_min=15)
    assert expected == "DISAGGREGATED" and result.exit_code == 0
    assert "run `make build`" in out.getvalue()


def test_demo_command_exit_codes(capsys):
    assert cli.main(["demo", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "collapsed" in listed and "healthy_pd" in listed
    assert cli.main(["demo", "--scenario", "no_such_scenario"]) == 2
    err = capsys.readouterr().err
    assert "--scenario 'no_such_scenario': unknown" in err and "healthy_pd" in err


def test_make_demo_runs_the_demo_command_with_the_chosen_scenario():
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "demo", *args], cwd=paths.ROOT, capture_output=True, text=True,
                              check=True).stdout

    assert "build.py demo --scenario collapsed" in dry()
    assert "build.py demo --scenario healthy_pd" in dry("SCENARIO=healthy_pd")
    assert "--keep" in dry("KEEP=1") and "--keep" not in dry()
