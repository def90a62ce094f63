"""Integer kinds beyond the CUBA LIF, exactly as Lava's fixed_pt models compute them.

Read from lava-nc 0.10.0 and lava-dl 0.6.0 (``lava/proc/sdn/models.py``: Sigma, Delta, SigmaDelta
and its activation; ``lava/proc/dense/models.py``: DelayDense; ``lava/lib/dl/netx/hdf5.py`` and
``blocks/process.py``: how netx builds them). The synapses and the LIF come from
:mod:`dsatgo_deploy.loihi` (the one integer truth); this module adds only what those do not state.

Every ``*_sequence`` function runs a whole population over T steps, batched: inputs are
(B, T, *n) int64 tensors, the neuron receives a(t) and sends its output in the same step
(latency 0), as Lava's neurons do. Synapse latency (1 step, 1 + d with a delay) is the caller's.

Sigma-delta (SDNN) fixed point, per step (all int32, wrapping as numpy int32 does):

    sigma   = sigma + a                          # Sigma: sends sigma itself
    act     = relu(sigma + bias')                # SigmaDelta (RELU, or UNIT: no relu)
    delta   = act - act_prev + residue
    s       = delta where |delta| >= vth' else 0 # (cum_error: the test is on error += delta)
    residue = delta - s ;  act_prev = act
    send s >> state_exp                          # floor

with ``vth' = vth << (spike_exp + state_exp)`` and ``bias' = bias << (spike_exp + state_exp)``
(the process constructors scale them). Lava's input Delta first shifts its input,
``a << (spike_exp + state_exp)``, and has no sigma, bias or activation. netx uses state_exp = 6
and spike_exp = 6 (``Network(spike_exp=...)``), 16-bit messages.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from dsatgo_deploy import loihi

#: netx's scaling exponents of SDNN neurons (hdf5.py get_neuron_params; spike_exp is Network's default).
NETX_STATE_EXP = 6
NETX_SPIKE_EXP = 6
#: The largest |graded message| a sigma-delta neuron can send: its messages are int32 and nothing clips them to
#: the layer's ``message_bits`` (lava-dl's PilotNet SDNN declares 16 bits and sends 41,772).
MAX_GRADED_MESSAGE = 1 << 31
#: netx's delays are clipped to this and DelayDense's buffer holds max_delay + 1 steps (hdf5.py create_dense).
NETX_MAX_DELAY = 62
#: DelayDense raises on larger delays (Loihi 2 has 6 delay bits).
LAVA_MAX_DELAY = 63


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """numpy int32 arithmetic: two's-complement wrap to 32 bits."""
    return loihi.wrap_signed(x, 32)


def sdnn_scaled(value: torch.Tensor | int, spike_exp: int, state_exp: int) -> torch.Tensor:
    """``value * 2**(spike_exp + state_exp)`` as the Delta/SigmaDelta constructors scale vth and bias,
    cast to the int32 Var."""
    return wrap32(torch.as_tensor(value, dtype=torch.int64) << (spike_exp + state_exp))


class SigmaDeltaParameters(NamedTuple):
    """A SigmaDelta population. threshold and bias are already scaled (:func:`sdnn_scaled`);
    bias broadcasts to the population shape."""

    threshold: int
    bias: torch.Tensor
    state_exp: int
    relu: bool = True
    cum_error: bool = False


class SigmaDeltaState(NamedTuple):
    sigma: torch.Tensor
    act: torch.Tensor
    residue: torch.Tensor
    error: torch.Tensor


def sigma_delta_initial_state(shape: tuple[int, ...], device: torch.device | str = "cpu") -> SigmaDeltaState:
    zeros = torch.zeros(shape, dtype=torch.int64, device=device)
    return SigmaDeltaState(zeros, zeros.clone(), zeros.clone(), zeros.clone())


def _delta_encode(threshold: int, cum_error: bool, state: SigmaDeltaState, act: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lava's ``delta_dynamics``: returns (s scaled, residue, error)."""
    delta = wrap32(act - state.act + state.residue)
    error = state.error
    if cum_error:
        error = wrap32(error + delta)
        fired = error.abs() >= threshold
        error = torch.where(fired, torch.zeros_like(error), error)
    else:
        fired = delta.abs() >= threshold
    sent = torch.where(fired, delta, torch.zeros_like(delta))
    return sent, wrap32(delta - sent), error


def sigma_delta_step(params: SigmaDeltaParameters, state: SigmaDeltaState, a_in: torch.Tensor
                     ) -> tuple[SigmaDeltaState, torch.Tensor]:
    """One step of Lava's ``PySigmaDeltaModelFixed``; returns the new state and the graded message."""
    sigma = wrap32(state.sigma + a_in)
    act = wrap32(sigma + params.bias)
    if params.relu:
        act = act.clamp(min=0)
    sent, residue, error = _delta_encode(params.threshold, params.cum_error, state, act)
    return SigmaDeltaState(sigma, act, residue, error), sent >> params.state_exp


def sigma_delta_sequence(params: SigmaDeltaParameters, a: torch.Tensor, record_sigma: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A SigmaDelta population from rest over T steps of input a (B, T, *n): graded messages
    (B, T, *n) int64 and, with record_sigma, sigma after each step."""
    state = sigma_delta_initial_state(a[:, 0].shape, a.device)
    out, sigmas = torch.empty_like(a), (torch.empty_like(a) if record_sigma else None)
    for t in range(a.shape[1]):
        state, out[:, t] = sigma_delta_step(params, state, a[:, t])
        if sigmas is not None:
            sigmas[:, t] = state.sigma
    return out, sigmas


def sigma_delta_reference(vth_mant: int, bias_mant: torch.Tensor, a: torch.Tensor, steps: int, relu: bool = True,
                          cum_error: bool = False, spike_exp: int = NETX_SPIKE_EXP, state_exp: int = NETX_STATE_EXP
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """A netx SDNN layer in the neuron registry's reference shape (layer fields, bias, a (B, T, n), steps):
    the file's vThMant and bias scaled as netx's SigmaDelta does; returns (graded messages, sigma), both
    (B, T, n) int64. Messages are graded, not bool: a registry entry must declare its message bits."""
    if a.shape[1] != steps:
        raise ValueError(f"sigma_delta_reference: {a.shape[1]} input steps for {steps} timesteps")
    params = SigmaDeltaParameters(int(sdnn_scaled(vth_mant, spike_exp, state_exp)),
                                  sdnn_scaled(bias_mant, spike_exp, state_exp), state_exp, relu, cum_error)
    messages, sigma = sigma_delta_sequence(params, a, record_sigma=True)
    return messages, sigma


def delta_input_sequence(x: torch.Tensor, vth: int, spike_exp: int = NETX_SPIKE_EXP,
                         state_exp: int = NETX_STATE_EXP, cum_error: bool = False) -> torch.Tensor:
    """Lava's fixed-point Delta encoder (netx's SDNN input neuron) over x (B, T, *n):
    ``a = x << (spike_exp + state_exp)``, delta-encoded against the previous a, sent ``>> state_exp``."""
    threshold = int(sdnn_scaled(vth, spike_exp, state_exp))
    state = sigma_delta_initial_state(x[:, 0].shape, x.device)
    out = torch.empty_like(x)
    for t in range(x.shape[1]):
        act = wrap32(x[:, t] << (spike_exp + state_exp))
        sent, residue, error = _delta_encode(threshold, cum_error, state, act)
        state = SigmaDeltaState(state.sigma, act, residue, error)
        out[:, t] = sent >> state_exp
    return out


def sigma_sequence(a: torch.Tensor) -> torch.Tensor:
    """Lava's fixed-point Sigma decoder (netx's ``sigma_output`` layer): the running int32 sum of a."""
    return wrap32(torch.cumsum(a, dim=1))


def delayed(a: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """a (B, T, ...) shifted ``steps`` later along T, zeros first: a synapse's latency."""
    out = torch.zeros_like(a)
    if steps < a.shape[1]:
        out[:, steps:] = a[:, : a.shape[1] - steps]
    return out
