"""DS-ATGO's surrogate and adaptive threshold against the paper's numbers (Fig. 5, Eqs. 4-7)."""

from __future__ import annotations

import math

import pytest
import torch

from dsatgo_deploy.train.neuron import NeuronConfig, lif_sequence
from dsatgo_deploy.train.surrogate import spike, tgo_width

# Paper Fig. 5: share of neurons inside the surrogate window for U ~ N(0, s^2), threshold = s.
FIG5_TGO = {0.5: 26.00, 1.0: 24.17, 2.0: 21.30}
FIG5_FIXED = {0.5: 47.72, 1.0: 24.17, 2.0: 12.10}


def _exact_share(sigma: float, kappa: float) -> float:
    """P(|U - sigma| <= kappa / 2) for U ~ N(0, sigma^2), in percent."""
    normal = torch.distributions.Normal(0.0, 1.0)
    upper = normal.cdf(torch.tensor((sigma + kappa / 2) / sigma))
    lower = normal.cdf(torch.tensor((sigma - kappa / 2) / sigma))
    return float(upper - lower) * 100


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_fig5_inside_window_share_exact(sigma):
    kappa = float(tgo_width(sigma, v_th0=1.0, kappa0=1.0))
    assert _exact_share(sigma, kappa) == pytest.approx(FIG5_TGO[sigma], abs=0.1)
    assert _exact_share(sigma, 1.0) == pytest.approx(FIG5_FIXED[sigma], abs=0.1)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_fig5_through_the_neuron_monte_carlo(sigma):
    """The whole forward stage: batch statistics -> threshold -> TGO width -> window share."""
    generator = torch.Generator().manual_seed(0)
    currents = torch.randn(1, 2_000_000, generator=generator) * sigma  # one timestep, mean 0
    for mode, expected in (("tgo", FIG5_TGO[sigma]), ("fixed", FIG5_FIXED[sigma])):
        config = NeuronConfig(threshold_mode="adaptive", surrogate_mode=mode)
        _, batch_threshold, trace = lif_sequence(currents, torch.tensor(0.2), config, torch.ones(1), training=True)
        assert float(batch_threshold[0]) == pytest.approx(sigma, rel=2e-3)  # mean + std of N(0, s^2)
        assert float(trace.window_share[0]) * 100 == pytest.approx(expected, abs=0.1)


def test_tgo_width_is_eq7_on_both_branches():
    for statistic in (-1.0, 0.2, 1.0, 1.7, 5.0):
        if statistic < 1.0:
            expected = (1 - math.tanh(1.0 - statistic)) * 0.8
        else:
            expected = (1 + math.tanh(statistic - 1.0)) * 0.8
        assert float(tgo_width(statistic, v_th0=1.0, kappa0=0.8)) == pytest.approx(expected, rel=1e-6)
    # far below Vth the width stays positive (no division by zero in Eq. 4), far above it tends to 2 kappa0
    assert 0 < float(tgo_width(-40.0, 1.0, 1.0)) < 1e-30
    assert 0 < float(tgo_width(-500.0, 1.0, 1.0))
    assert float(tgo_width(50.0, 1.0, 1.0)) == pytest.approx(2.0)


def test_surrogate_backward_is_eq4_at_chosen_points():
    threshold, kappa = 0.7, 0.4  # window [0.5, 0.9], height 1 / 0.4 = 2.5
    potential = torch.tensor([0.0, 0.49, 0.5, 0.6, 0.7, 0.9, 0.91, 2.0], requires_grad=True)
    out = spike(potential, threshold, kappa)
    assert out.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # fires when U >= threshold
    out.backward(torch.ones_like(out))
    expected = [0.0, 0.0, 2.5, 2.5, 2.5, 2.5, 0.0, 0.0]
    assert potential.grad.tolist() == pytest.approx(expected)


def test_thresholds_and_widths_receive_no_gradient():
    """dVth = f_c (mean + std) is detached: the gradient w.r.t. U is Eq. 4 alone."""
    torch.manual_seed(1)
    currents = torch.randn(1, 64, requires_grad=True)
    config = NeuronConfig(threshold_mode="adaptive", surrogate_mode="tgo")
    spikes, batch_threshold, trace = lif_sequence(currents, torch.tensor(0.2), config, torch.ones(1), training=True)
    spikes.sum().backward()
    threshold, kappa = float(trace.thresholds[0]), float(trace.widths[0])
    window = ((currents.detach() - threshold).abs() <= kappa / 2).float() / kappa
    torch.testing.assert_close(currents.grad, window)
    assert not batch_threshold.requires_grad and not trace.thresholds.requires_grad


def test_eval_uses_the_running_threshold_per_timestep():
    currents = torch.full((3, 1, 4), 0.6)
    running = torch.tensor([0.5, 0.7, 0.65])
    config = NeuronConfig(threshold_mode="adaptive", surrogate_mode="tgo")
    spikes, _, trace = lif_sequence(currents, torch.tensor(0.5), config, running, training=False)
    assert trace.thresholds.tolist() == pytest.approx(running.tolist())
    # t0: U = 0.6 >= 0.5 fires and resets; t1: U = 0.6 < 0.7; t2: U = 0.5 * 0.6 + 0.6 = 0.9 >= 0.65
    assert spikes[:, 0, 0].tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("mode", ["ds-atgo", "vanilla", "tgo_sigma", "estimated"])
@pytest.mark.parametrize("training", [True, False])
def test_host_float_and_tensor_scalar_paths_agree(mode, training):
    """The CPU keeps thresholds and widths as host floats, an accelerator as 0-dim tensors: the same
    equations, so the same spikes, thresholds, widths, window shares and gradients (to float32 rounding)."""
    from dsatgo_deploy.train.neuron import ABLATIONS

    settings = {"tgo_sigma": dict(threshold_mode="adaptive", surrogate_mode="tgo_sigma"),
                "estimated": dict(threshold_mode="estimated", surrogate_mode="tgo")}.get(mode, ABLATIONS.get(mode))
    config = NeuronConfig(**settings)
    torch.manual_seed(4)
    base = torch.randn(4, 32, 6, 5) * 1.3 + 0.4
    running = torch.tensor([0.9, 1.1, 0.8, 1.0])
    tau = torch.tensor(0.3, requires_grad=True)
    results = []
    for host in (True, False):
        currents = base.clone().requires_grad_(True)
        spikes, batch_thresholds, trace = lif_sequence(currents, tau, config, running, training, host_scalars=host)
        (spikes * torch.linspace(0.5, 1.5, 30).reshape(1, 1, 6, 5)).sum().backward()
        results.append((spikes.detach(), batch_thresholds, trace, currents.grad.clone(), tau.grad.clone()))
        tau.grad = None
    (s1, b1, t1, g1, d1), (s2, b2, t2, g2, d2) = results
    assert torch.equal(s1, s2) and 0.05 < float(s1.mean()) < 0.6
    torch.testing.assert_close(b1, b2, equal_nan=True)
    for field in ("thresholds", "widths", "window_share"):
        torch.testing.assert_close(getattr(t1, field), getattr(t2, field))
        assert getattr(t1, field).dtype == torch.float32 and getattr(t1, field).shape == (4,)
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(d1, d2)
