"""Resource guards every file reader uses: a memory budget, checked against what a file declares.

A small hostile file can declare a huge payload (a .npy header claiming terabytes, a zip
entry or gzip stream that inflates to gigabytes, an HDF5 dataset of 10^11 elements, a
checkpoint with T = 10^9). Readers compute the bytes a file would need from its declared
shapes and sizes *before* allocating anything, and refuse with a UserError beyond the
budget: by default half the memory the machine has available (``MemAvailable`` of
/proc/meminfo, else :data:`FALLBACK_BUDGET`); raise or lower it with the environment
variable ``DSATGO_MEMORY_BUDGET`` (bytes, or a number with K/M/G/T, e.g. ``16G``), which
the CLI's ``--memory-budget`` flag sets.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from .errors import UserError

ENV_VAR = "DSATGO_MEMORY_BUDGET"
#: Used when /proc/meminfo cannot be read (not Linux, or a sandbox without it).
FALLBACK_BUDGET = 4 << 30
#: Timesteps per sample: far beyond any DS-ATGO or lava-dl network (T <= a few thousand), small
#: enough that a loop over T ends; a larger T is refused before anything is allocated.
MAX_TIMESTEPS = 1 << 20
#: JSON headers nest a few levels; deeper ones are refused before json.loads recurses.
MAX_JSON_DEPTH = 64
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def reason(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` of an exception on one line, shortened: for one-line refusals."""
    text = " ".join(str(exc).split())[:limit]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def parse_size(text: str) -> int:
    """'1073741824', '512M', '16G', '1.5T' -> bytes; ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size < 1:
        raise ValueError(f"a memory budget must be positive, got {text!r}")
    return size


def available_memory() -> int:
    """MemAvailable from /proc/meminfo in bytes, or FALLBACK_BUDGET * 2 when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 2 * FALLBACK_BUDGET


_override: int | None = None


@contextlib.contextmanager
def budget_override(nbytes: int | None) -> Iterator[None]:
    """Within the block, :func:`memory_budget` is ``nbytes`` (None: unchanged); the CLI's --memory-budget."""
    global _override
    previous, _override = _override, (nbytes if nbytes is not None else _override)
    try:
        yield
    finally:
        _override = previous


def memory_budget() -> int:
    """Bytes a reader may allocate for one file's contents (module doc)."""
    if _override is not None:
        return _override
    text = os.environ.get(ENV_VAR)
    if text:
        try:
            return parse_size(text)
        except ValueError as exc:
            raise UserError(f"{ENV_VAR}: {exc}") from None
    return available_memory() // 2


def format_size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover


def check_memory(origin: str, what: str, nbytes: int) -> None:
    """UserError when ``what`` of file ``origin`` would need more than the memory budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise UserError(f"{origin}: {what} would need {format_size(nbytes)} of memory, beyond the budget of "
                        f"{format_size(budget)} (raise it with --memory-budget or {ENV_VAR} if this is intended)")


def check_timesteps(origin: str, field: str, value: Any) -> int:
    """T as an int in [1, MAX_TIMESTEPS]; UserError naming the field otherwise (refuses 2.5, True, '4')."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{origin}: field '{field}' must be an integer number of timesteps, got {value!r}")
    if not 1 <= int(value) <= MAX_TIMESTEPS:
        raise UserError(f"{origin}: field '{field}' is {int(value)}; timesteps must be in [1, {MAX_TIMESTEPS}]")
    return int(value)


# --------------------------------------------------------------------------- JSON


def json_depth_ok(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets in ``text`` nest at most ``max_depth`` deep (strings skipped), without recursion."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif char in "]}":
            depth -= 1
    return True


def load_json(origin: str, what: str, data: bytes) -> Any:
    """Parse a JSON header; UserError when it is not UTF-8 JSON or nests beyond MAX_JSON_DEPTH."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{origin}: {what} is not UTF-8 text") from None
    if not json_depth_ok(text):
        raise UserError(f"{origin}: {what} nests deeper than {MAX_JSON_DEPTH} levels; not a header this tool writes")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{origin}: {what} is not valid JSON ({reason(exc)})") from None


# --------------------------------------------------------------------------- numpy files


def _npy_header(stream: BinaryIO, origin: str, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The (shape, dtype, fortran_order) a .npy stream declares, read without touching its data."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except Exception as exc:  # numpy's header parser raises many types (tokenize, ast, ...) on garbage
        raise UserError(f"{origin}: array '{name}': not a numpy array ({reason(exc)})") from None
    if dtype.hasobject:
        raise UserError(f"{origin}: array '{name}': holds Python objects (dtype {dtype}); only numeric arrays "
                        "are read (nothing is unpickled)")
    return tuple(int(d) for d in shape), dtype, bool(fortran)


def _declared_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count * dtype.itemsize


def check_npz(path: str | os.PathLike, origin: str | None = None) -> list[str]:
    """Check an .npz archive before numpy reads it; its array names (UserError when it is not a zip of
    plain numeric .npy arrays, when an entry's .npy header disagrees with the entry's size, or when the
    arrays would need more than the memory budget)."""
    origin = origin or str(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise UserError(f"{origin}: cannot read ({exc.strerror or exc})") from None
    if magic == b"\x93NUMPY":
        raise UserError(f"{origin}: a single .npy array, not an .npz archive (save it with numpy.savez)")
    total = 0
    names = []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            check_memory(origin, f"the archive's {len(infos)} entries (uncompressed)",
                         sum(info.file_size for info in infos))
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with archive.open(info) as stream:
                    shape, dtype, _ = _npy_header(stream, origin, name)
                    header_length = stream.tell()
                nbytes = _declared_bytes(shape, dtype)
                if nbytes != info.file_size - header_length:
                    raise UserError(f"{origin}: array '{name}': its header declares shape {shape} of {dtype} "
                                    f"({format_size(nbytes)}), but the entry holds {format_size(info.file_size - header_length)}")
                total += nbytes
                names.append(name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            ValueError) as exc:
        raise UserError(f"{origin}: not a readable .npz archive ({reason(exc)})") from None
    check_memory(origin, "its arrays", total)
    return names


def check_npy(path: str | os.PathLike, origin: str | None = None) -> None:
    """Check a bare .npy file's header against its size and the memory budget before numpy reads it."""
    origin = origin or str(path)
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as handle:
            if handle.read(4) == b"PK\x03\x04":
                raise UserError(f"{origin}: an .npz archive, not a single .npy array")
            handle.seek(0)
            shape, dtype, _ = _npy_header(handle, origin, Path(path).stem)
            header_length = handle.tell()
    except OSError as exc:
        raise UserError(f"{origin}: cannot read ({exc.strerror or exc})") from None
    nbytes = _declared_bytes(shape, dtype)
    if nbytes != size - header_length:
        raise UserError(f"{origin}: its header declares shape {shape} of {dtype} ({format_size(nbytes)}), but the "
                        f"file holds {format_size(size - header_length)}")
    check_memory(origin, "its array", nbytes)


def read_npz(path: str | os.PathLike, origin: str | None = None,
             keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive (only ``keys`` where given and present), after :func:`check_npz`;
    UserError on anything malformed."""
    origin = origin or str(path)
    check_npz(path, origin)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files if keys is None or key in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError) as exc:
        raise UserError(f"{origin}: not a readable .npz archive ({reason(exc)})") from None


def read_npy(path: str | os.PathLike, origin: str | None = None) -> np.ndarray:
    """A bare .npy array, after :func:`check_npy`; UserError on anything malformed."""
    origin = origin or str(path)
    check_npy(path, origin)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{origin}: not a readable .npy array ({reason(exc)})") from None


# --------------------------------------------------------------------------- compressed streams


def gunzip(path: str | os.PathLike, origin: str | None = None) -> bytes:
    """A gzip file's contents, decompressed in bounded chunks: refused as soon as it outgrows the budget
    (a gzip bomb stops there rather than filling memory)."""
    origin = origin or str(path)
    budget = memory_budget()
    chunks, size = [], 0
    try:
        with gzip.open(path, "rb") as stream:
            while True:
                chunk = stream.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > budget:
                    check_memory(origin, "its decompressed contents (more than this, still growing)", size)
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{origin}: not a readable gzip file ({reason(exc)})") from None
    return b"".join(chunks)


def check_zip_size(path: str | os.PathLike, origin: str, what: str) -> None:
    """For a zip-based file (a torch checkpoint): refuse when its entries declare more than the budget."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return  # not a zip: the format's own reader says what is wrong
    check_memory(origin, f"{what} (uncompressed)", total)
