"""Target onnx: the exported step graph of the digits MLP and a conv net, run over T by onnxruntime,
equals the reference simulator bit for bit; the float graph equals the frozen float model; the manifest
records both; parity accepts onnx as a side."""

from __future__ import annotations

import json

import numpy as np
import pytest

import onnx  # noqa: E402  (installed by make: extras onnx)
import onnxruntime  # noqa: E402,F401

from dsatgo_deploy.train.zoo import convnet_architecture  # noqa: E402
from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from dsatgo_deploy.cli import export_main, main  # noqa: E402
from dsatgo_deploy.export.exporter import (  # noqa: E402
    MANIFEST_FILE,
    NETWORK_FILE,
    ONNX_FILE,
    ONNX_FLOAT_FILE,
    export_checkpoint,
)
from dsatgo_deploy.export.freeze import freeze, run_frozen  # noqa: E402
from dsatgo_deploy.fileio import sha256_file  # noqa: E402
from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx, run_onnx_float  # noqa: E402
from dsatgo_deploy.hardware_sim.parity import compare  # noqa: E402
from dsatgo_deploy.hardware_sim.reference import simulate  # noqa: E402
from dsatgo_deploy.pipeline.sides import run_side  # noqa: E402
from tests.export.test_freeze import NEURON, settled_checkpoint  # noqa: E402


def assert_same_run(onnx_result, reference) -> None:
    assert onnx_result.spikes.keys() == reference.spikes.keys()
    for name in reference.spikes:
        np.testing.assert_array_equal(onnx_result.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    np.testing.assert_array_equal(onnx_result.readout_trace, reference.readout_trace)


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory, trained_checkpoint, digits):
    out = tmp_path_factory.mktemp("onnx") / "mlp"
    return export_checkpoint(trained_checkpoint, out, target="onnx", calibration_x=digits.x_train[:256])


def firing_conv_checkpoint(path, digits) -> None:
    """A conv net (conv, 2x2 average pool, conv, dense, readout) on the 8x8 digits whose running thresholds
    and tdBN statistics settled on the data, its thresholds then lowered to 0.2x so that every layer of the
    untrained net fires (~10-45 % of neurons per step); written to ``path``."""
    arch = convnet_architecture((1, 8, 8), 10, 3, NEURON, channels=(8, "pool", 16), hidden=(32,))
    checkpoint = settled_checkpoint(arch, digits.x_train[:64].reshape(-1, 1, 8, 8), passes=4)
    state = checkpoint["state_dict"]
    for name in ("conv1", "conv2", "fc1"):
        state[f"neurons.{name}.running_threshold"] = state[f"neurons.{name}.running_threshold"] * 0.2
    save_checkpoint(path, arch, state, {"dataset": "digits"})


@pytest.fixture(scope="module")
def conv_checkpoint(tmp_path_factory, digits):
    path = tmp_path_factory.mktemp("conv") / "model.pt"
    firing_conv_checkpoint(path, digits)
    return path


def test_mlp_export_folder_and_manifest(mlp_onnx):
    out = mlp_onnx.out_dir
    assert {ONNX_FILE, ONNX_FLOAT_FILE, NETWORK_FILE, MANIFEST_FILE} <= {p.name for p in out.iterdir()}
    onnx.checker.check_model(str(out / ONNX_FILE), full_check=True)
    onnx.checker.check_model(str(out / ONNX_FLOAT_FILE), full_check=True)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["target"] == "onnx"
    entry = manifest["onnx"]
    assert entry["file"] == ONNX_FILE and entry["float_file"] == ONNX_FLOAT_FILE
    assert entry["kind"] == "integer" and entry["float"]["kind"] == "float"
    assert {"x", "t", "fc1.u", "fc1.v", "readout.u", "readout.v"} == set(entry["inputs"])
    assert {"fc1.spikes", "fc1.u_next", "readout.v_next"} <= set(entry["outputs"])
    for name in (ONNX_FILE, ONNX_FLOAT_FILE):
        assert manifest["files"][name] == sha256_file(out / name)


def test_mlp_onnx_file_equals_reference_bit_for_bit(mlp_onnx, digits):
    # the schedule (T distinct thresholds) is really exercised
    assert len(set(mlp_onnx.network.layer("fc1").threshold_schedule.tolist())) > 1
    reference = simulate(mlp_onnx.network, digits.x_test)
    result = run_onnx(mlp_onnx.out_dir / ONNX_FILE, digits.x_test)
    assert reference.spikes["fc1"].sum() > 0
    assert_same_run(result, reference)


def test_mlp_float_graph_equals_the_frozen_model(mlp_onnx, trained_checkpoint, digits):
    readout, spikes, _ = run_frozen(freeze(load_checkpoint(trained_checkpoint)), digits.x_test)
    result = run_onnx_float(mlp_onnx.out_dir / ONNX_FLOAT_FILE, digits.x_test)
    # float32 graph against the float64 frozen model: a potential at a threshold may flip, nothing more
    assert (result.spikes["fc1"] != spikes["fc1"]).mean() < 1e-3
    assert (result.predictions == readout.argmax(1)).mean() > 0.99
    np.testing.assert_allclose(result.readout, readout, atol=0.05)


def test_conv_net_onnx_equals_reference_bit_for_bit(conv_checkpoint, digits, tmp_path):
    x_cal = digits.x_train[:32].reshape(-1, 1, 8, 8)
    result = export_checkpoint(conv_checkpoint, tmp_path / "conv", target="onnx", calibration_x=x_cal)
    assert [layer.kind for layer in result.network.layers] == ["conv", "conv", "dense", "dense"]
    x = digits.x_test[:120].reshape(-1, 1, 8, 8)
    reference = simulate(result.network, x)
    assert all(reference.spikes[name].sum() > 0 for name in reference.spikes)
    assert_same_run(run_onnx(tmp_path / "conv" / ONNX_FILE, x), reference)
    # the float graph of the same conv net against the frozen float model
    frozen = freeze(load_checkpoint(conv_checkpoint))
    readout, spikes, _ = run_frozen(frozen, x)
    floated = run_onnx_float(tmp_path / "conv" / ONNX_FLOAT_FILE, x)
    for name in spikes:
        assert (floated.spikes[name] != spikes[name]).mean() < 2e-3, name
    assert (floated.predictions == readout.argmax(1)).mean() > 0.97


def test_per_layer_policy_graphs_hold_one_threshold_per_layer(trained_checkpoint, digits, tmp_path):
    result = export_checkpoint(trained_checkpoint, tmp_path / "pl", target="onnx", calibration_x=digits.x_train[:64],
                               threshold_policy="per-layer")
    for name in (ONNX_FILE, ONNX_FLOAT_FILE):
        model = onnx.load(str(tmp_path / "pl" / name))
        tables = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer
                  if t.name.startswith("fc1.threshold_table")}
        assert len(tables) == 1 and np.ptp(next(iter(tables.values()))) == 0
    assert_same_run(run_onnx(tmp_path / "pl" / ONNX_FILE, digits.x_test[:100]),
                    simulate(result.network, digits.x_test[:100]))


def test_parity_accepts_onnx_as_a_side(mlp_onnx, digits, capsys):
    x = digits.x_test[:50]
    records = [run_side(side, net=mlp_onnx.network, checkpoint=None, x=x) for side in ("reference", "onnx")]
    assert compare(*records, digits.y_test[:50]).bit_exact
    code = main(["parity", "--network", str(mlp_onnx.out_dir), "--sides", "reference,onnx", "--samples", "50",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["bit_exact"] and report["sides"] == ["reference", "onnx"]


def test_dsatgo_export_target_onnx_on_the_command_line(trained_checkpoint, tmp_path, capsys):
    code = export_main([str(trained_checkpoint), "--target", "onnx", "--out", str(tmp_path / "cli"),
                        "--calibrate", "32", "--json"])
    assert code == 0
    manifest = json.loads(capsys.readouterr().out)["manifest"]
    assert manifest["onnx"]["file"] == ONNX_FILE
    assert (tmp_path / "cli" / ONNX_FILE).is_file()
