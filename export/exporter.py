"""Export a checkpoint to an output folder: freeze, quantize, write targets, manifest.

Output folder (written under a temporary name and renamed only when complete):

    network.npz          the deployable network (dsatgo_deploy.network)
    network_netx.h5      lava-dl netx HDF5 (target loihi; per-layer thresholds), when netx can
                         express the network (chains of dense/conv layers; not residual ADDs:
                         the manifest then says why it is absent)
    manifest.json        source checkpoint hash, tool version, settings, file hashes
    export_report.json   per layer: scale, exponents, rounding and clipping counts, thresholds
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsatgo_deploy import __version__
from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import atomic_directory, sha256_file, write_json
from dsatgo_deploy.network import DeployableNetwork, save

from .freeze import freeze
from .netx import check_netx_expressible, write_netx
from .quantize import LayerQuantization, quantize

TARGETS = ("loihi",)
NETWORK_FILE = "network.npz"
NETX_FILE = "network_netx.h5"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "export_report.json"


@dataclass
class ExportResult:
    out_dir: Path
    network: DeployableNetwork
    layers: list[LayerQuantization]
    manifest: dict[str, Any]


def export_checkpoint(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    target: str = "loihi",
    calibration_x: np.ndarray | None = None,
    threshold_policy: str = "schedule",
    input_bits: int = 8,
    overwrite: bool = False,
) -> ExportResult:
    """Export ``checkpoint_path`` for ``target`` into ``out_dir``; nothing is left behind on failure."""
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    checkpoint = load_checkpoint(checkpoint_path)
    frozen = freeze(checkpoint, str(checkpoint_path))
    provenance = {
        "source_checkpoint": str(checkpoint_path),
        "source_sha256": checkpoint["sha256"],
        "tool": "dsatgo-deploy",
        "tool_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training": {k: v for k, v in checkpoint["meta"].items() if k in ("epoch", "dataset", "data_root", "test_accuracy")},
    }
    net, layer_reports = quantize(frozen, calibration_x, input_bits, threshold_policy, provenance)
    with atomic_directory(out_dir, overwrite=overwrite) as staging:
        save(net, staging / NETWORK_FILE)
        files = [NETWORK_FILE]
        netx_info: dict[str, Any] = {}
        if target == "loihi":
            try:
                check_netx_expressible(net)
            except UserError as exc:
                # Not an error: the deployable network and our Lava process graph cover it.
                netx_info = {"file": None, "reason": f"netx cannot express this network: {exc}"}
            else:
                thresholds = write_netx(net, staging / NETX_FILE)
                files.append(NETX_FILE)
                netx_info = {"file": NETX_FILE, "input_message_bits": net.input_encoding.bits,
                             "per_layer_thresholds": thresholds,
                             "note": "netx holds one threshold per layer; the threshold schedules are in "
                                     f"{NETWORK_FILE} and run by dsatgo's own Lava process graph"}
        report = {"target": target, "threshold_policy": threshold_policy, "timesteps": net.timesteps,
                  "input_encoding": asdict(net.input_encoding),
                  "layers": [asdict(r) | {"neurons": layer.num_neurons, "fan_in": layer.fan_in,
                                          "current_decay": layer.current_decay, "voltage_decay": layer.voltage_decay}
                             for r, layer in zip(layer_reports, net.layers)]}
        write_json(staging / REPORT_FILE, report)
        files.append(REPORT_FILE)
        manifest = {"format": "dsatgo-export-manifest", "format_version": 1, **provenance, "target": target,
                    "quantization": {k: v for k, v in net.quantization.items() if k != "layers"},
                    "netx": netx_info,
                    "files": {name: sha256_file(staging / name) for name in files}}
        write_json(staging / MANIFEST_FILE, manifest)
    return ExportResult(Path(out_dir), net, layer_reports, manifest)
