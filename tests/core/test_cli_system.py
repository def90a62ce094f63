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
