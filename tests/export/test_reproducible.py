"""Exporting the same checkpoint twice gives byte-identical files (no timestamps anywhere)."""

from __future__ import annotations

import pytest

from dsatgo_deploy.export.exporter import export_checkpoint
from dsatgo_deploy.fileio import sha256_file


@pytest.mark.parametrize("target", ["loihi", "onnx", "nir"])
def test_exporting_twice_gives_the_same_bytes(trained_checkpoint, digits, tmp_path, target):
    digests = []
    for name in ("first", "second"):
        result = export_checkpoint(trained_checkpoint, tmp_path / name, target=target,
                                   calibration_x=digits.x_train[:64])
        digests.append({p.name: sha256_file(p) for p in sorted(result.out_dir.iterdir())})
    assert digests[0] == digests[1]
    expected = {"network.npz", "manifest.json", "export_report.json", "export_report.md"}
    expected |= {"loihi": {"network_netx.h5"}, "onnx": {"network.onnx", "network_float.onnx"},
                 "nir": {"network.nir"}}[target]
    assert set(digests[0]) == expected
