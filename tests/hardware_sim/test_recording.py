"""Spike recordings of other engines, checked by the parity command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim.recording import load_recording, save_recording
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.pipeline.sides import run_reference
from tests.core.test_cli_netx import _pilotnet_sdnn_frames
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


def test_an_sdnn_recording_keeps_message_values_and_replays_bit_for_bit(lava_dl_files, tmp_path, capsys):
    """lava-dl's PilotNet SDNN (graded sigma-delta messages) saved by `dsatgo sim --save-spikes` holds each graded
    layer's message values, and `parity --sides reference,recorded` finds them equal, values included: one value
    changed (still non-zero) is found, which a recording of which messages were sent (the older format, still read)
    cannot see."""
    steps = 3
    _pilotnet_sdnn_frames(lava_dl_files, tmp_path, steps)
    network, recording = str(lava_dl_files / "gts/pilotnet_sdnn/network.net"), tmp_path / "sdnn.npz"
    data = ["--timesteps", str(steps), "--dataset", "events", "--data-root", str(tmp_path), "--json"]
    assert main(["sim", network, *data, "--save-spikes", str(recording)]) == 0
    capsys.readouterr()
    net = read_netx(network, timesteps=steps)
    graded = [layer.name for layer in net.layers if layer.spiking and layer.message_bits]
    with np.load(recording, allow_pickle=False) as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    assert sorted(k for k in arrays if k.startswith("messages/")) == [f"messages/{name}" for name in sorted(graded)]
    assert len(graded) == 8 and np.abs(arrays["messages/conv1"]).max() > 1  # values, not only 0/1
    record = load_recording(recording, net)
    reference = simulate(net, np.load(tmp_path / "test.npz")["frames"], payloads=True)
    for name in graded:
        np.testing.assert_array_equal(record.messages[name], reference.messages[name])

    def parity(path) -> dict:
        code = main(["parity", "--network", network, "--sides", "reference,recorded", "--recorded", str(path),
                     "--samples", "1", *data])
        report = json.loads(capsys.readouterr().out)
        assert code == (0 if report["bit_exact"] else 1)
        return report

    assert parity(recording)["bit_exact"]
    sample, t, neuron = np.argwhere(arrays["messages/conv1"] > 1)[0]
    arrays["messages/conv1"][sample, t, neuron] -= 1  # another value, still sent
    np.savez(tmp_path / "changed.npz", **arrays)
    report = parity(tmp_path / "changed.npz")
    assert report["first_divergence"]["layer"] == "conv1" and report["layers"][1]["mismatched_entries"] == 1
    np.savez(tmp_path / "older.npz", **{k: v for k, v in arrays.items() if not k.startswith("messages/")})
    assert parity(tmp_path / "older.npz")["bit_exact"]  # which messages were sent: all equal
    arrays["messages/conv1"][sample, t, neuron] = 0
    np.savez(tmp_path / "unsent.npz", **arrays)
    with pytest.raises(UserError, match=f"field 'messages/conv1': sample {sample}, timestep {t}, neuron {neuron}: "
                                        "message 0 but spike 1"):
        load_recording(tmp_path / "unsent.npz", net)
    np.savez(tmp_path / "spiking.npz", **{**arrays, "messages/nothing": arrays["messages/conv1"]})
    with pytest.raises(UserError, match="field 'messages/nothing': not a graded layer of this network"):
        load_recording(tmp_path / "spiking.npz", net)
