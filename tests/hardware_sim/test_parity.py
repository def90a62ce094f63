"""Parity reports: agreement figures and the first divergence, with an injected one."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dsatgo_deploy.runs import RunRecord
from dsatgo_deploy.hardware_sim.parity import apply_tolerance, compare, format_report
from dsatgo_deploy.pipeline.sides import run_reference


def _record(name, seed=0, samples=5, steps=3):
    rng = np.random.default_rng(seed)
    spikes = {"a": rng.random((samples, steps, 4)) < 0.3, "b": rng.random((samples, steps, 6)) < 0.3}
    return RunRecord(name, spikes, rng.integers(0, 3, samples))


def test_identical_runs_are_bit_exact():
    a, b = _record("x"), _record("y")
    report = compare(a, b, labels=a.predictions)
    assert report.bit_exact and report.first_divergence is None
    assert report.class_agreement == 1.0 and report.accuracy == (1.0, 1.0)
    assert all(layer.spike_train_agreement == 1.0 for layer in report.layers)


def test_injected_divergence_is_located_exactly():
    a, b = _record("x"), _record("y")
    b.spikes["b"][2, 1, 5] = ~b.spikes["b"][2, 1, 5]
    b.spikes["b"][4, 0, 0] = ~b.spikes["b"][4, 0, 0]
    report = apply_tolerance(compare(a, b))
    d = report.first_divergence
    assert (d.sample, d.layer, d.timestep, d.neuron) == (2, "b", 1, 5)
    assert d.values == (int(a.spikes["b"][2, 1, 5]), int(b.spikes["b"][2, 1, 5]))
    layer_b = report.layers[1]
    assert layer_b.mismatched_entries == 2
    assert layer_b.spike_train_agreement == pytest.approx(1 - 2 / (5 * 3 * 6))
    assert layer_b.spike_count_agreement == pytest.approx(1 - 2 / (5 * 6))
    assert not report.passed and "layer 'b'" in report.failures[0]
    assert "first divergence: sample 2, layer 'b', timestep 1, neuron 5" in format_report(report)


def test_earlier_sample_wins_over_earlier_layer():
    a, b = _record("x"), _record("y")
    b.spikes["a"][3, 0, 0] = ~b.spikes["a"][3, 0, 0]
    b.spikes["b"][1, 2, 2] = ~b.spikes["b"][1, 2, 2]
    d = compare(a, b).first_divergence
    assert (d.sample, d.layer) == (1, "b")


def test_a_changed_weight_shows_up_as_a_divergence(exported, digits):
    x = digits.x_test[:40]
    before = run_reference(exported.network, x)
    broken = copy.deepcopy(exported.network)
    broken.layers[0].weight[:, :] = 0  # silence the hidden layer
    after = run_reference(broken, x)
    report = apply_tolerance(compare(before, after))
    assert not report.passed
    assert report.layers[0].spikes[1] == 0 < report.layers[0].spikes[0]


def test_mismatched_runs_are_refused():
    a = _record("x")
    b = RunRecord("y", {"a": a.spikes["a"]}, a.predictions)
    with pytest.raises(ValueError, match="different layers"):
        compare(a, b)
