"""The model zoo: builders of the architecture descriptions (dsatgo_deploy/architecture.py) that
``dsatgo train --model`` offers: mlp, convnet, vggsnn, resnet19, resnet18. Each returns plain, checked data.

A new model is one more builder here, its name in train/loop.py's MODELS and its branch of build_architecture.
"""

from __future__ import annotations

from typing import Any, Sequence

from dsatgo_deploy.architecture import INPUT, check_architecture, layer_shapes

#: Input normalisation of the CIFAR sets, as in the DS-ATGO authors' loader.
CIFAR10_NORMALIZE = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
CIFAR100_NORMALIZE = {"mean": [0.5071, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2762]}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def _basic_block(layers: list[dict], prefix: str, source: str, c_in: int, c_out: int, stride: int) -> str:
    """A SEW BasicBlock appended to ``layers``: conv3x3 (stride) and conv3x3, then ADD of the block input or of
    a downsample conv1x1 where the shape changes; returns the name of its ADD."""
    layers.append(_conv(f"{prefix}_conv1", source, c_in, c_out, 3, stride))
    layers.append(_conv(f"{prefix}_conv2", f"{prefix}_conv1", c_out, c_out, 3, 1))
    identity = source
    if stride != 1 or c_in != c_out:
        layers.append(_conv(f"{prefix}_down", source, c_in, c_out, 1, stride, 0))
        identity = f"{prefix}_down"
    layers.append({"name": f"{prefix}_add", "op": "add", "inputs": [f"{prefix}_conv2", identity], "neuron": "none"})
    return f"{prefix}_add"


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
            source = _basic_block(layers, f"s{stage}b{block}", source, c_in, c_out, stride if block == 1 else 1)
            c_in = c_out
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
            stride = 2 if stage > 1 and block == 1 else 1
            source = _basic_block(layers, f"s{stage}b{block}", source, c_in, c_out, stride)
            c_in = c_out
    layers.append({"name": "pool", "op": "global_avgpool", "inputs": [source], "neuron": "none"})
    layers.append(_linear("readout", "pool", c_in, int(num_classes), bias=True, bn=False, neuron="readout"))
    return _arch("resnet18", input_shape, timesteps, num_classes, neuron or {}, layers, encoding, normalize)
