"""Hostile outputs and integrity: each case exits 2 with one line on stderr and no traceback, leaves
no partial output and leaves every existing file byte-identical (hashed before and after)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import torch

from dsatgo_deploy.cli import main
from dsatgo_deploy.fileio import sha256_file


def _tree(root: Path) -> dict[str, str]:
    """Every entry under root: a file's SHA-256, a link's target, a folder's mark."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = sha256_file(path)
    return found


@pytest.fixture
def project(tmp_path, trained_checkpoint, exported, monkeypatch):
    """proj/model.pt with its user's notes; an export of it; another checkpoint; a foreign folder."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(trained_checkpoint, proj / "model.pt")
    (proj / "notes.txt").write_text("my notes")
    shutil.copytree(exported.out_dir, tmp_path / "export")
    other = torch.load(trained_checkpoint, weights_only=True)
    other["meta"]["epoch"] = 99  # a valid checkpoint with another SHA-256
    torch.save(other, tmp_path / "other.pt")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("years of work")
    (tmp_path / "afile.txt").write_text("a file")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    # a manifest of ours listing report files, beside a foreign report.json it does not list
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "report.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


CASES = {
    # name: (argv, text the one line must hold, patch)
    "export over the checkpoint's own folder": (
        ["export", "proj/model.pt", "--out", "proj", "--overwrite", "--calibrate", "0"], "holds the source", None),
    "export over an ancestor of the checkpoint": (
        ["export", "proj/model.pt", "--out", ".", "--overwrite", "--calibrate", "0"], "current folder", None),
    "export over a folder with a foreign file": (
        ["export", "proj/model.pt", "--out", "foreign", "--overwrite", "--calibrate", "0"], "foreign", None),
    "export into a non-empty folder without --overwrite": (
        ["export", "proj/model.pt", "--out", "foreign", "--calibrate", "0"], "already exists", None),
    "export over an export with a foreign file added": (
        ["export", "proj/model.pt", "--out", "export", "--overwrite", "--calibrate", "0"], "mine.txt", "add_foreign"),
    "export over an existing file": (
        ["export", "proj/model.pt", "--out", "afile.txt", "--overwrite", "--calibrate", "0"], "is a file", None),
    "export to a dangling symlink": (
        ["export", "proj/model.pt", "--out", "dangling", "--calibrate", "0"], "dangling", None),
    "export to a read-only place": (
        ["export", "proj/model.pt", "--out", "/sys/dsatgo_out", "--calibrate", "0"], "cannot write", None),
    "export on a full disk": (
        ["export", "proj/model.pt", "--out", "new_export", "--calibrate", "0"], "no space left", "enospc"),
    "train over an existing checkpoint": (
        ["train", "--out", "proj/model.pt", "--epochs", "1", "--no-progress"], "--resume or --overwrite", None),
    "train into an existing folder": (["train", "--out", "proj", "--epochs", "1", "--no-progress"], "is a folder", None),
    "train to the current folder": (["train", "--out", ".", "--epochs", "1", "--no-progress"], "current folder", None),
    "train on a full disk": (["train", "--out", "new.pt", "--epochs", "1", "--hidden", "16", "--no-progress"],
                             "no space left", "enospc"),
    "train to a dangling symlink": (["train", "--out", "dangling", "--epochs", "1", "--no-progress"], "dangling", None),
    "train to a read-only place": (
        ["train", "--out", "/sys/dsatgo/model.pt", "--epochs", "1", "--no-progress"], "cannot write", None),
    "demo into a folder with a foreign file": (["demo", "--out", "foreign", "--overwrite", "--no-lava"], "thesis.tex",
                                               None),
    "sim --report over a foreign report.json": (
        ["sim", "export", "--samples", "5", "--report", "mixed"], "report.json", None),
    "report over a foreign report.json": (
        ["report", "export", "--samples", "5", "--out", "mixed/report.json"], "report.json", None),
    "sim of an export whose network.npz changed": (["sim", "export", "--samples", "5"], "network.npz", "tamper"),
    "parity with another checkpoint than the network's": (
        ["parity", "--model", "other.pt", "--network", "export", "--sides", "torch,reference", "--samples", "5"],
        "SHA-256", None),
    "report with another checkpoint than the network's": (
        ["report", "export", "--model", "other.pt", "--samples", "5", "--out", "new_report/report.json"], "SHA-256",
        None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_output_is_refused_and_changes_nothing(name, project, capsys, monkeypatch):
    argv, expected, patch = CASES[name]
    if patch == "add_foreign":
        (project / "export" / "mine.txt").write_text("not the tool's")
    elif patch == "tamper":
        with open(project / "export" / "network.npz", "ab") as handle:
            handle.write(b"\0")
    elif patch == "enospc":
        monkeypatch.setattr("dsatgo_deploy.fileio.os.fsync", _no_space)
    before = _tree(project)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert expected in err
    assert _tree(project) == before  # nothing changed, nothing partial (no staging or probe left)


def test_overwrite_replaces_an_export_it_wrote_twice_without_leftovers(project, capsys):
    for _ in range(3):  # a second and third --overwrite work too
        assert main(["export", "proj/model.pt", "--out", "again", "--overwrite", "--calibrate", "0"]) == 0
    names = sorted(p.name for p in project.iterdir())
    assert not [n for n in names if n.startswith(".")]  # no '.again.old' or staging folder
    manifest = (project / "again" / "manifest.json").read_text()
    assert "dsatgo-deploy" in manifest
    # a report written into the export is the tool's too: --overwrite still replaces the folder
    assert main(["report", "again", "--samples", "5"]) == 0
    assert (project / "again" / "report.json").is_file()
    assert main(["export", "proj/model.pt", "--out", "again", "--overwrite", "--calibrate", "0"]) == 0
    assert not (project / "again" / "report.json").exists()
    assert (project / "proj" / "notes.txt").read_text() == "my notes"


def test_train_overwrite_and_resume_replace_a_checkpoint(project, capsys):
    out = project / "run" / "model.pt"
    assert main(["train", "--out", str(out), "--epochs", "1", "--no-progress", "--hidden", "16"]) == 0
    first = sha256_file(out)
    assert main(["train", "--out", str(out), "--epochs", "1", "--no-progress", "--hidden", "16", "--seed", "1",
                 "--overwrite"]) == 0
    assert sha256_file(out) != first


def test_an_interrupted_demo_leaves_no_folder(project, monkeypatch):
    from dsatgo_deploy.pipeline import demo

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dsatgo_deploy.export.exporter.export_checkpoint", interrupted)
    before = _tree(project)
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(project / "demo_out", epochs=1, lava=False, hidden=(16,))
    assert _tree(project) == before
