"""Spiking models built from an architecture description (dsatgo_deploy.architecture).

Every model takes x of shape (B, *input_shape), feeds it at every timestep
(direct encoding), and returns the readout averaged over T (B, classes): the
output layer does not spike, it averages its input current over T (Eq. 8).
Per-layer traces of the last forward pass are in ``model.traces()``.
"""

from __future__ import annotations

import torch
from torch import nn

from dsatgo_deploy.architecture import check_architecture

from .neuron import DSATGOLIF, LayerTrace, NeuronConfig


class SpikingNetwork(nn.Module):
    """A feed-forward chain of synapses (Linear) with DS-ATGO LIF neurons and a readout.

    State-dict keys: ``synapses.<layer>.weight|bias``, ``neurons.<layer>.decay_logit|running_threshold``
    (see dsatgo_deploy.architecture.synapse_key / neuron_key).
    """

    def __init__(self, arch: dict) -> None:
        super().__init__()
        self.arch = check_architecture(arch)
        self.timesteps = int(arch["timesteps"])
        config = NeuronConfig.from_dict(arch["neuron"])
        self.synapses = nn.ModuleDict()
        self.neurons = nn.ModuleDict()
        for layer in arch["layers"]:
            name = layer["name"]
            self.synapses[name] = nn.Linear(layer["in_features"], layer["out_features"], bias=layer["bias"])
            if layer["neuron"] == "lif":
                self.neurons[name] = DSATGOLIF(self.timesteps, config)
        self.layer_names = [layer["name"] for layer in arch["layers"]]
        self.last_readout: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        steps = self.timesteps
        # Direct encoding: the same input at every step, so the first synapse is computed once.
        activity = x.reshape(batch, -1).unsqueeze(0).expand(steps, batch, -1)
        first = True
        for name in self.layer_names:
            synapse = self.synapses[name]
            if first:
                current = synapse(activity[0]).unsqueeze(0).expand(steps, batch, -1)
                first = False
            else:
                current = synapse(activity.reshape(steps * batch, -1)).reshape(steps, batch, -1)
            if name in self.neurons:
                activity = self.neurons[name](current)
            else:
                self.last_readout = current
        return self.last_readout.mean(dim=0)

    def traces(self) -> dict[str, LayerTrace]:
        """Per spiking layer: spikes, thresholds, widths, window share of the last forward."""
        return {name: neuron.last_trace for name, neuron in self.neurons.items() if neuron.last_trace is not None}


def build_model(arch: dict) -> SpikingNetwork:
    """The torch model for an architecture description."""
    if arch.get("kind") == "mlp":
        return SpikingNetwork(arch)
    raise ValueError(f"unknown model kind {arch.get('kind')!r}")
