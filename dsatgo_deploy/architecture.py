"""The architecture description a checkpoint carries, shared by train/ and export/.

A model is described by plain data (JSON-able, nothing executable), so that a
checkpoint loads with ``torch.load(weights_only=True)`` and export can read the
parameters without importing train/. The description is a directed acyclic
graph of layers listed in topological order:

    {"kind": "resnet19",            # informational: mlp, convnet, vggsnn, resnet19, ...
     "input_shape": [3, 32, 32],    # one sample at one timestep: [features] or [C, H, W]
     "timesteps": 2,
     "num_classes": 10,
     "neuron": {...train.neuron.NeuronConfig fields...},
     "encoding": "direct",          # optional: "direct" (default, the same input at every
                                    # step) or "sequence" (one input frame per step, e.g. DVS)
     "normalize": {"mean": [...], "std": [...]},   # optional: per input channel,
                                    # x <- (x - mean) / std before the first layer
     "layers": [
        {"name": "stem", "op": "conv2d", "inputs": ["input"], "in_channels": 3,
         "out_channels": 128, "kernel_size": 3, "stride": 1, "padding": 1,
         "bias": false, "bn": true, "neuron": "lif"},
        ...,
        {"name": "readout", "op": "linear", "inputs": ["fc1"], "in_features": 256,
         "out_features": 10, "bias": false, "bn": false, "neuron": "readout"}]}

Every layer has ``name`` (an identifier, not "input"), ``op``, ``inputs`` (the
names of earlier layers, or "input" for the network input; always explicit) and
``neuron``. Per operation (shapes are per sample, per timestep):

==============  ===============================================  ========  =============
op              fields                                           inputs    output shape
==============  ===============================================  ========  =============
linear          in_features, out_features, bias, bn              1 (1-D)   (out_features,)
conv2d          in_channels, out_channels, kernel_size, stride,  1 (C,H,W) (out, H', W')
                padding, bias, bn  (square kernels, ints)
avgpool         kernel_size, stride                              1 (C,H,W) (C, H', W')
global_avgpool  -                                                1 (C,H,W) (C,)
flatten         -                                                1         (prod(shape),)
add             - (SEW residual ADD)                             2, equal  the same shape
==============  ===============================================  ========  =============

``bn`` puts a tdBN (BatchNorm over batch x time [x space], per channel or
feature) after the synapse. ``neuron`` is "lif" (a DS-ATGO LIF layer), "readout"
(non-spiking output: the mean over T of its input current, Eq. 8; exactly one,
the last layer, output (num_classes,)) or "none" (no neuron: the only choice for
avgpool, global_avgpool, flatten and add). Every layer but the last feeds a later one.

State-dict keys follow from the layer names, here and nowhere else:
:func:`synapse_key` (``synapses.<name>.weight|bias``), :func:`norm_key`
(``norms.<name>.weight|bias|running_mean|running_var|num_batches_tracked``),
:func:`neuron_key` (``neurons.<name>.decay_logit|running_threshold``);
:func:`state_dict_keys` lists them all for an architecture.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

#: Name of the network input in a layer's ``inputs``.
INPUT = "input"
SYNAPSE_OPS = ("linear", "conv2d")
LAYER_OPS = ("linear", "conv2d", "avgpool", "global_avgpool", "flatten", "add")
NEURON_KINDS = ("lif", "readout", "none")
ENCODINGS = ("direct", "sequence")
#: Integer parameters of each operation (besides the booleans bias, bn of synapses).
OP_FIELDS: dict[str, tuple[str, ...]] = {
    "linear": ("in_features", "out_features"),
    "conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
    "avgpool": ("kernel_size", "stride"),
    "global_avgpool": (),
    "flatten": (),
    "add": (),
}
THRESHOLD_MODES = ("adaptive", "estimated", "fixed")
SURROGATE_MODES = ("tgo", "tgo_sigma", "fixed")
DECAY_MODES = ("plif", "fixed")


def check_one_of(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    """ValueError naming the field when ``value`` is not one of the closed set ``choices``."""
    if value not in choices:
        raise ValueError(f"{field_name} must be one of {', '.join(choices)}, got {value!r}")


class NeuronConfig(NamedTuple):
    """Hyper-parameters shared by the DS-ATGO layers of a model (a checkpoint's ``arch.neuron``;
    train/neuron.py documents each mode)."""

    threshold_mode: str = "adaptive"
    surrogate_mode: str = "tgo"
    decay_mode: str = "plif"
    tau_init: float = 0.2
    v_th0: float = 1.0
    f_c: float = 1.0
    kappa0: float = 1.0
    momentum: float = 0.1

    @classmethod
    def from_dict(cls, data: dict) -> "NeuronConfig":
        config = cls(**data)
        check_one_of("threshold_mode", config.threshold_mode, THRESHOLD_MODES)
        check_one_of("surrogate_mode", config.surrogate_mode, SURROGATE_MODES)
        check_one_of("decay_mode", config.decay_mode, DECAY_MODES)
        if not 0.0 < config.tau_init < 1.0:
            raise ValueError(f"tau_init must be in (0, 1), got {config.tau_init}")
        return config


SYNAPSE_PARAMS = ("weight", "bias")
NORM_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
NEURON_PARAMS = ("decay_logit", "running_threshold")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def synapse_key(layer: str, param: str) -> str:
    """State-dict key of a synapse parameter, e.g. ``synapses.fc1.weight``."""
    return f"synapses.{layer}.{param}"


def norm_key(layer: str, param: str) -> str:
    """State-dict key of a tdBN parameter or buffer, e.g. ``norms.conv1.running_var``."""
    return f"norms.{layer}.{param}"


def neuron_key(layer: str, param: str) -> str:
    """State-dict key of a neuron parameter or buffer, e.g. ``neurons.fc1.running_threshold``."""
    return f"neurons.{layer}.{param}"


def state_dict_shapes(arch: dict) -> dict[str, tuple[int, ...]]:
    """Every state-dict key a model of this architecture has, in layer order, with its shape
    (train/models.py builds exactly these; tests/train pins the two together)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in arch["layers"]:
        name = layer["name"]
        if layer["op"] in SYNAPSE_OPS:
            if layer["op"] == "linear":
                out, weight = layer["out_features"], (layer["out_features"], layer["in_features"])
            else:
                out, kernel = layer["out_channels"], layer["kernel_size"]
                weight = (out, layer["in_channels"], kernel, kernel)
            shapes[synapse_key(name, "weight")] = weight
            if layer["bias"]:
                shapes[synapse_key(name, "bias")] = (out,)
            if layer["bn"]:
                shapes.update({norm_key(name, p): (out,) for p in NORM_PARAMS if p != "num_batches_tracked"})
                shapes[norm_key(name, "num_batches_tracked")] = ()
        if layer["neuron"] == "lif":
            shapes[neuron_key(name, "decay_logit")] = ()
            shapes[neuron_key(name, "running_threshold")] = (int(arch["timesteps"]),)
    return shapes


def state_dict_keys(arch: dict) -> list[str]:
    """Every state-dict key a model of this architecture has, in layer order."""
    return list(state_dict_shapes(arch))


# --------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pooled(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _layer_shape(layer: dict, name: str, where: str, in_shapes: list[tuple[int, ...]],
                 sources: list[str]) -> tuple[int, ...]:
    """Output shape of one (already field-checked) layer; ValueError naming the field on a mismatch."""
    op = layer["op"]
    shape, source = in_shapes[0], sources[0]
    if op == "linear":
        if len(shape) != 1:
            raise ValueError(f"{where}: field 'inputs': linear needs a 1-D input, got shape {shape} from "
                             f"'{source}' (put a flatten or global_avgpool layer before it)")
        if shape[0] != layer["in_features"]:
            raise ValueError(f"{where}: field 'in_features' is {layer['in_features']} but '{source}' "
                             f"gives {shape[0]} features")
        return (layer["out_features"],)
    if op in ("conv2d", "avgpool", "global_avgpool"):
        if len(shape) != 3:
            raise ValueError(f"{where}: field 'inputs': {op} needs a (C, H, W) input, got shape {shape} from '{source}'")
        channels, height, width = shape
        if op == "global_avgpool":
            return (channels,)
        if op == "conv2d":
            if channels != layer["in_channels"]:
                raise ValueError(f"{where}: field 'in_channels' is {layer['in_channels']} but '{source}' "
                                 f"gives {channels} channels")
            out = (layer["out_channels"],
                   _pooled(height, layer["kernel_size"], layer["stride"], layer["padding"]),
                   _pooled(width, layer["kernel_size"], layer["stride"], layer["padding"]))
        else:
            out = (channels, _pooled(height, layer["kernel_size"], layer["stride"]),
                   _pooled(width, layer["kernel_size"], layer["stride"]))
        if out[1] < 1 or out[2] < 1:
            raise ValueError(f"{where}: field 'kernel_size': {layer['kernel_size']} does not fit the "
                             f"{height}x{width} input from '{source}'")
        return out
    if op == "flatten":
        return (math.prod(shape),)
    if op == "add":
        if in_shapes[0] != in_shapes[1]:
            raise ValueError(f"{where}: field 'inputs': add needs equal shapes, got {in_shapes[0]} from "
                             f"'{sources[0]}' and {in_shapes[1]} from '{sources[1]}'")
        return shape
    raise AssertionError(op)  # unreachable: op checked before


def _check_layer_fields(layer: dict, where: str) -> None:
    op = layer.get("op")
    if op not in LAYER_OPS:
        raise ValueError(f"{where}: field 'op': unknown operation {op!r} (known: {', '.join(LAYER_OPS)})")
    neuron = layer.get("neuron")
    if neuron not in NEURON_KINDS:
        raise ValueError(f"{where}: field 'neuron': unknown neuron {neuron!r} (known: {', '.join(NEURON_KINDS)})")
    if op not in SYNAPSE_OPS and neuron != "none":
        raise ValueError(f"{where}: field 'neuron': operation '{op}' takes neuron 'none', got {neuron!r}")
    for field in OP_FIELDS[op]:
        if field not in layer:
            raise ValueError(f"{where}: missing field '{field}' (operation '{op}' needs {', '.join(OP_FIELDS[op])})")
        value = layer[field]
        minimum = 0 if field == "padding" else 1
        if not _is_int(value) or value < minimum:
            raise ValueError(f"{where}: field '{field}' must be an integer >= {minimum}, got {value!r}")
    if op in SYNAPSE_OPS:
        for field in ("bias", "bn"):
            if field not in layer:
                raise ValueError(f"{where}: missing field '{field}' (true or false)")
            if not isinstance(layer[field], bool):
                raise ValueError(f"{where}: field '{field}' must be true or false, got {layer.get(field)!r}")


def layer_shapes(arch: dict, origin: str = "architecture") -> dict[str, tuple[int, ...]]:
    """Per-sample, per-timestep output shape of every layer (and of "input"); validates as it goes."""
    input_shape = arch["input_shape"]
    if (not isinstance(input_shape, (list, tuple)) or not input_shape
            or not all(_is_int(v) and v >= 1 for v in input_shape)):
        raise ValueError(f"{origin}: field 'input_shape' must be a non-empty list of positive integers, "
                         f"got {input_shape!r}")
    shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(input_shape)}
    layers = arch["layers"]
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ValueError(f"{origin}: layer #{index}: must be a dict, got {type(layer).__name__}")
        name = layer.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name == INPUT:
            raise ValueError(f"{origin}: layer #{index}: field 'name' must be an identifier other than "
                             f"'{INPUT}', got {name!r}")
        where = f"{origin}: layer '{name}'"
        if name in shapes:
            raise ValueError(f"{where}: field 'name': the name is used twice")
        _check_layer_fields(layer, where)
        if "inputs" not in layer:
            raise ValueError(f"{where}: missing field 'inputs' (the earlier layers it reads, or '{INPUT}')")
        sources = layer["inputs"]
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise ValueError(f"{where}: field 'inputs' must be a list of layer names (or '{INPUT}'), got {sources!r}")
        wanted = 2 if layer["op"] == "add" else 1
        if len(sources) != wanted:
            raise ValueError(f"{where}: field 'inputs': operation '{layer['op']}' takes {wanted} input(s), "
                             f"got {len(sources)}")
        for source in sources:
            if source not in shapes:
                raise ValueError(f"{where}: field 'inputs': {source!r} is not '{INPUT}' or an earlier layer")
        shapes[name] = _layer_shape(layer, name, where, [shapes[s] for s in sources], sources)
    return shapes


def check_architecture(arch: Any, origin: str = "architecture") -> dict:
    """Validate an architecture dict (fields, graph, shapes); raise ValueError naming layer and field."""
    if not isinstance(arch, dict):
        raise ValueError(f"{origin}: must be a dict, got {type(arch).__name__}")
    for key in ("kind", "input_shape", "timesteps", "num_classes", "neuron", "layers"):
        if key not in arch:
            raise ValueError(f"{origin}: missing field '{key}'")
    for key in ("timesteps", "num_classes"):
        if not _is_int(arch[key]) or arch[key] < 1:
            raise ValueError(f"{origin}: field '{key}' must be an integer >= 1, got {arch[key]!r}")
    if not isinstance(arch["neuron"], dict):
        raise ValueError(f"{origin}: field 'neuron' must be a dict")
    encoding = arch.get("encoding", "direct")
    if encoding not in ENCODINGS:
        raise ValueError(f"{origin}: field 'encoding': unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    layers = arch["layers"]
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{origin}: field 'layers' must be a non-empty list")
    shapes = layer_shapes(arch, origin)
    normalize = arch.get("normalize")
    if normalize is not None:
        channels = shapes[INPUT][0]
        if not isinstance(normalize, dict) or set(normalize) != {"mean", "std"}:
            raise ValueError(f"{origin}: field 'normalize' must be null or {{'mean': [...], 'std': [...]}}")
        for key in ("mean", "std"):
            values = normalize[key]
            if (not isinstance(values, list) or len(values) != channels
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
                raise ValueError(f"{origin}: field 'normalize.{key}' must be {channels} finite numbers "
                                 f"(one per input channel), got {values!r}")
        if any(v <= 0 for v in normalize["std"]):
            raise ValueError(f"{origin}: field 'normalize.std' must be positive")
    readouts = [layer["name"] for layer in layers if layer["neuron"] == "readout"]
    last = layers[-1]
    if last["neuron"] != "readout" or len(readouts) != 1:
        raise ValueError(f"{origin}: the last layer, and only it, must have neuron 'readout' "
                         f"(readout layers: {readouts or 'none'})")
    if shapes[last["name"]] != (arch["num_classes"],):
        raise ValueError(f"{origin}: layer '{last['name']}': output shape {shapes[last['name']]} does not match "
                         f"num_classes = {arch['num_classes']}")
    used = {source for layer in layers for source in layer["inputs"]}
    for layer in layers[:-1]:
        if layer["name"] not in used:
            raise ValueError(f"{origin}: layer '{layer['name']}': its output is never used (no later layer "
                             "lists it in 'inputs')")
    return arch
