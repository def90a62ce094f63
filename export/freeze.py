"""Freeze: a DS-ATGO checkpoint -> a float network of Loihi-shaped layers with fixed thresholds.

What training leaves adaptive becomes constant here, and what Loihi has no
neuron for is folded into the neighbouring synapses:

* thresholds: each spiking layer's running average per timestep (the schedule
  eval mode uses, Eq. 6); decays: tau = sigmoid(w);
* tdBN (eval: running statistics) folded into its synapse, per output channel:
  W' = W g / sqrt(var + eps), b' = (b - mean) g / sqrt(var + eps) + beta;
* average pooling, global average pooling and flatten folded into the next
  synapse (they are linear): a dense layer after them gets W' = W o P; a conv
  after a k x k / stride k average pool gets its kernel spread over k x k
  blocks (kernel K k, stride s k, padding p k, values K / k^2);
* SEW residual ADD: the summed spike sources become the next layer's list of
  sources, all through the same weights.

Each frozen layer computes, from the sum of its sources' outputs m(t):

    I(t) = syn(W, m(t)) + b                       (dense or conv, torch layout)
    U(t) = tau U(t-1) (1 - S(t-1)) + I(t),  S(t) = 1(U(t) >= theta(t))
    readout = mean_t I(t)

A layer imported from another framework (export/nir_import.py) may also keep a synaptic
current, ``current_tau`` = alpha (Loihi's current decay; the bias then goes to U, as Loihi
adds it to v, not to u), and a readout may leak (``tau`` set on a non-spiking layer):

    J(t) = alpha J(t-1) + syn(W, m(t)),  I(t) = J(t) + b
    leaky readout: U(t) = tau U(t-1) + I(t), readout = U(T)

Reads only the checkpoint's architecture and state dict (no train/ import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dsatgo_deploy.architecture import INPUT, layer_shapes, neuron_key, norm_key, synapse_key
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.neurons import neuron_kind

from .float_dynamics import FROZEN_NEURON, lif_spikes, readout_output, synaptic_current  # noqa: F401  (this module's API)


BN_EPS = 1e-5


@dataclass
class FrozenConv:
    """Geometry of a frozen conv synapse (torch cross-correlation, (C, H, W))."""

    input_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass
class FrozenLayer:
    """A Loihi-shaped layer with constant float parameters.

    weight: (out, in) dense or (C_out, C_in, KH, KW) conv, float64; bias (out,)
    or (C_out,); sources: spiking layers (or "input") whose outputs are summed;
    threshold_schedule (T,) for a spiking layer, None for the readout; tau of a readout:
    None (its output is mean_t I(t)) or its leak (output U(T)); current_tau: the synaptic
    current's decay alpha, None for none (module doc).
    """

    name: str
    sources: list[str]
    weight: np.ndarray
    bias: np.ndarray
    tau: float | None
    threshold_schedule: np.ndarray | None
    conv: FrozenConv | None = None
    current_tau: float | None = None

    def __post_init__(self) -> None:
        if self.weight.ndim not in (2, 4):
            raise ValueError(f"layer '{self.name}': weight must be 2-D or 4-D, got shape {self.weight.shape}")
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"layer '{self.name}': bias shape {self.bias.shape} != ({self.weight.shape[0]},)")

    @property
    def spiking(self) -> bool:
        return self.threshold_schedule is not None

    @property
    def kind(self) -> str:
        return "conv" if self.conv is not None else "dense"

    def synapse(self, messages: torch.Tensor, weight: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """syn(W, m) + b on (N, *input) float64 messages -> (N, neurons) flattened (C, H, W); ``weight`` and
        ``bias``: W and b in the messages' dtype when that is not float64."""
        weight = torch.from_numpy(self.weight) if weight is None else weight
        bias = torch.from_numpy(self.bias) if bias is None else bias
        if self.conv is None:
            return messages.reshape(len(messages), -1) @ weight.T + bias
        out = F.conv2d(messages.reshape(len(messages), *self.conv.input_shape), weight, bias,
                       stride=self.conv.stride, padding=self.conv.padding)
        return out.reshape(len(messages), -1)


@dataclass
class FrozenNetwork:
    timesteps: int
    input_shape: tuple[int, ...]
    layers: list[FrozenLayer]
    input_quantum: float | None = None
    normalize: dict | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: "direct": the same input every timestep, x (B, *input_shape); "sequence": one
    #: frame per timestep (event data), x (B, T, *input_shape).
    encoding: str = "direct"


# --------------------------------------------------------------------------- reading the checkpoint


def _tensor(state: dict, key: str, layer: str, origin: str) -> np.ndarray:
    if key not in state:
        raise UserError(f"{origin}: layer '{layer}': field '{key}' is missing from the checkpoint's state dict")
    value = state[key].detach().to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(value)):
        raise UserError(f"{origin}: layer '{layer}': field '{key}' holds NaN or infinite values")
    return value


def _fold_batch_norm(weight: np.ndarray, bias: np.ndarray, state: dict, name: str, origin: str):
    gamma = _tensor(state, norm_key(name, "weight"), name, origin)
    beta = _tensor(state, norm_key(name, "bias"), name, origin)
    mean = _tensor(state, norm_key(name, "running_mean"), name, origin)
    var = _tensor(state, norm_key(name, "running_var"), name, origin)
    factor = gamma / np.sqrt(var + BN_EPS)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return weight * factor.reshape(shape), (bias - mean) * factor + beta


@dataclass
class _View:
    """What a node of the architecture holds, seen by the synapses after it: a linear
    map ``ops`` (pooling, flatten, in order) of the sum of spiking ``sources``."""

    sources: list[str]
    shape_at_sources: tuple[int, ...]
    ops: list[tuple] = field(default_factory=list)


def _fold_into_dense(weight: np.ndarray, view: _View) -> np.ndarray:
    """W o P for the pooling/flatten chain P: returns (out, prod(shape_at_sources))."""
    w = torch.from_numpy(weight)
    # Walk the chain backwards, applying each op's adjoint to the rows of W.
    shapes = [view.shape_at_sources]
    for op in view.ops:
        shapes.append(op[-1])
    for op, shape_in in zip(reversed(view.ops), reversed(shapes[:-1])):
        kind = op[0]
        if kind == "flatten":
            w = w.reshape(len(w), *shape_in) if len(shape_in) > 1 else w
        elif kind == "global_avgpool":
            channels, height, width = shape_in
            w = w.reshape(len(w), channels, 1, 1).expand(-1, -1, height, width) / (height * width)
        elif kind == "avgpool":
            _, kernel, stride, _ = op
            channels, height, width = shape_in
            w = w.reshape(len(w), channels, *op[-1][1:])
            ones = torch.full((channels, 1, kernel, kernel), 1.0 / kernel**2, dtype=w.dtype)
            adjoint = F.conv_transpose2d(w, ones, stride=stride, groups=channels)
            padded = torch.zeros(len(w), channels, height, width, dtype=w.dtype)
            h, wd = min(height, adjoint.shape[2]), min(width, adjoint.shape[3])
            padded[:, :, :h, :wd] = adjoint[:, :, :h, :wd]
            w = padded
    return w.reshape(len(w), -1).numpy()


def _check_conv_folding(spec: dict, view: _View, name: str, origin: str) -> tuple[int, int]:
    """UserError unless the pooling before a conv folds into it; returns the conv's folded (stride, padding)."""
    stride, padding = int(spec["stride"]), int(spec["padding"])
    for op in view.ops:
        if op[0] != "avgpool" or op[1] != op[2]:
            raise UserError(f"{origin}: layer '{name}': export can fold only average pooling with kernel == "
                            f"stride into a following conv, got {op[0]} before it")
    spatial = view.shape_at_sources[1:]
    for op in view.ops:
        if any(size % op[1] for size in spatial):
            raise UserError(f"{origin}: layer '{name}': the {op[1]}x{op[1]} average pool before it does not tile "
                            f"its input {view.shape_at_sources} exactly; export cannot fold it into the conv")
        spatial = tuple(size // op[1] for size in spatial)
    for op in reversed(view.ops):
        stride, padding = stride * op[1], padding * op[1]
    return stride, padding


def _fold_into_conv(weight: np.ndarray, spec: dict, view: _View, name: str, origin: str):
    """A conv after pooling: spread the kernel over the pooling blocks; returns (weight, stride, padding)."""
    stride, padding = _check_conv_folding(spec, view, name, origin)
    kernel_weight = torch.from_numpy(weight)
    for op in reversed(view.ops):
        block = op[1]
        kernel_weight = kernel_weight.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3) / block**2
    return kernel_weight.numpy(), (stride, stride), (padding, padding)


def _folded_shape(spec: dict, weight_shape: tuple[int, ...], view: _View) -> tuple[int, ...]:
    """The shape _fold_into_conv / _fold_into_dense give a synapse weight of ``weight_shape`` after ``view``."""
    if spec["op"] != "conv2d":
        return (weight_shape[0], math.prod(view.shape_at_sources))
    block = math.prod(op[1] for op in view.ops)
    return (*weight_shape[:2], weight_shape[2] * block, weight_shape[3] * block)


def _shape_stand_in(arch: dict, spec: dict, view: _View, name: str, origin: str) -> FrozenLayer:
    """A layer from the architecture alone, no tensor read: zero weights of the folded shape (a broadcast
    view, no memory), zero bias and thresholds; for what reads shapes only (the Loihi 2 system model)."""
    from dsatgo_deploy.architecture import state_dict_shapes

    shape = state_dict_shapes(arch)[synapse_key(name, "weight")]
    weight = np.broadcast_to(np.float64(0.0), _folded_shape(spec, shape, view))
    conv = None
    if spec["op"] == "conv2d":
        stride, padding = _check_conv_folding(spec, view, name, origin)
        conv = FrozenConv(tuple(view.shape_at_sources), (stride, stride), (padding, padding))
    spiking = spec["neuron"] == "lif"
    return FrozenLayer(name, list(view.sources), weight, np.zeros(shape[0]), 0.5 if spiking else None,
                       np.zeros(int(arch["timesteps"])) if spiking else None, conv)


def freeze(checkpoint: dict, origin: str = "checkpoint", weights: bool = True) -> FrozenNetwork:
    """Frozen float network of a loaded checkpoint (dsatgo_deploy.checkpoint.load_checkpoint). ``weights=False``:
    its shapes and wiring only, from the architecture (no tensor is read: zero weights, bias, thresholds)."""
    arch, state = checkpoint["arch"], checkpoint["state_dict"]
    timesteps = int(arch["timesteps"])
    shapes = layer_shapes(arch, origin)
    views: dict[str, _View] = {INPUT: _View([INPUT], tuple(shapes[INPUT]))}
    layers: list[FrozenLayer] = []
    for spec in arch["layers"]:
        name, op, inputs = spec["name"], spec["op"], spec["inputs"]
        if op == "add":
            first, second = views[inputs[0]], views[inputs[1]]
            if first.ops or second.ops or INPUT in first.sources + second.sources:
                raise UserError(f"{origin}: layer '{name}': export can fold an ADD of spike outputs only "
                                "(no pooling or input on either branch)")
            views[name] = _View(first.sources + [s for s in second.sources if s not in first.sources],
                                first.shape_at_sources)
            if len(set(first.sources) & set(second.sources)):
                raise UserError(f"{origin}: layer '{name}': the same spikes reach the ADD twice ({first.sources} "
                                f"and {second.sources}); export needs distinct sources")
            continue
        if op in ("avgpool", "global_avgpool", "flatten"):
            view = views[inputs[0]]
            views[name] = _View(view.sources, view.shape_at_sources,
                                view.ops + [(op, spec.get("kernel_size"), spec.get("stride"), tuple(shapes[name]))])
            continue
        if spec["neuron"] == "none":
            raise UserError(f"{origin}: layer '{name}': export needs a neuron after every {op} "
                            "(a synapse without neuron has no Loihi counterpart)")
        view = views[inputs[0]]
        if not weights:
            layers.append(_shape_stand_in(arch, spec, view, name, origin))
            views[name] = _View([name], tuple(shapes[name]))
            continue
        weight = _tensor(state, synapse_key(name, "weight"), name, origin)
        bias = (_tensor(state, synapse_key(name, "bias"), name, origin) if spec.get("bias")
                else np.zeros(weight.shape[0]))
        if spec.get("bn"):
            weight, bias = _fold_batch_norm(weight, bias, state, name, origin)
        conv = None
        if op == "conv2d":
            weight, stride, padding = _fold_into_conv(weight, spec, view, name, origin)
            conv = FrozenConv(tuple(view.shape_at_sources), stride, padding)
        else:
            weight = _fold_into_dense(weight, view)
        if spec["neuron"] == "lif":
            tau, schedule = _neuron(arch, state, name, origin, timesteps)
        else:
            tau, schedule = None, None
        layers.append(FrozenLayer(name, list(view.sources), weight, bias, tau, schedule, conv))
        views[name] = _View([name], tuple(shapes[name]))
    return FrozenNetwork(timesteps, tuple(shapes[INPUT]), layers, checkpoint.get("meta", {}).get("input_quantum"),
                         arch.get("normalize"), dict(shapes), arch.get("encoding", "direct"))


def _neuron(arch: dict, state: dict, name: str, origin: str, timesteps: int) -> tuple[float, np.ndarray]:
    logit = float(_tensor(state, neuron_key(name, "decay_logit"), name, origin))
    tau = 1.0 / (1.0 + math.exp(-logit))

    def running_threshold() -> np.ndarray:
        schedule = _tensor(state, neuron_key(name, "running_threshold"), name, origin).reshape(-1)
        if schedule.size != timesteps:
            raise UserError(f"{origin}: layer '{name}': field 'running_threshold' has {schedule.size} "
                            f"values, expected T = {timesteps}")
        return schedule

    schedule = neuron_kind(FROZEN_NEURON).frozen_schedule(arch["neuron"], tau, running_threshold, timesteps)
    return tau, schedule


# --------------------------------------------------------------------------- float simulation


def normalized_input(net: FrozenNetwork, x: np.ndarray) -> np.ndarray:
    """x as the first layer sees it: (x - mean) / std per channel when the model normalises.

    Direct encoding: (B, *input_shape); sequence encoding: x (B, T, ...) -> (B * T, *input_shape).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, *net.input_shape)
    if net.normalize is None:
        return x
    shape = (1, -1) + (1,) * (len(net.input_shape) - 1)
    return (x - np.asarray(net.normalize["mean"]).reshape(shape)) / np.asarray(net.normalize["std"]).reshape(shape)


class FrozenRun:
    """The float simulation of a frozen network one layer at a time, in the network's order: ``current``
    gives a layer's input currents (B, T, n) from its sources' outputs, ``fire`` its spikes under the
    thresholds given (so calibration can choose them in between). A source's output is dropped once
    every layer that reads it has run, so a deep network holds only the outputs still needed."""

    def __init__(self, net: FrozenNetwork, x: np.ndarray, dtype: torch.dtype = torch.float64) -> None:
        self.net, self.batch, self.steps, self.dtype = net, len(x), net.timesteps, dtype
        frames = torch.from_numpy(normalized_input(net, x)).to(dtype)
        if net.encoding == "sequence":  # one frame per timestep
            self.outputs = {INPUT: frames.reshape(self.batch, self.steps, *net.input_shape)}
        else:  # direct encoding: the same input every timestep
            self.outputs = {INPUT: frames.unsqueeze(1).expand(-1, self.steps, *net.input_shape)}
        self._index = {layer.name: index for index, layer in enumerate(net.layers)}
        self._last_reader = {source: index for index, layer in enumerate(net.layers) for source in layer.sources}

    @torch.no_grad()
    def current(self, layer: FrozenLayer) -> torch.Tensor:
        batch, steps = self.batch, self.steps
        parameters = {}
        if self.dtype != torch.float64:
            parameters = {"weight": torch.from_numpy(layer.weight).to(self.dtype),
                          "bias": torch.from_numpy(layer.bias).to(self.dtype)}
        if layer.sources == [INPUT] and self.net.encoding != "sequence":
            current = layer.synapse(self.outputs[INPUT][:, 0], **parameters).unsqueeze(1).expand(-1, steps, -1)
        else:
            total = self.outputs[layer.sources[0]]
            for source in layer.sources[1:]:  # the same sum as sum(), without its first copy (0 + x)
                total = total + self.outputs[source]
            flat = total.reshape(batch * steps, *total.shape[2:])
            current = layer.synapse(flat, **parameters).reshape(batch, steps, -1)
        index = self._index[layer.name]
        for source in layer.sources:
            if self._last_reader[source] == index:
                del self.outputs[source]
        return synaptic_current(current, layer.bias, layer.current_tau)

    @torch.no_grad()
    def fire(self, layer: FrozenLayer, current: torch.Tensor, thresholds: np.ndarray) -> torch.Tensor:
        out = lif_spikes(current, layer.tau, thresholds)
        if layer.name in self._last_reader:
            self.outputs[layer.name] = out
        return out


@dataclass
class FloatStatistics:
    """What export reads of a float run on the calibration samples, without keeping every layer's
    currents and spikes: the readout (B, classes), total spikes per spiking layer, max |current| per layer."""

    readout: np.ndarray | None
    spike_counts: dict[str, int]
    max_abs_current: dict[str, float]


def record_statistics(stats: FloatStatistics, layer: FrozenLayer, current: torch.Tensor,
                      spikes: torch.Tensor | None) -> None:
    """Add one layer's figures to ``stats`` (the same numbers run_frozen's arrays give)."""
    low, high = torch.aminmax(current) if current.numel() else (torch.zeros(()), torch.zeros(()))
    stats.max_abs_current[layer.name] = max(-float(low), float(high))
    if spikes is None:
        stats.readout = readout_output(current, layer.tau).numpy()
    else:
        stats.spike_counts[layer.name] = int(torch.count_nonzero(spikes))


#: Calibration's float runs: float32, twice as fast as float64 (several times for convolutions); they
#: size scales (with a 2x margin) and choose per-layer thresholds by spike counts, where float32's
#: rounding is far below what either decision resolves.
CALIBRATION_DTYPE = torch.float32


@torch.inference_mode()
def float_statistics(net: FrozenNetwork, x: np.ndarray, dtype: torch.dtype = CALIBRATION_DTYPE) -> FloatStatistics:
    """FloatStatistics of the frozen network on samples x, in one layer-by-layer pass."""
    run, stats = FrozenRun(net, x, dtype), FloatStatistics(None, {}, {})
    for layer in net.layers:
        current = run.current(layer)
        spikes = run.fire(layer, current, layer.threshold_schedule) if layer.spiking else None
        record_statistics(stats, layer, current, spikes)
    return stats


@torch.no_grad()
def run_frozen(net: FrozenNetwork, x: np.ndarray, until: str | None = None
               ) -> tuple[np.ndarray | None, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Float simulation of the frozen network.

    Returns (readout mean over T (B, classes), spikes per spiking layer (B, T, n)
    bool, input currents per layer (B, T, n)). With ``until``, stops after that
    layer (the readout is then None).
    """
    run = FrozenRun(net, x)
    currents: dict[str, np.ndarray] = {}
    spikes: dict[str, np.ndarray] = {}
    readout = None
    for layer in net.layers:
        current = run.current(layer)
        currents[layer.name] = current.numpy()
        if not layer.spiking:
            readout = readout_output(current, layer.tau).numpy()
            continue
        spikes[layer.name] = run.fire(layer, current, layer.threshold_schedule).numpy().astype(bool)
        if layer.name == until:
            break
    return readout, spikes, currents
