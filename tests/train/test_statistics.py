"""Precision of the DS-ATGO threshold statistics at the paper's scale, against float64."""

from __future__ import annotations

import torch

from dsatgo_deploy.train.neuron import NeuronConfig, batch_statistics, lif_sequence, moment_sums


def _float64_reference(potential: torch.Tensor) -> tuple[float, float]:
    wide = potential.double()
    return wide.mean().item(), wide.std().item()


def test_full_width_batch_of_100_matches_float64():
    """First stage of ResNet-19 at batch 100: 100 x 128 x 32 x 32 values, mean of the order of the spread
    (the case where a single float32 dot was 7e-5 off in the std)."""
    generator = torch.Generator().manual_seed(0)
    potential = torch.randn(100, 128, 32, 32, generator=generator) * 0.7 + 0.3
    mean64, std64 = _float64_reference(potential)
    for on_host in (True, False):
        mean, std = batch_statistics(potential, on_host)
        mean, std = float(mean), float(std)
        assert abs(mean - mean64) <= 1e-6 * abs(mean64)
        assert abs(std - std64) <= 1e-6 * std64
        assert abs((mean + std) - (mean64 + std64)) <= 1e-6 * (mean64 + std64)
    # the single float32 dot this replaces is measurably off at this size (the reason for the change)
    flat = potential.reshape(-1)
    total, squares = flat.sum(), torch.dot(flat, flat)
    single_dot_std = ((squares - total * total / flat.numel()) / (flat.numel() - 1)).sqrt().item()
    assert abs(single_dot_std - std64) > 1e-6 * std64


def test_moment_sums_with_a_ragged_tail_and_the_thresholds_in_lif_sequence():
    generator = torch.Generator().manual_seed(1)
    potential = torch.rand(3, 7, 11, 13, generator=generator) * 4.0 - 1.0  # 3003 values: 2 blocks + tail
    count, total, squares = moment_sums(potential).tolist()
    wide = potential.double()
    assert count == potential.numel()
    assert abs(total - wide.sum().item()) <= 1e-7 * wide.abs().sum().item()
    assert abs(squares - (wide * wide).sum().item()) <= 1e-7 * (wide * wide).sum().item()
    # a one-step layer: its training threshold is mean + std of its input current, in float64 terms
    currents = potential.unsqueeze(0)
    _, thresholds, _ = lif_sequence(currents, torch.tensor(0.2), NeuronConfig(), torch.ones(1), training=True)
    mean64, std64 = _float64_reference(potential)
    assert abs(thresholds.item() - (mean64 + std64)) <= 1e-6 * (mean64 + std64)
