"""Freeze: a DS-ATGO checkpoint -> a float network with fixed thresholds.

What training leaves adaptive becomes constant here: each spiking layer's
threshold becomes its running average per timestep (the schedule eval mode
uses, Eq. 6), its PLIF decay becomes the number tau = sigmoid(w). The frozen
network computes exactly what the torch model computes in eval mode:

    I_l(t) = W_l s_{l-1}(t) + b_l                 (s_0(t) = x, direct encoding)
    U_l(t) = tau_l * U_l(t-1) * (1 - S_l(t-1)) + I_l(t)
    S_l(t) = 1(U_l(t) >= theta_l(t))
    readout = mean_t I_L(t)

Reads only the checkpoint's architecture and state dict (no train/ import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dsatgo_deploy.architecture import neuron_key, synapse_key
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT


@dataclass
class FrozenLayer:
    """A layer with constant parameters. threshold_schedule is (T,) for a spiking
    layer and None for the readout; tau is None for the readout."""

    name: str
    source: str
    weight: np.ndarray  # (out, in) float64
    bias: np.ndarray  # (out,) float64
    tau: float | None
    threshold_schedule: np.ndarray | None

    def __post_init__(self) -> None:
        if self.weight.ndim != 2:
            raise ValueError(f"layer '{self.name}': weight must be 2-D, got shape {self.weight.shape}")
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"layer '{self.name}': bias shape {self.bias.shape} != ({self.weight.shape[0]},)")

    @property
    def spiking(self) -> bool:
        return self.threshold_schedule is not None


@dataclass
class FrozenNetwork:
    timesteps: int
    input_shape: tuple[int, ...]
    layers: list[FrozenLayer]
    input_quantum: float | None = None


def _tensor(state: dict, key: str, layer: str, origin: str) -> np.ndarray:
    if key not in state:
        raise UserError(f"{origin}: layer '{layer}': field '{key}' is missing from the checkpoint's state dict")
    value = state[key].detach().to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(value)):
        raise UserError(f"{origin}: layer '{layer}': field '{key}' holds NaN or infinite values")
    return value


def freeze(checkpoint: dict, origin: str = "checkpoint") -> FrozenNetwork:
    """Frozen float network of a loaded checkpoint (dsatgo_deploy.checkpoint.load_checkpoint)."""
    arch, state = checkpoint["arch"], checkpoint["state_dict"]
    timesteps = int(arch["timesteps"])
    layers: list[FrozenLayer] = []
    if arch.get("encoding", "direct") != "direct":
        raise UserError(f"{origin}: export does not support input encoding {arch['encoding']!r} yet "
                        "(only 'direct')")
    if arch.get("normalize") is not None:
        raise UserError(f"{origin}: export does not support input normalisation ('normalize') yet")
    for spec in arch["layers"]:
        name = spec["name"]
        if spec["op"] != "linear":
            raise UserError(f"{origin}: layer '{name}': export does not support operation {spec['op']!r} yet")
        if spec.get("bn"):
            raise UserError(f"{origin}: layer '{name}': export does not support tdBN ('bn': true) yet")
        if spec["neuron"] not in ("lif", "readout"):
            raise UserError(f"{origin}: layer '{name}': export does not support neuron {spec['neuron']!r} yet")
        sources = spec["inputs"]
        if len(sources) != 1:
            raise UserError(f"{origin}: layer '{name}': export supports one input per linear layer, got {sources}")
        source = sources[0]
        weight = _tensor(state, synapse_key(name, "weight"), name, origin)
        bias = (_tensor(state, synapse_key(name, "bias"), name, origin) if spec.get("bias")
                else np.zeros(weight.shape[0]))
        if spec["neuron"] == "lif":
            logit = float(_tensor(state, neuron_key(name, "decay_logit"), name, origin))
            tau = 1.0 / (1.0 + math.exp(-logit))
            mode = arch["neuron"].get("threshold_mode", "adaptive")
            if mode == "adaptive":
                schedule = _tensor(state, neuron_key(name, "running_threshold"), name, origin).reshape(-1)
                if schedule.size != timesteps:
                    raise UserError(f"{origin}: layer '{name}': field 'running_threshold' has {schedule.size} "
                                    f"values, expected T = {timesteps}")
            elif mode == "estimated":
                f_c, v_th0 = arch["neuron"].get("f_c", 1.0), arch["neuron"].get("v_th0", 1.0)
                schedule = np.full(timesteps, f_c * math.sqrt(1.0 + tau * tau) * v_th0)
            else:
                schedule = np.full(timesteps, float(arch["neuron"].get("v_th0", 1.0)))
            layers.append(FrozenLayer(name, source, weight, bias, tau, schedule))
        else:
            layers.append(FrozenLayer(name, source, weight, bias, None, None))
    return FrozenNetwork(timesteps, tuple(arch["input_shape"]), layers,
                         checkpoint.get("meta", {}).get("input_quantum"))


def run_frozen(net: FrozenNetwork, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Float simulation of the frozen network.

    Returns (readout mean over T (B, classes), spikes per spiking layer (B, T, n)
    bool, input currents per layer (B, T, n)).
    """
    activity = {INPUT: np.repeat(x.reshape(len(x), 1, -1).astype(np.float64), net.timesteps, axis=1)}
    currents: dict[str, np.ndarray] = {}
    spikes: dict[str, np.ndarray] = {}
    readout = None
    for layer in net.layers:
        current = activity[layer.source] @ layer.weight.T + layer.bias
        currents[layer.name] = current
        if not layer.spiking:
            readout = current.mean(axis=1)
            continue
        potential = np.zeros(current[:, 0].shape)
        fired = np.zeros_like(potential)
        out = np.zeros(current.shape, dtype=bool)
        for t in range(net.timesteps):
            potential = layer.tau * potential * (1.0 - fired) + current[:, t]
            out[:, t] = potential >= layer.threshold_schedule[t]
            fired = out[:, t].astype(np.float64)
        spikes[layer.name] = out
        activity[layer.name] = out.astype(np.float64)
    return readout, spikes, currents
