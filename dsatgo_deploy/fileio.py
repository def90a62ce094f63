"""Atomic, checked outputs: a reader never sees a half-written file or folder, and nothing
this tool did not write is ever replaced.

* :func:`check_output_file` / :func:`check_output_folder` refuse, before any work starts, an
  output that cannot or must not be written (a folder where a file goes, a file where a folder
  goes, a dangling symlink, the current folder, a place that cannot be written, a folder holding
  the source checkpoint or files this tool did not write).
* :func:`atomic_file` / :func:`atomic_directory` build the output under a temporary name beside it
  and rename it into place only when complete; a full disk or a refused write becomes one
  UserError and leaves nothing behind.
* A folder this tool writes holds ``manifest.json`` naming the tool and every file it wrote
  (with SHA-256); ``--overwrite`` replaces only such a folder, and :func:`verify_manifest` checks
  the hashes when the folder is read back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UserError

TOOL_NAME = "dsatgo-deploy"
MANIFEST_NAME = "manifest.json"
#: Write errors a user fixes (space, quota, permissions): one line, not a traceback.
_USER_WRITE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                      errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                      errno.EPERM: "operation not permitted", errno.EFBIG: "file too large"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(path: Path, exc: BaseException) -> BaseException:
    """A UserError for a write failure the user can fix, else ``exc`` itself."""
    if isinstance(exc, OSError) and exc.errno in _USER_WRITE_ERRORS:
        return UserError(f"{path}: cannot write ({_USER_WRITE_ERRORS[exc.errno]}); nothing was written")
    return exc


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        error = _write_error(path, exc)
        if error is exc:
            raise
        raise error from None


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_file(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


# --------------------------------------------------------------------------- checks before work


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and not path.is_symlink() and path != path.parent:
        path = path.parent
    return path


def _check_writable_place(folder: Path, what: Path) -> None:
    """Raise UserError unless a file can be created in ``folder`` (or where it would be made)."""
    existing = _nearest_existing(folder)
    if existing.is_symlink() and not existing.exists():
        raise UserError(f"{what}: {existing} is a dangling symbolic link")
    if not existing.is_dir():
        raise UserError(f"{what}: {existing} is not a folder")
    try:  # os.access says yes to root on a read-only mount: try it
        fd, probe = tempfile.mkstemp(prefix=".dsatgo-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {existing} ({exc.strerror or exc})") from None


def _refuse_special(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise UserError(f"{path}: a dangling symbolic link; remove it or choose another output")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if path.name in ("", ".", "..") or resolved == cwd or resolved in cwd.parents:
        raise UserError(f"{path}: the current folder (or one holding it) cannot be an output; name a new path")


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False,
                      flag: str = "--overwrite") -> Path:
    """``path`` as a file output that can be written: not a folder, a dangling link or the current
    folder, in a writable place; an existing file only with ``overwrite`` (``flag`` names the option
    that allows it). UserError otherwise."""
    path = Path(path)
    _refuse_special(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; name a file (e.g. {path / 'model.pt'})")
    if path.exists():
        if not path.is_file():
            raise UserError(f"{path}: exists and is not a regular file")
        if not overwrite:
            raise UserError(f"{path}: already exists (pass {flag} to replace it)")
    _check_writable_place(path.parent, path)
    return path


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("tool") != TOOL_NAME or not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def owned_entries(folder: str | os.PathLike) -> set[str] | None:
    """Names in ``folder`` this tool wrote (its manifest.json, the files it lists and the entries it
    lists under ``written``), or None when the folder has no manifest of this tool."""
    manifest = _read_manifest(Path(folder))
    if manifest is None:
        return None
    written = manifest.get("written", [])
    return {MANIFEST_NAME, *manifest["files"], *(w for w in written if isinstance(w, str))}


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """Entries of ``folder`` (paths relative to it) this tool did not write: a file not in its
    manifest, or a sub-folder that is not itself (all of it) a folder this tool wrote."""
    folder = Path(folder)
    owned = owned_entries(folder) or set()
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            inner = foreign_entries(entry)
            if owned_entries(entry) is None and not (entry.name in owned and not any(entry.iterdir())):
                foreign.append(entry.name + "/")
            else:
                foreign += [f"{entry.name}/{name}" for name in inner]
        elif entry.name not in owned:
            foreign.append(entry.name)
    return foreign


def check_output_folder(path: str | os.PathLike, *, overwrite: bool = False,
                        protect: Iterable[str | os.PathLike] = ()) -> Path:
    """``path`` as a folder output: refused (UserError) when it is a file, a dangling link, the
    current folder, the folder of (or above) any ``protect`` path (the source checkpoint), in a
    place that cannot be written, or non-empty, unless ``overwrite`` and it is a folder this tool
    wrote that holds nothing else."""
    path = Path(path)
    _refuse_special(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file, not a folder; choose a folder path for the output")
    resolved = path.resolve()
    for source in protect:
        source_path = Path(source).resolve()
        if source_path == resolved or resolved in source_path.parents:
            raise UserError(f"{path}: holds the source {source}; replacing it would delete it, choose another folder")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise UserError(f"{path} already exists and is not empty (pass --overwrite to replace a folder "
                            f"{TOOL_NAME} wrote)")
        foreign = foreign_entries(path)  # everything, in a folder without a manifest of this tool
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise UserError(f"{path}: --overwrite replaces only what {TOOL_NAME} wrote, but the folder also holds "
                            f"{shown}; move them or choose another folder")
    _check_writable_place(path.parent, path)
    return path


# --------------------------------------------------------------------------- atomic folders


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False,
                     protect: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Build a folder under a temporary name; move it to ``path`` only on success.

    ``path`` is first checked (:func:`check_output_folder`). On any exception the temporary
    folder is removed and ``path`` is untouched, so a failed export leaves no partial output
    folder behind. The caller writes its manifest.json (:func:`folder_manifest`) into it.
    """
    path = Path(path)
    check_output_folder(path, overwrite=overwrite, protect=protect)
    staging = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        if path.is_dir() and any(path.iterdir()):
            # a unique name for the old folder: no fixed '.NAME.old' to collide with or leave behind
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)  # a missing or empty folder
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        error = _write_error(path, exc)
        if error is exc:
            raise
        raise error from None


def folder_manifest(folder: str | os.PathLike, files: Iterable[str], written: Iterable[str] = (),
                    **fields: Any) -> dict[str, Any]:
    """The manifest.json of a folder this tool wrote: ``fields``, the tool's name, the SHA-256 of
    each of ``files`` and the other entries (sub-folders) it wrote; written into ``folder``."""
    folder = Path(folder)
    manifest = {**fields, "tool": TOOL_NAME, "files": {name: sha256_file(folder / name) for name in files}}
    if written:
        manifest["written"] = sorted(written)
    write_json(folder / MANIFEST_NAME, manifest)
    return manifest


def check_files_replaceable(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Before writing ``names`` into an existing ``folder``: UserError when one of them exists and
    this tool did not write it (nothing of the user's is replaced)."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f"{folder}: is a file, not a folder; choose a folder path for the output")
    owned = owned_entries(folder) or set()
    taken = sorted(n for n in names if (folder / n).exists() or (folder / n).is_symlink())
    foreign = [n for n in taken if n not in owned or not (folder / n).is_file()]
    if foreign:
        raise UserError(f"{folder}: would replace {', '.join(foreign)}, which {TOOL_NAME} did not write; "
                        "move them or choose another output")
    _check_writable_place(folder, folder)


def record_written(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Add ``names`` to the ``written`` list of ``folder``'s manifest (made when the folder has
    no manifest.json at all), so that a later ``--overwrite`` knows them as this tool's."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if manifest is None:
        if (folder / MANIFEST_NAME).exists():
            return  # someone else's manifest.json: leave it alone
        manifest = {"tool": TOOL_NAME, "files": {}}
    manifest["written"] = sorted(set(manifest.get("written", [])) | set(names))
    write_json(folder / MANIFEST_NAME, manifest)


def verify_manifest(folder: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """Check the SHA-256 of ``names`` (default: every file the manifest lists) in a folder this tool
    wrote; UserError naming a changed or missing file. A folder without such a manifest passes."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    if manifest is None:
        return
    for name in (manifest["files"] if names is None else [n for n in names if n in manifest["files"]]):
        target = folder / name
        if not target.is_file():
            raise UserError(f"{target}: listed in {folder / MANIFEST_NAME} but missing")
        if sha256_file(target) != manifest["files"][name]:
            raise UserError(f"{target}: changed since it was written (SHA-256 differs from {folder / MANIFEST_NAME}); "
                            "export again")


def sha256_file(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
