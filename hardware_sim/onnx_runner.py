"""Run the ONNX target with onnxruntime: the one-timestep graph looped over T.

:func:`run_onnx` runs the integer-exact graph (export/onnx_writer.py ``build_onnx``)
and returns a :class:`RunRecord` like the reference simulator's, so the
two can be compared spike for spike (``dsatgo parity --sides reference,onnx``).
:func:`run_onnx_float` runs the float graph of the frozen network and returns
what ``run_frozen`` returns (readout mean over T, spikes per layer).

State is zero at the start of every sample; each step feeds the input payloads,
the timestep index t (the graph reads its thresholds from per-timestep tables)
and the state the previous step returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import InputEncoding
from dsatgo_deploy.onnx_metadata import input_name, output_name, read_metadata
from dsatgo_deploy.runs import RunRecord


#: the state of every layer in graphs of metadata format_version 1 and 2 (LIF kinds only)
STATE_BEFORE_V3 = ("u", "v")


def _ort():
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("running ONNX graphs needs onnxruntime: pip install 'dsatgo-deploy[onnx]'") from None
    return onnxruntime


def _load(model_or_path: Any):
    """An onnx.ModelProto from a ModelProto, serialized bytes or a file."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("running ONNX graphs needs the onnx package: pip install 'dsatgo-deploy[onnx]'") from None

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if isinstance(model_or_path, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model_or_path))
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"expected an .onnx file, an onnx.ModelProto or its bytes, got {type(model_or_path).__name__} "
                        "(a network's graph: export.onnx_writer.build_onnx / build_float_onnx)")
    path = str(model_or_path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such ONNX file")
    try:
        return onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError and friends for foreign files
        raise UserError(f"{path}: not an ONNX model ({exc.__class__.__name__})") from None


def _session(model):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _metadata(model, kind: str) -> dict[str, Any]:
    meta = read_metadata(model)
    if meta.get("kind") != kind:
        raise UserError(f"this ONNX model is dsatgo's {meta.get('kind')!r} step graph; expected the {kind!r} one")
    return meta


def run_onnx(model_or_path: Any, x: np.ndarray, payloads: bool = False, batch_size: int = 4096) -> RunRecord:
    """Loop the integer-exact step graph over T with onnxruntime.

    ``model_or_path``: an .onnx file written by ``--target onnx``, an onnx.ModelProto or its
    bytes (a network in hand: export.onnx_writer.build_onnx builds its graph). ``x``: analog
    samples (B, *input_shape), encoded as the network's input encoding says, or integer
    payloads (B, input_size) when ``payloads``.
    """
    model = _load(model_or_path)
    meta = _metadata(model, "integer")
    steps = int(meta["timesteps"])
    encoded = _encode(np.asarray(x), meta, payloads)  # (B, input_size) static or (B, T, input_size)
    session = _session(model)
    layers = meta["layers"]
    readout = layers[-1]
    has_readout = not readout["spiking"]
    # a layer's messages: bool spikes, or graded values (a sigma-delta kind; format_version 3)
    sent = {layer["name"]: "messages" if layer.get("message_bits") else "spikes" for layer in layers if layer["spiking"]}
    spikes: dict[str, list[np.ndarray]] = {name: [] for name in sent}
    traces: list[np.ndarray] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        batch = len(chunk)
        state = {input_name(layer["name"], name): np.zeros((batch, size), np.int64)
                 for layer in layers for name, size in _state_sizes(layer).items()}
        per_step: dict[str, list[np.ndarray]] = {name: [] for name in spikes}
        voltages = []
        for t in range(steps):
            step_input = chunk if chunk.ndim == 2 else np.ascontiguousarray(chunk[:, t])
            if int(meta.get("format_version", 1)) >= 2:  # x has the network's input shape (images for conv nets)
                step_input = step_input.reshape(batch, *meta["input_shape"])
            feeds = {"x": step_input, "t": np.array(t, dtype=np.int64), **state}
            outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
            state = {name: outputs[name + "_next"] for name in state}  # <layer>.<state> -> <layer>.<state>_next
            for name in spikes:
                per_step[name].append(outputs[output_name(name, sent[name])])
            if has_readout:  # the readout's trace: v (LIF), sigma (sigma-delta)
                voltages.append(outputs[output_name(readout["name"], readout.get("readout_var", "v") + "_next")])
        for name in spikes:
            spikes[name].append(np.stack(per_step[name], axis=1))
        if has_readout:
            traces.append(np.stack(voltages, axis=1).astype(np.int64))
    neurons = {layer["name"]: layer["neurons"] for layer in layers}
    messages = {name: np.concatenate(parts) if parts else np.zeros((0, steps, neurons[name]), np.int64)
                for name, parts in spikes.items()}
    trace = None  # a network whose last layer spikes has no readout (its output: spike counts)
    if has_readout:
        trace = np.concatenate(traces) if traces else np.zeros((0, steps, readout["neurons"]), np.int64)
    run = RunRecord.from_readout("onnx", {name: values != 0 for name, values in messages.items()}, trace)
    run.messages = {name: values.astype(np.int64) for name, values in messages.items() if sent[name] == "messages"}
    return run


def _state_sizes(layer: dict[str, Any]) -> dict[str, int]:
    """A layer's state inputs and their values per sample: metadata 'state' (format_version 3), else u and v."""
    return layer.get("state") or {name: layer["neurons"] for name in STATE_BEFORE_V3}


def _encode(array: np.ndarray, meta: dict[str, Any], payloads: bool) -> np.ndarray:
    """Samples -> int64 messages, as DeployableNetwork.encode_input does: (B, input_size) for static
    samples (B, *input_shape), sent every step; (B, T, input_size) for time-varying ones (B, T, *input_shape)."""
    steps, shape = int(meta["timesteps"]), tuple(meta["input_shape"])
    size = int(np.prod(shape))
    rest = array.shape[1:]
    if steps > 1 and len(rest) >= 2 and rest[0] == steps and int(np.prod(rest[1:])) == size:
        frames = (steps,)
    elif array.ndim >= 1 and int(np.prod(rest)) == size:
        frames = ()
    else:
        raise UserError(f"the ONNX graph takes {size} input values per sample (input shape {shape}, or T = {steps} "
                        f"frames of it), got samples shaped {rest}")
    if frames and meta["input_encoding"].get("kind") == "bias":  # as the reference simulator refuses them
        raise UserError("bias input sets the input neurons' bias once per sample: samples must be static "
                        f"(B, {', '.join(map(str, shape))}), not time-varying")
    batch = len(array)
    if payloads:
        return np.asarray(array, dtype=np.int64).reshape(batch, *frames, size)
    encoding = InputEncoding(**meta["input_encoding"])
    encoded = encoding.encode(array.reshape(batch * (frames[0] if frames else 1), *shape))
    return np.asarray(encoded, dtype=np.int64).reshape(batch, *frames, size)


@dataclass
class FloatResult:
    """The float graph's run: readout mean over T (B, classes; without a readout the last layer's
    firing rate), spikes (B, T, n) per spiking layer."""

    readout: np.ndarray
    spikes: dict[str, np.ndarray]

    @property
    def predictions(self) -> np.ndarray:
        return self.readout.argmax(axis=1)


def run_onnx_float(model_or_path: Any, x: np.ndarray, batch_size: int = 4096) -> FloatResult:
    """Loop the float32 step graph of a frozen network over T (a file, ModelProto or its bytes;
    a FrozenNetwork in hand: export.onnx_writer.build_float_onnx builds its graph)."""
    model = _load(model_or_path)
    meta = _metadata(model, "float")
    steps, shape = int(meta["timesteps"]), tuple(meta["input_shape"])
    session = _session(model)
    layers = meta["layers"]
    readout_name = layers[-1]["name"]
    array = np.asarray(x, dtype=np.float32).reshape(len(x), *shape)
    spikes: dict[str, list[np.ndarray]] = {layer["name"]: [] for layer in layers if layer["spiking"]}
    readouts = []
    for start in range(0, len(array), batch_size):
        chunk = array[start:start + batch_size]
        state = {input_name(layer["name"], "u"): np.zeros((len(chunk), layer["neurons"]), np.float32)
                 for layer in layers if layer["spiking"]}
        per_step: dict[str, list[np.ndarray]] = {name: [] for name in spikes}
        total = np.zeros((len(chunk), layers[-1]["neurons"]), np.float64)
        for t in range(steps):
            outputs = dict(zip([o.name for o in session.get_outputs()],
                               session.run(None, {"x": chunk, "t": np.array(t, dtype=np.int64), **state})))
            for name in spikes:
                state[input_name(name, "u")] = outputs[output_name(name, "u_next")]
                per_step[name].append(outputs[output_name(name, "spikes")])
            total += outputs[output_name(readout_name, "current") if output_name(readout_name, "current") in outputs
                             else output_name(readout_name, "spikes")]  # no readout: the last layer's spike counts
        for name in spikes:
            spikes[name].append(np.stack(per_step[name], axis=1).astype(bool))
        readouts.append(total / steps)
    return FloatResult(readout=np.concatenate(readouts) if readouts else np.zeros((0, layers[-1]["neurons"])),
                       spikes={name: np.concatenate(parts) if parts else np.zeros((0, steps, 0), bool)
                               for name, parts in spikes.items()})
