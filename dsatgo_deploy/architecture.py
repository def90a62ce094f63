"""The architecture description a checkpoint carries, shared by train/ and export/.

A model is described by plain data (JSON-able, nothing executable), so that a
checkpoint loads with ``torch.load(weights_only=True)`` and export can read the
parameters without importing train/:

    {"kind": "mlp", "input_shape": [64], "timesteps": 4, "num_classes": 10,
     "neuron": {...train.neuron.NeuronConfig fields...},
     "layers": [{"name": "fc1", "op": "linear", "in_features": 64,
                 "out_features": 128, "bias": true, "neuron": "lif"},
                ...,
                {"name": "readout", ..., "neuron": "readout"}]}

Parameter names in the state dict follow from the layer names (one fact, one
place): see :func:`synapse_key` and :func:`neuron_key`.
"""

from __future__ import annotations

from typing import Any

LAYER_OPS = ("linear",)
NEURON_KINDS = ("lif", "readout")


def synapse_key(layer: str, param: str) -> str:
    """State-dict key of a synapse parameter, e.g. ``synapses.fc1.weight``."""
    return f"synapses.{layer}.{param}"


def neuron_key(layer: str, param: str) -> str:
    """State-dict key of a neuron parameter or buffer, e.g. ``neurons.fc1.running_threshold``."""
    return f"neurons.{layer}.{param}"


def check_architecture(arch: Any, origin: str = "architecture") -> dict:
    """Validate the structure of an architecture dict; raise ValueError naming the field."""
    if not isinstance(arch, dict):
        raise ValueError(f"{origin}: must be a dict, got {type(arch).__name__}")
    for key in ("kind", "input_shape", "timesteps", "num_classes", "neuron", "layers"):
        if key not in arch:
            raise ValueError(f"{origin}: missing field '{key}'")
    if int(arch["timesteps"]) < 1:
        raise ValueError(f"{origin}: field 'timesteps' must be >= 1")
    layers = arch["layers"]
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{origin}: field 'layers' must be a non-empty list")
    for index, layer in enumerate(layers):
        name = layer.get("name", f"#{index}") if isinstance(layer, dict) else f"#{index}"
        if not isinstance(layer, dict):
            raise ValueError(f"{origin}: layer {name}: must be a dict")
        if layer.get("op") not in LAYER_OPS:
            raise ValueError(f"{origin}: layer '{name}': field 'op': unknown operation {layer.get('op')!r} (known: {', '.join(LAYER_OPS)})")
        if layer.get("neuron") not in NEURON_KINDS:
            raise ValueError(f"{origin}: layer '{name}': field 'neuron': unknown neuron {layer.get('neuron')!r} (known: {', '.join(NEURON_KINDS)})")
    if layers[-1]["neuron"] != "readout":
        raise ValueError(f"{origin}: the last layer must have neuron 'readout'")
    return arch


def mlp_architecture(
    input_size: int, hidden: list[int], num_classes: int, timesteps: int, neuron: dict, bias: bool = True
) -> dict:
    """Architecture of a spiking MLP: hidden DS-ATGO LIF layers, then a readout."""
    sizes = [input_size, *hidden, num_classes]
    layers = []
    for index in range(len(sizes) - 1):
        last = index == len(sizes) - 2
        layers.append({
            "name": "readout" if last else f"fc{index + 1}",
            "op": "linear",
            "in_features": sizes[index],
            "out_features": sizes[index + 1],
            "bias": bias,
            "neuron": "readout" if last else "lif",
        })
    return {"kind": "mlp", "input_shape": [input_size], "timesteps": timesteps,
            "num_classes": num_classes, "neuron": dict(neuron), "layers": layers}
