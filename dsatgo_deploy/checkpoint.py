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

import os
from pathlib import Path
from typing import Any

import torch

from .architecture import check_architecture
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


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and check a checkpoint; CheckpointError with one clear line otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a loadable dsatgo-deploy checkpoint ({reason[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a dsatgo-deploy model checkpoint (no '{FORMAT_NAME}' header; "
                              "train one with `dsatgo train`)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('format_version')} "
                              f"is not supported (this tool reads {FORMAT_VERSION})")
    for key in ("arch", "state_dict", "meta"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    try:
        check_architecture(payload["arch"], str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    payload["sha256"] = sha256_file(path)
    return payload
