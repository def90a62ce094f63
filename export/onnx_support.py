"""What the integer ONNX step graph (export/onnx_writer.py) holds beyond Dense and Conv synapses, and what it
refuses before any node is built.

Holds (bit-exact to hardware_sim/reference.py, which defines them):

* an ``identity`` layer: no synapse, its neuron receives its one source's messages one to one,
  ``a(t) = m_src(t)`` (the input's payloads as they are; a layer's spikes as 0/1);
* bias input (InputEncoding kind ``"bias"``, lava-dl's input LIF): each sample's payloads are the bias
  mantissas of the identity layer reading the input, so the graph computes that layer's bias per sample,
  ``wrap32(x << bias_exp)``, and its synaptic input is 0;
* synaptic delays (``delay``): the layer keeps its source's messages of the last max_delay steps as state
  (``<layer>.history``, (batch, max_delay * inputs), m(t - 1) first) and sums one masked Dense per delay;
* a recurrent synapse (``weight_rec``): the layer keeps its spikes of the step before as state (``<layer>.s``).

Every state input is zeros at t = 0 and comes back as ``<name>_next``. Refuses, one line naming the network's
file, the layer and the field:

* ``delay`` on a layer with several sources (a history is kept for one source; netx files are chains);
* a neuron kind without an ONNX step (``neuron``; every built-in kind has one).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.neurons import NeuronKind
from dsatgo_deploy.onnx_metadata import output_name


def network_origin(net: DeployableNetwork) -> str:
    """The file the network came from, as its provenance records it ("network" when it records none)."""
    provenance = net.provenance or {}
    return str(provenance.get("file") or provenance.get("source_checkpoint") or "network")


def check_onnx_expressible(net: DeployableNetwork) -> None:
    """Raise UserError, naming the file, the layer and the field, for what the integer step graph cannot hold."""
    origin = network_origin(net)
    for layer in net.layers:
        if layer.delay is not None and len(layer.sources) > 1:  # one history per layer (netx files are chains)
            raise UserError(f"{origin}: layer '{layer.name}': field 'delay': the onnx target keeps the past messages "
                            f"of one source, not of the {len(layer.sources)} this layer sums")
        kind = layer.neuron_kind
        if type(kind).onnx_step is NeuronKind.onnx_step:
            raise UserError(f"{origin}: layer '{layer.name}': field 'neuron': neuron kind {kind.name!r} has no "
                            "ONNX step: the onnx target cannot run its layers")


def identity_input(b: Any, net: DeployableNetwork, layer: Layer, produced: dict[str, str], flat_x: str
                   ) -> tuple[str, str | None]:
    """(a, bias) of an identity layer in the graph: its source's messages as int64 and None (the layer's own bias);
    under bias input, for the layer reading the input, a scalar 0 and the samples' bias ``wrap32(x << bias_exp)``."""
    (source,) = layer.sources
    if source == INPUT and net.input_encoding.kind == "bias":
        return b.i64(0), b.wrap(b.shift(flat_x, layer.bias_exp), 32)
    messages = flat_x if source == INPUT else produced[source]  # the input's payloads as they are, as the reference
    return b.cast(messages, b.TP.INT64), None


def synapse_state(layer: Layer) -> dict[str, int]:
    """The state a layer's synapse keeps between steps, {name: values per sample}: ``history``, its source's
    messages of the last max_delay steps (synaptic delays); ``s``, its own spikes of the step before (a recurrent
    synapse). Empty for the others."""
    state = {}
    if layer.delay is not None and layer.max_delay:
        state["history"] = layer.max_delay * layer.input_size
    if layer.weight_rec is not None:
        state["s"] = layer.num_neurons
    return state


def delayed_dense_input(b: Any, layer: Layer, messages: str, history: str | None,
                        dense: Callable[[str, np.ndarray, str], str]) -> tuple[str, str | None]:
    """A Dense with synaptic delays, as the reference: ``wrap32(sum over d of dense(W_d, m(t - d)))``, each delay's
    synapses (W where delay == d) summed and shifted on their own; m(t - d) for d >= 1 read from ``history``
    (m(t - 1) first; zeros before the sample). Returns (a, the next history: m(t) first, the oldest dropped)."""
    size, depth = layer.input_size, layer.max_delay
    current = b.cast(messages, b.TP.INT64)  # bool spikes as 0/1, graded payloads as they are

    def columns(start: int, stop: int) -> str:
        bounds = [b.const([value], np.int64, "slice") for value in (start, stop, 1)]
        return b.op("Slice", [history, bounds[0], bounds[1], b.const([1], np.int64, "axis"), bounds[2]])

    total = None
    for d in np.unique(layer.delay).tolist():
        past = current if d == 0 else columns((d - 1) * size, d * size)
        part = dense(past, np.where(layer.delay == d, layer.weight, 0), f"weight_t_delay{d}")
        total = part if total is None else b.add(total, part)
    if not depth:
        return b.wrap(total, 32), None
    following = current if depth == 1 else b.op("Concat", [current, columns(0, (depth - 1) * size)], axis=1)
    return b.wrap(total, 32), b.op("Identity", [following], output=output_name(layer.name, "history_next"))


def recurrent_input(b: Any, layer: Layer, a: str, spikes_before: str, dense: Callable[[str, np.ndarray, str], str]
                    ) -> str:
    """a(t) of a recurrent layer: ``wrap32(a + dense(W_rec, s(t - 1)))`` (its own spikes of the step before)."""
    return b.wrap(b.add(a, dense(spikes_before, layer.weight_rec, "weight_rec_t")), 32)
