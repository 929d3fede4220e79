"""docs/delivery.md: every command on the page is checked against a fresh build, or run."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from pdobs import cli
from pdobs.build import make
from pdobs.core import config, paths
from pdobs.servers import tools

DOC = paths.DOCS / "delivery.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def _commands() -> list[list[str]]:
    """Shell commands of the page, continuation lines joined, split like a shell would."""
    out = []
    for block in _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line:
                out.append(shlex.split(line, posix=True))
    return out


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("doc") / "build"
    assert cli.main(["--out", str(out)]) == 0
    return out


def test_every_build_path_on_the_page_exists(build: Path):
    text = DOC.read_text()
    uids = sorted(p.stem for p in (build / "dashboards").glob("*.json"))
    mentioned = set(re.findall(r"build/[\w./<>-]+", text))
    assert len(mentioned) > 8
    for path in mentioned:
        path = path.rstrip(".")
        for uid in uids if "<uid>" in path else [None]:
            concrete = build.parent / (path.replace("<uid>", uid) if uid else path)
            assert concrete.exists(), path
    for uid in uids:
        assert uid in text or "<uid>" in text


def test_docker_mounts_match_the_provider(build: Path):
    (docker,) = [c for c in _commands() if c[:2] == ["docker", "run"]]
    volumes = [docker[i + 1] for i, arg in enumerate(docker) if arg == "-v"]
    mounts = dict(v.replace("$PWD/", "").removesuffix(":ro").split(":", 1) for v in volumes)
    provider = yaml.safe_load((build / "grafana/provisioning/dashboards/pd-observability.yaml").read_text())
    (prov,) = provider["providers"]
    assert mounts["build/grafana/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    assert mounts["build/grafana/dashboards/pd-observability"] == prov["options"]["path"]
    assert prov["options"]["path"] == config.load()["grafana"]["provisioning"]["path"]


def test_push_commands_parse():
    pushes = [c for c in _commands() if c[:3] == ["python", "build.py", "push"]]
    assert len(pushes) == 2
    for argv in pushes:
        args = cli.parser().parse_args(argv[2:])
        assert args.grafana_url.startswith("https://")


def test_kubectl_folders_exist(build: Path):
    applies = [c for c in _commands() if c[:2] == ["kubectl", "apply"]]
    assert len(applies) == 3
    for argv in applies:
        assert "--server-side" in argv
        folder = build.parent / argv[argv.index("-f") + 1]
        assert folder.is_dir() and list(folder.glob("*.yaml")), folder


def test_amtool_commands_pass(build: Path):
    amtools = [c for c in _commands() if c[0] == ".tools/bin/amtool"]
    assert len(amtools) == 3
    for argv in amtools:
        argv = [str(tools.tool_path("amtool"))] + [a.replace("build/", f"{build}/") for a in argv[1:]]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (argv, proc.stdout + proc.stderr)


def test_sidecar_values_match_the_configmaps(build: Path):
    (values,) = [yaml.safe_load(b) for b in _blocks("yaml") if "sidecar" in b]
    dash = values["sidecar"]["dashboards"]
    cm = yaml.safe_load(next((build / "kubernetes/grafana-sidecar").glob("*.yaml")).read_text())
    assert cm["metadata"]["labels"][dash["label"]] == dash["labelValue"]
    assert dash["folderAnnotation"] in cm["metadata"]["annotations"]
    assert dash["provider"]["foldersFromFilesStructure"] is True


def test_secret_paths_are_the_configured_ones():
    cfg = config.load()["alertmanager"]
    text = DOC.read_text()
    assert cfg["pagerduty"]["routing_key_file"] in text and cfg["slack"]["api_url_file"] in text
    kps = config.load(overrides={"alertmanager": {"templates": ["/etc/alertmanager/config/*.tmpl"]}})
    files = make.build(kps)
    assert "/etc/alertmanager/config/*.tmpl" in files["alertmanager/alertmanager.yaml"]
