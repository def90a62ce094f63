"""Export of a trained DS-ATGO MLP: folder contents, manifest, quantized accuracy, netx in Lava."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dsatgo_deploy import loihi, network
from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.exporter import (
    MANIFEST_FILE,
    NETWORK_FILE,
    NETX_FILE,
    REPORT_FILE,
    REPORT_MD_FILE,
    export_checkpoint,
)
from dsatgo_deploy.export.freeze import freeze, run_frozen
from dsatgo_deploy.export.quantize import quantize
from dsatgo_deploy.fileio import sha256_file
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.train.models import build_model


def test_output_folder_holds_network_netx_manifest_and_report(exported, trained_checkpoint):
    out = exported.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted([NETWORK_FILE, NETX_FILE, MANIFEST_FILE, REPORT_FILE,
                                                            REPORT_MD_FILE])
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["source_sha256"] == sha256_file(trained_checkpoint)
    assert manifest["tool_version"]
    assert manifest["quantization"]["threshold_policy"] == "schedule"
    for name, digest in manifest["files"].items():
        assert sha256_file(out / name) == digest
    report = json.loads((out / REPORT_FILE).read_text())
    assert [layer["name"] for layer in report["layers"]] == ["fc1", "readout"]
    assert len(report["layers"][0]["threshold_schedule_int"]) == 4


def test_frozen_network_computes_what_the_torch_model_computes(trained_checkpoint, digits):
    checkpoint = load_checkpoint(trained_checkpoint)
    model = build_model(checkpoint["arch"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(digits.x_test)).numpy()
        torch_spikes = model.traces()["fc1"].spikes.transpose(0, 1).numpy().astype(bool)
    readout, spikes, _ = run_frozen(freeze(checkpoint), digits.x_test)
    np.testing.assert_allclose(readout, logits, atol=1e-4)
    # float32 torch vs float64 numpy: a potential exactly at threshold may flip, nothing more
    assert (spikes["fc1"] != torch_spikes).mean() < 1e-3


def test_schedule_thresholds_are_the_running_averages(trained_checkpoint, exported):
    checkpoint = load_checkpoint(trained_checkpoint)
    running = checkpoint["state_dict"]["neurons.fc1.running_threshold"].numpy()
    layer = exported.network.layer("fc1")
    np.testing.assert_array_equal(layer.threshold_schedule, np.rint(running * layer.scale).astype(np.int64))
    assert len(set(layer.threshold_schedule.tolist())) > 1  # DS-ATGO really learned a schedule


def test_quantized_accuracy_within_two_points_of_float(trained_checkpoint, exported, digits):
    readout, _, _ = run_frozen(freeze(load_checkpoint(trained_checkpoint)), digits.x_test)
    float_accuracy = (readout.argmax(1) == digits.y_test).mean()
    quantized_accuracy = (simulate(exported.network, digits.x_test).predictions == digits.y_test).mean()
    assert float_accuracy > 0.85
    assert abs(float_accuracy - quantized_accuracy) <= 0.02


def test_weights_are_what_lava_dense_uses(exported):
    for layer in exported.network.layers:
        representable = loihi.representable_weights(torch.from_numpy(layer.weight)).numpy()
        np.testing.assert_array_equal(representable, layer.weight)
        assert np.abs(layer.weight).max() >= 200  # the 8-bit range is used


def test_per_layer_policy_collapses_thresholds(trained_checkpoint, digits, tmp_path):
    result = export_checkpoint(trained_checkpoint, tmp_path / "out", calibration_x=digits.x_train[:64],
                               threshold_policy="per-layer")
    assert result.network.layer("fc1").threshold_schedule.size == 1


def test_nan_weight_is_refused_and_no_folder_is_left(trained_checkpoint, tmp_path):
    checkpoint = torch.load(trained_checkpoint, weights_only=True)
    checkpoint["state_dict"]["synapses.fc1.weight"][3, 5] = float("nan")
    broken = tmp_path / "nan.pt"
    torch.save(checkpoint, broken)
    with pytest.raises(UserError, match=r"layer 'fc1'.*NaN"):
        export_checkpoint(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["nan.pt"]


def test_existing_output_folder_is_not_overwritten_without_asking(trained_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        export_checkpoint(trained_checkpoint, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_quantize_uses_a_negative_weight_exponent_when_sums_would_overflow_u():
    from dsatgo_deploy.export.freeze import FrozenLayer, FrozenNetwork

    rng = np.random.default_rng(0)
    wide = FrozenLayer("wide", ["input"], rng.uniform(0.5, 1.0, (4, 300)), np.zeros(4), 0.5, np.full(2, 1.0))
    readout = FrozenLayer("readout", ["wide"], rng.normal(size=(2, 4)), np.zeros(2), None, None)
    net, reports = quantize(FrozenNetwork(2, (300,), [wide, readout], 1.0 / 255))
    assert reports[0].weight_exp < 0
    x = np.ones((3, 300))
    a_bound = (np.abs(net.layers[0].weight).sum(1).max() * 255) >> -net.layers[0].weight_exp
    assert a_bound < (1 << 17)  # a << 6 stays inside u's 24 bits
    simulate(net, x)


def test_netx_file_runs_in_lava_like_the_reference(trained_checkpoint, digits, tmp_path):
    """The netx HDF5 file, loaded by lava.lib.dl.netx.hdf5.Network and run in Lava fixed_pt,
    equals our reference simulator (per-layer thresholds, the policy netx can express)."""
    result = export_checkpoint(trained_checkpoint, tmp_path / "out", calibration_x=digits.x_train[:64],
                               threshold_policy="per-layer")
    net = result.network
    from dsatgo_deploy import lava_compat

    lava_compat.install()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    steps, samples = net.timesteps, 20
    x = digits.x_test[:samples]
    payloads = net.input_encoding.encode(x)
    lava_net = netx.hdf5.Network(net_config=str(tmp_path / "out" / NETX_FILE), input_message_bits=8,
                                 reset_interval=steps, reset_offset=1)
    total = samples * steps + len(lava_net.layers)
    data = np.zeros((net.input_size, total), dtype=np.int32)
    data[:, : samples * steps] = np.repeat(payloads.T, steps, axis=1)
    source = Source(data=data)
    source.s_out.connect(lava_net.inp)
    hidden = lava_net.layers[0].neuron
    sink = Sink(shape=hidden.s_out.shape, buffer=total)
    hidden.s_out.connect(sink.a_in)
    monitor = Monitor()
    monitor.probe(lava_net.layers[-1].neuron.v, total)
    try:
        lava_net.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        wall_spikes = sink.data.get().astype(bool)
        wall_v = monitor.get_data()[lava_net.layers[-1].neuron.name]["v"]
    finally:
        lava_net.stop()
    reference = simulate(net, x)
    index = np.arange(samples)[:, None] * steps + np.arange(steps)[None, :]
    np.testing.assert_array_equal(wall_spikes[:, index + 1].transpose(1, 2, 0), reference.spikes["fc1"])
    np.testing.assert_array_equal(np.asarray(wall_v)[index + 2].astype(np.int64), reference.readout_trace)


def _write(tmp_path, checkpoint, name):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def test_a_network_too_large_for_one_chip_is_refused_naming_the_layer(tmp_path):
    from dsatgo_deploy.train.zoo import mlp_architecture
    from dsatgo_deploy.checkpoint import save_checkpoint
    from dsatgo_deploy.train.neuron import NeuronConfig

    # 1.2 M neurons in one layer: 379 cores of 3168 neurons (the Loihi 2 system model), 3 chips
    arch = mlp_architecture(4, [1_200_000], 2, 2, NeuronConfig()._asdict())
    model = build_model(arch)
    path = tmp_path / "huge.pt"
    save_checkpoint(path, arch, model.state_dict(), {"epoch": 0})
    with pytest.raises(UserError, match=r"layer 'fc1': the network needs 381 Loihi 2 cores \(3 chips\) and one Loihi 2 "
                                        r"chip has 128.*Smallest system that fits: Kapoho Point \(8 chips\)"):
        export_checkpoint(path, tmp_path / "out", calibration_x=np.random.default_rng(0).uniform(0, 1, (4, 4)))
    assert not (tmp_path / "out").exists()


def test_loihi1_has_no_graded_spikes(trained_checkpoint, tmp_path):
    with pytest.raises(UserError, match="layer 'fc1': Loihi 1 has no graded spikes"):
        export_checkpoint(trained_checkpoint, tmp_path / "out", target="loihi1")
    assert not (tmp_path / "out").exists()


def test_weights_that_do_not_fit_next_to_the_threshold_are_refused(trained_checkpoint, tmp_path):
    checkpoint = torch.load(trained_checkpoint, weights_only=True)
    checkpoint["state_dict"]["synapses.fc1.weight"] *= 1e6  # the threshold vanishes next to the weights
    with pytest.raises(UserError, match=r"layer 'fc1': field 'weight': the weights do not fit 8 bits"):
        export_checkpoint(_write(tmp_path, checkpoint, "big.pt"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_layer_export_does_not_know_is_refused(tmp_path):
    from dsatgo_deploy.train.zoo import convnet_architecture
    from dsatgo_deploy.checkpoint import save_checkpoint
    from dsatgo_deploy.train.neuron import NeuronConfig

    arch = convnet_architecture((1, 8, 8), 10, 2, NeuronConfig()._asdict(), channels=(4,), hidden=())
    arch["layers"][0]["neuron"] = "none"  # a conv without a neuron: no Loihi counterpart
    arch["layers"][0]["bn"] = False
    model = build_model(arch)
    path = tmp_path / "odd.pt"
    save_checkpoint(path, arch, model.state_dict(), {"epoch": 0})
    with pytest.raises(UserError, match=r"layer 'conv1': export needs a neuron after every conv2d"):
        export_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_report_states_the_cost_of_per_layer_thresholds(trained_checkpoint, digits, tmp_path):
    result = export_checkpoint(trained_checkpoint, tmp_path / "out", calibration_x=digits.x_train[:128],
                               calibration_y=digits.y_train[:128])
    report = json.loads((tmp_path / "out" / REPORT_FILE).read_text())
    cost = report["threshold_policy_cost"]
    counts = cost["layers"]["fc1"]["spikes_per_inference"]
    # calibration keeps the per-layer spike count close to the schedule's
    assert abs(counts["per-layer"] - counts["schedule"]) <= 0.02 * counts["schedule"] + 1
    assert set(cost["accuracy"]) == {"schedule", "per-layer"}
    assert report["resources"]["total_cores"] == 2
    markdown = (tmp_path / "out" / "export_report.md").read_text()
    assert "One threshold per layer against the schedule" in markdown and "| fc1 |" in markdown
    assert result.manifest["netx"]["per_layer_thresholds"]["fc1"] > 0
