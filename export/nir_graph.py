"""A NIR graph as freeze's float network (export/freeze.py): walked from its input to its output, node by node.

Between two neuron nodes a NIR graph holds linear nodes; they become one Loihi synapse, as freeze folds
pooling and flatten into the next synapse:

    Input                      the network's input (a leading batch dimension of 1, as nirtorch writes
                               (1, n) or (1, C, H, W), is dropped)
    Flatten                    folded into the next dense synapse (freeze's flatten)
    SumPool2d, AvgPool2d       folded into the next synapse (freeze's average pooling; a sum pool is k*k
                               times it); square kernel and stride, no padding
    Scale                      before a synapse: a uniform factor on its weights; after it: row i times s_i
    Affine, Linear             a dense synapse (Linear: bias 0)
    Conv2d, Conv1d             a conv synapse (Conv1d as a conv2d with H = 1); dilation 1, groups 1
    LIF, CubaLIF, IF           a spiking layer (export/nir_neurons.py), named by the neuron node's key
    LI, I                      the non-spiking readout (its v after T steps), before Output
    Output                     reads a readout, a spiking layer (the output is its spike counts) or a
                               synapse (a readout whose output is the mean of its current, as our nir target
                               writes DS-ATGO's readout)

Several edges into one node sum their sources (NIR's rule): allowed where they are spiking layers of the
same shape, which become the synapse's list of sources. Refused, naming the file, the node and the field:
any other node type, a subgraph, a recurrent edge (a cycle), a node that does not lead to the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT

from .freeze import FrozenConv, FrozenLayer, FrozenNetwork, _fold_into_conv, _fold_into_dense, _View
from .nir_neurons import READOUTS, SPIKING, NodeRef, map_neuron

SYNAPSES = ("Affine", "Linear", "Conv1d", "Conv2d")
LINEAR_OPS = ("Flatten", "SumPool2d", "AvgPool2d", "Scale")
MAPPED = ("Input", "Output", *SYNAPSES, *LINEAR_OPS, *SPIKING, *READOUTS)


@dataclass
class _Outlet:
    """A linear image (``view.ops``, times ``gain``) of the sum of spiking layers' outputs (or of the input)."""

    view: _View
    shape: tuple[int, ...]
    gain: float = 1.0


@dataclass
class _Current:
    """A synapse's output before its neuron: weights (pooling and flatten folded in), bias, geometry."""

    key: str
    sources: list[str]
    weight: np.ndarray
    bias: np.ndarray
    conv: FrozenConv | None
    shape: tuple[int, ...]


@dataclass
class _Readout:
    """A finished readout layer: only the Output node may read it."""

    key: str


@dataclass
class _Walk:
    origin: str
    dt: float
    timesteps: int
    layers: list[FrozenLayer] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _pair(ref: NodeRef, name: str) -> tuple[int, int]:
    values = np.atleast_1d(ref.array(name)).reshape(-1)
    if values.size not in (1, 2) or np.any(values != np.round(values)):
        ref.fail(name, f"is {values.tolist()}; expected one or two integers")
    return (int(values[0]), int(values[-1]))


def _order(graph: Any, origin: str) -> tuple[list[str], dict[str, list[str]]]:
    """Nodes in an order where every node follows its inputs, and each node's inputs; UserError for a
    recurrent edge, an edge naming a missing node, or a node that does not lead to the output."""
    nodes = graph.nodes
    preds: dict[str, list[str]] = {key: [] for key in nodes}
    succs: dict[str, list[str]] = {key: [] for key in nodes}
    for edge in dict.fromkeys(tuple(e) for e in graph.edges):
        for end in edge:
            if end not in nodes:
                raise UserError(f"{origin}: edge {edge[0]!r} -> {edge[1]!r} names node {end!r}, which the graph lacks")
        preds[edge[1]].append(edge[0])
        succs[edge[0]].append(edge[1])
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start in nodes:
        stack = [(start, iter(succs[start]))] if start not in state else []
        state.setdefault(start, 1)
        while stack:
            key, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[key] = 2
                order.append(key)
                stack.pop()
            elif state.get(child) == 1:
                raise UserError(f"{origin}: node '{key}': edge '{key}' -> '{child}' is recurrent (it closes a cycle); "
                                "Loihi layers here are feed-forward")
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succs[child])))
    order.reverse()
    outputs = [k for k in nodes if type(nodes[k]).__name__ == "Output"]
    reaching, frontier = set(outputs), list(outputs)
    while frontier:
        for parent in preds[frontier.pop()]:
            if parent not in reaching:
                reaching.add(parent)
                frontier.append(parent)
    for key in order:
        if key not in reaching:
            raise UserError(f"{origin}: node '{key}' ({type(nodes[key]).__name__}) does not lead to the output node")
    return order, preds


def _input_shape(ref: NodeRef) -> tuple[int, ...]:
    types = getattr(ref.node, "input_type", None) or {}
    shape = tuple(int(d) for d in np.asarray(types.get("input", []), dtype=np.int64).reshape(-1))
    if not shape or any(d <= 0 for d in shape):
        ref.fail("shape", f"is {shape}; the input needs a shape")
    if len(shape) in (2, 4) and shape[0] == 1:  # nirtorch keeps torch's batch dimension of its sample
        shape = shape[1:]
    return shape


def _merge(ref: NodeRef, incoming: list[Any]) -> Any:
    """The one signal a node reads: several incoming edges sum spiking layers' outputs of one shape."""
    for signal in incoming:
        if isinstance(signal, _Readout) and ref.type != "Output":
            ref.fail(None, f"reads the non-spiking readout '{signal.key}'; only the output node may")
    if len(incoming) == 1:
        return incoming[0]
    if ref.type == "Output":
        ref.fail(None, f"has {len(incoming)} input edges; a network here has one output")
    sources: list[str] = []
    for signal in incoming:
        if (not isinstance(signal, _Outlet) or signal.view.ops or signal.gain != 1.0 or INPUT in signal.view.sources
                or signal.shape != incoming[0].shape):
            ref.fail(None, "has several input edges; they can be summed only where each comes straight from a "
                           "spiking neuron node of the same shape")
        sources += [s for s in signal.view.sources if s not in sources]
    return _Outlet(_View(sources, incoming[0].shape), incoming[0].shape)


def _outlet(ref: NodeRef, signal: Any) -> _Outlet:
    if not isinstance(signal, _Outlet):
        ref.fail(None, "follows a synapse without a neuron between them; Loihi needs a neuron after every synapse")
    return signal


def _flatten(ref: NodeRef, signal: Any) -> _Outlet:
    outlet = _outlet(ref, signal)
    shape = outlet.shape
    start, end = int(getattr(ref.node, "start_dim", 0)), int(getattr(ref.node, "end_dim", -1))
    start, end = start % len(shape), end % len(shape)
    flat = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
    if flat == shape:
        return outlet
    view = outlet.view
    return _Outlet(_View(view.sources, view.shape_at_sources, view.ops + [("flatten", None, None, flat)]), flat,
                   outlet.gain)


def _pool(ref: NodeRef, signal: Any) -> _Outlet:
    outlet = _outlet(ref, signal)
    if len(outlet.shape) != 3:
        ref.fail(None, f"pools a {outlet.shape} signal; it needs (C, H, W)")
    kernel, stride = _pair(ref, "kernel_size"), _pair(ref, "stride")
    if kernel[0] != kernel[1] or stride[0] != stride[1]:
        ref.fail("kernel_size", f"kernel {kernel}, stride {stride}: only square pooling folds into a synapse")
    if getattr(ref.node, "padding", None) is not None and any(_pair(ref, "padding")):
        ref.fail("padding", f"is {_pair(ref, 'padding')}; only unpadded pooling folds into a synapse")
    channels, height, width = outlet.shape
    shape = (channels, (height - kernel[0]) // stride[0] + 1, (width - kernel[0]) // stride[0] + 1)
    view = outlet.view
    gain = outlet.gain * (kernel[0] * kernel[1] if ref.type == "SumPool2d" else 1.0)
    return _Outlet(_View(view.sources, view.shape_at_sources, view.ops + [("avgpool", kernel[0], stride[0], shape)]),
                   shape, gain)


def _scale(ref: NodeRef, signal: Any) -> Any:
    if isinstance(signal, _Current):  # after a synapse: row i of the weights and bias times s_i
        factor = ref.values("scale", signal.shape)
        rows = factor.reshape(factor.shape[0], -1)[:, 0]
        shape = (-1,) + (1,) * (signal.weight.ndim - 1)
        return _Current(signal.key, signal.sources, signal.weight * rows.reshape(shape), signal.bias * rows,
                        signal.conv, signal.shape)
    outlet = _outlet(ref, signal)
    factor = ref.array("scale").reshape(-1)
    if factor.size and np.any(factor != factor[0]):
        ref.fail("scale", "varies across the signal before a synapse; only a uniform scale folds into its weights")
    return _Outlet(outlet.view, outlet.shape, outlet.gain * float(factor[0] if factor.size else 1.0))


def _dense(ref: NodeRef, signal: Any) -> _Current:
    outlet = _outlet(ref, signal)
    weight = ref.array("weight")
    if weight.ndim != 2:
        ref.fail("weight", f"has shape {weight.shape}; expected (outputs, inputs)")
    if len(outlet.shape) > 1:
        ref.fail(None, f"reads a {outlet.shape} signal; a dense synapse needs a Flatten before it")
    if weight.shape[1] != outlet.shape[0]:
        ref.fail("weight", f"has {weight.shape[1]} inputs, but its source gives {outlet.shape[0]}")
    bias = ref.array("bias").reshape(-1) if ref.type == "Affine" else np.zeros(weight.shape[0])
    if bias.shape != (weight.shape[0],):
        ref.fail("bias", f"has shape {bias.shape}; expected ({weight.shape[0]},)")
    return _Current(ref.key, list(outlet.view.sources), _fold_into_dense(weight * outlet.gain, outlet.view), bias,
                    None, (int(weight.shape[0]),))


def _conv_geometry(ref: NodeRef, weight: np.ndarray, one_d: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """(stride, padding) as (y, x); Conv1d's as (1, s), (0, p)."""
    if int(np.asarray(getattr(ref.node, "groups", 1))) != 1:
        ref.fail("groups", f"is {ref.node.groups}; only groups = 1 maps")
    if any(d != 1 for d in _pair(ref, "dilation")):
        ref.fail("dilation", f"is {_pair(ref, 'dilation')}; only dilation 1 maps")
    stride = _pair(ref, "stride")
    padding = getattr(ref.node, "padding", 0)
    if isinstance(padding, str):
        if padding not in ("valid", "same") or (padding == "same" and (any(s != 1 for s in stride)
                                                                      or any(k % 2 == 0 for k in weight.shape[2:]))):
            ref.fail("padding", f"is {padding!r}; maps as 'valid', or 'same' with stride 1 and odd kernels")
        pad = (0, 0) if padding == "valid" else tuple((k - 1) // 2 for k in weight.shape[2:])
        padding = (pad[0], pad[-1])
    else:
        padding = _pair(ref, "padding")
    if one_d:
        return (1, stride[-1]), (0, padding[-1])
    return stride, padding


def _conv(ref: NodeRef, signal: Any, walk: _Walk) -> _Current:
    outlet = _outlet(ref, signal)
    weight = ref.array("weight")
    one_d = ref.type == "Conv1d"
    if weight.ndim != (3 if one_d else 4):
        ref.fail("weight", f"has shape {weight.shape}; expected (C_out, C_in, {'K' if one_d else 'KH, KW'})")
    shape = outlet.shape
    if one_d:
        weight = weight[:, :, None, :]
        shape = (1, 1, shape[0]) if len(shape) == 1 else (shape[0], 1, shape[-1]) if len(shape) == 2 else shape
    if len(shape) != 3 or shape[0] != weight.shape[1]:
        ref.fail("weight", f"has {weight.shape[1]} input channels, but its source gives {outlet.shape}")
    stride, padding = _conv_geometry(ref, weight, one_d)
    bias = ref.array("bias").reshape(-1) if getattr(ref.node, "bias", None) is not None else np.zeros(len(weight))
    if bias.size == 1 and len(weight) > 1:
        bias = np.full(len(weight), float(bias[0]))
    if bias.shape != (len(weight),):
        ref.fail("bias", f"has shape {bias.shape}; expected ({len(weight)},)")
    height = (shape[1] + 2 * padding[0] - weight.shape[2]) // stride[0] + 1
    width = (shape[2] + 2 * padding[1] - weight.shape[3]) // stride[1] + 1
    if height <= 0 or width <= 0:
        ref.fail("weight", f"a {weight.shape[2:]} kernel does not fit its {shape} input")
    view = outlet.view
    if view.ops:
        if stride[0] != stride[1] or padding[0] != padding[1]:
            ref.fail("stride", "a conv after pooling folds only with equal strides and paddings in y and x")
        weight, stride, padding = _fold_into_conv(weight * outlet.gain, {"stride": stride[0], "padding": padding[0]},
                                                  view, ref.key, walk.origin)
        conv = FrozenConv(tuple(view.shape_at_sources), stride, padding)
    else:
        weight = weight * outlet.gain
        conv = FrozenConv(shape, stride, padding)
    return _Current(ref.key, list(view.sources), weight, bias, conv, (int(len(weight)), int(height), int(width)))


def _neuron(ref: NodeRef, signal: Any, walk: _Walk) -> Any:
    if not isinstance(signal, _Current):
        ref.fail(None, "reads no synapse; a neuron needs an Affine, Linear or Conv node before it")
    mapped = map_neuron(ref, signal.shape, walk.dt)
    spiking = mapped.threshold is not None
    threshold = mapped.threshold if spiking else np.ones(signal.shape)
    if mapped.current_decay is not None and np.any(signal.bias != 0):
        raise UserError(f"{walk.origin}: node '{signal.key}': field 'bias': a CubaLIF node filters its input "
                        f"current; Loihi adds a bias to v, not to the synaptic current, so only a zero bias maps")
    factor = (mapped.input_gain / threshold).reshape(signal.shape[0], -1)[:, 0]
    offset = (mapped.voltage_bias / threshold).reshape(signal.shape[0], -1)[:, 0]
    weight = signal.weight * factor.reshape((-1,) + (1,) * (signal.weight.ndim - 1))
    bias = signal.bias * factor + offset
    schedule = np.ones(walk.timesteps) if spiking else None
    walk.layers.append(FrozenLayer(ref.key, list(signal.sources), weight, bias, mapped.decay, schedule, signal.conv,
                                   mapped.current_decay))
    walk.shapes[ref.key] = signal.shape
    if not spiking:
        return _Readout(ref.key)
    return _Outlet(_View([ref.key], signal.shape), signal.shape)


def _output(walk: _Walk, signal: Any, ref: NodeRef) -> None:
    """The network's output: a readout (done), a synapse (a readout of its mean current) or a spiking layer."""
    if isinstance(signal, _Current):
        walk.layers.append(FrozenLayer(signal.key, list(signal.sources), signal.weight, signal.bias, None, None,
                                       signal.conv))
        walk.shapes[signal.key] = signal.shape
    elif isinstance(signal, _Outlet):
        last = walk.layers[-1] if walk.layers else None
        if last is None or signal.view.ops or signal.view.sources != [last.name]:
            ref.fail(None, "reads neither a neuron nor a synapse; the output must be the last layer's")


def frozen_network(graph: Any, origin: str, dt: float, timesteps: int) -> FrozenNetwork:
    """The float network of a NIR graph (module doc), T = ``timesteps`` steps of ``dt`` seconds."""
    nodes = graph.nodes
    for key, node in nodes.items():
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise UserError(f"{origin}: node '{key}' (NIRGraph): a subgraph (snnTorch writes its recurrent "
                            "RLeaky/RSynaptic layers so) is not mapped; Loihi layers here are feed-forward")
        if kind not in MAPPED:
            raise UserError(f"{origin}: node '{key}' ({kind}): node type {kind} has no Loihi mapping here "
                            f"(mapped: {', '.join(MAPPED)})")
    inputs = [k for k, n in nodes.items() if type(n).__name__ == "Input"]
    outputs = [k for k, n in nodes.items() if type(n).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{origin}: the graph has {len(inputs)} input and {len(outputs)} output nodes; "
                        "one of each maps")
    order, preds = _order(graph, origin)
    walk = _Walk(origin, dt, timesteps)
    signals: dict[str, Any] = {}
    input_shape: tuple[int, ...] = ()
    for key in order:
        ref = NodeRef(origin, key, nodes[key])
        if ref.type == "Input":
            if preds[key]:
                ref.fail(None, "has input edges")
            input_shape = _input_shape(ref)
            walk.shapes[INPUT] = input_shape
            signals[key] = _Outlet(_View([INPUT], input_shape), input_shape)
            continue
        if not preds[key]:
            ref.fail(None, "has no input edge")
        signal = _merge(ref, [signals[p] for p in preds[key]])
        if ref.type == "Output":
            _output(walk, signal, ref)
        elif ref.type == "Flatten":
            signals[key] = _flatten(ref, signal)
        elif ref.type in ("SumPool2d", "AvgPool2d"):
            signals[key] = _pool(ref, signal)
        elif ref.type == "Scale":
            signals[key] = _scale(ref, signal)
        elif ref.type in ("Affine", "Linear"):
            signals[key] = _dense(ref, signal)
        elif ref.type in ("Conv1d", "Conv2d"):
            signals[key] = _conv(ref, signal, walk)
        else:
            signals[key] = _neuron(ref, signal, walk)
    if not walk.layers:
        raise UserError(f"{origin}: the graph has no synapse to map")
    for layer in walk.layers:  # a Conv1d reads its (C, L) input as (C, 1, L): the network takes it so
        if layer.sources == [INPUT] and layer.conv is not None and layer.conv.input_shape != input_shape:
            input_shape = walk.shapes[INPUT] = tuple(layer.conv.input_shape)
    return FrozenNetwork(timesteps, input_shape, walk.layers, shapes=dict(walk.shapes))
