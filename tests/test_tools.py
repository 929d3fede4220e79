"""The pinned binaries in .tools/bin: present, on their pinned lines, and safely reinstallable.

Nothing here skips when a tool is missing: a missing tool means `make tools` is broken,
and every rule test downstream would silently lose coverage.
"""

import importlib.util
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from pdobs.core.paths import ROOT, TOOLS_BIN
from pdobs.servers.tools import PROMTOOLS, ToolMissingError, installed_versions, tool_path

INSTALLER = ROOT / "tools" / "install_tools.py"


def _load_installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_tools", INSTALLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


installer = _load_installer()
SPECS = {spec.name: spec for spec in installer.TOOLS}
SOURCES = ("PATH: ", "debian (")


def _probe_output(name: str) -> str:
    proc = subprocess.run(
        [str(tool_path(name)), *SPECS[name].probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{name} {SPECS[name].probe}: {proc.stderr}"
    return proc.stdout + proc.stderr


def test_every_pinned_tool_is_recorded():
    assert set(installed_versions()) == set(SPECS)
    for name in SPECS:
        assert tool_path(name).is_file()


@pytest.mark.parametrize(("name", "line"), [("prometheus", "3.5"), ("promtool", "3.5"), ("promtool-2", "2.53")])
def test_prometheus_binaries_report_pinned_line(name, line):
    output = _probe_output(name)
    assert re.search(rf"version {re.escape(line)}\.\d+", output), output
    assert f"version {installed_versions()[name]}" in output


@pytest.mark.parametrize("name", ["alertmanager", "amtool"])
def test_alertmanager_binaries_are_at_least_0_28(name):
    output = _probe_output(name)
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", output)
    assert match, output
    assert tuple(int(part) for part in match.groups()) >= (0, 28, 0)
    assert installed_versions()[name] == ".".join(match.groups())


@pytest.mark.parametrize("name", ["victoria-metrics", "vmalert", "vmalert-tool"])
def test_victoria_metrics_binaries_run(name):
    # Debian's builds report no version of their own; the installer records the .deb's.
    _probe_output(name)
    assert re.match(r"1\.\d+\.\d+", installed_versions()[name])


@pytest.mark.parametrize(("line", "binary"), sorted(PROMTOOLS.items()))
def test_promtools_map_each_major_line_to_its_binary(line, binary):
    assert f"version {line}." in _probe_output(binary)


def test_tool_path_names_the_fix_when_missing():
    with pytest.raises(ToolMissingError) as err:
        tool_path("no-such-tool")
    assert str(err.value) == "'no-such-tool' is not installed in .tools/bin: run `make tools`"


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in root.rglob("*")}


def test_second_run_is_a_noop():
    tools_dir = TOOLS_BIN.parent
    assert (tools_dir / "versions.json").is_file(), "run `make tools` first"
    before = _snapshot(tools_dir)
    proc = subprocess.run([sys.executable, str(INSTALLER)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "installed " not in proc.stdout
    assert _snapshot(tools_dir) == before


def test_unobtainable_pin_fails_naming_every_source(tmp_path, capsys):
    promtool, amtool = SPECS["promtool"], SPECS["amtool"]
    unobtainable = [
        replace(promtool, name="promtool-9", accept="9.99."),
        replace(amtool, name="amtool-9", minimum="9.1"),
    ]
    assert installer.main(["--dest", str(tmp_path)], tools=unobtainable) == 1

    err = capsys.readouterr().err
    assert "could not install 2 tool(s)" in err
    lines = [line.strip() for line in err.splitlines()[1:]]
    assert [line.split()[0] for line in lines] == ["promtool-9", "amtool-9"]
    for line in lines:
        for source in SOURCES:
            assert source in line, f"{source!r} missing from: {line}"
    assert "sid serves promtool 3.5." in lines[0]  # says what Debian has instead
    assert "want 9.x >= 9.1" not in lines[1] and "want 0.x >= 9.1" in lines[1]
    assert not any((tmp_path / "bin").iterdir())
    assert not (tmp_path / "versions.json").read_text().strip("{}\n")


def test_a_matching_binary_on_path_is_linked_not_copied(tmp_path, monkeypatch):
    host_bin = tmp_path / "host-bin"
    host_bin.mkdir()
    (host_bin / "promtool").symlink_to(tool_path("promtool"))
    monkeypatch.setenv("PATH", f"{host_bin}:/usr/bin:/bin")
    dest = tmp_path / "tools"
    assert installer.install([SPECS["promtool"]], dest) == {"promtool": installed_versions()["promtool"]}
    assert (dest / "bin" / "promtool").readlink() == host_bin / "promtool"
    assert installer.read_versions(dest) == {"promtool": installed_versions()["promtool"]}


def test_a_misspelt_pin_names_the_tool_and_key(tmp_path, capsys):
    pins = tmp_path / "pins.toml"
    pins.write_text(installer.PINS.read_text().replace('probe = ["--help"]', 'probes = ["--help"]'))
    with pytest.raises(SystemExit) as exit_:
        installer.load_pins(pins)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pins.toml [tools.vmalert-tool]:") and "probes" in err
