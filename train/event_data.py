"""CIFAR10-DVS in its two common public layouts, read from a local folder (nothing downloads).

* The original release: one folder per class (``airplane/ ... truck/``) of ``.aedat`` files,
  AER-DAT 2.0 from a 128x128 DVS: header lines starting with ``#``, then 8-byte big-endian
  events (32-bit address, 32-bit timestamp in microseconds). Address bits: polarity bit 0,
  x bits 1-7, y bits 8-14; the sensor's axes are mirrored and swapped, so (as SpikingJelly and
  TET read it) column = 127 - y_addr, row = 127 - x_addr, polarity = 1 - p_addr. The events of
  a recording are cut into T slices of equal event count (the last takes the remainder) and
  counted per polarity and pixel: frames (T, 2, 128, 128).
* SpikingJelly's pre-integrated frames: ``frames_number_<T>_split_by_number/<class>/*.npz``
  (or that folder itself), each holding ``frames`` (T, 2, 128, 128).

Classes are the sorted folder names (CIFAR-10's order). CIFAR10-DVS has no test split: per
class, the first ceil(0.9 n) recordings in sorted file order train and the rest test (what
SpikingJelly's split_to_train_test_set does without shuffling, the split TET and the DS-ATGO
paper use). Frames are resized to ``size`` x ``size`` (48 in TET's and the paper's VGGSNN) by
antialiased bilinear interpolation. Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from dsatgo_deploy.errors import UserError

from .data import DataSplit

SENSOR_SIZE = 128
TRAIN_FRACTION = 0.9
AEDAT_EVENT_BYTES = 8


def read_aedat2(path: str | Path) -> dict[str, np.ndarray]:
    """Events of an AER-DAT 2.0 file of a 128x128 DVS: t (us), x (column), y (row), p (0/1)."""
    path = Path(path)
    data = path.read_bytes()
    start = 0
    while start < len(data) and data[start:start + 1] == b"#":
        end = data.find(b"\n", start)
        if end < 0:
            raise UserError(f"{path}: AER-DAT header line without an end")
        start = end + 1
    body = data[start:]
    if len(body) % AEDAT_EVENT_BYTES:
        raise UserError(f"{path}: {len(body)} bytes of events, not a multiple of {AEDAT_EVENT_BYTES} "
                        "(a truncated AER-DAT 2.0 file?)")
    words = np.frombuffer(body, dtype=">u4")
    address, timestamp = words[0::2].astype(np.int64), words[1::2].astype(np.int64)
    x_address = (address & 0x00FE) >> 1
    y_address = (address & 0x7F00) >> 8
    return {"t": timestamp, "x": SENSOR_SIZE - 1 - y_address, "y": SENSOR_SIZE - 1 - x_address,
            "p": 1 - (address & 1)}


def events_to_frames(events: dict[str, np.ndarray], frames: int, size: int = SENSOR_SIZE) -> np.ndarray:
    """Event counts (frames, 2, size, size) float32 over ``frames`` slices of equal event count."""
    count = len(events["t"])
    out = np.zeros((frames, 2, size, size), dtype=np.float32)
    if count == 0:
        return out
    step = count // frames  # slice i holds events [i step, (i + 1) step); the last also the remainder
    slice_of = np.minimum(np.arange(count) // step, frames - 1) if step else np.full(count, frames - 1)
    flat = ((slice_of * 2 + events["p"]) * size + events["y"]) * size + events["x"]
    out.reshape(-1)[:] = np.bincount(flat, minlength=out.size).astype(np.float32)
    return out


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    lead = tensor.shape[:-3]
    resized = F.interpolate(tensor.reshape(-1, *tensor.shape[-3:]), size=(size, size), mode="bilinear",
                            align_corners=False, antialias=True)
    return resized.reshape(*lead, tensor.shape[-3], size, size).numpy()


def _class_folders(root: Path, suffix: str) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob(f"*{suffix}")))


def _split(per_class: list[list[np.ndarray]], labels_of: list[int]) -> tuple[np.ndarray, ...]:
    x_train, y_train, x_test, y_test = [], [], [], []
    for samples, label in zip(per_class, labels_of):
        cut = math.ceil(len(samples) * TRAIN_FRACTION)
        x_train += samples[:cut]
        y_train += [label] * cut
        x_test += samples[cut:]
        y_test += [label] * (len(samples) - cut)
    stack = lambda xs: np.stack(xs).astype(np.float32) if xs else np.zeros((0,), np.float32)  # noqa: E731
    return stack(x_train), np.array(y_train, np.int64), stack(x_test), np.array(y_test, np.int64)


def load_cifar10_dvs_files(root: str | Path, timesteps: int = 10, size: int = 48) -> DataSplit:
    """CIFAR10-DVS from ``root`` in either layout (see the module docstring) as (N, T, 2, size, size)."""
    root = Path(root)
    aedat = _class_folders(root, ".aedat")
    if not aedat:
        candidates = sorted(root.glob(f"frames_number_{timesteps}_split_by_number")) or [root]
        frames_root = candidates[0]
        npz = _class_folders(frames_root, ".npz")
    if aedat:
        folders, read = aedat, lambda f: events_to_frames(read_aedat2(f), timesteps)
        suffix = ".aedat"
    elif npz:
        folders, read, suffix = npz, lambda f: _npz_frames(f, timesteps), ".npz"
    else:
        raise UserError(f"{root}: no CIFAR10-DVS files: expected class folders of .aedat files, or SpikingJelly's "
                        f"frames_number_{timesteps}_split_by_number/<class>/*.npz")
    per_class = [[_resize(read(f), size) for f in sorted(folder.glob(f"*{suffix}"))] for folder in folders]
    x_train, y_train, x_test, y_test = _split(per_class, list(range(len(folders))))
    return DataSplit(x_train, y_train, x_test, y_test, len(folders), (2, size, size),
                     1.0 if size == SENSOR_SIZE else None, augment="flip_shift", encoding="sequence")


def _npz_frames(path: Path, timesteps: int) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "frames" not in archive:
                raise UserError(f"{path}: no array 'frames' (found {', '.join(archive.files) or 'none'})")
            frames = archive["frames"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # not a zip, truncated, object array
        raise UserError(f"{path}: not a readable .npz of event frames ({exc})") from None
    if frames.ndim != 4 or frames.shape[0] != timesteps or frames.shape[1] != 2:
        raise UserError(f"{path}: field 'frames' has shape {frames.shape}, expected ({timesteps}, 2, H, W)")
    if not (np.issubdtype(frames.dtype, np.integer) or np.issubdtype(frames.dtype, np.floating)):
        raise UserError(f"{path}: field 'frames' holds {frames.dtype}, expected event counts (numbers)")
    return frames.astype(np.float32)
