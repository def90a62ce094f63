"""The deployable network: the one format every stage after training speaks.

Export writes it; the reference simulator, the Lava backend, the netx writer
and the reports read it; nobody reaches back into the torch model. It is a
versioned, validated description of a Loihi fixed-point network:

* an ordered list of layers, each a Loihi CUBA LIF population fed by a Dense or
  Conv synapse from the layers named in ``sources`` (``"input"`` is the network
  input). Several sources (a folded SEW residual ADD) all go through the same
  weights: the layer's input is the sum of their spikes;
* integer weights (8-bit mantissa, or fewer bits: ``num_weight_bits``) and a
  weight exponent, bias mantissa and exponent, current and voltage decays (12
  bit), and a threshold schedule: T threshold mantissas (DS-ATGO's frozen
  per-timestep thresholds) or one value when collapsed to a single threshold
  per layer;
* T, the input encoding (graded payloads or binary spikes), the scale factors
  used, and provenance.

Each layer computes, for sample timestep t = 1..T (see dsatgo_deploy.loihi):

    a(t) = wrap32( sum over sources of syn(W, m_src(t)) )    m: spikes or graded input
    syn  = Dense: wrap32((W @ m) shifted by weight_exp);  Conv: wrap24(W * m), no exponent
    u(t) = wrap24( decay(u(t-1), 4095 - du) + (a(t) << 6) )
    v(t) = sat24( decay(v(t-1), 4096 - dv) + u(t) + (bias_mant << bias_exp) )
    s(t) = v(t) > threshold_schedule[t] << 6 ;  v(t) = 0 where s(t)

The neuron is a kind named by ``Layer.neuron`` (dsatgo_deploy.neurons: ``cuba_lif``,
``scheduled_lif``, ``readout``); the equations above are the CUBA LIF kinds'.
A readout layer (``spiking = False``) never fires; its v after step T is the
network's output. The readout is optional: when the last layer spikes (as
lava-dl networks usually do) the output is its spike count per neuron over the
T steps (prediction: the neuron that fired most). State is zero at the start
of every sample. Neurons of a conv layer, and spikes everywhere, are ordered
(C, H, W) as in torch.

The input m_input(t) is the same every timestep for a static sample (direct
encoding of x, shaped (B, *input_shape)) or changes every timestep for a
time-varying one (event data, x shaped (B, T, *input_shape)); see
:meth:`DeployableNetwork.encode_input`.

Times are sample times: on Loihi each Dense synapse adds one step of latency,
which the Lava backend accounts for; the format itself is latency-free.

On disk: one ``.npz`` archive (no pickles) holding a JSON header and one integer
array per layer field; written atomically.

Format history (every older file still loads): format_version 2 stores each layer's
neuron kind (``neuron``; a version 1 file's kinds are inferred: readout when not
spiking, scheduled_lif with T thresholds, else cuba_lif). Within version 1, added
``Layer.num_weight_bits`` (omitted from the header when 8, its default, so files
of 8-bit networks are unchanged), ``current_decay = -1``, a spiking last layer
(no readout), the ``spikes`` input encoding and a per-neuron conv bias, all for
networks imported from lava-dl netx files (dsatgo_deploy/importers/netx.py). A reader
that predates them refuses such files with a message naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import limits, loihi
from .neurons import NeuronKind, infer_neuron, neuron_kind, neuron_kinds
from .errors import NetworkFormatError, UserError
from .fileio import atomic_file
from .network_checks import check_conv_graded_sum, check_integers as _check_integers
from .network_checks import check_layer_spec as _check_layer_spec
from .network_checks import check_resources
from .network_checks import fail as _fail

FORMAT_NAME = "dsatgo-deployable-network"
FORMAT_VERSION = 2
#: versions this reader loads (1: neuron kinds inferred)
READABLE_VERSIONS = (1, 2)
INPUT = "input"
LAYER_KINDS = ("dense", "conv")
#: Layer.num_weight_bits: Lava's Dense keeps 8 - (8 - bits) (- 1 mixed) bits; 9 keeps odd mixed weights.
WEIGHT_BITS_RANGE = (1, 9)
INPUT_ENCODINGS = ("graded", "spikes")


@dataclass
class InputEncoding:
    """How the analog input reaches the first layer.

    ``graded``: direct encoding as graded spikes. Every sample timestep the
    input x is sent as the integer payload ``m = clip(round(x' / step), lo, hi)``
    with ``bits`` bits (signed or not), where x' = (x - mean[c]) / std[c] per
    input channel c when the model normalises its input (the host does this
    before sending), else x' = x. The first layer's synapse multiplies payloads
    (Loihi 2 graded spikes; Lava Dense/Conv with num_message_bits = bits).

    ``spikes``: binary spikes (``bits = 0``; Lava Dense/Conv with
    num_message_bits = 0): every non-zero entry of x is one spike,
    ``m = (x != 0)``; step, signed, mean and std are unused (mean/std must be
    None). Build it with :meth:`InputEncoding.spikes`. This is what lava-dl netx
    networks read with ``input_message_bits = 0``.
    """

    kind: str = "graded"
    bits: int = 8
    step: float = 1.0 / 255.0
    signed: bool = False
    mean: list[float] | None = None
    std: list[float] | None = None

    @classmethod
    def spikes(cls) -> "InputEncoding":
        """Binary spike input (bits 0)."""
        return cls(kind="spikes", bits=0, step=1.0)

    def __post_init__(self) -> None:
        if self.kind not in INPUT_ENCODINGS:
            raise ValueError(f"input encoding kind must be one of {INPUT_ENCODINGS}, got {self.kind!r}")
        if self.kind == "spikes":
            if self.bits != 0:
                raise ValueError(f"spike input has bits 0 (binary spikes), got {self.bits}; use InputEncoding.spikes()")
            if self.mean is not None or self.std is not None:
                raise ValueError("spike input is not normalised: mean and std must be None")
            if self.signed:
                raise ValueError("spike input is not signed")
        elif not 1 <= self.bits <= 24:
            raise ValueError(f"input encoding bits must be in [1, 24], got {self.bits}")
        if not (np.isfinite(self.step) and self.step > 0):
            raise ValueError(f"input encoding step must be a positive number, got {self.step}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("input encoding needs both mean and std, or neither")
        if self.std is not None:
            self.mean, self.std = [float(v) for v in self.mean], [float(v) for v in self.std]
            if len(self.mean) != len(self.std) or not all(np.isfinite(self.mean)) or min(self.std) <= 0:
                raise ValueError("input encoding mean and std must be equally long, finite, std > 0")

    @property
    def payload_range(self) -> tuple[int, int]:
        if self.kind == "spikes":
            return 0, 1
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """x' = (x - mean) / std per channel (axis 1 of x, shaped (B, C, ...)), in float64; x when not normalising."""
        return self._normalized(x).numpy()

    def _normalized(self, x: np.ndarray) -> torch.Tensor:
        # float64 torch ops are the same IEEE operations as numpy's, on every core.
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            array = array.astype(np.float64)
        if not (array.flags.writeable and array.flags.c_contiguous):  # read-only, reversed, strided views
            array = np.array(array, order="C")
        values = torch.from_numpy(array).to(torch.float64, copy=True)
        if self.mean is None:
            return values
        if values.ndim < 2 or values.shape[1] != len(self.mean):
            raise ValueError(f"normalised input needs samples shaped (B, {len(self.mean)}, ...), got {tuple(values.shape)}")
        shape = (1, -1) + (1,) * (values.ndim - 2)
        mean = torch.tensor(self.mean, dtype=torch.float64).reshape(shape)
        std = torch.tensor(self.std, dtype=torch.float64).reshape(shape)
        return values.sub_(mean).div_(std)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Analog input (B, *input_shape) -> integer payloads (int64): x' / step rounded to nearest
        (ties to even) and clipped to the payload range; spikes: 1 where x != 0, else 0."""
        if self.kind == "spikes":
            return (np.asarray(x) != 0).astype(np.int64)
        lo, hi = self.payload_range
        scaled = self._normalized(x).div_(self.step).round_().clamp_(lo, hi)
        return scaled.to(torch.int64).numpy()


@dataclass
class ConvGeometry:
    """Shape of a 2-D convolution (torch's cross-correlation), (C, H, W) layout.

        out[k, y, x] = sum_{c, i, j} W[k, c, i, j] * pad0(in)[c, y*sy + i*dy, x*sx + j*dx]
        Ho = (H + 2 py - dy (KH - 1) - 1) // sy + 1   (likewise Wo)
    """

    input_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)
        self.stride = tuple(int(v) for v in self.stride)
        self.padding = tuple(int(v) for v in self.padding)
        self.dilation = tuple(int(v) for v in self.dilation)
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"conv input_shape must be (C, H, W) of positive sizes, got {self.input_shape}")
        for name in ("stride", "padding", "dilation"):
            value = getattr(self, name)
            if len(value) != 2 or min(value) < (0 if name == "padding" else 1):
                raise ValueError(f"conv {name} must be two {'non-negative' if name == 'padding' else 'positive'} ints, got {value}")

    def output_shape(self, weight_shape: tuple[int, ...]) -> tuple[int, int, int]:
        out_channels, _, kh, kw = weight_shape
        _, h, w = self.input_shape
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return int(out_channels), int(ho), int(wo)


@dataclass
class Layer:
    """One Loihi CUBA LIF population behind a Dense or Conv synapse (equations in the module doc).

    kind: "dense" (weight (out, in)) or "conv" (weight (C_out, C_in, KH, KW), ``conv`` geometry).
    weight: integer mantissas, exactly what Lava's Dense uses with ``num_weight_bits``:
        ``loihi.representable_weights(weight, num_weight_bits) == weight``; with 8 bits: mixed
        sign even values in [-256, 254], excitatory [0, 255], inhibitory [-255, 0].
    num_weight_bits: [1, 9], default 8: bits Lava's Dense keeps (it drops the lowest
        ``8 - num_weight_bits`` bits, one more for a mixed-sign matrix; 9 keeps odd mixed
        weights). netx derives it per layer (optimize_weight_bits); the Lava backend passes
        it to Dense. Lava's Conv ignores it (and never clips or truncates): for conv it only
        states the precision the weights need.
    weight_exp: shift of the synaptic sum, [-8, 7]; 0 for conv (Lava's Conv ignores it).
    sources: layers (or "input") whose outputs are summed and fed through the weights.
    input_message_bits: 0 for binary spikes, else bits of graded payloads.
    bias_mant: (neurons,) for dense; for conv (C_out,) per channel or (neurons,) per
        neuron in (C, H, W) order (netx allows both); 13-bit signed; bias_exp: [0, 7].
    threshold_schedule: (T,) or (1,) 17-bit threshold mantissas; empty for a readout.
    current_decay (du, [-1, 4095]; -1 = no current decay, netx's iDecay 0),
    voltage_decay (dv, [0, 4096]).
    scale: integer units of ``a`` per unit of float current (v = 64 * scale * U).
    neuron: the neuron kind's name (dsatgo_deploy.neurons), which sets ``spiking``; None: inferred
        from ``spiking`` and the threshold schedule (:func:`dsatgo_deploy.neurons.infer_neuron`).
    """

    name: str
    sources: list[str]
    weight: np.ndarray
    weight_exp: int
    bias_mant: np.ndarray
    bias_exp: int
    threshold_schedule: np.ndarray
    current_decay: int
    voltage_decay: int
    spiking: bool = True
    input_message_bits: int = 0
    scale: float = 1.0
    kind: str = "dense"
    conv: ConvGeometry | None = None
    num_weight_bits: int = loihi.WEIGHT_BITS
    neuron: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.conv, dict):
            self.conv = ConvGeometry(**self.conv)
        self.weight = np.asarray(self.weight, dtype=np.int64)
        self.bias_mant = np.asarray(self.bias_mant, dtype=np.int64).reshape(-1)
        self.threshold_schedule = np.asarray(self.threshold_schedule, dtype=np.int64).reshape(-1)
        self.sources = list(self.sources)
        for name in ("weight_exp", "bias_exp", "current_decay", "voltage_decay", "input_message_bits",
                     "num_weight_bits"):
            setattr(self, name, int(getattr(self, name)))
        self.spiking = bool(self.spiking)
        self.scale = float(self.scale)
        if self.neuron in neuron_kinds():
            self.spiking = neuron_kind(self.neuron).spiking

    @property
    def neuron_name(self) -> str:
        """The neuron kind's name: ``neuron``, or the kind inferred when it is None."""
        return self.neuron or infer_neuron(self.spiking, self.threshold_schedule.size)

    @property
    def neuron_kind(self) -> NeuronKind:
        """The registry entry of the layer's neuron kind (KeyError when not registered)."""
        return neuron_kind(self.neuron_name)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(neurons,) for dense, (C_out, Ho, Wo) for conv."""
        if self.kind == "conv" and self.conv is not None:
            return self.conv.output_shape(self.weight.shape)
        return (int(self.weight.shape[0]),)

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.kind == "conv" and self.conv is not None:
            return self.conv.input_shape
        return (int(self.weight.shape[1]),)

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def fan_in(self) -> int:
        """Synapses per neuron (dense: inputs; conv: C_in * KH * KW)."""
        return int(np.prod(self.weight.shape[1:]))

    @property
    def bias_per_neuron(self) -> np.ndarray:
        """bias_mant broadcast to every neuron, (C, H, W)-ordered for conv."""
        if self.kind == "conv" and self.bias_mant.size != self.num_neurons:
            return np.repeat(self.bias_mant, int(np.prod(self.output_shape[1:])))
        return self.bias_mant

    def threshold_at(self, t: int) -> int:
        """Threshold mantissa at sample timestep t (0-based)."""
        schedule = self.threshold_schedule
        return int(schedule[t] if schedule.size > 1 else schedule[0])


@dataclass
class DeployableNetwork:
    """A whole network: layers in execution order, the last one the readout (or, when it
    spikes, the output layer whose spike counts are the output)."""

    timesteps: int
    input_shape: tuple[int, ...]
    input_encoding: InputEncoding
    layers: list[Layer]
    provenance: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.timesteps = int(self.timesteps)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    def is_time_varying(self, x: np.ndarray) -> bool:
        """Whether samples x are time-varying, (B, T, *input_shape) or (B, T, input_size), rather
        than static, (B, *input_shape) or any (B, ...) of input_size values per sample.
        Raises UserError for any other shape. With T = 1 both read the same and x counts as static."""
        shape = np.shape(x)
        rest = shape[1:]
        if (self.timesteps > 1 and len(rest) >= 2 and rest[0] == self.timesteps
                and int(np.prod(rest[1:])) == self.input_size):
            return True
        if len(shape) >= 1 and int(np.prod(rest)) == self.input_size:
            return False
        raise UserError(f"input of shape {tuple(shape)} fits neither static samples (B, {', '.join(map(str, self.input_shape))}) "
                        f"nor time-varying ones (B, T={self.timesteps}, {', '.join(map(str, self.input_shape))})")

    def encode_input(self, x: np.ndarray, payloads: bool = False) -> np.ndarray:
        """Samples -> int64 messages as the host sends them: (B, input_size) for static samples
        (sent every timestep), (B, T, input_size) for time-varying ones (see :meth:`is_time_varying`).
        Analog x is encoded with the input encoding; with ``payloads`` x already holds the integer
        payloads (or spikes) and is only reshaped."""
        array = np.asarray(x)
        batch = len(array)
        steps = (self.timesteps,) if self.is_time_varying(array) else ()
        if payloads:
            return np.asarray(array, dtype=np.int64).reshape(batch, *steps, self.input_size)
        encoded = self.input_encoding.encode(array.reshape(batch * (steps[0] if steps else 1), *self.input_shape))
        return encoded.reshape(batch, *steps, self.input_size)

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def has_readout(self) -> bool:
        """Whether the last layer is a non-spiking readout (else the output is its spike counts)."""
        return bool(self.layers) and not self.layers[-1].spiking

    def depths(self) -> dict[str, int]:
        """Wall-step latency of every node on Loihi: ``depth(input) = 0``,
        ``depth(L) = 1 + max(depth(S) for S in L.sources)`` (one step per synapse)."""
        depths = {INPUT: 0}
        for layer in self.layers:
            depths[layer.name] = 1 + max(depths[source] for source in layer.sources)
        return depths

    def relay_delays(self) -> dict[str, int]:
        """Steps each node's spikes must wait for its latest-reached consumer: a layer summing sources
        of different depths (a residual skip) takes the shallower ones ``depth(L) - 1 - depth(S)``
        steps late, through a chain of relay populations shared by all consumers; nodes that never
        wait are left out."""
        depths = self.depths()
        delays: dict[str, int] = {}
        for layer in self.layers:
            for source in layer.sources:
                wait = depths[layer.name] - 1 - depths[source]
                if wait > 0:
                    delays[source] = max(delays.get(source, 0), wait)
        return delays

    def node_size(self, node: str) -> int:
        """Neurons (values) of a node: the input or a layer."""
        return self.input_size if node == INPUT else self.layer(node).num_neurons

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def validate(self, origin: str = "network") -> None:
        """Check every field and bit width; raise NetworkFormatError naming file, layer, field."""
        validate(self, origin)


# --------------------------------------------------------------------------- validation


def _check_range(origin: str, layer: str, field_name: str, values: np.ndarray | int, lo: int, hi: int) -> None:
    arr = np.asarray(values)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        _fail(origin, layer, field_name, f"value {int(bad)} outside [{lo}, {hi}]")


def validate(net: DeployableNetwork, origin: str = "network") -> None:
    if net.format_version not in READABLE_VERSIONS:
        _fail(origin, None, "format_version", f"version {net.format_version} is not supported (this tool reads "
              f"{', '.join(map(str, READABLE_VERSIONS))})")
    if not 1 <= net.timesteps <= limits.MAX_TIMESTEPS:
        _fail(origin, None, "timesteps", f"must be in [1, {limits.MAX_TIMESTEPS}], got {net.timesteps}")
    if not net.layers:
        _fail(origin, None, "layers", "the network has no layers")
    shapes: dict[str, tuple[int, ...]] = {INPUT: net.input_shape}
    for index, layer in enumerate(net.layers):
        name = layer.name
        if not name or name == INPUT or name in shapes:
            _fail(origin, name or f"#{index}", "name", "layer names must be unique, non-empty and not 'input'")
        if layer.kind not in LAYER_KINDS:
            _fail(origin, name, "kind", f"unknown layer kind {layer.kind!r} (known: {', '.join(LAYER_KINDS)})")
        if not layer.sources:
            _fail(origin, name, "sources", "a layer reads at least one source")
        for source in layer.sources:
            if source not in shapes:
                _fail(origin, name, "sources", f"reads {source!r}, which is not an earlier layer or 'input'")
        if INPUT in layer.sources and len(layer.sources) > 1:
            kind = "graded input" if net.input_encoding.kind == "graded" else "the input"
            _fail(origin, name, "sources", f"{kind} cannot be summed with other sources")
        if len(set(layer.sources)) != len(layer.sources):
            _fail(origin, name, "sources", f"lists a source twice: {layer.sources}")
        if layer.weight.ndim in (2, 4) and layer.weight.shape[0] < 1:
            _fail(origin, name, "weight", "a layer needs at least one neuron")
        if layer.kind == "conv":
            if layer.conv is None:
                _fail(origin, name, "conv", "a conv layer needs its geometry (input_shape, stride, padding, dilation)")
            if layer.weight.ndim != 4:
                _fail(origin, name, "weight", f"a conv weight is (C_out, C_in, KH, KW), got shape {layer.weight.shape}")
            if layer.weight.shape[1] != layer.conv.input_shape[0]:
                _fail(origin, name, "weight", f"has {layer.weight.shape[1]} input channels, input_shape {layer.conv.input_shape}")
            if min(layer.output_shape) < 1:
                _fail(origin, name, "conv", f"output shape {layer.output_shape} is empty")
            if layer.weight_exp != 0:
                _fail(origin, name, "weight_exp", f"is {layer.weight_exp}; Lava's Conv ignores weight exponents, so conv layers need 0")
            if layer.bias_mant.shape not in ((layer.weight.shape[0],), (layer.num_neurons,)):
                _fail(origin, name, "bias_mant", f"shape {layer.bias_mant.shape} is neither ({layer.weight.shape[0]},) (one bias "
                      f"per output channel) nor ({layer.num_neurons},) (one per neuron, (C, H, W) order)")
        else:
            if layer.conv is not None:
                _fail(origin, name, "conv", "a dense layer has no conv geometry")
            if layer.weight.ndim != 2:
                _fail(origin, name, "weight", f"a dense weight is (out, in), got shape {layer.weight.shape}")
            if layer.bias_mant.shape != (layer.num_neurons,):
                _fail(origin, name, "bias_mant", f"shape {layer.bias_mant.shape} != ({layer.num_neurons},)")
        for source in layer.sources:
            source_shape = shapes[source]
            fits = (source_shape == layer.input_shape) if layer.kind == "conv" else (
                int(np.prod(source_shape)) == layer.input_size)
            if not fits:
                _fail(origin, name, "weight", f"expects input {layer.input_shape}, but source {source!r} gives {source_shape}")
        _check_range(origin, name, "num_weight_bits", layer.num_weight_bits, *WEIGHT_BITS_RANGE)
        representable = loihi.representable_weights(_as_tensor(layer.weight), layer.num_weight_bits).numpy()
        if not np.array_equal(representable, layer.weight):
            bad = np.argwhere(representable != layer.weight)[0]
            _fail(origin, name, "weight", f"weight[{', '.join(str(int(i)) for i in bad)}] = {int(layer.weight[tuple(bad)])} is not "
                  f"{'an' if layer.num_weight_bits == 8 else 'a'} {layer.num_weight_bits}-bit Loihi weight for a {loihi.weight_sign_mode(_as_tensor(layer.weight))} matrix "
                  f"(Lava would use {int(representable[tuple(bad)])})")
        _check_range(origin, name, "weight_exp", layer.weight_exp, *loihi.WEIGHT_EXP_RANGE)
        expected_bits = net.input_encoding.bits if layer.sources == [INPUT] else 0
        if layer.input_message_bits != expected_bits:
            _fail(origin, name, "input_message_bits", f"is {layer.input_message_bits}, but its sources {layer.sources} send "
                  f"{'graded ' + str(expected_bits) + '-bit payloads' if expected_bits else 'binary spikes'}")
        _validate_neuron(layer, net.timesteps, _LayerChecks(origin, name))
        if not (np.isfinite(layer.scale) and layer.scale > 0):
            _fail(origin, name, "scale", f"must be a positive number, got {layer.scale}")
        if layer.kind == "conv" and layer.input_message_bits > 0:
            check_conv_graded_sum(origin, layer, net.input_encoding)
        shapes[name] = layer.output_shape
    for layer in net.layers[:-1]:
        if not layer.spiking:
            _fail(origin, layer.name, "spiking", "only the last layer may be a non-spiking readout")
    check_resources(net, origin)


class _LayerChecks:
    """The field checks a neuron kind's validate() uses (dsatgo_deploy.neurons.FieldChecks)."""

    def __init__(self, origin: str, layer: str) -> None:
        self.origin, self.layer = origin, layer

    def fail(self, field_name: str, message: str) -> None:
        _fail(self.origin, self.layer, field_name, message)

    def in_range(self, field_name: str, values: np.ndarray | int, lo: int, hi: int) -> None:
        _check_range(self.origin, self.layer, field_name, values, lo, hi)


def _validate_neuron(layer: Layer, timesteps: int, check: _LayerChecks) -> None:
    if layer.neuron_name not in neuron_kinds():
        check.fail("neuron", f"unknown neuron kind {layer.neuron_name!r} (known: {', '.join(neuron_kinds())})")
    kind = layer.neuron_kind
    if layer.spiking != kind.spiking:
        check.fail("spiking", f"is {layer.spiking}, but a {kind.name} neuron {'spikes' if kind.spiking else 'does not spike'}")
    kind.validate(layer, timesteps, check)


def _as_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


# --------------------------------------------------------------------------- serialization

_ARRAY_FIELDS = ("weight", "bias_mant", "threshold_schedule")
#: Fields added after the first files were written, left out of the header at their default so that
#: such networks' files stay what they were.
_OMITTED_DEFAULTS = {"num_weight_bits": loihi.WEIGHT_BITS}
_ZIP_ENTRY_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can hold


def save(net: DeployableNetwork, path: str | os.PathLike) -> None:
    """Validate and write ``net`` to ``path`` (.npz), atomically."""
    validate(net, str(path))
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,  # the header below is this version's (neuron kinds named)
        "timesteps": net.timesteps,
        "input_shape": list(net.input_shape),
        "input_encoding": dataclasses.asdict(net.input_encoding),
        "provenance": net.provenance,
        "quantization": net.quantization,
        "layers": [
            {k: v for k, v in dataclasses.asdict(layer).items() if k not in _ARRAY_FIELDS
             and not (k in _OMITTED_DEFAULTS and v == _OMITTED_DEFAULTS[k])} | {"neuron": layer.neuron_name}
            for layer in net.layers
        ],
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for index, layer in enumerate(net.layers):
        for name in _ARRAY_FIELDS:
            arrays[f"layer{index}.{name}"] = getattr(layer, name).astype(np.int32)
    with atomic_file(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            # np.savez stamps each entry with the current time; a fixed one makes the file
            # byte-reproducible (the same network gives the same SHA-256)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_ENTRY_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            with archive.open(entry, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def load(path: str | os.PathLike) -> DeployableNetwork:
    """Read and validate a deployable network; errors name the file, layer and field. Sizes are checked
    against the memory budget (dsatgo_deploy.limits) before anything is read."""
    origin = str(path)
    if not Path(path).is_file():
        raise NetworkFormatError(f"{origin}: no such file")
    from .checkpoint import is_torch_archive

    if is_torch_archive(path):
        raise NetworkFormatError(f"{origin}: a training checkpoint, not a deployable network: export it first "
                                 f"(dsatgo export {origin} --out DIR) and pass DIR")
    try:
        arrays = limits.read_npz(path, origin)
    except UserError as exc:
        raise NetworkFormatError(f"{exc} (not a deployable network file)") from None
    if "header" not in arrays:
        raise NetworkFormatError(f"{origin}: not a deployable network file (no 'header' array)")
    try:
        header = limits.load_json(origin, "the header", arrays.pop("header").tobytes())
    except UserError as exc:
        raise NetworkFormatError(f"{exc} (not a deployable network file)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise NetworkFormatError(f"{origin}: not a deployable network file (header format is {header.get('format') if isinstance(header, dict) else None!r})")
    for key in ("timesteps", "format_version"):
        _check_integers(origin, None, key, header.get(key))
    limits.check_timesteps(origin, "timesteps", header["timesteps"])
    _check_integers(origin, None, "input_shape", header.get("input_shape"))
    if isinstance(header.get("input_encoding"), dict) and "bits" in header["input_encoding"]:
        _check_integers(origin, None, "input_encoding.bits", header["input_encoding"]["bits"])
    if not isinstance(header.get("layers"), list):
        _fail(origin, None, "layers", "must be a list of layers")
    try:
        layers = []
        for index, spec in enumerate(header["layers"]):
            _check_layer_spec(origin, index, spec, arrays, _ARRAY_FIELDS)
            for name in _ARRAY_FIELDS:
                spec[name] = arrays[f"layer{index}.{name}"]
            layers.append(Layer(**spec))
        net = DeployableNetwork(
            timesteps=header["timesteps"],
            input_shape=tuple(header["input_shape"]),
            input_encoding=InputEncoding(**header["input_encoding"]),
            layers=layers,
            provenance=header.get("provenance", {}),
            quantization=header.get("quantization", {}),
            format_version=header["format_version"],
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise NetworkFormatError(f"{origin}: malformed header ({limits.reason(exc)})") from None
    validate(net, origin)
    return net
