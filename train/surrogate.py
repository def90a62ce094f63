"""DS-ATGO's spike function: Heaviside forward, rectangular surrogate backward (Eq. 4).

    S = 1(U >= Vth)                     forward
    dS/dU ~= (1 / kappa) * 1(|U - Vth| <= kappa / 2)     backward

The window is centred on the threshold in use and its width kappa is set per
layer, per timestep, per mini-batch by TGO (Eq. 7, see :func:`tgo_width`).
Neither the threshold nor kappa receives a gradient.
"""

from __future__ import annotations

import math

import torch

#: A per-layer, per-timestep scalar: a Python float (host arithmetic, the CPU training path, where
#: a dozen 0-dim tensor ops per step would cost more than the statistics themselves) or a 0-dim tensor
#: (on an accelerator, where reading a value back to the host would stall the queue).
Scalar = float | torch.Tensor

#: The smallest positive normal float32: the width never reaches 0 (Eq. 4 divides by it).
SMALLEST_WIDTH = torch.finfo(torch.float32).tiny


def sigmoid(x: Scalar) -> Scalar:
    """1 / (1 + exp(-x)) for a float (without overflow) or a tensor."""
    if isinstance(x, torch.Tensor):
        return torch.sigmoid(x)
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def tgo_width(threshold_statistic: Scalar, v_th0: float, kappa0: float) -> Scalar:
    """Eq. 7: kappa = kappa0 * (1 + tanh(dVth - Vth)), in (0, 2 kappa0); a float for a float.

    The paper's two branches (dVth < Vth and dVth >= Vth) are the same
    expression. ``threshold_statistic`` is dVth (the paper) or sigma (the
    authors' code); ``v_th0`` is the initial threshold Vth.
    """
    if isinstance(threshold_statistic, int):
        threshold_statistic = float(threshold_statistic)
    # 1 + tanh(x) == 2 sigmoid(2x), computed without cancellation: for dVth far below Vth
    # the width stays positive instead of rounding to 0 (which would divide by zero in Eq. 4).
    width = kappa0 * 2.0 * sigmoid(2.0 * (threshold_statistic - v_th0))
    if isinstance(width, torch.Tensor):
        return width.clamp_min(SMALLEST_WIDTH)
    return max(width, SMALLEST_WIDTH)


class RectangularSpike(torch.autograd.Function):
    """Heaviside with the rectangular surrogate of width kappa centred on the threshold.

    Returns the spikes and the boolean window; the window is computed once, saved for
    the backward pass (1 byte per neuron instead of the float potential) and reused by
    the caller for monitoring. threshold and kappa are floats or detached 0-dim tensors.
    """

    @staticmethod
    def forward(ctx, potential: torch.Tensor, threshold: Scalar, kappa: Scalar):  # type: ignore[override]
        window = (potential - threshold).abs() <= kappa / 2
        if isinstance(kappa, torch.Tensor):
            ctx.save_for_backward(window, kappa)
        else:
            ctx.save_for_backward(window)
            ctx.kappa = kappa
        ctx.mark_non_differentiable(window)
        return (potential >= threshold).to(potential.dtype), window

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor, grad_window: torch.Tensor | None = None):  # type: ignore[override]
        window, *saved_kappa = ctx.saved_tensors
        kappa = saved_kappa[0] if saved_kappa else ctx.kappa
        return grad_output * window.to(grad_output.dtype) / kappa, None, None


def _detached(value: Scalar, like: torch.Tensor) -> Scalar:
    if isinstance(value, torch.Tensor):
        return value.detach().to(dtype=like.dtype, device=like.device)
    return float(value)


def spike_and_window(potential: torch.Tensor, threshold: Scalar, kappa: Scalar) -> tuple[torch.Tensor, torch.Tensor]:
    """(S = 1(U >= threshold) with the Eq. 4 surrogate gradient, boolean inside-window mask);
    threshold and kappa receive no gradient."""
    return RectangularSpike.apply(potential, _detached(threshold, potential), _detached(kappa, potential))


def spike(potential: torch.Tensor, threshold: Scalar, kappa: Scalar) -> torch.Tensor:
    """S = 1(U >= threshold) with the Eq. 4 surrogate gradient (threshold, kappa detached)."""
    return spike_and_window(potential, threshold, kappa)[0]
