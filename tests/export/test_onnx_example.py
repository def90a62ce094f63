"""docs/onnx_example.py, which runs our integer ONNX graph with onnxruntime and numpy alone, gives the
reference simulator's outputs exactly, for the digits MLP and a conv net fed images."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

from dsatgo_deploy.export.exporter import ONNX_FILE, ONNX_FLOAT_FILE, export_checkpoint
from dsatgo_deploy.hardware_sim.reference import simulate
from tests.export.test_onnx import firing_conv_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "onnx_example.py"


def _example():
    spec = importlib.util.spec_from_file_location("onnx_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_imports_nothing_of_ours():
    source = EXAMPLE.read_text()
    assert "dsatgo_deploy" not in source.replace("without dsatgo_deploy", "")
    assert len(source.splitlines()) <= 32


def test_the_example_gives_the_reference_outputs_for_the_mlp(trained_checkpoint, digits, tmp_path):
    result = export_checkpoint(trained_checkpoint, tmp_path / "mlp", target="onnx", calibration_x=digits.x_train[:256])
    x = digits.x_test[:100]
    reference = simulate(result.network, x)
    outputs = _example().run(str(tmp_path / "mlp" / ONNX_FILE), x)
    np.testing.assert_array_equal(outputs, reference.readout_trace[:, -1])
    assert (outputs.argmax(1) == digits.y_test[:100]).mean() > 0.8  # the trained MLP still classifies
    np.save(tmp_path / "x.npy", x[:5])  # and from the command line, in a process without our package imported
    shown = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "mlp" / ONNX_FILE), str(tmp_path / "x.npy")],
                           capture_output=True, text=True, check=True).stdout
    assert shown.strip() == str(reference.readout_trace[:5, -1].argmax(1))


def test_the_example_gives_the_reference_outputs_for_a_conv_net_fed_images(digits, tmp_path):
    firing_conv_checkpoint(tmp_path / "conv.pt", digits)
    images = digits.x_train[:32].reshape(-1, 1, 8, 8)
    result = export_checkpoint(tmp_path / "conv.pt", tmp_path / "conv", target="onnx", calibration_x=images)
    x = digits.x_test[:60].reshape(-1, 1, 8, 8)
    reference = simulate(result.network, x)
    assert all(s.sum() > 0 for s in reference.spikes.values())
    np.testing.assert_array_equal(_example().run(str(tmp_path / "conv" / ONNX_FILE), x), reference.readout_trace[:, -1])
    shapes = {}
    for name in (ONNX_FILE, ONNX_FLOAT_FILE):  # both graphs take images, named and described in their metadata
        model = onnx.load(str(tmp_path / "conv" / name))
        shapes[name] = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        meta = json.loads({p.key: p.value for p in model.metadata_props}["dsatgo"])
        assert meta["input_names"] == ["x", "t"] and meta["timesteps"] == 3
        assert "T = timesteps" in meta["usage"]["output"]
    assert shapes[ONNX_FILE] == shapes[ONNX_FLOAT_FILE] == ["batch", 1, 8, 8]
    assert meta["output_name"] == "readout.current"
