"""Parity's default tolerances fit the pair: integer sides must agree exactly, a float side gets the measured
defaults; the README's own command passes on a trained digits model, and the report says which tolerance
applied and why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.hardware_sim.parity import (FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT, RunRecord,
                                               apply_tolerance, compare, default_tolerance)


def _pair(a: str, b: str, flipped: int) -> tuple[RunRecord, RunRecord]:
    """Two runs of 10 samples x 2 steps x 10 neurons that differ in ``flipped`` spike entries of sample 0."""
    spikes = np.zeros((10, 2, 10), dtype=bool)
    other = spikes.copy()
    other[0, 0, :flipped] = True
    predictions = np.arange(10)
    return RunRecord(a, {"fc1": spikes}, predictions), RunRecord(b, {"fc1": other}, predictions)


def test_integer_sides_demand_equality_and_a_float_side_gets_the_measured_defaults():
    for a, b in [("reference", "lava"), ("lava", "onnx"), ("reference", "recorded")]:
        tolerance = default_tolerance(a, b)
        assert (tolerance.min_class_agreement, tolerance.min_spike_agreement) == (1.0, 1.0)
    tolerance = default_tolerance("torch", "lava")
    assert (tolerance.min_class_agreement, tolerance.min_spike_agreement) == (FLOAT_MIN_CLASS_AGREEMENT,
                                                                              FLOAT_MIN_SPIKE_AGREEMENT)
    assert "torch is float" in tolerance.reason
    # 3 of 100 (sample, neuron) counts differ: 97 % agreement fails between integer sides, passes for torch
    assert not apply_tolerance(compare(*_pair("reference", "lava", 3))).passed
    report = apply_tolerance(compare(*_pair("torch", "lava", 3)))
    assert report.passed and report.layers[0].spike_count_agreement == pytest.approx(0.97)
    assert not apply_tolerance(compare(*_pair("torch", "lava", 6))).passed  # 94 % < 95 %
    given = apply_tolerance(compare(*_pair("torch", "lava", 6)), min_spike_agreement=0.9)
    assert given.passed and given.tolerance.min_class_agreement == FLOAT_MIN_CLASS_AGREEMENT
    assert "spike tolerance given by the caller" in given.tolerance.reason


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_apply_tolerance_refuses_a_tolerance_outside_0_1(bad):
    with pytest.raises(ValueError, match=r"must be a fraction in \[0, 1\]"):
        apply_tolerance(compare(*_pair("torch", "lava", 0)), min_class_agreement=bad)


def test_the_readme_parity_command_passes_on_a_trained_digits_model(trained_checkpoint, exported, capsys):
    code = main(["parity", "--model", str(trained_checkpoint), "--network", str(exported.out_dir),
                 "--sides", "torch,lava", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["failures"]
    assert report["passed"] and report["sides"] == ["torch", "lava"]
    assert report["tolerance"]["min_class_agreement"] == FLOAT_MIN_CLASS_AGREEMENT
    assert "torch is float" in report["tolerance"]["reason"]
    assert report["class_agreement"] >= FLOAT_MIN_CLASS_AGREEMENT
