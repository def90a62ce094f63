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
* T, the input encoding (graded payloads, binary spikes or input neurons' bias), the scale factors
  used, and provenance.

Each layer computes, for sample timestep t = 1..T (see dsatgo_deploy.loihi):

    a(t) = wrap32( sum over sources of syn(W, m_src)(t) + rec(t) )    m: spikes or graded input
    syn  = Dense: wrap32((W @ m(t)) shifted by weight_exp);  Conv: wrap24(W * m(t)), no exponent
    syn  = Dense with delays D: wrap32( sum over d of ((W_d @ m(t - d)) shifted by weight_exp) ),
           W_d = W where D == d (else 0), m(t < 0) = 0
    rec  = 0;  recurrent (weight_rec): wrap32((W_rec @ s(t-1)) shifted by weight_exp), s(-1) = 0
    u(t) = wrap24( decay(u(t-1), 4095 - du) + (a(t) << 6) )
    v(t) = sat24( decay(v(t-1), 4096 - dv) + u(t) + (bias_mant << bias_exp) )
    s(t) = v(t) > threshold_schedule[t] << 6 ;  v(t) = 0 where s(t)

The neuron is a kind named by ``Layer.neuron`` (dsatgo_deploy.neurons: ``cuba_lif``,
``scheduled_lif``, ``readout``, and the sigma-delta kinds ``sigma_delta``, ``delta``, ``sigma``);
the equations above are the CUBA LIF kinds'. A sigma-delta kind's messages are graded: signed
integers of ``Layer.message_bits`` bits (0: binary spikes), and a layer reading them has
``input_message_bits`` equal to its source's ``message_bits`` (its synapse multiplies them as it
does graded input payloads). An ``identity`` layer has no synapse: its neuron receives its single
source's messages one to one, ``a(t) = m_src(t)`` (netx's input neuron: the SDNN delta encoder).
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
which the Lava backend accounts for; the format itself is latency-free. A synaptic
delay d (``Layer.delay``, Loihi's per-synapse delay, [0, 63]: 6 bits; netx clips to 62) is
time the format does state: the message of step t - d arrives at step t.

On disk: one ``.npz`` archive (no pickles) holding a JSON header and one integer
array per layer field; written atomically.

Format history (every older file still loads): format_version 3 adds the ``identity`` layer kind
(``Layer.shape``), graded layer messages (``Layer.message_bits``, omitted from the header when 0),
the sigma-delta neuron kinds, and two optional per-layer arrays, stored only where present:
``delay`` (dense synaptic delays) and ``weight_rec`` (a recurrent dense synapse from the layer's
spikes to itself). Format_version 2 stores each layer's
neuron kind (``neuron``; a version 1 file's kinds are inferred: readout when not
spiking, scheduled_lif with T thresholds, else cuba_lif). Within version 1, added
``Layer.num_weight_bits`` (omitted from the header when 8, its default, so files
of 8-bit networks are unchanged), ``current_decay = -1``, a spiking last layer
(no readout), the ``spikes`` input encoding and a per-neuron conv bias, all for
networks imported from lava-dl netx files (dsatgo_deploy/importers/netx.py). A reader
that predates them refuses such files with a message naming the field.
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (tests reach dataclasses.fields through this module)
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import loihi
from .neurons import NeuronKind, infer_neuron, neuron_kind, neuron_kinds
from .errors import UserError
from .network_input import INPUT_ENCODINGS, InputEncoding  # noqa: F401  (part of this module's API)

FORMAT_NAME = "dsatgo-deployable-network"
FORMAT_VERSION = 3
#: versions this reader loads (1: neuron kinds inferred; 3: delays and recurrent weights possible)
READABLE_VERSIONS = (1, 2, 3)
#: the first version whose layers may hold ``delay`` or ``weight_rec``
DELAY_VERSION = 3
INPUT = "input"
LAYER_KINDS = ("dense", "conv", "identity")
#: Layer.num_weight_bits: Lava's Dense keeps 8 - (8 - bits) (- 1 mixed) bits; 9 keeps odd mixed weights.
WEIGHT_BITS_RANGE = (1, 9)


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
    delay: dense only, None (no delays) or (out, in) integers in [0, loihi_sdn.LAVA_MAX_DELAY]: synapse (i, j)
        delivers the message of step t - delay[i, j] at step t (Lava's DelayDense, one more step of
        latency per unit of delay on Loihi). Every source goes through the same delays.
    weight_rec: dense spiking layers only, None or (out, out) integer mantissas: a second Dense
        from the layer's own spikes to itself, one step late (netx's dense_rec); it shares
        ``num_weight_bits`` and ``weight_exp`` with ``weight`` (netx optimizes the two together).
    message_bits: bits of the graded messages the layer sends (a graded neuron kind: sigma-delta), 0 for
        binary spikes; a consumer's input_message_bits equals it.
    shape: an ``identity`` layer's shape ((C, H, W) or (n,)), its source's: it has no synapse (weight
        empty, weight_exp 0), its neuron receives the source's messages one to one; None for the others.
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
    delay: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    message_bits: int = 0
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.conv, dict):
            self.conv = ConvGeometry(**self.conv)
        for name in ("delay", "weight_rec"):  # optional integer arrays (format version 3)
            if getattr(self, name) is not None:
                setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        self.weight = np.asarray(self.weight, dtype=np.int64)
        self.bias_mant = np.asarray(self.bias_mant, dtype=np.int64).reshape(-1)
        self.threshold_schedule = np.asarray(self.threshold_schedule, dtype=np.int64).reshape(-1)
        self.sources = list(self.sources)
        for name in ("weight_exp", "bias_exp", "current_decay", "voltage_decay", "input_message_bits",
                     "num_weight_bits", "message_bits"):
            setattr(self, name, int(getattr(self, name)))
        self.spiking = bool(self.spiking)
        self.scale = float(self.scale)
        self.shape = None if self.shape is None else tuple(int(d) for d in self.shape)
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
        if self.kind == "identity" and self.shape is not None:
            return self.shape
        return (int(self.weight.shape[0]),)

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.kind == "conv" and self.conv is not None:
            return self.conv.input_shape
        if self.kind == "identity" and self.shape is not None:
            return self.shape
        return (int(self.weight.shape[1]),)

    @property
    def latency(self) -> int:
        """Steps its synapse takes on Loihi: 1 for Dense and Conv, 0 for an identity layer (no synapse)."""
        return 0 if self.kind == "identity" else 1

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def fan_in(self) -> int:
        """Synapses per neuron (dense: inputs; conv: C_in * KH * KW; identity: none)."""
        return 0 if self.kind == "identity" else int(np.prod(self.weight.shape[1:]))

    @property
    def bias_per_neuron(self) -> np.ndarray:
        """bias_mant broadcast to every neuron, (C, H, W)-ordered for conv."""
        if self.kind == "conv" and self.bias_mant.size != self.num_neurons:
            return np.repeat(self.bias_mant, int(np.prod(self.output_shape[1:])))
        return self.bias_mant

    @property
    def max_delay(self) -> int:
        """The largest synaptic delay (0 without delays)."""
        return int(self.delay.max()) if self.delay is not None and self.delay.size else 0

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
        ``depth(L) = latency(L) + max(depth(S) for S in L.sources)`` (one step per synapse, none for identity)."""
        depths = {INPUT: 0}
        for layer in self.layers:
            depths[layer.name] = layer.latency + max(depths[source] for source in layer.sources)
        return depths

    def relay_delays(self) -> dict[str, int]:
        """Steps each node's spikes must wait for its latest-reached consumer: a layer summing sources
        of different depths (a residual skip) takes the shallower ones ``depth(L) - latency(L) - depth(S)``
        steps late, through a chain of relay populations shared by all consumers; nodes that never
        wait are left out."""
        depths = self.depths()
        delays: dict[str, int] = {}
        for layer in self.layers:
            for source in layer.sources:
                wait = depths[layer.name] - layer.latency - depths[source]
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


# The checks (network_checks.py) and the file format (network_io.py) use the classes above and come last;
# ``from dsatgo_deploy.network import validate, save, load`` keeps working.
from .network_checks import validate  # noqa: E402
from .network_io import load, save  # noqa: E402
