"""DS-ATGO's spike function: Heaviside forward, rectangular surrogate backward (Eq. 4).

    S = 1(U >= Vth)                     forward
    dS/dU ~= (1 / kappa) * 1(|U - Vth| <= kappa / 2)     backward

The window is centred on the threshold in use and its width kappa is set per
layer, per timestep, per mini-batch by TGO (Eq. 7, see :func:`tgo_width`).
Neither the threshold nor kappa receives a gradient.
"""

from __future__ import annotations

import torch


def tgo_width(threshold_statistic: torch.Tensor | float, v_th0: float, kappa0: float) -> torch.Tensor:
    """Eq. 7: kappa = kappa0 * (1 + tanh(dVth - Vth)), in (0, 2 kappa0).

    The paper's two branches (dVth < Vth and dVth >= Vth) are the same
    expression. ``threshold_statistic`` is dVth (the paper) or sigma (the
    authors' code); ``v_th0`` is the initial threshold Vth.
    """
    statistic = torch.as_tensor(threshold_statistic, dtype=torch.float32)
    # 1 + tanh(x) == 2 sigmoid(2x), computed without cancellation: for dVth far below Vth
    # the width stays positive instead of rounding to 0 (which would divide by zero in Eq. 4).
    width = kappa0 * 2.0 * torch.sigmoid(2.0 * (statistic - v_th0))
    return width.clamp_min(torch.finfo(width.dtype).tiny)


def inside_window(potential: torch.Tensor, threshold: torch.Tensor | float, kappa: torch.Tensor | float) -> torch.Tensor:
    """Boolean mask of the neurons whose surrogate gradient is non-zero."""
    return (potential - threshold).abs() <= torch.as_tensor(kappa) / 2


class RectangularSpike(torch.autograd.Function):
    """Heaviside with the rectangular surrogate of width kappa centred on the threshold.

    Returns the spikes and the boolean window; the window is computed once, saved for
    the backward pass (1 byte per neuron instead of the float potential) and reused by
    the caller for monitoring.
    """

    @staticmethod
    def forward(ctx, potential: torch.Tensor, threshold: torch.Tensor, kappa: torch.Tensor):  # type: ignore[override]
        window = (potential - threshold).abs() <= kappa / 2
        ctx.save_for_backward(window, kappa)
        ctx.mark_non_differentiable(window)
        return (potential >= threshold).to(potential.dtype), window

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor, grad_window: torch.Tensor | None = None):  # type: ignore[override]
        window, kappa = ctx.saved_tensors
        return grad_output * window.to(grad_output.dtype) / kappa, None, None


def spike_and_window(potential: torch.Tensor, threshold: torch.Tensor | float, kappa: torch.Tensor | float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(S = 1(U >= threshold) with the Eq. 4 surrogate gradient, boolean inside-window mask)."""
    threshold = torch.as_tensor(threshold, dtype=potential.dtype, device=potential.device).detach()
    kappa = torch.as_tensor(kappa, dtype=potential.dtype, device=potential.device).detach()
    return RectangularSpike.apply(potential, threshold, kappa)


def spike(potential: torch.Tensor, threshold: torch.Tensor | float, kappa: torch.Tensor | float) -> torch.Tensor:
    """S = 1(U >= threshold) with the Eq. 4 surrogate gradient (threshold, kappa detached)."""
    return spike_and_window(potential, threshold, kappa)[0]
