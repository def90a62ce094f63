"""The accuracy ladder of a trained model: float adaptive -> frozen schedule -> per-layer -> quantized -> Lava."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.hardware_sim.ladder import RUNGS, summarize_ladder
from dsatgo_deploy.hardware_sim.report import format_ladder
from dsatgo_deploy.pipeline import ladder
from dsatgo_deploy.pipeline.sides import run_reference, run_torch
from dsatgo_deploy.runs import RunRecord

SAMPLES = 60


@pytest.fixture(scope="module")
def checkpoint(trained_checkpoint):
    return load_checkpoint(trained_checkpoint)


@pytest.fixture(scope="module")
def test_data(digits):
    return digits.x_test[:SAMPLES], digits.y_test[:SAMPLES]


def test_ladder_rungs_and_figures(checkpoint, exported, digits, test_data):
    x, y = test_data
    result = ladder.compute_ladder(checkpoint, exported.network, x, y, calibration_x=digits.x_train[:64],
                                   profiles=["loihi1", "cmos45nm"])
    rungs = result["rungs"]
    assert [r["name"] for r in rungs] == list(RUNGS)
    assert result["samples"] == SAMPLES and result["threshold_policy"] == "schedule" and result["batch_size"] == 32
    assert not rungs[-1]["available"] and "Lava skipped" in rungs[-1]["skipped"]
    reference = run_reference(exported.network, x)
    torch_run = run_torch(checkpoint, x)
    assert rungs[3]["accuracy"] == float((reference.predictions == y).mean())
    assert rungs[1]["accuracy"] == float((torch_run.predictions == y).mean())
    assert rungs[3]["spikes_per_inference"] == sum(s.sum() for s in reference.spikes.values()) / SAMPLES
    assert rungs[0]["class_agreement_with_previous"] is None
    for r in rungs[:4]:
        assert 0.7 < r["accuracy"] <= 1.0 and r["synops_per_inference"] > 0
        assert set(r["energy_pj"]) == {"loihi1", "cmos45nm"} and set(r["ann_energy_pj"]) == {"cmos45nm"}
        assert r["layers"]["fc1"]["firing_rate"] == pytest.approx(r["firing_rate"])
    for r in rungs[1:4]:
        assert r["class_agreement_with_previous"] > 0.9
    # the ANN does not spike: its energy is the same on every rung
    assert len({r["ann_energy_pj"]["cmos45nm"] for r in rungs[:4]}) == 1
    text = format_ladder(result)
    assert "float, adaptive thresholds" in text and "not run" in text


def test_adaptive_rung_uses_batch_thresholds_and_updates_nothing(checkpoint, test_data):
    x, _ = test_data
    before = copy.deepcopy(checkpoint["state_dict"])
    eval_run = run_torch(checkpoint, x)
    whole = ladder.run_adaptive(checkpoint, x, batch_size=SAMPLES)
    singles = ladder.run_adaptive(checkpoint, x, batch_size=1)
    # batch thresholds, not the running ones: the spikes differ from eval mode, and depend on the batch
    assert not np.array_equal(whole.spikes["fc1"], eval_run.spikes["fc1"])
    assert not np.array_equal(whole.spikes["fc1"], singles.spikes["fc1"])
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(value, before[key]), key
    # by hand: eval-mode network, neurons in training mode over the whole batch -> the same spikes
    from dsatgo_deploy.train.models import build_model

    model = build_model(checkpoint["arch"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    with torch.no_grad():
        model(torch.as_tensor(x, dtype=torch.float32))
        running = model.neurons["fc1"].running_threshold.clone()
    for module in model.neurons.values():
        module.train()
    with torch.no_grad():
        model(torch.as_tensor(x, dtype=torch.float32))
    thresholds = model.traces()["fc1"].thresholds
    assert not torch.allclose(thresholds, running)
    model_fc1 = model.traces()["fc1"].spikes.transpose(0, 1).reshape(SAMPLES, -1, whole.spikes["fc1"].shape[2])
    assert np.array_equal(model_fc1.bool().numpy(), whole.spikes["fc1"])


def test_fixed_threshold_model_has_no_batch_dependence(checkpoint, test_data):
    x, _ = test_data
    fixed = copy.deepcopy(checkpoint)
    fixed["arch"]["neuron"]["threshold_mode"] = "fixed"
    assert np.array_equal(ladder.run_adaptive(fixed, x, batch_size=7).spikes["fc1"], run_torch(fixed, x).spikes["fc1"])


def test_given_runs_are_reused(checkpoint, exported, test_data):
    x, y = test_data
    reference = run_reference(exported.network, x)
    fake_lava = RunRecord("lava", reference.spikes, reference.predictions)
    rungs = ladder.ladder_runs(checkpoint, exported.network, x, runs={"reference": reference, "lava": fake_lava})
    assert rungs[3].record is reference and rungs[4].record is fake_lava
    result = summarize_ladder(rungs, exported.network, x, y, ["loihi1"])
    assert result["rungs"][4]["class_agreement_with_previous"] == 1.0
    assert result["rungs"][4]["energy_pj"] == result["rungs"][3]["energy_pj"]
    with pytest.raises(ValueError, match="'lava' record has 3 samples"):
        ladder.ladder_runs(checkpoint, exported.network, x,
                           runs={"lava": RunRecord("lava", {k: v[:3] for k, v in reference.spikes.items()},
                                                   reference.predictions[:3])})


def test_lava_rung_is_bit_exact_with_the_reference(checkpoint, exported, test_data):
    x, y = test_data
    x, y = x[:12], y[:12]
    result = ladder.compute_ladder(checkpoint, exported.network, x, y, profiles=["loihi1"], lava=True)
    reference, lava = result["rungs"][3], result["rungs"][4]
    assert lava["available"] and lava["class_agreement_with_previous"] == 1.0
    assert (lava["accuracy"], lava["spikes_per_inference"], lava["energy_pj"]) == (
        reference["accuracy"], reference["spikes_per_inference"], reference["energy_pj"])
