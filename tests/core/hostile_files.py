"""Builders of valid and hostile input files for tests/core/test_hostile_inputs.py and the reader fuzzing.

Every builder writes into a folder and returns the path; none needs training or data.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

from dsatgo_deploy import network as N
from dsatgo_deploy.train.zoo import convnet_architecture, mlp_architecture
from dsatgo_deploy.checkpoint import save_checkpoint
from dsatgo_deploy.train.models import SpikingNetwork
from dsatgo_deploy.train.neuron import NeuronConfig

T = 3


class Trap:
    """A pickle payload: unpickling it would create ``marker`` (a folder)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# --------------------------------------------------------------------------- checkpoints


def checkpoint_payload(conv: bool = False) -> dict:
    """A valid checkpoint dict (untrained weights): MLP 64-16-10 or a small conv net on 1x8x8, T = 4."""
    neuron = NeuronConfig()._asdict()
    arch = (convnet_architecture((1, 8, 8), 10, 4, neuron, channels=(4,), hidden=()) if conv
            else mlp_architecture(64, [16], 10, 4, neuron))
    torch.manual_seed(0)
    state = {k: v.detach().clone() for k, v in SpikingNetwork(arch).state_dict().items()}
    return {"arch": arch, "state_dict": state, "meta": {"epoch": 1, "dataset": "digits", "input_quantum": 1 / 16}}


def write_checkpoint(path: Path, payload: dict) -> Path:
    save_checkpoint(path, payload["arch"], payload["state_dict"], payload["meta"])
    return path


def write_raw_checkpoint(path: Path, payload: dict) -> Path:
    """torch.save of a full payload dict as is (fields the writer would never produce)."""
    full = {"format": "dsatgo-checkpoint", "format_version": 1, **payload}
    torch.save(full, path)
    return path


def zip_bomb(path: Path, inner: str, size: int) -> Path:
    """A small zip whose one entry inflates to ``size`` zero bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(inner, "w", force_zip64=True) as stream:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                stream.write(chunk)
    return path


# --------------------------------------------------------------------------- deployable networks


def make_net(input_size: int = 64, timesteps: int = T) -> N.DeployableNetwork:
    """input (graded 8-bit) -> dense 8 spiking -> readout 10."""
    rng = np.random.default_rng(3)
    hidden = N.Layer(name="hidden", sources=["input"], weight=rng.integers(-60, 60, (8, input_size)) * 2,
                     weight_exp=0, bias_mant=np.zeros(8), bias_exp=0, threshold_schedule=[200] * timesteps,
                     current_decay=410, voltage_decay=1024, spiking=True, input_message_bits=8, scale=10.0)
    readout = N.Layer(name="readout", sources=["hidden"], weight=rng.integers(0, 256, (10, 8)), weight_exp=0,
                      bias_mant=np.zeros(10), bias_exp=0, threshold_schedule=[], current_decay=4095,
                      voltage_decay=0, spiking=False, input_message_bits=0, scale=1.0)
    return N.DeployableNetwork(timesteps=timesteps, input_shape=(input_size,),
                               input_encoding=N.InputEncoding(kind="graded", bits=8, step=1 / 16),
                               layers=[hidden, readout])


def network_arrays(net: N.DeployableNetwork) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) exactly as network.save writes them, for editing."""
    with tempfile.TemporaryDirectory() as folder:
        N.save(net, Path(folder) / "network.npz")
        with np.load(Path(folder) / "network.npz", allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def write_network(path: Path, header: dict | str, arrays: dict[str, np.ndarray]) -> Path:
    text = header if isinstance(header, str) else json.dumps(header)
    with open(path, "wb") as handle:
        np.savez(handle, header=np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays)
    return path


def edited_network(path: Path, edit) -> Path:
    header, arrays = network_arrays(make_net())
    edit(header, arrays)
    return write_network(path, header, arrays)


def lying_npy(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """A .npy file whose header declares ``shape`` but which holds 16 bytes of data."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}".encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)


def npz_with_entries(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(f"{name}.npy", data)
    return path


def conv_graded_network(bits: int) -> N.DeployableNetwork:
    """A conv layer reading ``bits``-bit graded input, 3x3 kernel of 255s over 16 channels (fan-in 144)."""
    weight = np.full((2, 16, 3, 3), 255)
    layer = N.Layer(name="conv1", sources=["input"], weight=weight, weight_exp=0, bias_mant=np.zeros(2),
                    bias_exp=0, threshold_schedule=[100], current_decay=0, voltage_decay=0, spiking=True,
                    input_message_bits=bits, kind="conv", conv=N.ConvGeometry((16, 4, 4), padding=(1, 1)))
    return N.DeployableNetwork(timesteps=2, input_shape=(16, 4, 4),
                               input_encoding=N.InputEncoding(kind="graded", bits=bits, step=1.0),
                               layers=[layer])


# --------------------------------------------------------------------------- netx


def write_netx(path: Path, weight: np.ndarray | None = None, vth: float = 100.0, big_weight: bool = False) -> Path:
    """A lava-dl netx file: one dense CUBA layer of 10 neurons on 64 inputs (netx's own layout)."""
    if weight is None:
        weight = np.random.default_rng(1).integers(-100, 100, (10, 64)).astype(np.float64) * 2
    with h5py.File(path, "w") as h5:
        layer = h5.create_group("layer/0")
        layer["type"] = np.array([b"dense"])
        layer["shape"] = np.array([10])
        if big_weight:  # declared, never written: the file stays small
            layer.create_dataset("weight", shape=(200_000, 200_000), dtype="f8", chunks=(64, 64))
        else:
            layer["weight"] = weight
        neuron = layer.create_group("neuron")
        neuron["type"] = np.array([b"CUBA"])
        for key, value in (("iDecay", 1024.0), ("vDecay", 128.0), ("vThMant", vth)):
            neuron[key] = np.array(value)
    return path


# --------------------------------------------------------------------------- data


def write_idx(path: Path, dims: tuple[int, ...], data: bytes | None = None) -> Path:
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(header + (data if data is not None else bytes(int(np.prod(dims)))))
    return path


def cifar_pickle_claiming(elements: int) -> bytes:
    """A CIFAR python-version batch whose 'data' array asks numpy to allocate ``elements`` bytes."""
    template = np.zeros(3, np.uint8).__reduce__()

    class Claim:
        def __reduce__(self):
            return (template[0], (np.ndarray, (elements,), b"b"), template[2])

    return pickle.dumps({"data": Claim(), "labels": [0]}, protocol=4)
