"""Spiking models built from an architecture description (dsatgo_deploy.architecture).

One generic :class:`SpikingNetwork` runs any architecture DAG (MLP, small
convnet, VGGSNN, SEW ResNet-19, ...). Processing is time-major, layer by layer
over all T timesteps at once: activity is (T, B, ...); conv, linear and
BatchNorm see (T*B, ...), which makes BatchNorm2d/1d over T*B exactly tdBN
(statistics per channel over batch, time and space).

Input: with "direct" encoding (the default) x is (B, *input_shape) and the
same input is fed at every timestep; layers whose input does not depend on t
(the first synapse, pools of the input ...) are computed once and only
expanded over T where something time-dependent needs them (a tdBN in training
runs over the T copies, so its running statistics equal the authors'). With
"sequence" encoding x is (B, T, *input_shape), one frame per timestep. In both
cases each sample may also come flattened (the same number of values per
sample or frame); it is reshaped to ``input_shape``.

Output: the readout does not spike; the model returns its input current
averaged over T (B, classes) (Eq. 8), or per timestep (T, B, classes) with
``per_timestep=True`` (for the TET loss). Per spiking layer traces of the last
forward pass are in ``model.traces()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dsatgo_deploy.architecture import INPUT, check_architecture, layer_shapes

from .neuron import DSATGOLIF, LayerTrace, NeuronConfig

#: tdBN settings of the authors' code.
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def _make_synapse(layer: dict) -> nn.Module:
    if layer["op"] == "linear":
        return nn.Linear(layer["in_features"], layer["out_features"], bias=layer["bias"])
    conv = nn.Conv2d(layer["in_channels"], layer["out_channels"], layer["kernel_size"], stride=layer["stride"],
                     padding=layer["padding"], bias=layer["bias"])
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _make_norm(layer: dict) -> nn.Module:
    if layer["op"] == "linear":
        norm: nn.modules.batchnorm._BatchNorm = nn.BatchNorm1d(layer["out_features"], eps=BN_EPS,
                                                                momentum=BN_MOMENTUM)
    else:
        norm = nn.BatchNorm2d(layer["out_channels"], eps=BN_EPS, momentum=BN_MOMENTUM)
    nn.init.ones_(norm.weight)  # gamma = alpha * Vth = 1 as in the authors' tdBN
    nn.init.zeros_(norm.bias)
    return norm


class _Activity:
    """A layer's output: (T, B, ...) or, when the same at every timestep, (B, ...) with static=True."""

    __slots__ = ("tensor", "static")

    def __init__(self, tensor: torch.Tensor, static: bool) -> None:
        self.tensor = tensor
        self.static = static

    def over_time(self, steps: int) -> torch.Tensor:
        """(T, B, ...) view (expanded without copying when static)."""
        if self.static:
            return self.tensor.unsqueeze(0).expand(steps, *self.tensor.shape)
        return self.tensor


def _per_sample(fn, activity: _Activity) -> _Activity:
    """Apply fn to (N, ...) samples: once for static activity, on (T*B, ...) otherwise."""
    if activity.static:
        return _Activity(fn(activity.tensor), True)
    x = activity.tensor
    out = fn(x.flatten(0, 1))
    return _Activity(out.reshape(x.shape[0], x.shape[1], *out.shape[1:]), False)


class SpikingNetwork(nn.Module):
    """Any architecture DAG of dsatgo_deploy.architecture, with DS-ATGO LIF neurons and a readout.

    Submodules (their names make the state-dict keys of architecture.py):
    ``synapses[<layer>]`` (nn.Linear / nn.Conv2d), ``norms[<layer>]``
    (BatchNorm1d / BatchNorm2d: tdBN), ``neurons[<layer>]`` (DSATGOLIF).
    """

    def __init__(self, arch: dict) -> None:
        super().__init__()
        self.arch = check_architecture(arch)
        self.timesteps = int(arch["timesteps"])
        self.encoding = arch.get("encoding", "direct")
        self.input_shape = tuple(int(v) for v in arch["input_shape"])
        self.shapes = layer_shapes(arch)
        config = NeuronConfig.from_dict(arch["neuron"])
        self.layers = [dict(layer) for layer in arch["layers"]]
        self.layer_names = [layer["name"] for layer in self.layers]
        self.synapses = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        self.neurons = nn.ModuleDict()
        for layer in self.layers:
            name = layer["name"]
            if layer["op"] in ("linear", "conv2d"):
                self.synapses[name] = _make_synapse(layer)
                if layer["bn"]:
                    self.norms[name] = _make_norm(layer)
            if layer["neuron"] == "lif":
                self.neurons[name] = DSATGOLIF(self.timesteps, config)
        # The last layer reading each activity, so that intermediate activity is freed early.
        self._last_use: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            for source in layer["inputs"]:
                self._last_use[source] = index
        normalize = arch.get("normalize")
        if normalize is not None:
            extra = (1,) * (len(self.input_shape) - 1)
            mean = torch.tensor(normalize["mean"], dtype=torch.float32).reshape(-1, *extra)
            std = torch.tensor(normalize["std"], dtype=torch.float32).reshape(-1, *extra)
        else:
            mean, std = torch.zeros(0), torch.ones(0)
        # Not part of the state dict: the architecture carries them.
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        self.last_readout: torch.Tensor | None = None

    # ----------------------------------------------------------------- input

    def _encode(self, x: torch.Tensor) -> _Activity:
        per_sample = math.prod(self.input_shape)
        batch = x.shape[0]
        if self.encoding == "direct":
            if math.prod(x.shape[1:]) != per_sample:
                raise ValueError(f"input of shape {tuple(x.shape)}: expected (B, {', '.join(map(str, self.input_shape))})"
                                 f" or (B, {per_sample})")
            x = x.reshape(batch, *self.input_shape)
            static = True
        else:
            if x.dim() < 2 or x.shape[1] != self.timesteps or math.prod(x.shape[2:]) != per_sample:
                raise ValueError(f"input of shape {tuple(x.shape)}: 'sequence' encoding expects "
                                 f"(B, T={self.timesteps}, {', '.join(map(str, self.input_shape))})")
            x = x.reshape(batch, self.timesteps, *self.input_shape).transpose(0, 1)
            static = False
        x = x.to(torch.float32) if not torch.is_floating_point(x) else x
        if self.input_mean.numel():
            x = (x - self.input_mean) / self.input_std
        return _Activity(x, static)

    # ----------------------------------------------------------------- forward

    def _norm(self, name: str, activity: _Activity) -> _Activity:
        norm = self.norms[name]
        if activity.static and self.training:
            # tdBN over the T identical copies: the running statistics match the authors' code exactly.
            activity = _Activity(activity.over_time(self.timesteps), False)
        return _per_sample(norm, activity)

    def forward(self, x: torch.Tensor, per_timestep: bool = False) -> torch.Tensor:
        """x (B, *input_shape) [direct] or (B, T, *input_shape) [sequence] -> (B, classes),
        or (T, B, classes) with ``per_timestep``."""
        steps = self.timesteps
        values: dict[str, _Activity] = {INPUT: self._encode(x)}
        readout: torch.Tensor | None = None
        for index, layer in enumerate(self.layers):
            name, op = layer["name"], layer["op"]
            sources = [values[s] for s in layer["inputs"]]
            if op in ("linear", "conv2d"):
                out = _per_sample(self.synapses[name], sources[0])
                if layer["bn"]:
                    out = self._norm(name, out)
            elif op == "avgpool":
                k, s = layer["kernel_size"], layer["stride"]
                out = _per_sample(lambda t: F.avg_pool2d(t, k, s), sources[0])
            elif op == "global_avgpool":
                out = _Activity(sources[0].tensor.mean(dim=(-2, -1)), sources[0].static)
            elif op == "flatten":
                src = sources[0]
                out = _Activity(src.tensor.flatten(1 if src.static else 2), src.static)
            elif op == "add":
                a, b = sources
                if a.static and b.static:
                    out = _Activity(a.tensor + b.tensor, True)
                else:
                    out = _Activity(a.over_time(steps) + b.over_time(steps), False)
            else:  # pragma: no cover - check_architecture rejects unknown ops
                raise AssertionError(op)
            if layer["neuron"] == "lif":
                out = _Activity(self.neurons[name](out.over_time(steps)), False)
            elif layer["neuron"] == "readout":
                readout = out.over_time(steps)
            values[name] = out
            for source in layer["inputs"]:
                if self._last_use.get(source) == index:
                    values.pop(source, None)
        assert readout is not None
        self.last_readout = readout.detach()
        return readout if per_timestep else readout.mean(dim=0)

    def traces(self) -> dict[str, LayerTrace]:
        """Per spiking layer: spikes, thresholds, widths, window share of the last forward."""
        return {name: neuron.last_trace for name, neuron in self.neurons.items() if neuron.last_trace is not None}


def build_model(arch: dict) -> SpikingNetwork:
    """The torch model for an architecture description (any kind that check_architecture accepts)."""
    return SpikingNetwork(arch)
