"""The deployable network: the one format every stage after training speaks.

Export writes it; the reference simulator, the Lava backend, the netx writer
and the reports read it; nobody reaches back into the torch model. It is a
versioned, validated description of a Loihi fixed-point network:

* an ordered list of layers, each a Loihi CUBA LIF population fed by one Dense
  synapse from the layers named in ``sources`` (``"input"`` is the network input);
* integer weights (8-bit mantissa) and a weight exponent, bias mantissa and
  exponent, current and voltage decays (12 bit), and a threshold schedule: T
  threshold mantissas (DS-ATGO's frozen per-timestep thresholds) or one value
  when collapsed to a single threshold per layer;
* T, the input encoding, the scale factors used, and provenance.

Each layer computes, for sample timestep t = 1..T (see dsatgo_deploy.loihi):

    a(t) = wrap32( (W @ m(t)) shifted by weight_exp )        m: spikes or graded input
    u(t) = wrap24( decay(u(t-1), 4095 - du) + (a(t) << 6) )
    v(t) = sat24( decay(v(t-1), 4096 - dv) + u(t) + (bias_mant << bias_exp) )
    s(t) = v(t) > threshold_schedule[t] << 6 ;  v(t) = 0 where s(t)

A readout layer (``spiking = False``) never fires; its v after step T is the
network's output. State is zero at the start of every sample.

Times are sample times: on Loihi each Dense synapse adds one step of latency,
which the Lava backend accounts for; the format itself is latency-free.

On disk: one ``.npz`` archive (no pickles) holding a JSON header and one integer
array per layer field; written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import loihi
from .errors import NetworkFormatError
from .fileio import atomic_file

FORMAT_NAME = "dsatgo-deployable-network"
FORMAT_VERSION = 1
INPUT = "input"
LAYER_KINDS = ("dense",)
INPUT_ENCODINGS = ("graded",)


@dataclass
class InputEncoding:
    """How the analog input reaches the first layer.

    ``graded``: direct encoding as graded spikes. Every sample timestep the
    input x is sent as the integer payload ``m = clip(round(x / step), lo, hi)``
    with ``bits`` bits (signed or not); the first Dense layer multiplies payloads
    (Loihi 2 graded spikes; Lava Dense with num_message_bits = bits).
    """

    kind: str = "graded"
    bits: int = 8
    step: float = 1.0 / 255.0
    signed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in INPUT_ENCODINGS:
            raise ValueError(f"input encoding kind must be one of {INPUT_ENCODINGS}, got {self.kind!r}")
        if not 1 <= self.bits <= 24:
            raise ValueError(f"input encoding bits must be in [1, 24], got {self.bits}")
        if not (np.isfinite(self.step) and self.step > 0):
            raise ValueError(f"input encoding step must be a positive number, got {self.step}")

    @property
    def payload_range(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Analog input -> integer payloads (int64), rounded to nearest and clipped."""
        lo, hi = self.payload_range
        return np.clip(np.rint(np.asarray(x, dtype=np.float64) / self.step), lo, hi).astype(np.int64)


@dataclass
class DenseLayer:
    """One Loihi CUBA LIF population behind a Dense synapse (equations in the module doc).

    weight: (out, in) integer mantissas, 8 bit, exactly representable by Lava's
        Dense (mixed sign: even values in [-256, 254]; excitatory [0, 255];
        inhibitory [-255, 0]).
    weight_exp: shift of the synaptic sum, [-8, 7].
    input_message_bits: 0 for binary spikes, else bits of graded payloads.
    bias_mant: (out,) 13-bit signed; bias_exp: [0, 7].
    threshold_schedule: (T,) or (1,) 17-bit threshold mantissas; empty for a readout.
    current_decay (du, [0, 4095]), voltage_decay (dv, [0, 4096]).
    scale: integer units of ``a`` per unit of float current (v = 64 * scale * U).
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

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.int64)
        self.bias_mant = np.asarray(self.bias_mant, dtype=np.int64).reshape(-1)
        self.threshold_schedule = np.asarray(self.threshold_schedule, dtype=np.int64).reshape(-1)
        self.sources = list(self.sources)
        for name in ("weight_exp", "bias_exp", "current_decay", "voltage_decay", "input_message_bits"):
            setattr(self, name, int(getattr(self, name)))
        self.spiking = bool(self.spiking)
        self.scale = float(self.scale)

    @property
    def num_neurons(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[1])

    def threshold_at(self, t: int) -> int:
        """Threshold mantissa at sample timestep t (0-based)."""
        schedule = self.threshold_schedule
        return int(schedule[t] if schedule.size > 1 else schedule[0])


@dataclass
class DeployableNetwork:
    """A whole network: layers in execution order, the last one the readout."""

    timesteps: int
    input_shape: tuple[int, ...]
    input_encoding: InputEncoding
    layers: list[DenseLayer]
    provenance: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.timesteps = int(self.timesteps)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output(self) -> DenseLayer:
        return self.layers[-1]

    def layer(self, name: str) -> DenseLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def validate(self, origin: str = "network") -> None:
        """Check every field and bit width; raise NetworkFormatError naming file, layer, field."""
        validate(self, origin)


# --------------------------------------------------------------------------- validation


def _fail(origin: str, layer: str | None, field_name: str, message: str) -> None:
    where = f"{origin}: layer '{layer}': field '{field_name}'" if layer else f"{origin}: field '{field_name}'"
    raise NetworkFormatError(f"{where}: {message}")


def _check_range(origin: str, layer: str, field_name: str, values: np.ndarray | int, lo: int, hi: int) -> None:
    arr = np.asarray(values)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        _fail(origin, layer, field_name, f"value {int(bad)} outside [{lo}, {hi}]")


def validate(net: DeployableNetwork, origin: str = "network") -> None:
    if net.format_version != FORMAT_VERSION:
        _fail(origin, None, "format_version", f"version {net.format_version} is not supported (this tool reads {FORMAT_VERSION})")
    if net.timesteps < 1:
        _fail(origin, None, "timesteps", f"must be >= 1, got {net.timesteps}")
    if not net.layers:
        _fail(origin, None, "layers", "the network has no layers")
    sizes = {INPUT: net.input_size}
    for index, layer in enumerate(net.layers):
        name = layer.name
        if not name or name == INPUT or name in sizes:
            _fail(origin, name or f"#{index}", "name", "layer names must be unique, non-empty and not 'input'")
        if layer.kind not in LAYER_KINDS:
            _fail(origin, name, "kind", f"unknown layer kind {layer.kind!r} (known: {', '.join(LAYER_KINDS)})")
        if len(layer.sources) != 1:
            _fail(origin, name, "sources", f"a dense layer reads exactly one source, got {layer.sources}")
        source = layer.sources[0]
        if source not in sizes:
            _fail(origin, name, "sources", f"reads {source!r}, which is not an earlier layer or 'input'")
        if layer.weight.ndim != 2 or layer.weight.shape[1] != sizes[source]:
            _fail(origin, name, "weight", f"shape {layer.weight.shape} does not match (out, {sizes[source]}) from source {source!r}")
        if layer.weight.shape[0] < 1:
            _fail(origin, name, "weight", "a layer needs at least one neuron")
        representable = loihi.representable_weights(_as_tensor(layer.weight)).numpy()
        if not np.array_equal(representable, layer.weight):
            bad = np.argwhere(representable != layer.weight)[0]
            _fail(origin, name, "weight", f"weight[{bad[0]}, {bad[1]}] = {int(layer.weight[tuple(bad)])} is not an 8-bit "
                  f"Loihi weight for a {loihi.weight_sign_mode(_as_tensor(layer.weight))} matrix (Lava would use {int(representable[tuple(bad)])})")
        _check_range(origin, name, "weight_exp", layer.weight_exp, *loihi.WEIGHT_EXP_RANGE)
        _check_range(origin, name, "bias_exp", layer.bias_exp, *loihi.BIAS_EXP_RANGE)
        if layer.bias_mant.shape != (layer.num_neurons,):
            _fail(origin, name, "bias_mant", f"shape {layer.bias_mant.shape} != ({layer.num_neurons},)")
        _check_range(origin, name, "bias_mant", layer.bias_mant, *loihi.BIAS_MANT_RANGE)
        _check_range(origin, name, "current_decay", layer.current_decay, *loihi.CURRENT_DECAY_RANGE)
        _check_range(origin, name, "voltage_decay", layer.voltage_decay, *loihi.VOLTAGE_DECAY_RANGE)
        expected_bits = net.input_encoding.bits if source == INPUT else 0
        if layer.input_message_bits != expected_bits:
            _fail(origin, name, "input_message_bits", f"is {layer.input_message_bits}, but its source {source!r} sends "
                  f"{'graded ' + str(expected_bits) + '-bit payloads' if expected_bits else 'binary spikes'}")
        if layer.spiking:
            if layer.threshold_schedule.size not in (1, net.timesteps):
                _fail(origin, name, "threshold_schedule", f"has {layer.threshold_schedule.size} values; expected 1 or T = {net.timesteps}")
            _check_range(origin, name, "threshold_schedule", layer.threshold_schedule, *loihi.THRESHOLD_RANGE)
        elif layer.threshold_schedule.size:
            _fail(origin, name, "threshold_schedule", "a readout (non-spiking) layer has no thresholds")
        if not (np.isfinite(layer.scale) and layer.scale > 0):
            _fail(origin, name, "scale", f"must be a positive number, got {layer.scale}")
        sizes[name] = layer.num_neurons
    if net.layers[-1].spiking:
        _fail(origin, net.layers[-1].name, "spiking", "the last layer must be the non-spiking readout")
    for layer in net.layers[:-1]:
        if not layer.spiking:
            _fail(origin, layer.name, "spiking", "only the last layer may be a non-spiking readout")


def _as_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


# --------------------------------------------------------------------------- serialization

_ARRAY_FIELDS = ("weight", "bias_mant", "threshold_schedule")


def save(net: DeployableNetwork, path: str | os.PathLike) -> None:
    """Validate and write ``net`` to ``path`` (.npz), atomically."""
    validate(net, str(path))
    header = {
        "format": FORMAT_NAME,
        "format_version": net.format_version,
        "timesteps": net.timesteps,
        "input_shape": list(net.input_shape),
        "input_encoding": dataclasses.asdict(net.input_encoding),
        "provenance": net.provenance,
        "quantization": net.quantization,
        "layers": [
            {k: v for k, v in dataclasses.asdict(layer).items() if k not in _ARRAY_FIELDS}
            for layer in net.layers
        ],
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for index, layer in enumerate(net.layers):
        for name in _ARRAY_FIELDS:
            arrays[f"layer{index}.{name}"] = getattr(layer, name).astype(np.int32)
    with atomic_file(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load(path: str | os.PathLike) -> DeployableNetwork:
    """Read and validate a deployable network; errors name the file, layer and field."""
    origin = str(path)
    if not Path(path).is_file():
        raise NetworkFormatError(f"{origin}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ValueError("a single .npy array, not an .npz archive")
        with loaded as archive:
            header = json.loads(archive["header"].tobytes().decode("utf-8"))
            arrays = {key: archive[key] for key in archive.files if key != "header"}
    except (OSError, ValueError, KeyError, UnicodeDecodeError, EOFError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as exc:  # truncated or corrupt archives raise the last four
        raise NetworkFormatError(f"{origin}: not a deployable network file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise NetworkFormatError(f"{origin}: not a deployable network file (header format is {header.get('format') if isinstance(header, dict) else None!r})")
    try:
        layers = []
        for index, spec in enumerate(header["layers"]):
            for name in _ARRAY_FIELDS:
                key = f"layer{index}.{name}"
                if key not in arrays:
                    _fail(origin, spec.get("name", f"#{index}"), name, "missing from the file")
                spec[name] = arrays[key]
            layers.append(DenseLayer(**spec))
        net = DeployableNetwork(
            timesteps=header["timesteps"],
            input_shape=tuple(header["input_shape"]),
            input_encoding=InputEncoding(**header["input_encoding"]),
            layers=layers,
            provenance=header.get("provenance", {}),
            quantization=header.get("quantization", {}),
            format_version=header["format_version"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NetworkFormatError(f"{origin}: malformed header ({exc.__class__.__name__}: {exc})") from None
    validate(net, origin)
    return net
