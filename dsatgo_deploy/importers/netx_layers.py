"""The layers of a lava-dl netx HDF5 file, one entry (an HDF5 group of ``layer``) at a time: its type, its
synapse (dense weights as netx's optimize_weight_bits makes them, or a convolution), its CUBA neuron
and bias, as the deployable network's layers (the file-level reading: netx.py)."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, ConvGeometry, Layer
from dsatgo_deploy.neurons.sigma_delta import SDNN_MANT_RANGE

from .netx_temporal import average_readout, read_delay, recurrent_weights
from .netx_weights import _representable, netx_dense_weights

#: Layer types netx's hdf5.Network raises NotImplementedError for ('average' is imported: netx_temporal.py).
NETX_UNIMPLEMENTED = ("pool", "concat", "convT", "unpool")
#: netx's neuron for a dense layer without one: a non-leaky integrator that never fires.
NETX_DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
#: netx's message bits of an SDNN neuron without 'messageBits' (hdf5.py get_neuron_params)
NETX_SDNN_MESSAGE_BITS = 16


class _Entry:
    """One ``layer/<i>`` group read as netx's NetDict reads it."""

    def __init__(self, group, index: int, origin: str) -> None:
        self.group, self.index, self.origin = group, index, origin
        self.type = self.text("type") if "type" in group else None

    def where(self, field: str | None = None) -> str:
        entry = f"{self.origin}: layer {self.index} ({self.type or 'no type'})"
        return f"{entry}: field '{field}'" if field else entry

    def fail(self, field: str | None, message: str) -> None:
        raise UserError(f"{self.where(field)}: {message}")

    def text(self, key: str) -> str:
        value = self.group[key]
        value = value[0] if len(value.shape) > 0 else value[()]
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def has(self, key: str) -> bool:
        return key in self.group

    def array(self, key: str) -> np.ndarray:
        if key not in self.group:
            self.fail(key, "missing")
        dataset = self.group[key]
        if not hasattr(dataset, "dtype"):
            self.fail(key, "is a group, not a dataset")
        if dataset.dtype.kind not in "biufcSOU":
            self.fail(key, f"has dtype {dataset.dtype}; netx stores numbers and strings")
        return np.asarray(dataset[()])

    def ints(self, key: str) -> np.ndarray:
        """A copy key of NetDict (weight, bias): float arrays of integers, read with astype(int) (as netx
        does); NaN, infinities, complex or non-numeric values are refused rather than cast to garbage."""
        values = self.array(key)
        if values.dtype.kind not in "iuf":
            self.fail(key, f"must hold real numbers, got {values.dtype}")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            self.fail(key, "holds NaN or infinite values")
        if values.size and max(abs(float(values.min())), abs(float(values.max()))) >= 2 ** 31:
            self.fail(key, f"values up to {max(abs(float(values.min())), abs(float(values.max()))):g} do not fit "
                           "Loihi's integer fields")
        return values.astype(int)

    def scalar(self, key: str, group=None) -> int:
        """A neuron parameter: one integer (netx passes it to Lava as it is)."""
        value = np.asarray(group[key][()] if group is not None else self.array(key))
        name = f"neuron/{key}" if group is not None else key
        if value.size != 1:
            if value.size and np.all(value == value.reshape(-1)[0]):
                value = value.reshape(-1)[:1]
            else:
                self.fail(name, f"has {value.size} different values; the format holds one per layer")
        item = value.reshape(-1)[0]
        if (isinstance(item, (bytes, np.bytes_, str)) or value.dtype.kind not in "iuf"
                or not np.isfinite(float(item)) or abs(float(item)) >= 2 ** 31 or not float(item) == int(float(item))):
            self.fail(name, f"is {item!r}, not an integer")
        return int(float(item))

    def pair(self, key: str) -> tuple[int, int]:
        """stride/padding/dilation: a scalar, or (y, x) as torch stores them (netx reverses them)."""
        value = self.array(key)
        if value.size == 1:
            return int(value.reshape(-1)[0]), int(value.reshape(-1)[0])
        if value.shape != (2,):
            self.fail(key, f"has shape {value.shape}; expected a scalar or (y, x)")
        return int(value[0]), int(value[1])


def _neuron(entry: _Entry, kind: str) -> dict:
    """du, dv, vth of a CUBA neuron as netx maps them (Network.get_neuron_params)."""
    if "neuron" not in entry.group:
        if kind == "conv":
            entry.fail("neuron", "missing (netx needs a neuron for a conv layer)")
        config = NETX_DEFAULT_NEURON
        return {"kind": "lif", "du": config["iDecay"] - 1, "dv": config["vDecay"], "vth": config["vThMant"],
                "default": True}
    neuron = entry.group["neuron"]
    neuron_type = _Entry(neuron, entry.index, entry.origin).text("type") if "type" in neuron else None
    if neuron_type == "SDNN":
        return _sdnn_neuron(entry, neuron, kind)
    if neuron_type not in ("CUBA", "LOIHI"):
        entry.fail("neuron/type", f"is {neuron_type!r}; only CUBA, LOIHI (LIF) and SDNN (sigma-delta) neurons can be "
                                  "imported")
    params = {"kind": "lif"}
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in neuron:
            entry.fail(f"neuron/{key}", "missing")
        params[key] = entry.scalar(key, neuron)
    # netx passes du = iDecay - 1 and dv = vDecay to Lava's LIF: Loihi's 12-bit decays
    for key, (lo, hi) in (("iDecay", (loihi.CURRENT_DECAY_RANGE[0] + 1, loihi.CURRENT_DECAY_RANGE[1] + 1)),
                          ("vDecay", loihi.VOLTAGE_DECAY_RANGE), ("vThMant", (0, 1 << 31))):
        if not lo <= params[key] <= hi:
            entry.fail(f"neuron/{key}", f"is {params[key]}, outside [{lo}, {hi}] (Loihi's "
                                        f"{'12-bit decays' if key != 'vThMant' else 'thresholds'})")
    return {"kind": "lif", "du": params["iDecay"] - 1, "dv": params["vDecay"], "vth": params["vThMant"]}


def _sdnn_neuron(entry: _Entry, neuron, kind: str) -> dict:
    """netx's SDNN neuron (hdf5.py get_neuron_params): a Delta encoder on the input layer, a Sigma decoder where the
    group has a 'sigma_output' key (whatever its value), else a relu SigmaDelta; spike_exp 6, state_exp 6."""
    if "activation" in neuron and _Entry(neuron, entry.index, entry.origin).text("activation") != "relu":
        entry.fail("neuron/activation", f"is {_Entry(neuron, entry.index, entry.origin).text('activation')!r}: netx "
                                        "passes no activation to its SigmaDelta, which is then relu; only 'relu' "
                                        "files run as they say")
    bits = entry.scalar("messageBits", neuron) if "messageBits" in neuron else NETX_SDNN_MESSAGE_BITS
    if kind == "input":
        name = "delta"
    elif "sigma_output" in neuron:
        return {"kind": "sigma", "message_bits": bits}
    else:
        name = "sigma_delta"
    if "vThMant" not in neuron:
        entry.fail("neuron/vThMant", "missing")
    vth = entry.scalar("vThMant", neuron)
    if not 0 <= vth <= SDNN_MANT_RANGE[1]:
        entry.fail("neuron/vThMant", f"is {vth}, outside [0, {SDNN_MANT_RANGE[1]}]: scaled by 2**12, as netx's "
                                     "SigmaDelta does, it would leave int32")
    if not 1 <= bits <= 24:
        entry.fail("neuron/messageBits", f"is {bits}, outside [1, 24] (Loihi 2's graded spikes)")
    return {"kind": name, "vth": vth, "message_bits": bits}


def _bias(entry: _Entry, kind: str, output_shape: tuple[int, ...], bounds: tuple[int, int] = loihi.BIAS_MANT_RANGE
          ) -> np.ndarray:
    """bias_mant in the format: (n,) dense; conv (C,) per channel or (C*H*W,) per neuron, (C, H, W) order; within
    ``bounds`` (a LIF's: Loihi's 13-bit signed bias mantissa, docs/netx_kinds.md)."""
    values = _bias_values(entry, kind, output_shape)
    if values.size and (values.min() < bounds[0] or values.max() > bounds[1]):
        bad = int(values.min() if values.min() < bounds[0] else values.max())
        lif = bounds == loihi.BIAS_MANT_RANGE
        entry.fail("bias", f"value {bad} outside [{bounds[0]}, {bounds[1]}]" + (
            ": Loihi's bias mantissa is 13-bit signed (Lava's fixed_pt LIF would run any int32, the chip cannot)"
            if lif else ": scaled by 2**12, as netx's SigmaDelta does, it would leave int32"))
    return values


def _bias_values(entry: _Entry, kind: str, output_shape: tuple[int, ...]) -> np.ndarray:
    neurons = int(np.prod(output_shape))
    if not entry.has("bias"):
        return np.zeros(output_shape[0] if kind == "conv" else neurons, dtype=np.int64)
    bias = entry.ints("bias")
    if kind == "dense":
        if bias.ndim == 0:
            return np.full(neurons, int(bias), dtype=np.int64)
        if bias.shape != (neurons,):
            entry.fail("bias", f"has shape {bias.shape}; a dense layer of {neurons} neurons takes ({neurons},)")
        return bias.astype(np.int64)
    channels, height, width = output_shape
    if bias.shape == (width, height, channels):  # netx: per neuron, in Lava's (X, Y, C) layout
        return bias.transpose(2, 1, 0).reshape(-1).astype(np.int64)
    if bias.shape == (channels,):
        return bias.astype(np.int64)
    entry.fail("bias", f"has shape {bias.shape}; netx takes ({channels},) per channel or (X, Y, C) = "
                       f"({width}, {height}, {channels}) per neuron")


class _Synapse(NamedTuple):
    """A layer's synapse as read from its netx entry."""

    weight: np.ndarray
    weight_exp: int
    num_weight_bits: int
    conv: ConvGeometry | None
    output_shape: tuple[int, ...]
    delay: np.ndarray | None = None  # (out, in), netx_temporal.read_delay
    weight_rec: np.ndarray | None = None  # dense_rec: (out, out)


def _read_layers(entries: list[_Entry], input_message_bits: int, input_shape: tuple[int, ...] | None):
    """The layers of a netx file, in order: (layers, input shape, pending flatten)."""
    layers: list[Layer] = []
    names: set[str] = set()
    shape: tuple[int, ...] | None = tuple(int(d) for d in input_shape) if input_shape is not None else None
    file_input_shape: tuple[int, ...] | None = None
    flatten = False
    last_neuron_index = max((e.index for e in entries if e.type in ("dense", "dense_rec", "conv")), default=-1)
    for entry in entries:
        kind = _layer_type(entry)
        if kind == "average":
            if entry is not entries[-1]:
                entry.fail(None, "an 'average' block must be the file's last entry")
            layers.append(average_readout(entry, layers[-1] if layers else None, _unique_name(entry, kind, names)))
            continue
        if kind == "input":
            file_input_shape = _read_input_entry(entry, layers, file_input_shape)
            if entry.has("neuron"):
                shape = shape or file_input_shape
                layers.append(_input_layer(entry, shape, names, input_message_bits))
            continue
        if kind == "flatten":
            flatten = True
            continue
        source_shape = layers[-1].output_shape if layers else None
        bits = layers[-1].message_bits if layers else input_message_bits
        if kind == "dense":
            synapse, shape = _dense_synapse(entry, source_shape, shape, file_input_shape, flatten, bits)
        else:
            synapse, shape = _conv_synapse(entry, source_shape, shape, file_input_shape)
        flatten = False
        layers.append(_layer(entry, kind, synapse, layers[-1].name if layers else INPUT, names, last_neuron_index,
                             bits))
    if not layers:
        raise UserError(f"{entries[0].origin if entries else 'netx file'}: no dense or conv layer to import")
    return layers, shape, flatten


def _layer_type(entry: _Entry) -> str:
    """The entry's layer type; UserError for one that cannot be imported."""
    kind = entry.type
    if kind is None:
        entry.fail("type", "missing")
    if kind in NETX_UNIMPLEMENTED:
        entry.fail(None, f"layer type '{kind}' is not implemented by netx (lava.lib.dl.netx.hdf5.Network raises "
                         "NotImplementedError), so it cannot be imported")
    if kind == "dense_comp":
        entry.fail(None, f"layer type '{kind}' (complex dense) has no deployable-network equivalent")
    if kind not in ("input", "flatten", "dense", "dense_rec", "conv", "average"):
        entry.fail("type", f"unknown layer type '{kind}' (netx would skip it silently)")
    return "dense" if kind == "dense_rec" else kind


def _read_input_entry(entry: _Entry, layers: list[Layer],
                      file_input_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The input shape an input entry declares (else the one known before)."""
    if layers:
        entry.fail(None, "an input layer after other layers")
    if entry.has("shape"):
        file_input_shape = tuple(int(d) for d in entry.array("shape").reshape(-1))
    return file_input_shape


def _input_layer(entry: _Entry, shape: tuple[int, ...] | None, names: set[str], input_message_bits: int) -> Layer:
    """An input entry with a neuron (netx's Input block): an identity layer whose neuron receives the network's
    input one to one (what lava-dl's tests send into the block's a_in). Its hdf5 bias and weight feed only netx's
    unused input transform: the neuron's bias is 0."""
    if shape is None:
        entry.fail("shape", "missing: an input layer with a neuron needs its shape")
    neuron = _neuron(entry, "input")
    name = entry.text("name") if entry.has("name") else f"input{entry.index}"
    names.add(name)
    neurons = int(np.prod(shape))
    common = dict(name=name, sources=[INPUT], weight=np.zeros(0, np.int64), weight_exp=0,
                  bias_mant=np.zeros(neurons, np.int64), input_message_bits=input_message_bits, kind="identity",
                  shape=shape)
    if neuron["kind"] == "delta":
        return Layer(**common, bias_exp=6, threshold_schedule=np.array([neuron["vth"]]), current_decay=0,
                     voltage_decay=0, neuron="delta", message_bits=neuron["message_bits"])
    if neuron["vth"] > loihi.THRESHOLD_RANGE[1]:
        entry.fail("neuron/vThMant", f"is {neuron['vth']}: an input neuron that can never fire")
    return Layer(**common, bias_exp=6, threshold_schedule=np.array([neuron["vth"]]), current_decay=neuron["du"],
                 voltage_decay=neuron["dv"], neuron="cuba_lif")


def _dense_synapse(entry: _Entry, source_shape: tuple[int, ...] | None, shape: tuple[int, ...] | None,
                   file_input_shape: tuple[int, ...] | None, flatten: bool,
                   bits: int) -> tuple[_Synapse, tuple[int, ...] | None]:
    """A dense entry's synapse (its weights as netx's optimize_weight_bits makes them) and the network's input
    shape (set by the first layer when the caller gave none)."""
    if entry.has("weight/imag"):
        entry.fail("weight", "complex weights have no deployable-network equivalent")
    weight = entry.ints("weight")
    out_features = int(np.prod(entry.array("shape"))) if entry.has("shape") else weight.shape[0]
    if weight.ndim == 1:
        weight = weight.reshape(out_features, -1)
    if weight.ndim != 2 or weight.shape[0] != out_features:
        entry.fail("weight", f"has shape {weight.shape}; expected ({out_features}, inputs)")
    if source_shape is None:
        if shape is None:
            shape = (file_input_shape if file_input_shape is not None and len(file_input_shape) in (1, 3)
                     and int(np.prod(file_input_shape)) == weight.shape[1] else (int(weight.shape[1]),))
        source_shape = shape
    elif len(source_shape) == 3 and not flatten:
        entry.fail(None, f"a dense layer reads the (C, H, W) = {source_shape} output of the conv layer before it "
                         "without a 'flatten' entry between them (netx cannot connect them)")
    if int(np.prod(source_shape)) != weight.shape[1]:
        entry.fail("weight", f"has {weight.shape[1]} inputs, but its source gives {int(np.prod(source_shape))}")
    delay = read_delay(entry, weight.shape)
    if not weight.any():
        entry.fail("weight", "all weights are 0: netx's optimize_weight_bits fails on it (OverflowError)")
    if entry.type == "dense_rec":
        if delay is not None:
            entry.fail("delay", "a recurrent block with delays cannot be imported (netx builds its delayed "
                                "synapses without the weight exponent)")
        weight, weight_rec, num_weight_bits, weight_exp = recurrent_weights(entry, weight, bits)
        return _Synapse(weight, weight_exp, num_weight_bits, None, (out_features,), None, weight_rec), shape
    try:
        weight, num_weight_bits, weight_exp, lossy = netx_dense_weights(weight, bits)
    except UserError as exc:
        entry.fail("weight", str(exc))
    if lossy:
        warnings.warn(f"{entry.where('weight')}: netx's optimize_weight_bits does not keep these weights: Lava "
                      "computes with different ones (docs/loihi_arithmetic.md, netx files), and so does the imported layer",
                      stacklevel=4)
    return _Synapse(weight, weight_exp, num_weight_bits, None, (out_features,), delay), shape


def _conv_synapse(entry: _Entry, source_shape: tuple[int, ...] | None, shape: tuple[int, ...] | None,
                  file_input_shape: tuple[int, ...] | None) -> tuple[_Synapse, tuple[int, ...] | None]:
    """A conv entry's synapse and the network's input shape (set by the first layer when the caller gave none)."""
    weight = entry.ints("weight")
    if weight.ndim < 4 or weight.shape[4:] and int(np.prod(weight.shape[4:])) != 1:
        entry.fail("weight", f"has shape {weight.shape}; expected (C_out, C_in, KH, KW)")
    weight = weight.reshape(weight.shape[:4])
    if entry.has("groups") and entry.scalar("groups") != 1:
        entry.fail("groups", f"is {entry.scalar('groups')}; only groups = 1 can be imported")
    if source_shape is None:
        if shape is None:
            shape = file_input_shape
        if shape is None or len(shape) != 3:
            entry.fail(None, "the first layer is a conv layer but the file has no (C, H, W) input shape: pass "
                             "it (read_netx(..., input_shape=(C, H, W)), dsatgo sim --input-shape C,H,W)")
        source_shape = shape
    elif len(source_shape) != 3:
        entry.fail(None, f"a conv layer reads a {source_shape} vector")
    conv = ConvGeometry(source_shape, stride=entry.pair("stride") if entry.has("stride") else (1, 1),
                        padding=entry.pair("padding") if entry.has("padding") else (0, 0),
                        dilation=entry.pair("dilation") if entry.has("dilation") else (1, 1))
    if weight.shape[1] != source_shape[0]:
        entry.fail("weight", f"has {weight.shape[1]} input channels, but its source gives {source_shape}")
    output_shape = conv.output_shape(weight.shape)
    if entry.has("shape") and tuple(int(d) for d in entry.array("shape").reshape(-1)) != output_shape:
        entry.fail("shape", f"is {tuple(entry.array('shape'))}, but the convolution gives {output_shape}")
    num_weight_bits = next((b for b in (loihi.WEIGHT_BITS, loihi.WEIGHT_BITS + 1)
                            if np.array_equal(_representable(weight, b), weight)), None)
    if num_weight_bits is None:
        entry.fail("weight", f"values in [{weight.min()}, {weight.max()}] are not Loihi synaptic weights (8 bits, "
                             "or 9 for odd mixed-sign ones); Lava's Conv would use them unchanged")
    return _Synapse(weight, 0, num_weight_bits, conv, output_shape), shape


def _layer(entry: _Entry, kind: str, synapse: _Synapse, previous: str, names: set[str], last_neuron_index: int,
           input_message_bits: int) -> Layer:
    """The deployable layer of a dense or conv entry: its synapse, its CUBA neuron (a readout when it is the last
    and can never fire), a unique name."""
    if not entry.has("neuron") and entry.index != last_neuron_index:
        entry.fail("neuron", "missing: netx then builds a CUBA neuron that never fires (vThMant 2**17), which only the "
                             "last layer may be (a non-spiking readout)")
    neuron = _neuron(entry, kind)
    name = _unique_name(entry, kind, names)
    if neuron["kind"] != "lif":
        return _sdnn_layer(entry, kind, synapse, previous, name, neuron, input_message_bits, last_neuron_index)
    readout = entry.index == last_neuron_index and neuron["vth"] >= loihi.NEVER_FIRES_VTH
    if neuron["vth"] > loihi.THRESHOLD_RANGE[1] and not readout:
        entry.fail("neuron/vThMant", f"is {neuron['vth']}: the layer can never fire; only the last layer may be "
                                     "such a (non-spiking) readout")
    if readout and synapse.weight_rec is not None:
        entry.fail(*(("neuron", "missing: netx's default neuron never fires, so the recurrent block has nothing to "
                                "feed back") if neuron.get("default") else
                     ("neuron/vThMant", f"is {neuron['vth']}: the recurrent block can never fire")))
    return Layer(
        name=name, sources=[previous], weight=synapse.weight, weight_exp=synapse.weight_exp,
        bias_mant=_bias(entry, kind, synapse.output_shape), bias_exp=6,
        threshold_schedule=np.zeros(0, np.int64) if readout else np.array([neuron["vth"]]),
        current_decay=neuron["du"], voltage_decay=neuron["dv"], spiking=not readout,
        input_message_bits=input_message_bits, scale=1.0, kind=kind, conv=synapse.conv,
        num_weight_bits=synapse.num_weight_bits, neuron="readout" if readout else "cuba_lif",
        delay=synapse.delay, weight_rec=synapse.weight_rec)


def _unique_name(entry: _Entry, kind: str, names: set[str]) -> str:
    """The entry's ``name`` (our writer stores one), else ``<type><index>``; unique and not 'input'."""
    name = entry.text("name") if entry.has("name") else f"{kind}{entry.index}"
    if name in names or name == INPUT:
        name = f"{kind}{entry.index}"
    names.add(name)
    return name


def _sdnn_layer(entry: _Entry, kind: str, synapse: _Synapse, previous: str, name: str, neuron: dict,
                input_message_bits: int, last_neuron_index: int) -> Layer:
    """A dense or conv entry with an SDNN neuron: a relu sigma_delta, or the sigma output decoder (last layer only)."""
    if synapse.delay is not None or synapse.weight_rec is not None:
        entry.fail("delay" if synapse.delay is not None else "weight_rec",
                   "an SDNN block with delays or recurrence is not supported")
    sigma = neuron["kind"] == "sigma"
    if sigma and entry.index != last_neuron_index:
        entry.fail("neuron/sigma_output", "a sigma output neuron feeds no other layer: only the last layer may have one")
    return Layer(
        name=name, sources=[previous], weight=synapse.weight, weight_exp=synapse.weight_exp,
        bias_mant=_bias(entry, kind, synapse.output_shape, SDNN_MANT_RANGE), bias_exp=6,
        threshold_schedule=np.zeros(0, np.int64) if sigma else np.array([neuron["vth"]]),
        current_decay=0, voltage_decay=0, input_message_bits=input_message_bits, kind=kind, conv=synapse.conv,
        num_weight_bits=synapse.num_weight_bits, neuron=neuron["kind"], message_bits=neuron["message_bits"])
