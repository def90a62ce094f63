"""dsatgo sim on a lava-dl netx HDF5 file (recognised by its signature, whatever its name)."""

from __future__ import annotations

import json
import shutil


from dsatgo_deploy.cli import main
from dsatgo_deploy.export.exporter import NETX_FILE
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.hardware_sim.reference import simulate


def test_sim_runs_a_netx_file(exported, digits, tmp_path, capsys):
    path = tmp_path / "model.net"  # not .h5: the file is recognised as HDF5
    shutil.copy(exported.out_dir / NETX_FILE, path)
    assert main(["sim", str(path), "--timesteps", "4", "--input-bits", "8", "--samples", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    net = read_netx(path, 8, timesteps=4)
    expected = simulate(net, digits.x_test[:40]).predictions
    assert result["samples"] == 40 and result["accuracy"] == float((expected == digits.y_test[:40]).mean())
    assert set(result["spikes_per_inference"]) == {"fc1"}


def test_sim_of_a_netx_file_needs_timesteps(exported, capsys):
    code = main(["sim", str(exported.out_dir / NETX_FILE), "--samples", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "a netx HDF5 file holds no timestep count: pass --timesteps T" in err and len(err.strip().splitlines()) == 1


def test_parity_and_report_take_a_netx_file(exported, digits, tmp_path, capsys):
    """A lava-dl user's netx file goes through parity (reference against Lava) and the report, given
    what the file does not hold: T and the input's bits."""
    path = tmp_path / "model.net"
    shutil.copy(exported.out_dir / NETX_FILE, path)
    netx_args = ["--timesteps", "4", "--input-bits", "8", "--dataset", "digits"]
    code = main(["parity", "--network", str(path), "--sides", "reference,onnx", "--samples", "12", "--json", *netx_args])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["class_agreement"] == 1.0
    code = main(["parity", "--network", str(path), "--sides", "reference,lava", "--samples", "6", "--json", *netx_args])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["samples"] == 6
    out = tmp_path / "report" / "report.json"
    assert main(["report", str(path), "--samples", "20", "--out", str(out), "--json", *netx_args]) == 0
    written = json.loads(out.read_text())
    net = read_netx(path, 8, timesteps=4)
    expected = simulate(net, digits.x_test[:20])
    assert written == json.loads(capsys.readouterr().out)
    assert written["accuracy"] == float((expected.predictions == digits.y_test[:20]).mean())
    assert (out.parent / "report.md").is_file()


def test_parity_of_a_netx_file_needs_timesteps(exported, capsys):
    code = main(["parity", "--network", str(exported.out_dir / NETX_FILE), "--samples", "5", "--dataset", "digits"])
    assert code == 2
    assert "pass --timesteps T" in capsys.readouterr().err
