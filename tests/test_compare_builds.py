"""tools/compare_builds.py, the script that proves a refactoring leaves every artefact as it was."""

from pathlib import Path

from tools import compare_builds


def test_identical_folders_compare_clean_and_a_changed_byte_is_named(tmp_path: Path):
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        (folder / "prometheus").mkdir(parents=True)
        (folder / "prometheus" / "rules.yaml").write_text("groups: []\n")
    assert compare_builds.compare(old, new, "build") == []
    (new / "prometheus" / "rules.yaml").write_text("groups: [] \n")
    (new / "extra.txt").write_text("x")
    found = compare_builds.compare(old, new, "build")
    assert found[0] == "build: only in the new build: extra.txt"
    assert found[1].startswith("build: differs: prometheus/rules.yaml")


def test_an_unknown_revision_is_bad_input(capsys):
    assert compare_builds.main(["--rev", "no-such-revision-anywhere"]) == 2
    assert "not a commit" in capsys.readouterr().err
