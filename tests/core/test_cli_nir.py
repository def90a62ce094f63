"""The command line on a NIR file (export/nir_import.py): `dsatgo-export model.nir --target loihi`, then
`dsatgo sim` on the export folder; `dsatgo sim` on the NIR file itself through the importer registry."""

from __future__ import annotations

import json

import pytest

from dsatgo_deploy.cli import export_main, main
from dsatgo_deploy.export.nir_import import import_nir
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.network import load
from tests.export import nir_models as models

FLAGS = ["--dt", "1e-4", "--timesteps", "8"]


@pytest.fixture(scope="module")
def nir_file(tmp_path_factory, digits):
    import torch

    torch.manual_seed(0)
    model = models.SnnTorchMLP()
    with torch.no_grad():
        model.fc1.weight.mul_(3.0)
    return models.write_snntorch(model, digits.x_test, tmp_path_factory.mktemp("cli_nir") / "snn.nir")


def test_export_a_nir_file_then_sim_the_folder(nir_file, digits, tmp_path, capsys):
    out = tmp_path / "loihi"
    assert export_main([str(nir_file), "--target", "loihi", *FLAGS, "--dataset", "digits", "--calibrate", "64",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "per-layer thresholds" in printed and "lif1" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_format"] == "NIR" and manifest["import"]["dt"] == 1e-4
    net = load(out / "network.npz")
    assert [layer.name for layer in net.layers] == ["lif1", "lif2"]  # the NIR neuron node keys
    # the same import in Python: the same network, so the same predictions
    expected, _, _ = import_nir(nir_file, dt=1e-4, timesteps=8, calibration_x=digits.x_train[:64],
                                input_quantum=digits.input_quantum)
    assert net.input_encoding == expected.input_encoding
    assert main(["sim", str(out), "--samples", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    predictions = simulate(expected, digits.x_test[:40]).predictions
    assert result["samples"] == 40 and result["accuracy"] == float((predictions == digits.y_test[:40]).mean())
    assert set(result["spikes_per_inference"]) == {"lif1", "lif2"}


def test_sim_reads_a_nir_file_through_the_registry(nir_file, digits, capsys):
    assert main(["sim", str(nir_file), *FLAGS, "--dataset", "digits", "--samples", "30", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected, _, _ = import_nir(nir_file, dt=1e-4, timesteps=8)  # no calibration: x in [0, 1] assumed
    predictions = simulate(expected, digits.x_test[:30]).predictions
    assert result["accuracy"] == float((predictions == digits.y_test[:30]).mean())
    assert main(["sim", str(nir_file), "--timesteps", "8", "--samples", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --dt SECONDS" in err
