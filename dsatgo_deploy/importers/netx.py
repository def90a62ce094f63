"""Importer of lava-dl netx HDF5 files: a netx file becomes a DeployableNetwork.

Reader (:func:`read_netx`): any netx file of CUBA dense/conv layers (lava-dl's
own ``export_hdf5`` of slayer blocks, or ours) becomes a DeployableNetwork that
computes what Lava computes when netx loads the file
(LOIHI_FIXED_POINT.md §6), as a chain ``input -> layer -> layer ...``:

* weights are read with ``astype(int)`` (truncation toward 0), as netx's NetDict;
* dense: netx's ``optimize_weight_bits`` gives (w', num_weight_bits, weight_exp)
  (ported exactly: :func:`optimize_weight_bits`, tested against lava's); the layer
  holds what Lava's Dense then uses, ``representable_weights(w', num_weight_bits)``
  with weight_exp, or, when that is exactly the same sum (always for binary input;
  for graded input while ``max|w'| * fan_in * 2**bits < 2**31``), the same weights
  divided by ``2**-weight_exp`` with weight_exp 0 and 8 bits: for every matrix
  netx maps losslessly these are the file's own integers. netx's lossy corners
  (all weights <= 0 with |min| a power of two; excitatory max > 255 or
  inhibitory min < -256, which netx silently zeroes) are imported as Lava
  computes them, with a warning;
* conv: raw weights (Lava's Conv neither clips nor truncates them); they must be
  8-bit Loihi weights (9 bits: odd mixed-sign ones); stride/padding/dilation
  stored (y, x) as torch has them; groups 1;
* neuron: CUBA (or LOIHI) only; ``du = iDecay - 1`` (so -1 for iDecay 0), ``dv = vDecay``,
  ``vth = vThMant``, ``bias_mant = int(bias)`` with ``bias_exp = 6``; bias per
  neuron or per channel (conv: netx takes (X, Y, C) per neuron or (C,));
  a dense layer without a neuron gets netx's default (iDecay 0, vDecay 4096,
  vThMant 2**17). A last layer with vThMant >= 2**17 can never fire and becomes the
  non-spiking readout; otherwise the last layer spikes and the network's output
  is its spike counts. ``refDelay``, ``gradedSpike`` and ``messageBits`` change
  nothing for LIF outputs (0/1 spikes);
* ``flatten`` entries: a dense layer after a conv reads it in (C, H, W) order;
* input: the 'input' layer's shape (torch's (C, H, W) or (n,)); without one the
  first dense layer's fan-in, or ``input_shape`` for a first conv layer. The
  input is binary spikes (``input_message_bits = 0``, InputEncoding.spikes()) or
  graded payloads of ``input_message_bits`` bits;
* refused with a UserError naming the layer index and type or field: layer types
  netx does not implement (pool, average, concat, convT, unpool) or that the
  format lacks (dense_rec, dense_comp, unknown types), an input layer with a
  neuron (netx builds an Input block that is never connected), non-CUBA
  neurons, per-neuron decays or thresholds, non-zero delays, conv groups.

lava-dl's netx files have no timestep count: pass ``timesteps`` (T, the steps per sample,
netx's ``reset_interval``); files our writer made carry it, and the input encoding
(its quantum), in root attributes, which the reader uses (export/netx_writer.py). netx run with ``reset_interval = T, reset_offset = 1``
resets every layer when a sample reaches it; the Lava backend streams samples
the same way, so an imported network runs in our reference, our Lava graph and
netx's own with the same spikes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from dsatgo_deploy import limits, loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, ConvGeometry, DeployableNetwork, InputEncoding, Layer, validate

from .registry import Importer, register_importer


#: Layer types netx's hdf5.Network raises NotImplementedError for.
NETX_UNIMPLEMENTED = ("pool", "average", "concat", "convT", "unpool")
#: netx's neuron for a dense layer without one: a non-leaky integrator that never fires.
NETX_DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file (its signature at offset 0, 512, 1024, ... as HDF5 allows)."""
    try:
        with open(path, "rb") as handle:
            offset = 0
            while True:
                handle.seek(offset)
                head = handle.read(len(HDF5_SIGNATURE))
                if len(head) < len(HDF5_SIGNATURE):
                    return False
                if head == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False


def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """lava-dl netx's ``optimize_weight_bits`` (lava/lib/dl/netx/utils.py, lava-dl 0.6.0), ported
    line by line without its prints: ``(w', num_weight_bits, weight_exp, sign_mode)`` with sign_mode
    'mixed', 'excitatory' or 'inhibitory'. ``weight`` holds integers (netx reads them with astype(int)).
    An all-zero matrix raises OverflowError, as in netx."""
    weight = np.asarray(weight)
    max_weight = np.max(weight)
    min_weight = np.min(weight)
    if max_weight > 254 and min_weight < 0:
        weight = np.clip(weight, -256, 254)
        max_weight = np.max(weight)
    if min_weight < -256 and max_weight > 0:
        weight = np.clip(weight, -256, 254)
        min_weight = np.min(weight)
    if max_weight < 0:
        sign_mode, is_signed = "inhibitory", 0
    elif min_weight >= 0:
        sign_mode, is_signed = "excitatory", 0
    else:
        sign_mode, is_signed = "mixed", 1
    with np.errstate(divide="ignore"):
        if sign_mode == "mixed":
            scale = np.min([127 / max_weight, -128 / min_weight])
        elif sign_mode == "inhibitory":
            scale = -256 / min_weight
        else:
            scale = 255 / max_weight
        scale_bits = np.floor(np.log2(scale)) + is_signed
    n = 8
    while n > 0:
        if np.sum(np.abs(weight / (2**n) - np.round(weight / (2**n)))) == 0:
            break
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    weight_exponent = -scale_bits
    weight = np.left_shift(weight.astype(np.int32), int(scale_bits))
    return weight.astype(int), int(num_weight_bits), int(weight_exponent), sign_mode


def _representable(weight: np.ndarray, num_weight_bits: int) -> np.ndarray:
    import torch

    return loihi.representable_weights(torch.from_numpy(np.asarray(weight, dtype=np.int64)), num_weight_bits).numpy()


def netx_dense_weights(weight: np.ndarray, input_message_bits: int = 0) -> tuple[np.ndarray, int, int, bool]:
    """The weights, num_weight_bits and weight_exp of a layer that computes what Lava's Dense computes
    when netx loads the integer matrix ``weight`` (module doc), and whether that differs from the
    plain sum of ``weight`` (netx's lossy corners). Raises UserError (no layer name: the caller adds
    it) when no valid layer does, OverflowError for an all-zero matrix (netx cannot load it)."""
    weight = np.asarray(weight, dtype=np.int64)
    scaled, bits, exponent, _ = optimize_weight_bits(weight)
    used = _representable(scaled, bits)  # what Lava's Dense multiplies with, before the shift of the sum
    if not used.any():
        return np.zeros_like(weight), loihi.WEIGHT_BITS, 0, bool(weight.any())
    shift = -exponent
    lossy = not (shift >= 0 and np.array_equal(used, weight << shift))
    if shift >= 0 and not np.any(used % (1 << shift)):
        plain = used >> shift
        max_message = (1 << input_message_bits) if input_message_bits else 1
        no_wrap = input_message_bits == 0 or int(np.abs(used).max()) * weight.shape[1] * max_message < 2**31
        if no_wrap and np.array_equal(_representable(plain, loihi.WEIGHT_BITS), plain):
            return plain, loihi.WEIGHT_BITS, 0, lossy
    if (np.array_equal(_representable(used, bits), used) and 1 <= bits <= 9
            and loihi.WEIGHT_EXP_RANGE[0] <= exponent <= loihi.WEIGHT_EXP_RANGE[1]):
        return used, bits, exponent, lossy
    raise UserError(f"netx maps these weights to {bits}-bit weights with exponent {exponent} that no deployable layer "
                    "can hold")


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
        return {"du": config["iDecay"] - 1, "dv": config["vDecay"], "vth": config["vThMant"]}
    neuron = entry.group["neuron"]
    neuron_type = _Entry(neuron, entry.index, entry.origin).text("type") if "type" in neuron else None
    if neuron_type not in ("CUBA", "LOIHI"):
        entry.fail("neuron/type", f"is {neuron_type!r}; only CUBA (LIF) neurons can be imported")
    params = {}
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in neuron:
            entry.fail(f"neuron/{key}", "missing")
        params[key] = entry.scalar(key, neuron)
    return {"du": params["iDecay"] - 1, "dv": params["vDecay"], "vth": params["vThMant"]}


def _bias(entry: _Entry, kind: str, output_shape: tuple[int, ...]) -> np.ndarray:
    """bias_mant in the format: (n,) dense; conv (C,) per channel or (C*H*W,) per neuron, (C, H, W) order."""
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


def read_run_attributes(h5) -> dict:
    """What our writer stored in a netx file's root attributes (export/netx_writer.py): the input
    encoding, T and the source checkpoint's SHA-256; {} for other netx files."""
    import json

    attrs = h5.attrs
    if "dsatgo_input_encoding" not in attrs:
        return {}
    text = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in attrs.items()}
    found = {"input_encoding": InputEncoding(**json.loads(text["dsatgo_input_encoding"]))}
    if "dsatgo_timesteps" in text:
        found["timesteps"] = int(text["dsatgo_timesteps"])
    if "dsatgo_source_sha256" in text:
        found["source_sha256"] = str(text["dsatgo_source_sha256"])
    return found


def read_netx(path: str | os.PathLike, input_message_bits: int | None = None, *, timesteps: int | None = None,
              input_shape: tuple[int, ...] | None = None, input_encoding: InputEncoding | None = None,
              ) -> DeployableNetwork:
    """Read a lava-dl netx HDF5 file of CUBA dense/conv layers as a validated DeployableNetwork (module doc).

    input_message_bits: bits of the input's graded payloads, as given to ``netx.hdf5.Network``
        (0: binary spikes); default: what the file's run attributes say (our writer's), else 0.
    timesteps: T, steps per sample (netx's reset_interval); default: the file's run attribute
        (lava-dl's own files have none: then it must be given).
    input_shape: (C, H, W) or (n,) when the file has no input layer and starts with a conv layer
        (else taken from the file; overrides it when given).
    input_encoding: how analog samples become payloads; default: the file's (our writer stores
        the input quantum), else spikes (x != 0) for 0 bits, else unsigned graded payloads with step
        1/(2**bits - 1) (x in [0, 1] spans the payload range).
    Layers are named ``<name>`` where the file gives one (our writer does), else ``<type><index>``.
    Errors a user can act on raise UserError naming the file, the layer index and type, the field.
    """
    import h5py

    origin = str(path)
    if not Path(path).is_file():
        raise UserError(f"{origin}: no such file")
    if not is_hdf5(path):
        raise UserError(f"{origin}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as h5:
            run = read_run_attributes(h5)
            if input_message_bits is None:
                input_message_bits = run["input_encoding"].bits if run else 0
            if not 0 <= int(input_message_bits) <= 24:
                raise UserError(f"{origin}: input_message_bits must be in [0, 24] (0: binary spikes), "
                                f"got {input_message_bits}")
            if "layer" not in h5:
                raise UserError(f"{origin}: not a netx file (no 'layer' group)")
            _check_declared_sizes(h5, origin)
            group = h5["layer"]
            keys = sorted((k for k in group.keys()), key=lambda k: int(k) if k.isdigit() else -1)
            if any(not k.isdigit() for k in keys) or [int(k) for k in keys] != list(range(len(keys))):
                raise UserError(f"{origin}: layer groups must be named 0, 1, 2, ...; found {list(group.keys())}")
            entries = [_Entry(group[k], int(k), origin) for k in keys]
            layers, shape, flatten = _read_layers(entries, input_message_bits, input_shape)
    except OSError as exc:
        raise UserError(f"{origin}: not a readable HDF5 file ({limits.reason(exc)})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RuntimeError) as exc:
        raise UserError(f"{origin}: malformed netx file ({limits.reason(exc)})") from None
    if input_encoding is None and run and run["input_encoding"].bits == input_message_bits:
        input_encoding = run["input_encoding"]
    if input_encoding is None:
        input_encoding = (InputEncoding.spikes() if input_message_bits == 0 else
                          InputEncoding(kind="graded", bits=input_message_bits, step=1.0 / ((1 << input_message_bits) - 1)))
    if timesteps is None:
        timesteps = run.get("timesteps")
        if timesteps is None:
            raise UserError(f"{origin}: a lava-dl netx file holds no timestep count: pass --timesteps T")
    provenance = {"imported_from": "lava-dl netx", "file": origin, "input_message_bits": int(input_message_bits)}
    if run.get("source_sha256"):
        provenance["source_sha256"] = run["source_sha256"]
    net = DeployableNetwork(timesteps=timesteps, input_shape=shape, input_encoding=input_encoding, layers=layers,
                            provenance=provenance)
    validate(net, origin)
    return net


def _check_declared_sizes(h5, origin: str) -> None:
    """Refuse a file whose datasets declare more than the memory budget, before any is read."""
    total = 0

    def add(_name: str, item) -> None:
        nonlocal total
        if hasattr(item, "dtype") and hasattr(item, "shape") and item.shape is not None:
            total += int(np.prod(item.shape, dtype=object)) * max(int(item.dtype.itemsize), 1)

    h5.visititems(add)
    limits.check_memory(origin, "its datasets", total)


def _read_layers(entries: list[_Entry], input_message_bits: int, input_shape: tuple[int, ...] | None):
    """The layers of a netx file, in order: (layers, input shape, pending flatten)."""
    layers: list[Layer] = []
    names: set[str] = set()
    shape: tuple[int, ...] | None = tuple(int(d) for d in input_shape) if input_shape is not None else None
    file_input_shape: tuple[int, ...] | None = None
    flatten = False
    previous = INPUT
    last_neuron_index = max((e.index for e in entries if e.type in ("dense", "conv")), default=-1)
    for entry in entries:
        kind = entry.type
        if kind is None:
            entry.fail("type", "missing")
        if kind in NETX_UNIMPLEMENTED:
            entry.fail(None, f"layer type '{kind}' is not implemented by netx (lava.lib.dl.netx.hdf5.Network raises "
                             "NotImplementedError), so it cannot be imported")
        if kind in ("dense_rec", "dense_comp"):
            entry.fail(None, f"layer type '{kind}' (recurrent or complex dense) has no deployable-network equivalent")
        if kind == "input":
            if entry.has("neuron"):
                entry.fail("neuron", "an input layer with a neuron becomes a netx Input block whose InPort is never "
                                     "connected (silent unless its bias is set); such files cannot be imported")
            if layers:
                entry.fail(None, "an input layer after other layers")
            if entry.has("shape"):
                file_input_shape = tuple(int(d) for d in entry.array("shape").reshape(-1))
            continue
        if kind == "flatten":
            flatten = True
            continue
        if kind not in ("dense", "conv"):
            entry.fail("type", f"unknown layer type '{kind}' (netx would skip it silently)")
        source_shape = layers[-1].output_shape if layers else None
        if kind == "dense":
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
            if entry.has("delay") and np.any(entry.array("delay") != 0):
                entry.fail("delay", "synaptic delays have no deployable-network equivalent")
            if not weight.any():
                entry.fail("weight", "all weights are 0: netx's optimize_weight_bits fails on it (OverflowError)")
            bits = input_message_bits if not layers else 0
            try:
                weight, num_weight_bits, weight_exp, lossy = netx_dense_weights(weight, bits)
            except UserError as exc:
                entry.fail("weight", str(exc))
            if lossy:
                warnings.warn(f"{entry.where('weight')}: netx's optimize_weight_bits does not keep these weights: Lava "
                              "computes with different ones (LOIHI_FIXED_POINT.md §6), and so does the imported layer",
                              stacklevel=3)
            conv = None
            output_shape: tuple[int, ...] = (out_features,)
        else:
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
            weight_exp = 0
        flatten = False
        neuron = _neuron(entry, kind)
        readout = entry.index == last_neuron_index and neuron["vth"] >= loihi.NEVER_FIRES_VTH
        if neuron["vth"] > loihi.THRESHOLD_RANGE[1] and not readout:
            entry.fail("neuron/vThMant", f"is {neuron['vth']}: the layer can never fire; only the last layer may be "
                                         "such a (non-spiking) readout")
        name = entry.text("name") if entry.has("name") else f"{kind}{entry.index}"
        if name in names or name == INPUT:
            name = f"{kind}{entry.index}"
        names.add(name)
        layers.append(Layer(
            name=name, sources=[previous], weight=weight, weight_exp=weight_exp,
            bias_mant=_bias(entry, kind, output_shape), bias_exp=6,
            threshold_schedule=np.zeros(0, np.int64) if readout else np.array([neuron["vth"]]),
            current_decay=neuron["du"], voltage_decay=neuron["dv"], spiking=not readout,
            input_message_bits=input_message_bits if previous == INPUT else 0, scale=1.0, kind=kind, conv=conv,
            num_weight_bits=num_weight_bits, neuron="readout" if readout else "cuba_lif"))
        previous = name
    if not layers:
        raise UserError(f"{entries[0].origin if entries else 'netx file'}: no dense or conv layer to import")
    return layers, shape, flatten


def _import(path: Path, *, timesteps: int | None, input_bits: int | None,
            input_shape: tuple[int, ...] | None) -> DeployableNetwork:
    """T and the input bits default to the file's run attributes (read_netx)."""
    return read_netx(path, input_bits, timesteps=timesteps, input_shape=input_shape)


register_importer(Importer("netx", is_hdf5, _import, "a lava-dl netx HDF5 file"))
