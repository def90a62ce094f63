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
    """Heaviside with the rectangular surrogate of width kappa centred on the threshold."""

    @staticmethod
    def forward(ctx, potential: torch.Tensor, threshold: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(potential, threshold, kappa)
        return (potential >= threshold).to(potential.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        potential, threshold, kappa = ctx.saved_tensors
        window = inside_window(potential, threshold, kappa).to(grad_output.dtype)
        return grad_output * window / kappa, None, None


def spike(potential: torch.Tensor, threshold: torch.Tensor | float, kappa: torch.Tensor | float) -> torch.Tensor:
    """S = 1(U >= threshold) with the Eq. 4 surrogate gradient (threshold, kappa detached)."""
    threshold = torch.as_tensor(threshold, dtype=potential.dtype, device=potential.device).detach()
    kappa = torch.as_tensor(kappa, dtype=potential.dtype, device=potential.device).detach()
    return RectangularSpike.apply(potential, threshold, kappa)
