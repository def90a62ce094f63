"""The command line: help with examples, one-line errors with exit 2, parity exit codes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dsatgo_deploy.cli import build_parser, export_main, main

COMMANDS = ["train", "export", "sim", "parity", "report", "demo"]


def _console_script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_console_scripts_are_installed():
    for name in ("dsatgo", "dsatgo-export"):
        done = subprocess.run([_console_script(name), "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "example" in done.stdout


def _assert_one_line_error(capsys, code: int, needle: str) -> None:
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert needle in lines[0]


def test_missing_checkpoint(tmp_path, capsys):
    code = export_main([str(tmp_path / "absent.pt"), "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, code, "absent.pt: no such file")
    assert not (tmp_path / "out").exists()


def test_checkpoint_that_is_not_a_model(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    for path, needle in ((text, "not a dsatgo-deploy checkpoint: torch.save writes a zip archive"), (tensor, "not a dsatgo-deploy model")):
        code = export_main([str(path), "--out", str(tmp_path / "out")])
        _assert_one_line_error(capsys, code, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt", "tensor.pt"]


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/dsatgo-pwned"),))


def test_a_malicious_pickle_is_not_executed(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"format": "dsatgo-checkpoint", "x": _Payload()}, handle)
    Path("/tmp/dsatgo-pwned").unlink(missing_ok=True)
    code = export_main([str(evil), "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, code, "not a dsatgo-deploy checkpoint")
    assert not Path("/tmp/dsatgo-pwned").exists()


def test_unknown_target(trained_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser, before the checkpoint is read
        export_main([str(trained_checkpoint), "--target", "truenorth", "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, exit_info.value.code, "argument --target: invalid choice: 'truenorth'")
    assert not (tmp_path / "out").exists()


def test_export_then_sim_on_the_reference(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "loihi"
    assert export_main([str(trained_checkpoint), "--out", str(out), "--calibrate", "64"]) == 0
    capsys.readouterr()
    assert main(["sim", str(out), "--samples", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 50 and result["accuracy"] > 0.8
    assert result["spikes_per_inference"]["fc1"] > 0
    # The ONNX graph under onnxruntime gives the same figures (it is integer-exact).
    assert main(["sim", str(out), "--samples", "50", "--backend", "onnx", "--json"]) == 0
    onnx = json.loads(capsys.readouterr().out)
    assert onnx["backend"] == "onnx" and onnx["accuracy"] == result["accuracy"]
    assert onnx["spikes_per_inference"] == result["spikes_per_inference"]


def test_parity_exit_codes(trained_checkpoint, exported, capsys):
    common = ["parity", "--model", str(trained_checkpoint), "--network", str(exported.out_dir), "--samples", "60"]
    # torch float vs quantized reference: close, not identical; within the float side's default tolerance
    assert main(common + ["--sides", "torch,reference", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert not report["bit_exact"] and report["first_divergence"] is not None
    assert report["class_agreement"] > 0.9 and report["tolerance"]["min_spike_agreement"] == 0.95
    # demanding equality of a float side fails, naming the first divergence
    assert main(common + ["--sides", "torch,reference", "--min-class-agreement", "1",
                          "--min-spike-agreement", "1"]) == 1
    out = capsys.readouterr().out
    assert "first divergence: sample" in out and "given by the caller" in out and "FAIL: " in out
    code = main(common + ["--sides", "torch,nowhere"])
    _assert_one_line_error(capsys, code, "--sides takes two of")


def test_report_writes_json_with_energy(exported, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["report", str(exported.out_dir), "--samples", "30", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["samples"] == 30
    assert {e["profile"] for e in report["energy"]} == {"loihi1", "loihi2", "cmos45nm"}
    assert report["totals"]["synops"] > 0
    assert "Energy per inference" in capsys.readouterr().out


def test_parser_lists_every_command():
    help_text = build_parser().format_help()
    for command in COMMANDS:
        assert command in help_text


def test_a_conv_net_gets_its_data_as_images_through_export_sim_and_parity(tmp_path, capsys):
    """A conv net trained on synthetic 1x8x8 images: export, sim and parity load the same images,
    not the 32-value vectors the data set gives an MLP (which would mix samples when reshaped)."""
    from dsatgo_deploy.train.data import load_dataset
    from dsatgo_deploy.train.loop import TrainConfig, train

    model = tmp_path / "cnn" / "model.pt"
    train(TrainConfig(dataset="synthetic", model="convnet", channels=[4, "pool"], hidden=[16], timesteps=2,
                      epochs=3, batch_size=16, out=str(model), progress=False), load_dataset("synthetic", image=True))
    out = tmp_path / "cnn" / "loihi"
    assert export_main([str(model), "--out", str(out), "--calibrate", "64"]) == 0
    capsys.readouterr()
    assert main(["sim", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 103 and result["accuracy"] > 0.6  # synthetic's 20 % test split, 4 classes
    code = main(["parity", "--model", str(model), "--network", str(out), "--sides", "torch,reference",
                 "--samples", "103", "--min-class-agreement", "0.9", "--min-spike-agreement", "0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["class_agreement"] >= 0.9


def test_a_data_set_that_does_not_fit_the_network_is_refused(exported, capsys):
    """The digits MLP takes 64 values; synthetic vectors have 32: one line naming both shapes."""
    assert main(["sim", str(exported.out_dir), "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert "data set 'synthetic': samples of shape (32,), but the network takes (64,)" in err
    assert len(err.strip().splitlines()) == 1
