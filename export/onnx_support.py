"""What the integer ONNX step graph (export/onnx_writer.py) holds beyond Dense and Conv synapses, and what it
refuses before any node is built.

Holds (bit-exact to hardware_sim/reference.py, which defines them):

* an ``identity`` layer: no synapse, its neuron receives its one source's messages one to one,
  ``a(t) = m_src(t)`` (the input's payloads as they are; a layer's spikes as 0/1);
* bias input (InputEncoding kind ``"bias"``, lava-dl's input LIF): each sample's payloads are the bias
  mantissas of the identity layer reading the input, so the graph computes that layer's bias per sample,
  ``wrap32(x << bias_exp)``, and its synaptic input is 0.

Refuses, one line naming the network's file, the layer and the field (the graph is one timestep, state in,
state out: each layer's neuron state, no messages of earlier steps):

* ``delay`` and ``weight_rec``: synaptic delays and recurrent synapses need messages of earlier steps;
* a neuron kind without an ONNX step (``neuron``; every built-in kind has one).
"""

from __future__ import annotations

from typing import Any

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.neurons import NeuronKind


def network_origin(net: DeployableNetwork) -> str:
    """The file the network came from, as its provenance records it ("network" when it records none)."""
    provenance = net.provenance or {}
    return str(provenance.get("file") or provenance.get("source_checkpoint") or "network")


def check_onnx_expressible(net: DeployableNetwork) -> None:
    """Raise UserError, naming the file, the layer and the field, for what the integer step graph cannot hold."""
    origin = network_origin(net)
    for layer in net.layers:
        for field_name in ("delay", "weight_rec"):  # one timestep per call: no buffers of past steps
            if getattr(layer, field_name) is not None:
                raise UserError(f"{origin}: layer '{layer.name}': field '{field_name}': the onnx target has no "
                                "synaptic delays or recurrent synapses")
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
