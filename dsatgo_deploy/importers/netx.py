"""Importer of lava-dl netx HDF5 files: a netx file becomes a DeployableNetwork.

Reader (:func:`read_netx`): any netx file of CUBA dense/conv layers (lava-dl's
own ``export_hdf5`` of slayer blocks, or ours) becomes a DeployableNetwork that
computes what Lava computes when netx loads the file
(docs/loihi_arithmetic.md, netx files), as a chain ``input -> layer -> layer ...``:

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
* neuron: CUBA (or LOIHI): ``du = iDecay - 1`` (so -1 for iDecay 0), ``dv = vDecay``,
  ``vth = vThMant``, ``bias_mant = int(bias)`` with ``bias_exp = 6``; bias per
  neuron or per channel (conv: netx takes (X, Y, C) per neuron or (C,));
  a dense layer without a neuron gets netx's default (iDecay 0, vDecay 4096,
  vThMant 2**17). A last layer with vThMant >= 2**17 can never fire and becomes the
  non-spiking readout; otherwise the last layer spikes and the network's output
  is its spike counts. ``refDelay``, ``gradedSpike`` and ``messageBits`` change
  nothing for LIF outputs (0/1 spikes). SDNN: a relu ``sigma_delta`` (vth = vThMant, bias_exp 6 as
  netx's spike_exp), or the ``sigma`` readout for a ``sigma_output`` neuron (last layer only), sending
  graded messages of ``messageBits`` bits (netx's default 16);
* an input layer with a neuron (netx's Input block): an ``identity`` layer whose neuron receives the
  input one to one; a LIF one is driven by its bias (input encoding ``bias``: each sample's values are
  its bias mantissa, as lava-dl's tests set ``in_layer.neuron.bias_mant``) unless input bits are given,
  an SDNN one is a ``delta`` encoder fed graded values (signed, step 1, 16 bits by default);
* ``flatten`` entries: a dense layer after a conv reads it in (C, H, W) order;
* input: the 'input' layer's shape (torch's (C, H, W) or (n,)); without one the
  first dense layer's fan-in, or ``input_shape`` for a first conv layer. The
  input is binary spikes (``input_message_bits = 0``, InputEncoding.spikes()) or
  graded payloads of ``input_message_bits`` bits;
* delays, recurrence, average (dsatgo_deploy/importers/netx_temporal.py, docs/netx_kinds.md): a
  dense entry's ``delay`` becomes ``Layer.delay`` (expanded and clipped to 62 as netx does);
  ``dense_rec`` a dense layer with ``weight_rec`` (netx's joint weight optimization); the
  ``average`` block netx does not build, a readout counting each group's spikes;
* refused with a UserError naming the layer index and type or field: layer types
  netx does not implement (pool, concat, convT, unpool) or that the
  format lacks (dense_comp, unknown types), neurons other than CUBA,
  LOIHI and relu SDNN, per-neuron decays or thresholds, fields outside what Loihi
  holds (a LIF bias beyond 13 bits: docs/netx_kinds.md), a recurrent block with delays, conv groups.

lava-dl's netx files have no timestep count: pass ``timesteps`` (T, the steps per sample,
netx's ``reset_interval``); files our writer made carry it, and the input encoding
(its quantum), in root attributes, which the reader uses (export/netx_writer.py). netx run with ``reset_interval = T, reset_offset = 1``
resets every layer when a sample reaches it; the Lava backend streams samples
the same way, so an imported network runs in our reference, our Lava graph and
netx's own with the same spikes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dsatgo_deploy import limits
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork, InputEncoding, validate

from .netx_layers import NETX_SDNN_MESSAGE_BITS, _Entry, _read_layers
from .netx_temporal import check_average_range
from .netx_weights import netx_dense_weights, optimize_weight_bits  # noqa: F401  (this module's API)
from .registry import Importer, register_importer

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
            input_neuron = _input_neuron_type(h5)
            delta_input = input_neuron == "SDNN"
            # lava-dl drives a LIF input neuron by its bias (in_layer.neuron.bias_mant = the image)
            bias_input = input_neuron in ("CUBA", "LOIHI") and input_message_bits is None and not run
            if input_message_bits is None:
                input_message_bits = (run["input_encoding"].bits if run else
                                      NETX_SDNN_MESSAGE_BITS if delta_input else 0)
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
    if input_encoding is None and bias_input:
        input_encoding = InputEncoding.bias()
    if input_encoding is None and delta_input and input_message_bits > 0:
        # what lava-dl's SDNN tests send into the Delta's a_in: the sample's integers themselves
        input_encoding = InputEncoding(kind="graded", bits=input_message_bits, step=1.0, signed=True)
    if input_encoding is None:
        input_encoding = (InputEncoding.spikes() if input_message_bits == 0 else
                          InputEncoding(kind="graded", bits=input_message_bits, step=1.0 / ((1 << input_message_bits) - 1)))
    if timesteps is None:
        timesteps = run.get("timesteps")
        if timesteps is None:
            raise UserError(f"{origin}: a lava-dl netx file holds no timestep count: pass --timesteps T")
    check_average_range(entries, layers, timesteps, origin)
    provenance = {"imported_from": "lava-dl netx", "file": origin, "input_message_bits": int(input_message_bits)}
    if run.get("source_sha256"):
        provenance["source_sha256"] = run["source_sha256"]
    net = DeployableNetwork(timesteps=timesteps, input_shape=shape, input_encoding=input_encoding, layers=layers,
                            provenance=provenance)
    validate(net, origin)
    return net


def _input_neuron_type(h5) -> str | None:
    """The neuron type of the file's input layer ("SDNN": netx builds a Delta encoder; "CUBA", "LOIHI": a LIF),
    None without an input layer with a neuron."""
    try:
        first = h5["layer"]["0"]
        if first["type"][0] not in (b"input", "input"):
            return None
        kind = first["neuron"]["type"][()]
        return kind.decode() if isinstance(kind, bytes) else str(kind)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _check_declared_sizes(h5, origin: str) -> None:
    """Refuse a file whose datasets declare more than the memory budget, before any is read."""
    total = 0

    def add(_name: str, item) -> None:
        nonlocal total
        if hasattr(item, "dtype") and hasattr(item, "shape") and item.shape is not None:
            total += int(np.prod(item.shape, dtype=object)) * max(int(item.dtype.itemsize), 1)

    h5.visititems(add)
    limits.check_memory(origin, "its datasets", total)


def _import(path: Path, *, timesteps: int | None, input_bits: int | None,
            input_shape: tuple[int, ...] | None, **_other_formats) -> DeployableNetwork:
    """T and the input bits default to the file's run attributes (read_netx); options of other formats
    (a NIR file's dt) say nothing about a netx file."""
    return read_netx(path, input_bits, timesteps=timesteps, input_shape=input_shape)


def is_netx_candidate(path: str | os.PathLike) -> bool:
    """Any HDF5 file but a NIR file (nir.py): read_netx then says what a file that is not netx lacks."""
    from .nir import is_nir

    return is_hdf5(path) and not is_nir(path)


register_importer(Importer("netx", is_netx_candidate, _import, "a lava-dl netx HDF5 file"))
