"""No secret on argv and none in output: no prefix matching of options, unknown options named
without their values, URLs with user:password@ refused, and no option that takes a secret."""

import argparse
import re

import pytest

from bench import run as bench_run
from pdobs import cli

SECRET = "hunter2-s3cret-value"


def _parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [p]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _parsers(sub)
    return out


def test_no_parser_matches_options_by_prefix():
    parsers = [*_parsers(cli.parser()), bench_run.parser()]
    assert len(parsers) >= 7
    assert [p.prog for p in parsers if p.allow_abbrev] == []


def test_no_option_takes_a_secret_value():
    secretish = re.compile(r"token|password|secret|api_key|apikey|credential")
    offenders = [opt for p in _parsers(cli.parser()) for a in p._actions if a.option_strings and a.nargs != 0
                 for opt in a.option_strings if secretish.search(opt) and not opt.endswith("-file")]
    assert offenders == []


@pytest.mark.parametrize("argv", [
    ["--tok", SECRET],
    [f"--tok={SECRET}"],
    ["--tok", SECRET, "doctor", "--prometheus", "http://127.0.0.1:9"],
    ["doctor", "--prometheus", "http://127.0.0.1:9", "--tok", SECRET],
    ["doctor", "--prometheus", "http://127.0.0.1:9", "--password", SECRET],
    ["doctor", "--prometheus", "http://127.0.0.1:9", f"--passw={SECRET}"],
    ["push", "--grafana-url", "http://127.0.0.1:9", "--token-fi", SECRET],
    ["push", "--grafana-url", "http://127.0.0.1:9", "--api-key", SECRET],
    ["push", "--grafana-url", "http://127.0.0.1:9", "--since", SECRET],  # a doctor option, not push's
    ["push", "--grafana-url", "http://127.0.0.1:9", SECRET],
    ["--tok", f"-{SECRET}"],
    ["doctor", "--prometheus", "http://127.0.0.1:9", "--tok", f"-{SECRET}"],
], ids=lambda argv: " ".join(a.replace(SECRET, "S") for a in argv))
def test_unknown_or_abbreviated_options_never_echo_their_value(capsys, argv: list[str]):
    with pytest.raises(SystemExit) as stop:
        code = cli.main(argv)
        raise SystemExit(code)
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert SECRET not in out + err
    assert "unrecognized arguments" in err or "never taken on the command line" in err


@pytest.mark.parametrize(("argv", "hint"), [
    (["doctor", "--prometheus", f"http://alice:{SECRET}@127.0.0.1:9"], "PROMETHEUS_USERNAME"),
    (["doctor", "--prometheus", f"https://{SECRET}@127.0.0.1:9"], "PROMETHEUS_USERNAME"),
    (["push", "--grafana-url", f"https://admin:{SECRET}@grafana.example.com"], "GRAFANA_TOKEN"),
], ids=["doctor-user-password", "doctor-user", "push"])
def test_urls_with_credentials_are_refused_without_echoing_them(capsys, monkeypatch, argv: list[str], hint: str):
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_x")
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "credentials in the URL are refused" in err and hint in err
    assert SECRET not in out + err
