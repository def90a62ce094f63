"""Operation counts of a deployable network, from its spikes (hardware_sim/energy.py prices them).

Counting is exact (integers). Layer L has weights W, sources S (spiking layers,
or the input, whose graded payloads direct encoding repeats every timestep) and
a synapse ``syn`` (dense: W (out, in); conv: W (C_out, C_in, KH, KW) with the
layer's stride, padding and dilation). A *connection* is a pair (input position
j, output neuron i) that the synapse joins: every pair for dense; for conv, a
kernel tap whose input position lies inside the image (taps over zero padding
are not connections, so border neurons have fewer). A *synapse* is a connection
whose weight is non-zero. With m_S(t) the messages of source S and
``[.]`` the 0/1 indicator, per sample and timestep t:

    events_L,i(t) = sum_S sum_j [m_S,j(t) != 0] [synapse j -> i]     = syn(|W| != 0, [m_S(t) != 0]) summed over S
    synops_L(t)   = sum_i events_L,i(t)     one op per synapse reached by a non-zero message, per source
    spikes_L(t)   = sum_i s_i(t)                                    (0 for the readout)
    updates_L(t)  = n_L                                             every neuron, every step
    active_L(t)   = #{i : s_i(t) or events_L,i(t) > 0};  inactive_L(t) = n_L - active_L(t)
    macs_L        = connections of L                                equivalent ANN, once per inference

Graded messages (sigma-delta layers) count as events where non-zero, whatever their value. An
identity layer has no synapse: each non-zero message of its source is one event at its neuron and
no synaptic op; a layer the input's bias drives (bias input) receives no messages at all.

For conv the event count is the convolution of the 0/1 message map with the 0/1
kernel indicator ``|W| != 0`` (same stride, padding, dilation), so border effects
are exact. A layer with several sources (a folded SEW residual ADD) receives each
source's spikes through its weights: Lava runs one synapse per source, and two
spikes reaching the same input position are two sets of synaptic ops. The ANN
adds its branches before the synapse, so its MACs are counted once. ANN MACs are
those of the deployed layers: pooling folded into a following synapse makes them
larger than a pool-then-multiply ANN would do. "Active" means the neuron received
at least one synaptic event (even if the events cancel) or fired at t.
Per-inference figures are sums over t, averaged over samples.

Delays and recurrence (format version 3): a delayed synapse is counted at the step its message is sent
(the core reads the synapse then and adds into the accumulator slot d steps ahead), so delays change
no count; a recurrent layer's own spikes of step t - 1 reach its neurons through ``weight_rec`` at step t
and count as events of step t (the spikes of the sample's last step would land after it: not counted).
Time-varying input (B, T, *input_shape) is counted step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer


@dataclass
class LayerCounts:
    """One layer's counts; arrays are (T,) int64 sums over all samples (divide by ``samples``).

    ``source`` is the first of ``sources`` (kept for readers of the single-source form)."""

    name: str
    source: str
    neurons: int
    fan_in: int
    nonzero_weights: int
    spiking: bool
    graded_input: bool
    samples: int
    spikes: np.ndarray
    synops: np.ndarray
    active_updates: np.ndarray
    ann_macs: int
    sources: tuple[str, ...] = ()
    kind: str = "dense"
    connections: int = 0  # (input position, output neuron) pairs the synapse joins
    synapses: int = 0  # connections with a non-zero weight: synops of one all-ones message per source
    depth: int = 1  # synapses between the input and this layer

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = (self.source,)

    @property
    def timesteps(self) -> int:
        return int(self.synops.shape[0])

    @property
    def updates(self) -> np.ndarray:
        """Neuron updates per timestep, summed over samples: n_L * samples."""
        return np.full(self.timesteps, self.neurons * self.samples, dtype=np.int64)

    @property
    def inactive_updates(self) -> np.ndarray:
        return self.updates - self.active_updates

    def per_inference(self, field: str) -> float:
        """Mean over samples of the sum over timesteps of ``field`` (e.g. 'synops')."""
        return float(getattr(self, field).sum()) / self.samples

    def per_timestep(self, field: str) -> list[float]:
        return (getattr(self, field) / self.samples).tolist()


@dataclass
class OperationCounts:
    layers: list[LayerCounts]
    samples: int
    timesteps: int
    input_payloads_known: bool

    @property
    def depth(self) -> int:
        """Synaptic depth of the readout: the extra wall steps of one inference on Loihi."""
        return max((lc.depth for lc in self.layers), default=0)


def _events(layer: Layer, mask: torch.Tensor, messages: np.ndarray) -> np.ndarray:
    """Synaptic events per output neuron, (N, n_out) float64, of 0/1 messages (N, input_size).

    Dense: [m != 0] @ [W != 0]^T; conv: conv2d([m != 0], [W != 0]) with the layer's
    geometry, so taps over zero padding reach nothing; identity: the messages themselves, one to one. Exact:
    integers in float64."""
    if layer.kind == "identity":
        return np.asarray(messages, dtype=np.float64).reshape(len(messages), -1)
    flat = torch.from_numpy(np.ascontiguousarray(messages, dtype=np.float64))
    if layer.kind == "conv":
        geometry = layer.conv
        out = F.conv2d(flat.reshape(len(flat), *geometry.input_shape), mask, stride=geometry.stride,
                       padding=geometry.padding, dilation=geometry.dilation)
        return out.reshape(len(flat), -1).numpy()
    return (flat @ mask.T).numpy()


def _recurrent_events(layer: Layer, spikes: np.ndarray) -> np.ndarray:
    """Events (b, steps, n) through a layer's recurrent synapse of its own spikes (b, steps, n)."""
    mask = torch.from_numpy((layer.weight_rec != 0).astype(np.float64))
    flat = torch.from_numpy(np.ascontiguousarray(spikes.reshape(-1, spikes.shape[-1]), dtype=np.float64))
    return (flat @ mask.T).numpy().reshape(spikes.shape)


def _mask(layer: Layer, nonzero: bool = True) -> torch.Tensor:
    weight = np.asarray(layer.weight)
    return torch.from_numpy((weight != 0 if nonzero else np.ones_like(weight, dtype=bool)).astype(np.float64))


def connection_counts(layer: Layer) -> tuple[int, int]:
    """(connections, synapses) of a layer: every joined (input, output) pair, and those with W != 0 (none for an
    identity layer, which has no synapse)."""
    if layer.kind == "identity":
        return 0, 0
    ones = np.ones((1, layer.input_size))
    connections = int(np.rint(_events(layer, _mask(layer, nonzero=False), ones).sum()))
    synapses = int(np.rint(_events(layer, _mask(layer), ones).sum()))
    return connections, synapses


def _counts_spikes(layer: Layer) -> bool:
    """Whether the layer's own spikes are counted: its neuron kind says (dsatgo_deploy.neurons)."""
    return "spikes" in layer.neuron_kind.energy_events


def spike_counts(net: DeployableNetwork, spikes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Spikes per timestep, (T,) int64 summed over samples and neurons, of every layer whose own spikes are
    counted (its neuron kind says; not a readout), from spikes (B, T, n) per layer."""
    return {layer.name: np.asarray(spikes[layer.name], dtype=bool).sum(axis=(0, 2)).astype(np.int64)
            for layer in net.layers if _counts_spikes(layer)}


def spikes_per_inference(net: DeployableNetwork, spikes: dict[str, np.ndarray]) -> dict[str, float]:
    """Per counted layer, its spikes summed over timesteps and neurons, averaged over samples."""
    samples = max((len(s) for s in spikes.values()), default=0)
    return mean_spikes(spike_counts(net, spikes), samples)


def mean_spikes(counted: dict[str, np.ndarray], samples: int) -> dict[str, float]:
    """Per layer, its spikes per timestep (T,) summed over ``samples`` samples -> spikes per inference."""
    return {name: float(counts.sum()) / max(samples, 1) for name, counts in counted.items()}


def merge_counts(parts: Sequence[OperationCounts]) -> OperationCounts:
    """The counts of the union of disjoint blocks of samples of one network (at least one part): the
    per-timestep sums add; everything else is the network's and the same in every part."""
    first = parts[0]
    layers = [replace(layer, samples=sum(p.layers[i].samples for p in parts),
                      spikes=sum(p.layers[i].spikes for p in parts), synops=sum(p.layers[i].synops for p in parts),
                      active_updates=sum(p.layers[i].active_updates for p in parts))
              for i, layer in enumerate(first.layers)]
    return OperationCounts(layers, sum(p.samples for p in parts), first.timesteps,
                           all(p.input_payloads_known for p in parts))


def count_operations(net: DeployableNetwork, spikes: dict[str, np.ndarray],
                     input_payloads: np.ndarray | None = None, chunk: int = 256) -> OperationCounts:
    """Exact operation counts (module doc) from spikes (B, T, n) of every spiking layer.

    Any engine's spikes will do (torch model, reference simulator, Lava), as long
    as they follow the network's layers and (C, H, W) neuron order.
    input_payloads: (B, *input_shape) integer payloads of the input layer, or (B, T, input_size) for
    time-varying samples (DeployableNetwork.encode_input); None assumes every payload non-zero (an upper
    bound on the input layer's synops)."""
    steps = net.timesteps
    samples = None
    for layer in net.layers:
        if not _counts_spikes(layer):
            continue
        if layer.name not in spikes:
            raise ValueError(f"spikes: layer '{layer.name}' is missing")
        shape = np.shape(spikes[layer.name])
        if len(shape) != 3 or shape[1:] != (steps, layer.num_neurons) or (samples is not None and shape[0] != samples):
            raise ValueError(f"spikes['{layer.name}']: shape {shape}, expected (B, {steps}, {layer.num_neurons})")
        samples = shape[0]
    if input_payloads is not None:
        varying = np.ndim(input_payloads) == 3 and np.shape(input_payloads)[1:] == (steps, net.input_size)
        payloads = np.asarray(input_payloads).reshape(len(input_payloads), *((steps,) if varying else ()), -1)
        if payloads.shape[-1] != net.input_size or (samples is not None and len(payloads) != samples):
            raise ValueError(f"input_payloads: shape {np.shape(input_payloads)} does not match (B, {net.input_size})")
        samples = len(payloads)
    else:
        payloads = np.ones((samples or 1, net.input_size), dtype=np.int64)
    if not samples:
        raise ValueError("count_operations needs at least one sample")
    depths = net.depths()
    counted = spike_counts(net, spikes)
    layers = []
    for layer in net.layers:
        mask = _mask(layer)
        synops = np.zeros(steps, np.int64)
        active = np.zeros(steps, np.int64)
        n_out = layer.num_neurons
        # Keep each chunk's event array (b * T, n_out) below 2**24 entries.
        rows = max(1, min(chunk, (1 << 24) // max(1, steps * n_out)))
        for start in range(0, samples, rows):
            stop = min(start + rows, samples)
            own = (np.asarray(spikes[layer.name][start:stop], dtype=bool) if _counts_spikes(layer)
                   else np.zeros((stop - start, steps, n_out), bool))
            events = np.zeros((stop - start, steps, n_out))
            for source in layer.sources:
                if source == INPUT and net.input_encoding.kind == "bias":
                    continue  # the samples set the layer's bias: no messages
                if source == INPUT and payloads.ndim == 3:  # time-varying: one payload per step
                    flat = payloads[start:stop].reshape((stop - start) * steps, -1) != 0
                    events += _events(layer, mask, flat).reshape(stop - start, steps, n_out)
                elif source == INPUT:  # the same payloads every timestep: one synapse pass
                    events += _events(layer, mask, payloads[start:stop] != 0)[:, None, :]
                else:
                    messages = np.asarray(spikes[source][start:stop], dtype=bool)
                    flat = messages.reshape((stop - start) * steps, -1)
                    events += _events(layer, mask, flat).reshape(stop - start, steps, n_out)
            if layer.weight_rec is not None:
                events[:, 1:] += _recurrent_events(layer, own[:, :-1])
            if layer.kind != "identity":  # one to one: events, but no synaptic op
                synops += np.rint(events.sum(axis=(0, 2))).astype(np.int64)
            active += ((events > 0) | own).sum(axis=(0, 2))
        own_spikes = counted.get(layer.name, np.zeros(steps, np.int64))
        connections, synapses = connection_counts(layer)
        layers.append(LayerCounts(layer.name, layer.sources[0], n_out, layer.fan_in, int(mask.sum()),
                                  layer.spiking, layer.sources == [INPUT] or layer.input_message_bits > 0,
                                  samples, own_spikes, synops, active,
                                  connections, sources=tuple(layer.sources), kind=layer.kind,
                                  connections=connections, synapses=synapses, depth=depths[layer.name]))
    return OperationCounts(layers, samples, steps, input_payloads is not None)
