"""dsatgo-export --system / --chips: the Loihi 2 system the resource check places the network on."""

from __future__ import annotations

import json

from dsatgo_deploy.cli import export_main
from dsatgo_deploy.export.exporter import REPORT_FILE
from tests.core.test_cli import _assert_one_line_error


def test_export_on_a_named_system_and_a_bad_chip_count(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_main([str(trained_checkpoint), "--out", str(out), "--calibrate", "16", "--system", "hala-point"]) == 0
    resources = json.loads((out / REPORT_FILE).read_text())["resources"]
    assert (resources["system"], resources["system_chips"], resources["chips"]) == ("Hala Point (1152 chips)", 1152, 1)
    assert resources["total_cores"] == resources["upper_bound_total_cores"] == 2  # fc1 (64 x 64) and the readout
    assert "1 chip(s) used of Hala Point (1152 chips)" in (out / "export_report.md").read_text()
    capsys.readouterr()
    try:  # a bad value is refused when parsed (argparse exits)
        code = export_main([str(trained_checkpoint), "--out", str(tmp_path / "bad"), "--calibrate", "16", "--chips", "0"])
    except SystemExit as exc:
        code = int(exc.code)
    _assert_one_line_error(capsys, code, "--chips: must be >= 1, got 0")
    assert not (tmp_path / "bad").exists()


def test_a_network_too_big_for_the_system_is_refused_before_any_data_is_loaded(tmp_path, monkeypatch, capsys):
    """The refusal comes from the architecture's shapes: no calibration data set is read first (a real one,
    CIFAR or ImageNet, takes longer to load than the check)."""
    from dsatgo_deploy.checkpoint import save_checkpoint
    from dsatgo_deploy.train.models import build_model
    from dsatgo_deploy.train.neuron import NeuronConfig
    from dsatgo_deploy.train.zoo import mlp_architecture

    arch = mlp_architecture(4, [1_200_000], 2, 2, NeuronConfig()._asdict())  # 381 cores on 3 chips
    path = tmp_path / "huge.pt"
    save_checkpoint(path, arch, build_model(arch).state_dict(), {"epoch": 0, "dataset": "digits"})

    def no_data(*args, **kwargs):
        raise AssertionError("the data set was loaded before the resource check")

    monkeypatch.setattr("dsatgo_deploy.cli.export._load_data", no_data)
    code = export_main([str(path), "--out", str(tmp_path / "out")])
    _assert_one_line_error(capsys, code, "layer 'fc1': the network needs 381 Loihi 2 cores")
    assert not (tmp_path / "out").exists()
