"""The command line's shape: the same options in the same places on every subcommand, --help and
--version, and every mistake a one-line error with exit 2 (never a traceback, never silence)."""

import json
from pathlib import Path

import pytest

from pdobs import __version__, cli

SUBCOMMANDS = ("build", "render", "docs", "doctor", "demo", "push")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "my.yaml"
    path.write_text("grafana:\n  refresh: 1m\n")
    return path


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_prints_its_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith("usage: ") and "--config FILE" in out
    assert len(out.splitlines()) > 5, "a description, not just the usage line"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"pdobs {__version__} (llm-d P/D observability)\n"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_config_goes_before_or_after_the_subcommand(capsys, tmp_path, command):
    missing = tmp_path / "missing.yaml"
    extra = {"doctor": ["--prometheus", "http://127.0.0.1:1"], "push": ["--grafana-url", "http://127.0.0.1:1"],
             "demo": []}.get(command, ["--out", str(tmp_path / "out")])
    for argv in (["--config", str(missing), command, *extra], [command, "--config", str(missing), *extra]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "", argv
        assert f"config file {missing}: cannot read it" in one_line_error(err), argv


def test_build_takes_out_and_config_either_side(capsys, tmp_path, config_file):
    for i, argv in enumerate((["--config", str(config_file), "build", "--out", "{}"],
                              ["build", "--config", str(config_file), "--out", "{}"],
                              ["--out", "{}", "--config", str(config_file)],
                              ["render", "--config", str(config_file), "--out", "{}"])):
        out_dir = tmp_path / f"out{i}"
        code, out, err = run(capsys, *[a.format(out_dir) for a in argv])
        assert code == 0, err
        assert out == f"wrote 22 files to {out_dir}\n"
        dashboard = json.loads((out_dir / "dashboards" / "pd-coordinator.json").read_text())
        assert dashboard["refresh"] == "1m", "the --config file was read"


def test_out_where_nothing_is_written_is_an_error(capsys):
    code, _, err = run(capsys, "--out", "x", "doctor", "--prometheus", "http://127.0.0.1:1")
    assert code == 2 and "--out: `doctor` writes no files" in one_line_error(err)
    code, _, err = run(capsys, "push", "--out", "x", "--grafana-url", "http://127.0.0.1:1")
    # Named, never echoed with its value (a value may be a secret typed in the wrong place).
    assert code == 2 and "unrecognized arguments: --out " in one_line_error(err) and " x " not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["push", "--grafana-url", "https://g", "--insecure"], "the flag is --insecure-skip-verify"),
    (["doctor", "--prometheus", "https://p", "--insecure"], "the flag is --insecure-skip-verify"),
    (["doctor", "--prometheus", "http://p", "--names", "x"], "unrecognized arguments: --names"),  # no abbreviations
    (["doctor", "--prometheus", "http://p", "--insecure-skip"], "did you mean --insecure-skip-verify?"),
    (["doctor"], "the following arguments are required: --prometheus"),
    (["doctor", "--prometheus", "http://p", "--output", "yaml"], "invalid choice: 'yaml'"),
    (["bogus-command"], "invalid choice: 'bogus-command'"),
    (["--token", "abc", "push", "--grafana-url", "https://g"], "a token is never taken on the command line"),
    (["doctor", "--prometheus", "http://127.0.0.1:1", "--cluster", "east"],
     "--cluster east: multi_cluster is off in the config"),
    (["doctor", "--prometheus", "http://127.0.0.1:1", "--time", "yesterday"], "--time 'yesterday': expected"),
    (["doctor", "--prometheus", "ftp://p"], "expected an http:// or https:// URL"),
    (["push", "--grafana-url", "https://g", "--ca-file", "/nonexistent.pem"], None),
])
def test_mistakes_are_one_line_errors(capsys, monkeypatch, argv, message):
    monkeypatch.setenv("GRAFANA_TOKEN", "t")
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "", (argv, out)
    line = one_line_error(err)
    assert message is None or message in line, line
    assert "Traceback" not in err


def test_help_hint_names_the_subcommand(capsys):
    _, _, err = run(capsys, "push", "--grafana-url", "https://g", "--insecure")
    assert err.rstrip().endswith("(see pdobs push --help)")


def test_json_output_is_one_object_on_every_failure(capsys, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    cases = [
        ["doctor", "--output", "json"],  # an argument error
        ["doctor", "--output=json", "--prometheus", "http://127.0.0.1:1", "--config", str(empty)],  # config
        ["doctor", "--output", "json", "--prometheus", "http://127.0.0.1:1", "--cluster", "x"],  # scope
        ["doctor", "--output", "json", "--prometheus", "http://127.0.0.1:1"],  # unreachable
    ]
    for argv in cases:
        code, out, err = run(capsys, *argv)
        line = one_line_error(err)
        data = json.loads(out)  # exactly one JSON document on stdout
        assert data == {"error": line.removeprefix("error: ").rstrip("\n"), "exit_code": 2} and code == 2, argv


def test_an_empty_config_file_is_an_error(capsys, tmp_path):
    for text in ("", "# nothing but a comment\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        code, out, err = run(capsys, "--config", str(path), "--out", str(tmp_path / "out"))
        assert code == 2 and out == ""
        assert f"config file {path}: empty (no settings)" in one_line_error(err)
        assert not (tmp_path / "out").exists(), "nothing half-written"


def test_a_key_given_twice_is_an_error_naming_its_line(capsys, tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("alerts:\n  PDPrefillIdle: {for: 10m}\ngrafana:\n  refresh: 1m\nalerts:\n"
                    "  PDKVTransferAbsent: {for: 10m}\n")
    code, out, err = run(capsys, "build", "--config", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and out == ""
    assert f"config file {path} line 5: key 'alerts' appears twice in one mapping" in one_line_error(err)
    nested = tmp_path / "nested.yaml"
    nested.write_text("alerts:\n  PDPrefillIdle:\n    for: 10m\n    for: 20m\n")
    code, _, err = run(capsys, "build", "--config", str(nested), "--out", str(tmp_path / "out"))
    assert code == 2 and "line 4: key 'for' appears twice" in one_line_error(err)
    anchors = tmp_path / "anchors.yaml"  # overriding a key merged in with << is not a duplicate
    anchors.write_text("alerts:\n  PDPrefillIdle: &slow {for: 10m, keep_firing_for: 5m}\n"
                       "  PDKVTransferAbsent:\n    <<: *slow\n    for: 15m\n")
    code, _, err = run(capsys, "build", "--config", str(anchors), "--out", str(tmp_path / "out"))
    assert code == 0, err


def test_build_says_when_runbook_url_is_still_the_default(capsys, tmp_path):
    code, _, err = run(capsys, "build", "--out", str(tmp_path / "a"))
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("notice: runbook_url is still the project's default; set runbook_url in your config")
    own = tmp_path / "own.yaml"
    own.write_text("runbook_url: https://runbooks.example.com/pd/{alert}.html\n")
    code, _, err = run(capsys, "build", "--config", str(own), "--out", str(tmp_path / "b"))
    assert (code, err) == (0, "")


def test_no_arguments_builds_into_build_in_the_current_folder(capsys, tmp_path, monkeypatch):
    # `python build.py` as the README says it, with nothing after it.
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys)
    assert code == 0, err
    assert out.startswith("wrote 22 files to ") and (tmp_path / "build" / "prometheus" / "alerts.yaml").is_file()
