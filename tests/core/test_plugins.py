"""Neuron kinds, targets and importers are plug-ins: a kind and a target registered from this file
alone (no edit of the package) run through the reference simulator, the format and export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dsatgo_deploy import network as N
from dsatgo_deploy.errors import NetworkFormatError
from dsatgo_deploy.export.targets import Target, TargetOutput, get_target, register_target, target_names
from dsatgo_deploy.fileio import write_json
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers import find_importer
from dsatgo_deploy.neurons import NeuronKind, neuron_kinds, register_neuron


class SubtractiveIF(NeuronKind):
    """Toy kind: integrate-and-fire without leak or bias, v += a; fires when v >= vth and subtracts vth."""

    name = "toy_subtractive_if"

    def validate(self, layer, timesteps, check) -> None:
        if layer.threshold_schedule.size != 1:
            check.fail("threshold_schedule", "a toy_subtractive_if neuron has one threshold")
        check.in_range("threshold_schedule", layer.threshold_schedule, 1, 1000)
        check.in_range("bias_mant", layer.bias_mant, 0, 0)

    def reference(self, layer, bias, a, steps):
        vth = int(layer.threshold_schedule[0])
        v = torch.zeros_like(a[:, 0])
        spikes = []
        for t in range(steps):
            v = v + a[:, t]
            fired = v >= vth
            v = torch.where(fired, v - vth, v)
            spikes.append(fired)
        return torch.stack(spikes, dim=1), None


register_neuron(SubtractiveIF())


def toy_network() -> N.DeployableNetwork:
    """input 4 spikes -> dense 3 toy neurons (vth 5) -> readout 2 (no leak)."""
    rng = np.random.default_rng(3)
    toy = N.Layer(name="toy", sources=[N.INPUT], weight=rng.integers(0, 5, (3, 4)), weight_exp=0,
                  bias_mant=np.zeros(3), bias_exp=0, threshold_schedule=[5], current_decay=4095, voltage_decay=0,
                  neuron="toy_subtractive_if")
    readout = N.Layer(name="out", sources=["toy"], weight=rng.integers(-40, 40, (2, 3)) * 2, weight_exp=0,
                      bias_mant=np.zeros(2), bias_exp=0, threshold_schedule=[], current_decay=4095, voltage_decay=0,
                      neuron="readout")
    return N.DeployableNetwork(timesteps=6, input_shape=(4,), input_encoding=N.InputEncoding.spikes(),
                               layers=[toy, readout])


def test_toy_neuron_kind_runs_in_the_reference_and_round_trips(tmp_path):
    assert "toy_subtractive_if" in neuron_kinds()
    net = toy_network()
    net.validate()
    N.save(net, tmp_path / "toy.npz")
    loaded = N.load(tmp_path / "toy.npz")
    assert [layer.neuron for layer in loaded.layers] == ["toy_subtractive_if", "readout"]
    x = np.random.default_rng(4).integers(0, 2, (5, 4))
    result = simulate(loaded, x, payloads=True)
    # the toy semantics, written out independently: v += W x every step, fire at v >= 5, v -= 5
    a = x @ loaded.layers[0].weight.T
    v = np.zeros_like(a)
    expected = []
    for _ in range(6):
        v = v + a
        fired = v >= 5
        v = np.where(fired, v - 5, v)
        expected.append(fired)
    np.testing.assert_array_equal(result.spikes["toy"], np.stack(expected, axis=1))
    assert result.spikes["toy"].any() and not result.spikes["toy"].all()
    # the toy spikes feed the readout exactly as recorded spikes fed from the input would
    readout_only = N.DeployableNetwork(timesteps=6, input_shape=(3,), input_encoding=N.InputEncoding.spikes(),
                                       layers=[N.Layer(**{**N.dataclasses.asdict(loaded.layers[1]),
                                                          "sources": [N.INPUT]})])
    replay = simulate(readout_only, result.spikes["toy"].astype(np.int64), payloads=True)
    np.testing.assert_array_equal(replay.readout_trace, result.readout_trace)


def test_toy_neuron_kind_validates_its_own_fields():
    net = toy_network()
    net.layers[0].threshold_schedule = np.array([0])
    with pytest.raises(NetworkFormatError, match="layer 'toy': field 'threshold_schedule': value 0 outside"):
        net.validate()
    net = toy_network()
    net.layers[0].neuron = "no_such_kind"
    with pytest.raises(NetworkFormatError, match="field 'neuron': unknown neuron kind 'no_such_kind'"):
        net.validate()


def test_version_1_files_load_with_kinds_inferred(tmp_path):
    net = toy_network()
    net.layers[0] = N.Layer(**{**N.dataclasses.asdict(net.layers[0]), "neuron": None,
                               "threshold_schedule": [5, 6, 7, 8, 9, 10], "current_decay": 100})
    net.validate()
    path = tmp_path / "v1.npz"
    N.save(net, path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays["header"].tobytes())
    assert header["format_version"] == N.FORMAT_VERSION == 3
    header["format_version"] = 1
    for spec in header["layers"]:
        del spec["neuron"]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    loaded = N.load(path)
    assert loaded.format_version == 1
    assert [layer.neuron_name for layer in loaded.layers] == ["scheduled_lif", "readout"]


def _write_toy(export, staging) -> TargetOutput:
    """Toy target: the layer names, neuron kinds and integer thresholds as JSON."""
    layers = [{"name": layer.name, "neuron": layer.neuron_name, "thresholds": layer.threshold_schedule.tolist()}
              for layer in export.network.layers]
    write_json(staging / "toy.json", {"target": export.target, "layers": layers})
    return TargetOutput(["toy.json"], {"toy": {"file": "toy.json", "layers": len(layers)}})


register_target(Target("toy", _write_toy, help="test target"))


def test_toy_target_is_written_by_export(tmp_path, trained_checkpoint):
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.fileio import sha256_file

    assert "toy" in target_names() and get_target("toy").chip is None
    result = export_checkpoint(trained_checkpoint, tmp_path / "out", target="toy", threshold_policy="per-layer")
    written = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert written["target"] == "toy"
    assert written["layers"] == [{"name": layer.name, "neuron": layer.neuron,
                                  "thresholds": layer.threshold_schedule.tolist()} for layer in result.network.layers]
    assert [layer["neuron"] for layer in written["layers"]] == ["cuba_lif", "readout"]
    assert result.manifest["toy"] == {"file": "toy.json", "layers": 2}
    assert result.manifest["files"]["toy.json"] == sha256_file(tmp_path / "out" / "toy.json")
    assert find_importer(tmp_path / "out" / "toy.json") is None
    assert find_importer(tmp_path / "out" / "network.npz") is None


def test_engines_without_a_step_for_the_toy_kind_refuse_it_by_name():
    from dsatgo_deploy.errors import UserError
    from dsatgo_deploy.export.netx_writer import check_netx_expressible
    from dsatgo_deploy.export.onnx_writer import build_onnx

    net = toy_network()
    with pytest.raises(UserError, match="neuron kind 'toy_subtractive_if' has no ONNX step"):
        build_onnx(net)
    with pytest.raises(UserError, match="layer 'toy': field 'neuron': netx holds CUBA LIF neurons"):
        check_netx_expressible(net)
