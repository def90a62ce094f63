"""Checkpoint I/O: weights, architecture, running thresholds, metadata; nothing executable.

A checkpoint is a dict of tensors and plain Python values, saved with
torch.save and read with ``torch.load(weights_only=True)`` (no arbitrary
unpickling). Layout:

    {"format": "dsatgo-checkpoint", "format_version": 1,
     "arch": {...dsatgo_deploy.architecture...},
     "state_dict": {...tensors...},
     "meta": {"epoch": int, "dataset": str, "input_quantum": float | None,
              "test_accuracy": float, ...},
     "training_state": {...optimizer/scheduler state, optional, for resume...}}
"""

from __future__ import annotations

import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import limits
from .architecture import NeuronConfig, check_architecture, layer_shapes, state_dict_shapes
from .errors import CheckpointError
from .fileio import atomic_file, sha256_file

FORMAT_NAME = "dsatgo-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, arch: dict, state_dict: dict, meta: dict,
                    training_state: dict | None = None) -> None:
    """Write a checkpoint atomically."""
    payload: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "meta": meta,
    }
    if training_state is not None:
        payload["training_state"] = training_state
    with atomic_file(path, "wb") as handle:
        torch.save(payload, handle)


#: |decay_logit| beyond this gives tau = sigmoid(logit) of exactly 0 or 1 in float32 (no trained model
#: gets there) and overflows math.exp in float64 near 710; such values are refused, not rounded.
MAX_DECAY_LOGIT = 100.0
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_STATE_KEYS = ("arch", "state_dict", "meta")


def is_torch_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip archive written by torch.save (it holds ``<name>/data.pkl``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return False


def _what_else(head: bytes) -> str:
    """A one-line description of a file that is not a torch archive, for the refusal."""
    if head.startswith(b"\x93NUMPY"):
        return "it is a single numpy .npy array"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "it is an HDF5 file (a lava-dl netx network? run it with `dsatgo sim FILE --timesteps T`)"
    if head.startswith(b"PK\x03\x04"):
        return ("it is a zip archive without torch's data.pkl (a deployable network.npz? pass it to `dsatgo sim` "
                "or `--network`)")
    if not head:
        return "the file is empty"
    return "torch.save writes a zip archive, and this file is not one"


def _read_payload(path: Path, mmap: bool = False) -> Any:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not is_torch_archive(path):
        raise CheckpointError(f"{path}: not a dsatgo-deploy checkpoint: {_what_else(head)}")
    limits.check_zip_size(path, str(path), "the checkpoint's contents")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: the checkpoint holds something other than tensors and plain values, which is "
                              f"never unpickled ({first[:200]})") from None
    except Exception as exc:  # torch raises many types for corrupt archives
        raise CheckpointError(f"{path}: a damaged checkpoint archive ({limits.reason(exc)})") from None


def load_checkpoint(path: str | os.PathLike, contents: bool = True) -> dict:
    """Read and check a checkpoint; CheckpointError with one clear line otherwise.

    ``contents=False``: the header and the architecture only, checked; the tensors stay mapped from the
    file, unread and unchecked, and there is no ``sha256`` yet (what a check from the shapes alone needs,
    in a fraction of the time); :func:`check_loaded_contents` completes the payload."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    payload = _read_payload(path, mmap=not contents)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a dsatgo-deploy model checkpoint (no '{FORMAT_NAME}' header; "
                              "train one with `dsatgo train`)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('format_version')!r} "
                              f"is not supported (this tool reads {FORMAT_VERSION})")
    for key in _STATE_KEYS:
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    for key in ("state_dict", "meta"):
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"{path}: field '{key}' must be a dict, got {type(payload[key]).__name__}")
    arch = payload["arch"]
    if isinstance(arch, dict) and "timesteps" in arch:
        limits.check_timesteps(str(path), "arch.timesteps", arch["timesteps"])
    try:
        check_architecture(arch, str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    _neuron_config(arch, str(path))
    _check_memory(arch, str(path))  # from the declared shapes: before anything is sized from them
    return check_loaded_contents(payload, path) if contents else payload


def check_loaded_contents(payload: dict, path: str | os.PathLike) -> dict:
    """What ``load_checkpoint(path, contents=False)`` left out: the state dict's checks and the file's SHA-256."""
    check_contents(payload, str(path))
    payload["sha256"] = sha256_file(path)
    return payload


def check_contents(payload: dict, origin: str) -> None:
    """What the model code would refuse, refused here too (before export quantizes anything): neuron modes
    and parameters, state-dict keys and shapes (from the architecture description, which
    train/models.py builds exactly), real finite float tensors, positive thresholds, sane decays, and memory."""
    arch, state, meta = payload["arch"], payload["state_dict"], payload["meta"]
    config = _neuron_config(arch, origin)
    _check_memory(arch, origin)
    expected = state_dict_shapes(arch)
    missing = [key for key in expected if key not in state]
    unknown = [key for key in state if key not in expected]
    if missing or unknown:
        raise CheckpointError(f"{origin}: field 'state_dict': " + "; ".join(
            part for part in (f"missing {', '.join(missing[:5])}" if missing else "",
                              f"not part of this architecture: {', '.join(map(str, unknown[:5]))}" if unknown else "")
            if part))
    for key, want in expected.items():
        _check_tensor(origin, key, state[key], want, config)
    quantum = meta.get("input_quantum")
    if quantum is not None and (isinstance(quantum, bool) or not isinstance(quantum, (int, float))
                                or not math.isfinite(quantum) or quantum <= 0):
        raise CheckpointError(f"{origin}: field 'meta.input_quantum' must be null or a positive number, got {quantum!r}")


def _neuron_config(arch: dict, origin: str):
    neuron = arch["neuron"]
    unknown = sorted(set(neuron) - set(NeuronConfig._fields))
    if unknown:
        raise CheckpointError(f"{origin}: field 'arch.neuron': unknown field(s) {', '.join(map(str, unknown))} "
                              f"(known: {', '.join(NeuronConfig._fields)})")
    defaults = NeuronConfig()
    for name, value in neuron.items():
        kind = type(getattr(defaults, name))
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise CheckpointError(f"{origin}: field 'arch.neuron.{name}' must be a finite number, got {value!r}")
    try:
        config = NeuronConfig.from_dict(neuron)  # the modes' closed sets live in train/neuron.py
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{origin}: field 'arch.neuron': {limits.reason(exc)}") from None
    for name in ("v_th0", "f_c"):
        if getattr(config, name) <= 0:
            raise CheckpointError(f"{origin}: field 'arch.neuron.{name}' must be > 0 (thresholds are positive), "
                                  f"got {getattr(config, name)}")
    return config


def _check_memory(arch: dict, origin: str) -> None:
    """Float activations of one sample over T (what calibration and the torch side hold), from the
    declared shapes alone: refuses e.g. a conv padding of 50000 before anything is built."""
    shapes = layer_shapes(arch, origin)
    per_step = sum(math.prod(shape) for shape in shapes.values())
    limits.check_memory(origin, "one sample's activations over T", per_step * int(arch["timesteps"]) * 4)


def _check_tensor(origin: str, key: str, value: Any, want: tuple[int, ...], config) -> None:
    parts = key.split(".")
    where = f"{origin}: layer '{parts[1]}': field 'state_dict.{key}'" if len(parts) == 3 else f"{origin}: field 'state_dict.{key}'"
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: must be a tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(want):
        raise CheckpointError(f"{where}: shape {tuple(value.shape)}, but the architecture makes {tuple(want)}")
    if key.endswith("num_batches_tracked"):
        if value.dtype != torch.int64:
            raise CheckpointError(f"{where}: must be an int64 count, got {value.dtype}")
        return
    if value.dtype not in _FLOAT_DTYPES:
        raise CheckpointError(f"{where}: must hold real floats, got {value.dtype}")
    if not bool(torch.isfinite(value.detach()).all()):  # in its own dtype: no float64 copy of every weight
        raise CheckpointError(f"{where}: holds NaN or infinite values")
    if not key.endswith((".decay_logit", ".running_threshold", ".running_var")):
        return
    values = value.detach().to(torch.float64)
    if key.endswith(".decay_logit") and float(values.abs().max()) > MAX_DECAY_LOGIT:
        raise CheckpointError(f"{where}: {float(values.reshape(-1)[0])} is beyond +-{MAX_DECAY_LOGIT:g}: the decay "
                              "tau = sigmoid(decay_logit) would be exactly 0 or 1")
    if key.endswith(".running_threshold") and config.threshold_mode == "adaptive" and bool((values <= 0).any()):
        raise CheckpointError(f"{where}: thresholds must be > 0, found {float(values.min())}")
    if key.endswith(".running_var") and bool((values < 0).any()):
        raise CheckpointError(f"{where}: a variance cannot be negative, found {float(values.min())}")
