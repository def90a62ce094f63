"""The engines parity can compare, each run into a :class:`~dsatgo_deploy.runs.RunRecord`.

* ``torch``: the trained model in eval mode (float, running thresholds), from
  its checkpoint.
* ``reference``: the deployable network in our bit-exact integer simulator.
* ``lava``: the deployable network as Lava processes, Loihi2SimCfg fixed_pt.
* ``lava-float``: the same Lava graph with Lava's floating_pt models, the integers
  mapped to floats (lava_backend.float_parameters): an approximation of ``lava``,
  not bit-exact (no rounding, wrap or saturation).
* ``onnx``: the deployable network's one-timestep ONNX graph (export/onnx_writer.py,
  built in memory) looped over T by onnxruntime; integer-exact like the reference.
* ``recorded``: spikes another engine wrote to a file (a Loihi 2 system, another
  machine): hardware_sim/recording.py.
* ``nir:<framework>`` (snntorch, norse, sinabs; rockpool and spyx cannot run here): a NIR
  file run in that framework through its own importer, float (pipeline/nir_sides.py).

The torch side needs train/ and the onnx side export/, so the choice of engine
lives here, above the stages.
"""

from __future__ import annotations

import sys
import weakref
from typing import Callable

import numpy as np
import torch

from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.network import INPUT, DeployableNetwork
from dsatgo_deploy.runs import RunRecord

from .nir_sides import NirSource, is_nir_side, run_nir_side

SIDES = ("torch", "reference", "lava", "lava-float", "onnx", "recorded")
#: the sides that feed x to the deployable network itself (through its input encoding)
NETWORK_SIDES = ("reference", "lava", "lava-float", "onnx")
#: networks whose bias-input note was printed: one note per network, however many sides run it
_NOTED: weakref.WeakValueDictionary[int, DeployableNetwork] = weakref.WeakValueDictionary()


def load_model(checkpoint: dict, device: str = "cpu") -> torch.nn.Module:
    """The trained model of a loaded checkpoint, in eval mode on ``device``."""
    from dsatgo_deploy.train.models import build_model

    model = build_model(checkpoint["arch"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


@torch.no_grad()
def record_model(model: torch.nn.Module, x: np.ndarray, name: str, batch_size: int = 512, device: str = "cpu",
                 after_batch: Callable[[], None] | None = None) -> RunRecord:
    """Run a train/ model batch by batch; its predictions and every spiking layer's spikes (B, T, n)."""
    spikes: dict[str, list[np.ndarray]] = {}
    predictions = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device)
        predictions.append(model(xb).argmax(dim=1).cpu().numpy())
        for layer, trace in model.traces().items():
            per_sample = trace.spikes.transpose(0, 1)
            spikes.setdefault(layer, []).append(per_sample.reshape(*per_sample.shape[:2], -1).bool().cpu().numpy())
        if after_batch is not None:
            after_batch()
    return RunRecord(name, {k: np.concatenate(v) for k, v in spikes.items()}, np.concatenate(predictions))


def run_torch(checkpoint: dict, x: np.ndarray, device: str = "cpu", batch_size: int = 512) -> RunRecord:
    """The trained model in eval mode; spikes of every spiking layer (B, T, n)."""
    return record_model(load_model(checkpoint, device), x, "torch", batch_size, device)


def run_reference(net: DeployableNetwork, x: np.ndarray, device: str = "cpu", teacher: RunRecord | None = None
                  ) -> RunRecord:
    """The reference simulator on x; with ``teacher`` (another side's record of x, same layers), teacher forced:
    each layer fed the teacher's messages of its sources (hardware_sim/reference.py ``forced``)."""
    forced = None if teacher is None else teacher.spikes | teacher.messages
    return simulate(net, x, device=device, forced=forced)


def run_lava(net: DeployableNetwork, x: np.ndarray, **kwargs) -> RunRecord:
    """Lava fixed_pt (or, with ``select_tag="floating_pt"``, the ``lava-float`` side)."""
    from dsatgo_deploy.hardware_sim.lava_backend import run_lava as _run

    return _run(net, x, **kwargs)


def run_onnx(net: DeployableNetwork, x: np.ndarray) -> RunRecord:
    """The network's integer ONNX graph, built in memory, looped over T by onnxruntime."""
    from dsatgo_deploy.export.onnx_writer import build_onnx
    from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx as _run

    return _run(build_onnx(net), x)


def bias_input_note(net: DeployableNetwork, x: np.ndarray) -> str | None:
    """A one-line note when ``net``'s input layer is driven by its bias (a lava-dl netx file whose input is a
    LIF, read without --input-bits) and every sample gives a bias mantissa of 0 or 1 (values within [0, 1]):
    such a bias reaches no usual threshold (mnist.net's input: v settles near 2100, its threshold is 80 << 6),
    so nothing fires (docs/netx_kinds.md). None otherwise."""
    if net.input_encoding.kind != "bias" or not len(x):
        return None
    mantissas = net.encode_input(x)
    if mantissas.min() < 0 or mantissas.max() > 1:
        return None
    inputs = [layer for layer in net.layers if layer.sources == [INPUT]]
    thresholds = ", ".join(sorted({str(int(layer.threshold_schedule.max())) for layer in inputs}))
    names = ", ".join(layer.name for layer in inputs)
    return (f"note: the input layer {names} is driven by its bias: each sample value becomes its neurons' bias "
            f"mantissa, and these samples all lie within [0, 1] (threshold mantissa {thresholds}), so it will hardly "
            "fire: scale them as lava-dl does (PilotNet's image holds 1..76) or pass --input-bits to send messages")


def note_bias_input(net: DeployableNetwork, x: np.ndarray) -> None:
    """Print :func:`bias_input_note` on stderr, once per network."""
    if _NOTED.get(id(net)) is not net and (note := bias_input_note(net, x)) is not None:
        _NOTED[id(net)] = net
        print(note, file=sys.stderr)


def run_side(side: str, *, net: DeployableNetwork | None, checkpoint: dict | None, x: np.ndarray,
             device: str = "cpu", progress: bool = False, recording: str | None = None,
             nir: NirSource | None = None) -> RunRecord:
    """Run one side by name; the caller supplies what that side needs. ``progress``: a bar for the
    Lava sides (on a terminal only), the slow ones; ``recording``: the file of the ``recorded`` side,
    whose first len(x) samples are taken; ``nir``: the NIR files of the ``nir:<framework>`` sides."""
    if is_nir_side(side):
        return run_nir_side(side, nir or NirSource(()), x, [layer.name for layer in net.layers] if net else ())
    if side == "torch":
        if checkpoint is None:
            raise ValueError("the torch side needs the trained checkpoint (--model)")
        return run_torch(checkpoint, x, device)
    if net is None:
        raise ValueError(f"the {side} side needs the deployable network (--network)")
    if side in NETWORK_SIDES:
        note_bias_input(net, x)
    if side == "reference":
        return run_reference(net, x, device)
    if side == "lava":
        return run_lava(net, x, progress=progress)
    if side == "lava-float":
        return run_lava(net, x, select_tag="floating_pt", progress=progress)
    if side == "onnx":
        return run_onnx(net, x)
    if side == "recorded":
        if recording is None:
            raise ValueError("the recorded side needs the recording file (--recorded)")
        from dsatgo_deploy.hardware_sim.recording import load_recording

        return load_recording(recording, net, samples=len(x))
    raise ValueError(f"unknown side {side!r} (known: {', '.join(SIDES)})")
