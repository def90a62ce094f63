"""Spike recordings: what an engine we cannot drive did, brought back for the parity check.

A Loihi 2 system (Lava's ``Loihi2HwCfg``, on a machine with Intel's lava-loihi), a
collaborator's simulator or a Lava run on another machine writes its spikes into one
``.npz`` file; ``dsatgo parity --sides reference,recorded --recorded FILE`` then
compares it spike by spike with the reference on the same test samples.
``dsatgo sim --save-spikes FILE`` writes the same format from any backend here.

Format (numpy ``.npz``, loaded with ``allow_pickle=False``):

    spikes/<layer>  (B, T, n) for every spiking layer of the network: sample b's
                    timestep t (sample time: whatever the engine's per-layer
                    latency, timestep t of a layer is its response to the input's
                    timestep t), neurons in the network's (C, H, W) flatten order,
                    values 0 or 1 (bool or any integer dtype)
    messages/<layer> (B, T, n) integer, optional, for a graded layer (one that sends
                    graded messages: a sigma-delta layer, graded spikes): the values
                    it sent, non-zero exactly where spikes/<layer> is 1; parity then
                    compares the values, not only which were sent. A recording
                    without them (older ones, or an engine that cannot read them
                    out) compares which messages were sent.
    predictions     (B,) integer class per sample; required when the network ends
                    in a non-spiking readout (a recording holds no voltages);
                    otherwise optional, and derived like the reference does (argmax
                    of the last layer's spike counts, ties to the lowest index)

The B samples are the first B of the test set the comparison runs on, in order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import atomic_file
from dsatgo_deploy.limits import read_npz
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.runs import RunRecord


SPIKES_PREFIX = "spikes/"
MESSAGES_PREFIX = "messages/"
PREDICTIONS = "predictions"


def save_recording(path: str | os.PathLike, record: RunRecord) -> None:
    """Write ``record`` (spikes as uint8, graded layers' message values and predictions as int64) atomically."""
    arrays = {f"{SPIKES_PREFIX}{name}": spikes.astype(np.uint8) for name, spikes in record.spikes.items()}
    arrays.update({f"{MESSAGES_PREFIX}{name}": np.asarray(values, dtype=np.int64)
                   for name, values in record.messages.items()})
    arrays[PREDICTIONS] = np.asarray(record.predictions, dtype=np.int64)
    with atomic_file(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _fail(origin: str, field: str, message: str) -> UserError:
    return UserError(f"{origin}: field '{field}': {message}")


def load_recording(path: str | os.PathLike, net: DeployableNetwork, samples: int | None = None,
                   name: str = "recorded") -> RunRecord:
    """Read a recording of ``net`` and check it against the network: every spiking layer present with
    (B, T, n) of 0/1, the predictions a readout network needs; the first ``samples`` samples (all if None).
    Raises UserError naming the file and the field."""
    origin = str(path)
    if not Path(path).is_file():
        raise UserError(f"{origin}: no such recording file")
    try:
        arrays = read_npz(path, origin)  # sizes checked against the memory budget before reading
    except UserError as exc:
        raise UserError(f"{exc} (not a spike recording)") from None
    spiking = [layer for layer in net.layers if layer.spiking]
    graded = [layer.name for layer in spiking if layer.message_bits]
    expected = {f"{SPIKES_PREFIX}{layer.name}" for layer in spiking}
    unknown = sorted(set(arrays) - expected - {f"{MESSAGES_PREFIX}{name}" for name in graded} - {PREDICTIONS})
    if unknown:
        what = ("a graded layer of this network (its graded layers: " + (", ".join(graded) or "none") + ")"
                if unknown[0].startswith(MESSAGES_PREFIX) else
                f"a spiking layer of this network (its spiking layers: {', '.join(layer.name for layer in spiking)})")
        raise _fail(origin, unknown[0], f"not {what}")
    spikes: dict[str, np.ndarray] = {}
    count = None
    for layer in spiking:
        field = f"{SPIKES_PREFIX}{layer.name}"
        if field not in arrays:
            raise _fail(origin, field, "missing: a recording holds every spiking layer")
        array = arrays[field]
        shape = (net.timesteps, layer.num_neurons)
        if array.ndim != 3 or tuple(array.shape[1:]) != shape:
            raise _fail(origin, field, f"shape {tuple(array.shape)}, expected (samples, {shape[0]}, {shape[1]})")
        if array.dtype != np.bool_ and (array.dtype.kind not in "iu" or not np.isin(array, (0, 1)).all()):
            raise _fail(origin, field, "spikes must be 0 or 1 (bool or integer)")
        if count is not None and len(array) != count:
            raise _fail(origin, field, f"{len(array)} samples, but the layers before it hold {count}")
        count = len(array)
        spikes[layer.name] = array.astype(bool)
    count = 0 if count is None else count
    messages = {name: _messages(origin, arrays, name, spikes[name]) for name in graded
                if f"{MESSAGES_PREFIX}{name}" in arrays}
    if PREDICTIONS in arrays:
        predictions = arrays[PREDICTIONS]
        if predictions.shape != (count,) or predictions.dtype.kind not in "iu":
            raise _fail(origin, PREDICTIONS, f"expected {count} integer classes, got {predictions.dtype} "
                                             f"{tuple(predictions.shape)}")
    elif net.has_readout:
        raise _fail(origin, PREDICTIONS, "missing: this network ends in a non-spiking readout, whose voltage a "
                                         "recording does not hold, so the predicted classes must be recorded")
    else:
        predictions = RunRecord.from_readout(name, spikes, None).predictions
    if samples is not None:
        if samples > count:
            raise UserError(f"{origin}: holds {count} samples, fewer than the {samples} to compare")
        spikes = {key: value[:samples] for key, value in spikes.items()}
        messages = {key: value[:samples] for key, value in messages.items()}
        predictions = predictions[:samples]
    return RunRecord(name, spikes, predictions, messages=messages)


def _messages(origin: str, arrays: dict[str, np.ndarray], layer: str, spikes: np.ndarray) -> np.ndarray:
    """A graded layer's recorded message values (int64), checked against its spikes (non-zero where they are 1)."""
    field = f"{MESSAGES_PREFIX}{layer}"
    values = arrays[field]
    if values.shape != spikes.shape or values.dtype.kind not in "iu":
        raise _fail(origin, field, f"expected integer messages of shape {spikes.shape} (as spikes/{layer}), got "
                                   f"{values.dtype} {tuple(values.shape)}")
    if not np.array_equal(values != 0, spikes):
        sample, t, neuron = np.argwhere((values != 0) != spikes)[0]
        raise _fail(origin, field, f"sample {sample}, timestep {t}, neuron {neuron}: message "
                                   f"{values[sample, t, neuron]} but spike {int(spikes[sample, t, neuron])} "
                                   f"(a message is sent exactly where a spike is recorded)")
    return values.astype(np.int64)
