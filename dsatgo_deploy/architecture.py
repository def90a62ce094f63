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
from typing import Any, Sequence

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
SYNAPSE_PARAMS = ("weight", "bias")
NORM_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
NEURON_PARAMS = ("decay_logit", "running_threshold")

#: Input normalisation of the CIFAR sets, as in the DS-ATGO authors' loader.
CIFAR10_NORMALIZE = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
CIFAR100_NORMALIZE = {"mean": [0.5071, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2762]}

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


def state_dict_keys(arch: dict) -> list[str]:
    """Every state-dict key a model of this architecture has, in layer order."""
    keys: list[str] = []
    for layer in arch["layers"]:
        name = layer["name"]
        if layer["op"] in SYNAPSE_OPS:
            keys.append(synapse_key(name, "weight"))
            if layer["bias"]:
                keys.append(synapse_key(name, "bias"))
            if layer["bn"]:
                keys.extend(norm_key(name, p) for p in NORM_PARAMS)
        if layer["neuron"] == "lif":
            keys.extend(neuron_key(name, p) for p in NEURON_PARAMS)
    return keys


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


# --------------------------------------------------------------------------- builders


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _linear(name: str, source: str, n_in: int, n_out: int, *, bias: bool, bn: bool, neuron: str) -> dict:
    return {"name": name, "op": "linear", "inputs": [source], "in_features": n_in, "out_features": n_out,
            "bias": bias, "bn": bn, "neuron": neuron}


def _conv(name: str, source: str, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
          padding: int | None = None, *, bias: bool = False, bn: bool = True, neuron: str = "lif") -> dict:
    return {"name": name, "op": "conv2d", "inputs": [source], "in_channels": c_in, "out_channels": c_out,
            "kernel_size": kernel, "stride": stride, "padding": kernel // 2 if padding is None else padding,
            "bias": bias, "bn": bn, "neuron": neuron}


def _arch(kind: str, input_shape: Sequence[int], timesteps: int, num_classes: int, neuron: dict,
          layers: list[dict], encoding: str = "direct", normalize: dict | None = None) -> dict:
    arch = {"kind": kind, "input_shape": [int(v) for v in input_shape], "timesteps": int(timesteps),
            "num_classes": int(num_classes), "neuron": dict(neuron), "encoding": encoding,
            "normalize": None if normalize is None else {k: [float(v) for v in normalize[k]] for k in ("mean", "std")},
            "layers": layers}
    return check_architecture(arch, f"{kind} architecture")


def mlp_architecture(
    input_size: int, hidden: Sequence[int], num_classes: int, timesteps: int, neuron: dict, bias: bool = True
) -> dict:
    """A spiking MLP: hidden DS-ATGO LIF layers (Linear, no BN), then a linear readout.

    Layers fc1, fc2, ..., readout (the layout the MLP export path reads).
    """
    sizes = [int(input_size), *[int(h) for h in hidden], int(num_classes)]
    layers, source = [], INPUT
    for index in range(len(sizes) - 1):
        last = index == len(sizes) - 2
        name = "readout" if last else f"fc{index + 1}"
        layers.append(_linear(name, source, sizes[index], sizes[index + 1], bias=bias, bn=False,
                              neuron="readout" if last else "lif"))
        source = name
    return _arch("mlp", [int(input_size)], timesteps, num_classes, neuron, layers)


def convnet_architecture(
    input_shape: Sequence[int], num_classes: int, timesteps: int, neuron: dict,
    channels: Sequence[int | str] = (32, "pool", 64, "pool"), hidden: Sequence[int] = (128,),
    width: float = 1.0, normalize: dict | None = None, encoding: str = "direct",
) -> dict:
    """A small VGG-style spiking CNN (8x8 digits, 28x28 MNIST, 32x32 CIFAR, ...).

    ``channels`` lists conv3x3-tdBN-LIF blocks (an int: output channels, times
    ``width``) and 2x2 average pools ("pool"); then flatten, the ``hidden``
    Linear(no bias)-BN1d-LIF layers and a linear readout (with bias). The
    default on 8x8 inputs: conv1 32@8x8, pool1 -> 4x4, conv2 64@4x4, pool2 ->
    2x2, flatten 256, fc1 128, readout.
    """
    if len(input_shape) != 3:
        raise ValueError(f"convnet needs an image input (C, H, W), got input shape {tuple(input_shape)}")
    layers: list[dict] = []
    source, c_in = INPUT, int(input_shape[0])
    convs = pools = 0
    for item in channels:
        if item == "pool":
            pools += 1
            name = f"pool{pools}"
            layers.append({"name": name, "op": "avgpool", "inputs": [source], "kernel_size": 2, "stride": 2,
                           "neuron": "none"})
        elif _is_int(item) and item >= 1:
            convs += 1
            name = f"conv{convs}"
            c_out = _scaled(item, width)
            layers.append(_conv(name, source, c_in, c_out))
            c_in = c_out
        else:
            raise ValueError(f"convnet channels: entries are positive integers or 'pool', got {item!r}")
        source = name
    layers.append({"name": "flatten", "op": "flatten", "inputs": [source], "neuron": "none"})
    arch_so_far = {"input_shape": list(input_shape), "layers": layers}
    features = layer_shapes(arch_so_far, "convnet architecture")["flatten"][0]
    source = "flatten"
    for index, size in enumerate(hidden):
        name = f"fc{index + 1}"
        size = _scaled(int(size), width)
        layers.append(_linear(name, source, features, size, bias=False, bn=True, neuron="lif"))
        source, features = name, size
    layers.append(_linear("readout", source, features, int(num_classes), bias=True, bn=False, neuron="readout"))
    return _arch("convnet", input_shape, timesteps, num_classes, neuron, layers, encoding, normalize)


#: VGGSNN (TET, Deng et al. 2022; the DS-ATGO paper's CIFAR10-DVS net): conv3x3-tdBN-LIF and 2x2 pools.
VGGSNN_CONFIG: tuple[int | str, ...] = (64, 128, "pool", 256, 256, "pool", 512, 512, "pool", 512, 512, "pool")


def vggsnn_architecture(
    input_shape: Sequence[int] = (2, 48, 48), num_classes: int = 10, timesteps: int = 10,
    neuron: dict | None = None, width: float = 1.0, encoding: str = "sequence", normalize: dict | None = None,
) -> dict:
    """VGGSNN for CIFAR10-DVS: 8 conv3x3 (no bias)-tdBN-LIF layers 64, 128, P, 256, 256, P,
    512, 512, P, 512, 512, P (P: 2x2 average pool), flatten, Linear readout (with bias).

    On 2x48x48 event frames (``encoding`` "sequence": one frame per timestep)
    the readout sees 512 x 3 x 3. ``width`` scales every channel count (small
    values for tests).
    """
    arch = convnet_architecture(input_shape, num_classes, timesteps, neuron or {}, channels=VGGSNN_CONFIG,
                                hidden=(), width=width, normalize=normalize, encoding=encoding)
    arch["kind"] = "vggsnn"
    return arch


def resnet19_architecture(
    input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, timesteps: int = 2,
    neuron: dict | None = None, width: float = 1.0, normalize: dict | None = None, encoding: str = "direct",
) -> dict:
    """SEW ResNet-19 as in the DS-ATGO authors' code (20 spiking layers at any width).

    stem: conv3x3 3->128 (no bias), tdBN, PLIF. Stages of BasicBlocks 128 x 3
    (stride 1), 256 x 3 (first stride 2), 512 x 2 (first stride 2); a block is
    conv3x3-tdBN-PLIF, conv3x3-tdBN-PLIF, then ADD of the block input
    (``s<stage>b<block>_conv1``, ``_conv2``, ``_add``), or of a downsample
    conv1x1 (stride s)-tdBN-PLIF (``_down``) where the shape changes. Head:
    global average pool ("pool"), Linear 512->256 without bias + BN1d + PLIF
    ("fc1"), Linear 256->classes without bias ("readout"). ``width`` scales all
    channel and feature counts.
    """
    if len(input_shape) != 3:
        raise ValueError(f"resnet19 needs an image input (C, H, W), got input shape {tuple(input_shape)}")
    layers: list[dict] = []
    planes = _scaled(128, width)
    layers.append(_conv("stem", INPUT, int(input_shape[0]), planes))
    source, c_in = "stem", planes
    for stage, (base, blocks, stride) in enumerate(((128, 3, 1), (256, 3, 2), (512, 2, 2)), start=1):
        c_out = _scaled(base, width)
        for block in range(1, blocks + 1):
            s = stride if block == 1 else 1
            prefix = f"s{stage}b{block}"
            layers.append(_conv(f"{prefix}_conv1", source, c_in, c_out, 3, s))
            layers.append(_conv(f"{prefix}_conv2", f"{prefix}_conv1", c_out, c_out, 3, 1))
            identity = source
            if s != 1 or c_in != c_out:
                layers.append(_conv(f"{prefix}_down", source, c_in, c_out, 1, s, 0))
                identity = f"{prefix}_down"
            layers.append({"name": f"{prefix}_add", "op": "add", "inputs": [f"{prefix}_conv2", identity],
                           "neuron": "none"})
            source, c_in = f"{prefix}_add", c_out
    layers.append({"name": "pool", "op": "global_avgpool", "inputs": [source], "neuron": "none"})
    hidden = _scaled(256, width)
    layers.append(_linear("fc1", "pool", c_in, hidden, bias=False, bn=True, neuron="lif"))
    layers.append(_linear("readout", "fc1", hidden, int(num_classes), bias=False, bn=False, neuron="readout"))
    return _arch("resnet19", input_shape, timesteps, num_classes, neuron or {}, layers, encoding, normalize)


#: ImageNet input normalisation (per RGB channel, images in [0, 1]).
IMAGENET_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def resnet18_architecture(
    input_shape: Sequence[int] = (3, 224, 224), num_classes: int = 1000, timesteps: int = 4,
    neuron: dict | None = None, width: float = 1.0, normalize: dict | None = None, encoding: str = "direct",
) -> dict:
    """SEW ResNet-18 (Fang et al. 2021; the DS-ATGO paper's ImageNet net) with tdBN and DS-ATGO LIF.

    stem: conv7x7 stride 2 (no bias), tdBN, PLIF; then a 2x2 average pool of stride 2 where the
    original has a 3x3 max pool (max pooling is no operation of this format, nor of Loihi's
    synapses; both halve the 112x112 map to 56x56). Stages of two BasicBlocks, 64, 128, 256, 512
    channels, the first block of stages 2-4 with stride 2; a block is conv3x3-tdBN-PLIF,
    conv3x3-tdBN-PLIF, then ADD of the block input or of a downsample conv1x1 (stride s)-tdBN-PLIF
    (names as in :func:`resnet19_architecture`). Head: global average pool, Linear 512 -> classes
    with bias ("readout"). ``width`` scales all channel counts.
    """
    if len(input_shape) != 3:
        raise ValueError(f"resnet18 needs an image input (C, H, W), got input shape {tuple(input_shape)}")
    layers: list[dict] = []
    planes = _scaled(64, width)
    layers.append(_conv("stem", INPUT, int(input_shape[0]), planes, 7, 2, 3))
    layers.append({"name": "stem_pool", "op": "avgpool", "inputs": ["stem"], "kernel_size": 2, "stride": 2,
                   "neuron": "none"})
    source, c_in = "stem_pool", planes
    for stage, base in enumerate((64, 128, 256, 512), start=1):
        c_out = _scaled(base, width)
        for block in (1, 2):
            s = 2 if stage > 1 and block == 1 else 1
            prefix = f"s{stage}b{block}"
            layers.append(_conv(f"{prefix}_conv1", source, c_in, c_out, 3, s))
            layers.append(_conv(f"{prefix}_conv2", f"{prefix}_conv1", c_out, c_out, 3, 1))
            identity = source
            if s != 1 or c_in != c_out:
                layers.append(_conv(f"{prefix}_down", source, c_in, c_out, 1, s, 0))
                identity = f"{prefix}_down"
            layers.append({"name": f"{prefix}_add", "op": "add", "inputs": [f"{prefix}_conv2", identity],
                           "neuron": "none"})
            source, c_in = f"{prefix}_add", c_out
    layers.append({"name": "pool", "op": "global_avgpool", "inputs": [source], "neuron": "none"})
    layers.append(_linear("readout", "pool", c_in, int(num_classes), bias=True, bn=False, neuron="readout"))
    return _arch("resnet18", input_shape, timesteps, num_classes, neuron or {}, layers, encoding, normalize)
