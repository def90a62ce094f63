"""The frozen float network's dynamics over T on (B, T, n) currents: the synaptic current of a CubaLIF
(imported NIR), the hard-reset LIF of every spiking layer, and the readout (export/freeze.py runs them)."""

from __future__ import annotations

import numpy as np
import torch

from dsatgo_deploy.neurons import neuron_kind

#: the neuron kind of a frozen spiking layer (its thresholds per timestep; quantize may collapse them)
FROZEN_NEURON = "scheduled_lif"


def synaptic_current(current: torch.Tensor, bias: np.ndarray, alpha: float | None) -> torch.Tensor:
    """I(t) = J(t) + b with J(t) = alpha J(t-1) + (current(t) - b), on (B, T, n) currents that hold the bias
    (``current`` unchanged without a synaptic current, alpha None)."""
    if alpha is None:
        return current
    offset = torch.from_numpy(np.asarray(bias, dtype=np.float64)).to(current.dtype)
    offset = offset.repeat_interleave(current.shape[-1] // max(len(offset), 1))  # conv: per channel -> per neuron
    filtered = torch.zeros_like(current)
    state = torch.zeros_like(current[:, 0])
    for t in range(current.shape[1]):
        state = alpha * state + current[:, t] - offset
        filtered[:, t] = state + offset
    return filtered


def readout_output(current: torch.Tensor, tau: float | None) -> torch.Tensor:
    """The readout of currents (B, T, n): mean_t I(t) without a leak (tau None), else U(T) of
    U(t) = tau U(t-1) + I(t)."""
    if tau is None:
        return current.mean(dim=1)
    potential = torch.zeros_like(current[:, 0])
    for t in range(current.shape[1]):
        potential = tau * potential + current[:, t]
    return potential


def lif_spikes(current: torch.Tensor, tau: float, thresholds: np.ndarray) -> torch.Tensor:
    """Hard-reset LIF over T on input currents (B, T, n): U(t) = tau U(t-1) (1 - S(t-1)) + I(t),
    S(t) = 1(U(t) >= thresholds[t]); spikes (B, T, n) in the currents' dtype. The LIF kinds' float
    semantics (dsatgo_deploy.neurons)."""
    return neuron_kind(FROZEN_NEURON).float_spikes(current, tau, thresholds)
