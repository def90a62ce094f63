"""The paper's claims about the neuron, checked through DSATGOLIF on Gaussian membrane potentials:
Theorem 1 (firing 1 - Phi(1) = 15.87 % at any mean and spread) and Fig. 5 (share of neurons inside
the surrogate window with TGO against a fixed width), with the expected values from the normal CDF."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from dsatgo_deploy.train.neuron import ABLATIONS, DSATGOLIF, NeuronConfig

SAMPLES = 1_000_000
#: Fig. 5 of the paper: % of neurons inside the window for U ~ N(0, s^2), threshold s.
FIG5_TGO = {0.5: 26.00, 1.0: 24.17, 2.0: 21.30}
FIG5_FIXED = {0.5: 47.72, 1.0: 24.17, 2.0: 12.10}


def _one_step(mean: float, spread: float, config: NeuronConfig, seed: int = 0):
    """A training step of one timestep (U = I, pre-reset) on U ~ N(mean, spread^2); returns the trace."""
    layer = DSATGOLIF(1, config).train()
    generator = torch.Generator().manual_seed(seed)
    currents = torch.randn(1, SAMPLES, generator=generator) * spread + mean
    layer(currents)
    return layer.last_trace


def _expected_share(spread: float, kappa: float) -> float:
    """P(|U - (mu + s)| <= kappa / 2) for U ~ N(mu, s^2): independent of mu."""
    half = kappa / (2.0 * spread)
    return norm.cdf(1.0 + half) - norm.cdf(1.0 - half)


@pytest.mark.parametrize("mean, spread", [(0.0, 1.0), (2.5, 0.3), (-1.0, 4.0)])
def test_adaptive_threshold_fires_one_minus_phi_of_one(mean, spread):
    trace = _one_step(mean, spread, NeuronConfig(**ABLATIONS["ds-atgo"]))
    expected = 1.0 - norm.cdf(1.0)
    assert expected == pytest.approx(0.1587, abs=5e-5)
    standard_error = math.sqrt(expected * (1 - expected) / SAMPLES)
    assert abs(trace.spikes.mean().item() - expected) < 5 * standard_error
    assert trace.thresholds.item() == pytest.approx(mean + spread, abs=5e-3 * spread)


@pytest.mark.parametrize("spread", sorted(FIG5_TGO))
def test_fig5_window_shares_at_zero_mean(spread):
    for ablation, published in (("ds-atgo", FIG5_TGO), ("at", FIG5_FIXED)):
        trace = _one_step(0.0, spread, NeuronConfig(**ABLATIONS[ablation]))
        kappa = 1.0 + math.tanh(spread - 1.0) if ablation == "ds-atgo" else 1.0
        assert trace.widths.item() == pytest.approx(kappa, abs=1e-2)
        assert 100 * _expected_share(spread, kappa) == pytest.approx(published[spread], abs=0.006)
        assert 100 * trace.window_share.item() == pytest.approx(published[spread], abs=0.15)


@pytest.mark.parametrize("mean, spread", [(0.8, 0.5), (-0.6, 1.5)])
def test_fig5_with_a_non_zero_mean_separates_the_paper_and_code_widths(mean, spread):
    """Eq. 7 takes dVth = mu + s (paper) or s (authors' code): equal at mu = 0, apart here."""
    kappa_paper = 1.0 + math.tanh(mean + spread - 1.0)
    kappa_code = 1.0 + math.tanh(spread - 1.0)
    shares = {}
    for mode, kappa in (("tgo", kappa_paper), ("tgo_sigma", kappa_code)):
        trace = _one_step(mean, spread, NeuronConfig(threshold_mode="adaptive", surrogate_mode=mode))
        assert trace.widths.item() == pytest.approx(kappa, abs=5e-3)
        expected = _expected_share(spread, kappa)
        assert trace.window_share.item() == pytest.approx(expected, abs=2e-3)
        shares[mode] = expected
    assert abs(kappa_paper - kappa_code) > 0.3 and abs(shares["tgo"] - shares["tgo_sigma"]) > 0.05
