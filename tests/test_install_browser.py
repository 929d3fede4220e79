"""tools/install_browser.py: the tools step that gives the report's browser test a Chromium."""

import importlib.util
import sys
from types import ModuleType

from pdobs.core.paths import ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_browser", ROOT / "tools" / "install_browser.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


installer = _load()


def test_links_the_hosts_chromium_and_a_second_run_changes_nothing(tmp_path, capsys):
    assert installer.main(["--dest", str(tmp_path)]) == 0
    link = tmp_path / "bin" / "chromium"
    assert link.is_symlink() and link.resolve().is_file()
    assert f"browser in {link}: Chromium " in capsys.readouterr().out
    target = link.resolve()
    assert installer.main(["--dest", str(tmp_path)]) == 0
    assert link.resolve() == target
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["chromium"]


def test_without_chromium_and_without_root_it_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(installer.os, "geteuid", lambda: 1000)
    assert installer.main(["--dest", str(tmp_path / "tools")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: chromium") and "apt-get install chromium" in err and "make browser" in err
    assert not (tmp_path / "tools" / "bin" / "chromium").exists()
