"""The Lava process graph of a deployable network (its layout is drawn in lava_backend.py's doc): synapses,
relays, neurons, the input ring buffer and the recorders, in Lava's (X, Y, C) layout; lava_backend.py runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import types

import numpy as np
import scipy.sparse

from dsatgo_deploy import loihi
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer


@dataclass
class _Graph:
    entry: object  # one process of the graph: run()/stop() on it drive them all
    recordings: dict  # spiking layer name -> .npy file of its spikes, (total, *Lava shape) bool
    relays: dict  # (node, k) -> OutPort of node's spikes delayed by k steps (k-th relay of its chain)
    monitor: object  # Monitor of the readout's v (a sigma output: its sigma); None without a readout
    readout_name: str | None  # Lava name of the readout's neuron process (the monitor's key)
    readout_var: str | None  # the readout kind's Var the monitor probes
    shapes: dict  # node name -> (C, H, W) or (n,) shape in the format
    depths: dict  # node name -> depth (wall-step latency)
    total_steps: int


# --------------------------------------------------------------------------- layouts and latency


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A node's shape in Lava: (C, H, W) -> (X, Y, C) = (W, H, C); any other shape -> (n,)."""
    return tuple(int(d) for d in shape[::-1]) if len(shape) == 3 else (int(np.prod(shape)),)


def _torch_to_lava(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, n) in torch's (C, H, W) flatten order -> (N, *lava_shape(shape))."""
    if len(shape) == 3:
        return rows.reshape(len(rows), *shape).transpose(0, 3, 2, 1)
    return rows.reshape(len(rows), -1)


def _lava_to_torch(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, *lava_shape(shape)) -> (N, n) in torch's (C, H, W) flatten order."""
    if len(shape) == 3:
        rows = rows.transpose(0, 3, 2, 1)
    return rows.reshape(len(rows), -1)


# --------------------------------------------------------------------------- processes


def float_parameters(layer: Layer, steps: int) -> dict:
    """The layer's integers mapped to Lava's floating_pt models (module doc): float weights (format
    layout), du, dv, bias per neuron ((C, H, W) order) and the threshold schedule (T,); a readout gets
    vth = inf."""
    if layer.kind == "dense":
        weight = layer.weight.astype(np.float64) * 2.0 ** layer.weight_exp
    else:
        weight = layer.weight.astype(np.float64)
    bias = layer.bias_per_neuron.astype(np.float64) * 2.0 ** layer.bias_exp / (1 << loihi.ACTIVATION_SHIFT)
    schedule = (np.array([layer.threshold_at(t) for t in range(steps)], dtype=np.float64) if layer.spiking
                else np.full(steps, np.inf))
    return dict(weight=weight, du=(layer.current_decay + loihi.CURRENT_DECAY_OFFSET) / loihi.DECAY_UNITY,
                dv=layer.voltage_decay / loihi.DECAY_UNITY, bias=bias, vth_schedule=schedule)


def _dense_synapse(lava, layer: Layer, name: str, floating: bool = False):
    """The layer's Dense: integer weights (out, in) as they are, weight exponent, weight bits, message
    bits; floating point: weights * 2**weight_exp."""
    if layer.delay is not None:
        return _delay_dense_synapse(lava, layer, name, floating)
    if floating:
        return lava.Dense(weights=float_parameters(layer, 1)["weight"], num_message_bits=layer.input_message_bits,
                          name=name)
    return lava.Dense(weights=layer.weight.astype(np.int32), weight_exp=layer.weight_exp,
                      num_weight_bits=layer.num_weight_bits, num_message_bits=layer.input_message_bits, name=name)


def _delay_dense_synapse(lava, layer: Layer, name: str, floating: bool = False):
    """A layer with synaptic delays: Lava's DelayDense (its weights, delays (out, in), weight exponent and bits),
    which delivers the message of wall step w - 1 - d at w: d steps more than a Dense."""
    delays = np.ascontiguousarray(layer.delay, dtype=int)  # DelayDense checks for the platform int
    if floating:
        return lava.DelayDense(weights=float_parameters(layer, 1)["weight"], delays=delays,
                               num_message_bits=layer.input_message_bits, name=name)
    return lava.DelayDense(weights=layer.weight.astype(np.int32), delays=delays, weight_exp=layer.weight_exp,
                           num_weight_bits=layer.num_weight_bits, num_message_bits=layer.input_message_bits, name=name)


def _recurrent_synapse(lava, layer: Layer, neuron, floating: bool = False) -> None:
    """A layer's recurrent Dense (``weight_rec``): from its own spikes back into its own InPort, one step late,
    with the layer's weight exponent and bits (netx's RecurrentDense)."""
    if floating:
        synapse = lava.Dense(weights=layer.weight_rec.astype(np.float64) * 2.0 ** layer.weight_exp,
                             name=f"{layer.name}_recurrent")
    else:
        synapse = lava.Dense(weights=layer.weight_rec.astype(np.int32), weight_exp=layer.weight_exp,
                             num_weight_bits=layer.num_weight_bits, name=f"{layer.name}_recurrent")
    neuron.s_out.connect(synapse.s_in)
    synapse.a_out.connect(neuron.a_in)


def _conv_synapse(lava, layer: Layer, name: str, floating: bool = False):
    """The layer's Conv as netx builds it: torch (out, in, kh, kw) -> (out, kx, ky, in), spatially
    flipped; stride, padding, dilation and input shape x-first. No exponent (Lava's Conv ignores it)."""
    geometry = layer.conv
    weight = np.ascontiguousarray(layer.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1),
                                  dtype=np.float64 if floating else np.int32)
    return lava.Conv(weight=weight, input_shape=lava_shape(geometry.input_shape), stride=geometry.stride[::-1],
                     padding=geometry.padding[::-1], dilation=geometry.dilation[::-1], groups=1,
                     num_message_bits=layer.input_message_bits, name=name)


def _relay(lava, upstream, shape: tuple[int, ...], name: str, floating: bool = False):
    """One step of delay for the 0/1 spikes of a node of ``shape``, as Loihi would do it: one-to-one
    synapses (Sparse identity, weight 1: excitatory, survives Lava's clip and truncation) into relay LIF
    neurons with no memory (du = 4095, dv = 4096: u and v decay fully every step) and threshold 0. A spike
    gives a = 1, u = v = 64 > 0: it fires (v reset to 0); no spike gives u = v = 0: silent. So the relay
    repeats its input exactly, one step later (the synapse's step; the neuron adds none). ``upstream``
    (Lava layout) is connected to it; returns the relay neurons' OutPort, in the same layout."""
    dims = lava_shape(shape)
    size = int(np.prod(dims))
    synapse = lava.Sparse(weights=scipy.sparse.identity(size, dtype=np.int32, format="csr"), name=f"{name}_synapse")
    if floating:  # float LIF: u = a, v = u, spike v > 0
        neurons = lava.LIF(shape=dims, du=1.0, dv=1.0, vth=0.0, name=f"{name}_neurons")
    else:
        neurons = lava.LIF(shape=dims, du=4095, dv=4096, vth=0, name=f"{name}_neurons")
    (upstream.flatten() if len(dims) > 1 else upstream).connect(synapse.s_in)
    (synapse.a_out.reshape(dims) if len(dims) > 1 else synapse.a_out).connect(neurons.a_in)
    return neurons.s_out


def _neurons(lava, layer: Layer, steps: int, depth: int, floating: bool = False):
    """The layer's neuron process in Lava layout, reset when a sample reaches it (offset 1 + depth); the
    neuron kind builds it (dsatgo_deploy.neurons)."""
    dims = lava_shape(layer.output_shape)
    common = dict(shape=dims, reset_offset=(1 + depth) % steps, name=f"{layer.name}_neurons")
    if floating:
        params = float_parameters(layer, steps)
        bias = _torch_to_lava(params["bias"][None], layer.output_shape)[0]
        common.update(du=params["du"], dv=params["dv"], bias_mant=np.ascontiguousarray(bias), bias_exp=0)
    else:
        # Per neuron, channels last for conv (a per-channel bias broadcast over X and Y).
        bias = _torch_to_lava(layer.bias_per_neuron[None], layer.output_shape)[0]
        common.update(du=layer.current_decay, dv=layer.voltage_decay,
                      bias_mant=np.ascontiguousarray(bias, dtype=np.int32), bias_exp=layer.bias_exp)
    return layer.neuron_kind.lava_process(lava, layer, steps, common, floating)


def _build(net: DeployableNetwork, payloads: np.ndarray, lava, workdir: Path, floating: bool = False) -> _Graph:
    """The whole Lava graph for ``net`` and these samples (payloads (B, input_size), or (B, T, input_size)
    when time-varying, torch order); spike recordings go to files in ``workdir``."""
    steps, samples = net.timesteps, len(payloads)
    depths = net.depths()
    shapes = {INPUT: net.input_shape, **{layer.name: layer.output_shape for layer in net.layers}}
    total = samples * steps + max(depths.values())
    # Direct encoding: each sample's payload repeated T times (time-varying: its T rows), then zeros to
    # flush the pipeline.
    rows = np.zeros((total, net.input_size), dtype=np.int32)
    if payloads.ndim == 3:
        rows[: samples * steps] = payloads.reshape(samples * steps, -1).astype(np.int32)
    else:
        rows[: samples * steps] = np.repeat(payloads.astype(np.int32), steps, axis=0)
    ring = lava.Source(data=np.ascontiguousarray(np.moveaxis(_torch_to_lava(rows, net.input_shape), 0, -1)))
    outputs = {INPUT: ring.s_out}
    entry = ring
    relays: dict[tuple[str, int], object] = {}

    def delayed(node: str, extra: int):
        """``node``'s output port, ``extra`` steps later (a shared chain of relays)."""
        if extra == 0:
            return outputs[node]
        if (node, extra) not in relays:
            # Only spikes are relayed: the graded input is never summed with other sources, so it never waits.
            relays[node, extra] = _relay(lava, delayed(node, extra - 1), shapes[node], f"{node}_delay{extra}",
                                         floating)
        return relays[node, extra]

    recordings, monitor, readout = {}, None, None
    for layer in net.layers:
        depth = depths[layer.name]
        bias_input = net.input_encoding.kind == "bias" and layer.sources == [INPUT]
        neuron = _neurons(_bias_input(lava, payloads, net) if bias_input else lava, layer, steps, depth, floating)
        make_synapse = _conv_synapse if layer.kind == "conv" else _dense_synapse
        if bias_input:  # nothing reaches its a_in: the samples set its bias, and it drives the graph
            entry = neuron
        elif layer.kind == "identity":  # no synapse: the source's messages reach the neuron one to one
            outputs[layer.sources[0]].connect(neuron.a_in)
        for source in layer.sources if layer.kind != "identity" else ():
            synapse = make_synapse(lava, layer, f"{layer.name}_{layer.kind}_from_{source}", floating)
            port = delayed(source, depth - layer.latency - depths[source])
            if layer.kind == "dense" and len(lava_shape(shapes[source])) == 3:
                port = port.transpose([2, 1, 0]).flatten()  # (X, Y, C) -> (C, Y, X) -> torch's flatten order
            port.connect(synapse.s_in)
            synapse.a_out.connect(neuron.a_in)
        if layer.weight_rec is not None:
            _recurrent_synapse(lava, layer, neuron, floating)
        if layer.spiking:
            dims = lava_shape(layer.output_shape)
            path = workdir / f"spikes_{len(recordings)}.npy"
            dtype = np.int32 if layer.message_bits else bool  # graded messages keep their values
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(total, *dims)).flush()
            recorder = lava.SpikeRecorder(shape=dims, path=str(path), num_steps=total, name=f"{layer.name}_recorder")
            neuron.s_out.connect(recorder.a_in)
            recordings[layer.name] = path
        else:
            monitor, readout = lava.Monitor(), neuron.name
            monitor.probe(getattr(neuron, layer.neuron_kind.readout_var), total)
        outputs[layer.name] = neuron.s_out
    return _Graph(entry, recordings, relays, monitor, readout, layers_readout_var(net), shapes, depths, total)


def _bias_input(lava, payloads: np.ndarray, net: DeployableNetwork):
    """``lava`` whose ScheduledLIF is a BiasInputLIF holding every sample's bias mantissas (Lava layout): the
    process the kind builds for a layer the input's bias drives."""
    table = np.ascontiguousarray(_torch_to_lava(payloads, net.input_shape), dtype=np.int32)

    def build(**kwargs):
        return lava.BiasInputLIF(bias_table=table, **kwargs)

    return types.SimpleNamespace(**{**vars(lava), "ScheduledLIF": build})


def layers_readout_var(net: DeployableNetwork) -> str | None:
    """The Var the readout's Monitor probes (its kind's readout_var); None without a readout."""
    return net.output.neuron_kind.readout_var if net.has_readout else None
