"""fileio: which folders --overwrite may replace, manifest checks, write errors as one line."""

from __future__ import annotations

import errno

import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import (atomic_directory, atomic_file, check_output_folder, folder_manifest,
                                  foreign_entries, verify_manifest)


def _write_tool_folder(path, names=("a.txt",)):
    with atomic_directory(path, overwrite=True) as staging:
        for name in names:
            (staging / name).write_text(name)
        (staging / "sub").mkdir()
        (staging / "sub" / "b.txt").write_text("b")
        folder_manifest(staging / "sub", ["b.txt"])
        folder_manifest(staging, list(names))


def test_overwrite_replaces_a_tool_folder_and_its_tool_subfolders(tmp_path):
    out = tmp_path / "out"
    _write_tool_folder(out)
    assert foreign_entries(out) == []
    _write_tool_folder(out, names=("c.txt",))  # a second replacement works: no fixed '.out.old' name
    assert sorted(p.name for p in out.iterdir()) == ["c.txt", "manifest.json", "sub"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_foreign_file_in_a_tool_subfolder_is_named(tmp_path):
    out = tmp_path / "out"
    _write_tool_folder(out)
    (out / "sub" / "mine.txt").write_text("user")
    (out / "user_folder").mkdir()
    assert foreign_entries(out) == ["sub/mine.txt", "user_folder/"]
    with pytest.raises(UserError, match="sub/mine.txt, user_folder/"):
        check_output_folder(out, overwrite=True)


def test_a_folder_above_the_protected_source_is_refused(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    source = tmp_path / "a" / "b" / "model.pt"
    source.write_bytes(b"x")
    for out in (tmp_path / "a" / "b", tmp_path / "a", tmp_path):
        with pytest.raises(UserError, match="holds the source"):
            check_output_folder(out, overwrite=True, protect=[source])
    check_output_folder(tmp_path / "a" / "b" / "export", protect=[source])  # beside it is fine


def test_verify_manifest_names_a_changed_or_missing_file(tmp_path):
    out = tmp_path / "out"
    _write_tool_folder(out, names=("a.txt", "d.txt"))
    verify_manifest(out)
    (out / "a.txt").write_text("changed")
    with pytest.raises(UserError, match=r"a\.txt: changed since it was written"):
        verify_manifest(out)
    verify_manifest(out, ["d.txt"])  # only the file asked for
    (out / "d.txt").unlink()
    with pytest.raises(UserError, match=r"d\.txt: listed in .* but missing"):
        verify_manifest(out, ["d.txt"])


def test_a_full_disk_is_one_user_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dsatgo_deploy.fileio.os.fsync", full)
    with pytest.raises(UserError, match="no space left on the device"):
        with atomic_file(tmp_path / "f.bin") as handle:
            handle.write(b"data")
    with pytest.raises(UserError, match="no space left"):
        with atomic_directory(tmp_path / "folder") as staging:
            with atomic_file(staging / "g.bin") as handle:
                handle.write(b"data")
    assert list(tmp_path.iterdir()) == []
