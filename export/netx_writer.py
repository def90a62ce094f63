"""Writer of lava-dl netx HDF5 files (``lava.lib.dl.netx.hdf5.Network`` loads them; the reader is
export/netx.py).

netx describes each layer with float arrays of integer values and computes
the weight exponent itself on load (``optimize_weight_bits``), with bias_exp
fixed at 6 and one threshold per layer. So the writer needs, per layer:

* weight_exp == 0 (netx has no field for a shift of the synaptic sum);
* integer weights in [-256, 254] (mixed) or [0, 255] (excitatory), with at least
  one positive weight: netx's own rescaling is then exact (docs/loihi_arithmetic.md, netx files);
  an all-non-positive matrix would hit netx's lossy power-of-two corner;
* bias_exp == 6;
* one threshold per layer: a schedule is collapsed to its per-layer value
  (``per_layer_thresholds``), which the export report states;
* a chain: every layer reads exactly the previous one (no residual ADD);
  a dense layer after a conv gets a netx 'flatten' entry ((C, H, W) order).
* synaptic delays up to 62 (netx clips larger ones) are written per synapse, a dense entry's
  ``delay`` (out, in); a recurrent layer (``weight_rec``) is refused.

The readout becomes a CUBA layer with vThMant = 2**17 (never fires; netx's own
value for a missing neuron), iDecay = du + 1 = 4096, vDecay = dv = 0.
Input: a layer of type 'input' with the input shape; the first dense layer
receives graded spikes (pass ``input_message_bits`` to ``netx.hdf5.Network``,
recorded in the manifest). Each layer group also holds its ``name`` (netx
ignores it; the reader uses it).

The layout follows lava-dl's own block exporters (lava/lib/dl/slayer/block/base.py):
``type`` an (1,) 'S10' array, a 'flatten' entry with its shape, the neuron's ``device_params``
(``type`` a plain string). Root attributes (:data:`NETX_RUN_ATTRS`, ignored by lava-dl) hold what
a run needs and the layer groups do not: the input encoding (its quantum), T, netx's
reset_interval and the source checkpoint's SHA-256, so the file alone reproduces the network.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import atomic_file
from dsatgo_deploy.network import DeployableNetwork, Layer
from dsatgo_deploy.neurons.cuba_lif import CubaLIF

from .thresholds import one_threshold_per_layer


def per_layer_thresholds(net: DeployableNetwork) -> dict[str, int]:
    """The single threshold mantissa written for each spiking layer (first value of a
    collapsed schedule, else the rounded mean of the schedule)."""
    return {layer.name: int(round(one_threshold_per_layer(layer.threshold_schedule)))
            for layer in net.layers if layer.spiking}


def check_netx_expressible(net: DeployableNetwork) -> None:
    """Raise UserError naming the layer and field netx cannot represent."""
    previous = "input"
    for layer in net.layers:
        if not isinstance(layer.neuron_kind, CubaLIF):
            raise UserError(f"layer '{layer.name}': field 'neuron': netx holds CUBA LIF neurons, not {layer.neuron_name}")
        if layer.weight_exp != 0:
            raise UserError(f"layer '{layer.name}': field 'weight_exp' = {layer.weight_exp}: netx cannot express a "
                            "weight exponent (it derives one from the weights)")
        if layer.bias_exp != 6:
            raise UserError(f"layer '{layer.name}': field 'bias_exp' = {layer.bias_exp}: netx fixes bias_exp at 6")
        if layer.weight.max() <= 0:
            raise UserError(f"layer '{layer.name}': field 'weight': no positive weight; netx's weight rescaling "
                            "is lossy for such a matrix")
        if layer.sources != [previous]:
            raise UserError(f"layer '{layer.name}': field 'sources': netx files are chains, but it reads "
                            f"{layer.sources} instead of {previous!r}")
        _check_netx_delay_and_recurrence(layer)
        previous = layer.name


def _check_netx_delay_and_recurrence(layer: Layer) -> None:
    """Delays up to netx's clip (62) are written as netx's per-synapse ``delay``; a recurrent layer is refused
    (netx re-optimizes [weight | weight_rec] as one matrix, which our writer does not check)."""
    from dsatgo_deploy.loihi_sdn import NETX_MAX_DELAY

    if layer.max_delay > NETX_MAX_DELAY:
        raise UserError(f"layer '{layer.name}': field 'delay': {layer.max_delay} exceeds {NETX_MAX_DELAY}, which netx "
                        "clips delays to")
    if layer.weight_rec is not None:
        raise UserError(f"layer '{layer.name}': field 'weight_rec': the netx target does not write recurrent blocks")


#: Root attributes of our netx files: what a run needs that netx's layer groups do not hold
#: (lava-dl's loaders ignore attributes; :func:`read_netx` uses them).
NETX_RUN_ATTRS = ("dsatgo_input_encoding", "dsatgo_timesteps", "dsatgo_reset_interval", "dsatgo_input_bits",
                  "dsatgo_input_quantum", "dsatgo_source_sha256")


def _netx_type(group, name: str) -> None:
    """A layer type as lava-dl's block exporters write it: shape (1,), 'S10'."""
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def write_netx(net: DeployableNetwork, path: str | os.PathLike,
               thresholds: dict[str, int] | None = None, source_sha256: str | None = None) -> dict[str, int]:
    """Write ``net`` as a netx HDF5 file, atomically and byte-reproducibly (no timestamps); return the
    per-layer thresholds used (``thresholds`` when given, e.g. calibrated ones, else
    :func:`per_layer_thresholds`). The run's input encoding, T and the source checkpoint's SHA-256
    go in root attributes (:data:`NETX_RUN_ATTRS`)."""
    import json

    import h5py

    check_netx_expressible(net)
    thresholds = dict(thresholds) if thresholds is not None else per_layer_thresholds(net)
    with atomic_file(path, "w+b") as handle:  # h5py reads back what it writes
        # h5py datasets default to track_times=False: no creation times, so the same network
        # always gives the same bytes
        with h5py.File(handle, "w") as h5:
            encoding = net.input_encoding
            h5.attrs["dsatgo_input_encoding"] = json.dumps(dataclasses.asdict(encoding))
            h5.attrs["dsatgo_timesteps"] = net.timesteps
            h5.attrs["dsatgo_reset_interval"] = net.timesteps  # netx's reset_interval: one sample
            h5.attrs["dsatgo_input_bits"] = encoding.bits
            h5.attrs["dsatgo_input_quantum"] = encoding.step
            if source_sha256:
                h5.attrs["dsatgo_source_sha256"] = source_sha256
            layers = h5.create_group("layer")
            entry = layers.create_group("0")
            _netx_type(entry, "input")
            # netx reverses stored shapes to its (x, y, c) order: store (C, H, W) as torch has it.
            entry.create_dataset("shape", data=np.array(net.input_shape, dtype=np.int64))
            index = 1
            previous_shape = net.input_shape
            for layer in net.layers:
                if layer.kind == "dense" and len(previous_shape) > 1:
                    # netx flattens (x, y, c) ports as (c, y, x): torch's (C, H, W) order; the shape
                    # as lava-dl's Flatten block writes it
                    flat = layers.create_group(str(index))
                    _netx_type(flat, "flatten")
                    flat.create_dataset("shape", data=np.array([int(np.prod(previous_shape)), 1, 1], dtype=np.int64))
                    index += 1
                _write_netx_layer(layers.create_group(str(index)), layer,
                                  thresholds[layer.name] if layer.spiking else loihi.NEVER_FIRES_VTH)
                index += 1
                previous_shape = layer.output_shape
    return thresholds


#: gzip level 1 with byte shuffling: most of level 9's size in a fraction of its time.
NETX_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def _write_netx_layer(group, layer: Layer, vth: int) -> None:
    """One dense or conv layer group, with its CUBA neuron, as lava-dl's blocks export them."""
    group.create_dataset("name", data=np.array([layer.name.encode("utf-8")]))
    group.create_dataset("shape", data=np.array(layer.output_shape, dtype=np.int64))
    # float32, as lava-dl's own files hold them: exact for these integers (|w| <= 2**8, |bias| < 2**13),
    # half float64's size; the weights gzip-compressed (h5py and so netx read that transparently).
    group.create_dataset("weight", data=layer.weight.astype(np.float32), **NETX_COMPRESSION)
    group.create_dataset("bias", data=layer.bias_mant.astype(np.float32))
    if layer.kind == "conv":
        geometry = layer.conv
        _netx_type(group, "conv")
        group.create_dataset("inChannels", data=layer.weight.shape[1])
        group.create_dataset("outChannels", data=layer.weight.shape[0])
        group.create_dataset("kernelSize", data=np.array(layer.weight.shape[2:], dtype=np.int64))
        # (y, x) order, as torch; netx reverses them to (x, y)
        group.create_dataset("stride", data=np.array(geometry.stride, dtype=np.int64))
        group.create_dataset("padding", data=np.array(geometry.padding, dtype=np.int64))
        group.create_dataset("dilation", data=np.array(geometry.dilation, dtype=np.int64))
        group.create_dataset("groups", data=1)
    else:
        _netx_type(group, "dense")
        group.create_dataset("inFeatures", data=layer.input_size)
        group.create_dataset("outFeatures", data=layer.num_neurons)
        if layer.delay is not None:  # per synapse (out, in), as netx's create_dense takes it
            group.create_dataset("delay", data=layer.delay.astype(np.float64))
    # lava-dl's CUBA neuron.device_params, key for key ('type' a plain string)
    neuron = {"type": "CUBA", "iDecay": layer.current_decay + 1, "vDecay": layer.voltage_decay, "vThMant": vth,
              "refDelay": 1, "gradedSpike": False}
    for key, value in neuron.items():
        group.create_dataset(f"neuron/{key}", data=value)
