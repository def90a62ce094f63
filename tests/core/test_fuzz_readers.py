"""Fuzzing of every binary reader: mutated or random bytes load fine or raise UserError, nothing else."""

from __future__ import annotations

import gzip
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsatgo_deploy import limits
from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.hardware_sim.parity import RunRecord
from dsatgo_deploy.hardware_sim.recording import load_recording, save_recording
from dsatgo_deploy.network import load, save
from dsatgo_deploy.train.data import _cifar_batch, _cifar_binary, load_event_frames, read_idx

from . import hostile_files as H

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _seed_files(folder: Path) -> dict[str, bytes]:
    """One valid file per reader, as bytes."""
    net = H.make_net()
    save(net, folder / "network.npz")
    H.write_netx(folder / "model.net")
    rng = np.random.default_rng(0)
    record = RunRecord("x", {"hidden": rng.integers(0, 2, (2, H.T, 8)).astype(bool)}, np.array([1, 2]))
    save_recording(folder / "rec.npz", record)
    H.write_idx(folder / "images", (2, 4, 4), bytes(range(32)))
    gz = gzip.compress((folder / "images").read_bytes())
    batch = pickle.dumps({"data": rng.integers(0, 255, (2, 3072)).astype(np.uint8), "labels": [1, 2]}, protocol=4)
    H.write_checkpoint(folder / "model.pt", H.checkpoint_payload())
    np.save(folder / "frames.npy", rng.integers(0, 3, (2, 2, 2, 4, 4)).astype(np.float32))
    return {"network": (folder / "network.npz").read_bytes(), "netx": (folder / "model.net").read_bytes(),
            "recording": (folder / "rec.npz").read_bytes(), "idx": (folder / "images").read_bytes(), "idx.gz": gz,
            "cifar": batch, "cifar-bin": bytes(3073 * 2), "checkpoint": (folder / "model.pt").read_bytes(),
            "frames": (folder / "frames.npy").read_bytes()}


_SEED_DIR = tempfile.TemporaryDirectory()
SEEDS = _seed_files(Path(_SEED_DIR.name))


def _read_events(path: Path) -> None:
    root = path.parent / "events"
    root.mkdir(exist_ok=True)
    for split in ("train", "test"):
        (root / f"{split}_frames.npy").write_bytes(path.read_bytes())
        np.save(root / f"{split}_labels.npy", np.zeros(2, dtype=np.int64))
    load_event_frames(root)


READERS = {
    "network": load,
    "netx": lambda path: read_netx(path, 0, timesteps=4),
    "recording": lambda path: load_recording(path, H.make_net()),
    "idx": read_idx,
    "idx.gz": lambda path: read_idx(path.rename(path.with_suffix(".gz"))),
    "cifar": lambda path: _cifar_batch(path, "labels"),
    "cifar-bin": lambda path: _cifar_binary(path, 1, 0),
    "checkpoint": load_checkpoint,
    "frames": _read_events,
}


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, value in edits:
        if mutable:
            mutable[position % len(mutable)] = value
    return bytes(mutable[: cut % (len(mutable) + 1)] if cut is not None else mutable)


def _check(reader: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder, limits.budget_override(256 << 20):
        path = Path(folder) / "file"
        path.write_bytes(data)
        try:
            READERS[reader](path)
        except UserError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip()


def test_every_seed_file_loads():
    """The fuzzing starts from files the readers accept."""
    for reader, data in SEEDS.items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "file"
            path.write_bytes(data)
            READERS[reader](path)


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8),
       cut=st.none() | st.integers(0, 1 << 20))
def test_mutated_file_loads_or_raises_user_error(reader, edits, cut):
    _check(reader, _mutate(SEEDS[reader], edits, cut))


@pytest.mark.parametrize("reader", list(READERS))
@settings(max_examples=15, deadline=None, derandomize=True)
@given(data=st.binary(max_size=512))
def test_random_bytes_raise_user_error(reader, data):
    _check(reader, data)
