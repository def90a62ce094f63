"""Spike recordings of other engines, checked by the parity command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim.recording import load_recording, save_recording
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.pipeline.sides import run_reference
from tests.hardware_sim.test_lava_backend import random_graph


def test_sim_saves_what_parity_reads_back_and_a_tampered_spike_is_found(exported, digits, tmp_path, capsys):
    recording = tmp_path / "lava_run.npz"
    network = str(exported.out_dir)
    assert main(["sim", network, "--backend", "lava", "--samples", "12", "--save-spikes", str(recording),
                 "--json"]) == 0
    capsys.readouterr()
    with np.load(recording, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["predictions", "spikes/fc1"]
        assert archive["spikes/fc1"].shape == (12, 4, 64) and archive["predictions"].shape == (12,)
    code = main(["parity", "--network", network, "--sides", "reference,recorded", "--recorded", str(recording),
                 "--samples", "12", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["layers"][0]["mismatched_entries"] == 0

    # One spike flipped, as a faulty chip or a misaligned read-out would: exit 1, and where.
    with np.load(recording, allow_pickle=False) as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    arrays["spikes/fc1"][7, 2, 30] ^= 1
    np.savez(recording, **arrays)
    code = main(["parity", "--network", network, "--sides", "reference,recorded", "--recorded", str(recording),
                 "--samples", "12"])
    out = capsys.readouterr().out
    assert code == 1
    reference = simulate(exported.network, digits.x_test[:12]).spikes["fc1"][7, 2, 30]
    assert f"sample 7, layer 'fc1', timestep 2, neuron 30: reference={int(reference)} recorded={1 - int(reference)}" in out


def test_a_recording_is_checked_against_the_network_naming_file_and_field(exported, digits, tmp_path):
    net = exported.network
    good = run_reference(net, digits.x_test[:5])
    path = tmp_path / "run.npz"
    save_recording(path, good)
    back = load_recording(path, net)
    assert np.array_equal(back.spikes["fc1"], good.spikes["fc1"]) and np.array_equal(back.predictions, good.predictions)
    assert len(load_recording(path, net, samples=3).predictions) == 3

    def broken(**changes) -> str:
        arrays = {"spikes/fc1": good.spikes["fc1"].astype(np.uint8), "predictions": good.predictions}
        arrays.update(changes)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        target = tmp_path / "broken.npz"
        np.savez(target, **arrays)
        with pytest.raises(UserError) as error:
            load_recording(target, net)
        message = str(error.value)
        assert message.startswith(f"{target}: ")
        return message

    assert "field 'spikes/fc1': missing" in broken(**{"spikes/fc1": None})
    assert "field 'predictions': missing: this network ends in a non-spiking readout" in broken(predictions=None)
    assert "field 'spikes/fc1': shape (5, 4, 63), expected (samples, 4, 64)" in \
        broken(**{"spikes/fc1": np.zeros((5, 4, 63), np.uint8)})
    assert "spikes must be 0 or 1" in broken(**{"spikes/fc1": np.full((5, 4, 64), 2, np.int64)})
    assert "spikes must be 0 or 1" in broken(**{"spikes/fc1": np.zeros((5, 4, 64), np.float32)})
    assert "field 'spikes/conv9': not a spiking layer of this network (its spiking layers: fc1)" in \
        broken(**{"spikes/conv9": np.zeros((5, 4, 64), np.uint8)})
    assert "field 'predictions': expected 5 integer classes" in broken(predictions=np.zeros(4, np.int64))
    with pytest.raises(UserError, match="holds 5 samples, fewer than the 9 to compare"):
        load_recording(path, net, samples=9)
    with pytest.raises(UserError, match="no such recording file"):
        load_recording(tmp_path / "absent.npz", net)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"spikes/fc1": np.array([object()], dtype=object)})
    with pytest.raises(UserError, match="not a spike recording"):  # never unpickled
        load_recording(pickled, net)


def test_without_a_readout_the_predictions_may_be_left_out(tmp_path):
    net = random_graph(6, (12,), [("a", ["input"], 10), ("b", ["a"], 4), ("out", ["b"], 3)], 3, thresholds=1500,
                       weight_low=-112)
    net.layers[-1].spiking = True
    net.layers[-1].threshold_schedule = np.array([1500])
    assert not net.has_readout
    x = np.random.default_rng(0).integers(0, 2, (6, 12))
    result = simulate(net, x, payloads=True)
    path = tmp_path / "run.npz"
    np.savez(path, **{f"spikes/{k}": v for k, v in result.spikes.items()})  # no predictions
    record = load_recording(path, net)
    assert set(record.spikes) == {"a", "b", "out"}
    assert np.array_equal(record.predictions, result.predictions)  # argmax of the last layer's spike counts


def test_parity_needs_the_file_with_the_recorded_side(exported, capsys):
    code = main(["parity", "--network", str(exported.out_dir), "--sides", "reference,recorded"])
    assert code == 2 and "--recorded FILE goes with the recorded side" in capsys.readouterr().err
    code = main(["parity", "--network", str(exported.out_dir), "--recorded", "x.npz"])
    assert code == 2 and "--recorded FILE goes with the recorded side" in capsys.readouterr().err
