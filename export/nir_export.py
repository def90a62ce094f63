"""Export a NIR file (export/nir_import.py) the way a checkpoint is exported (exporter.py): the same output
folder, targets, report and manifest; the source is the NIR file (its path and SHA-256 in the provenance)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dsatgo_deploy import __version__
from dsatgo_deploy.fileio import TOOL_NAME, check_output_folder

from .exporter import ExportResult, write_export_folder
from .nir_import import checked_input_bits, frozen_from_nir, quantize_imported
from .resources import check_resources, check_system_fits
from .targets import ExportInput, get_target

THRESHOLD_POLICY = "per-layer"  # NIR neurons have one threshold (per neuron, rescaled to 1 per layer)


def export_nir_file(nir_path: str | os.PathLike, out_dir: str | os.PathLike, target: str = "loihi", *,
                    calibration_x: np.ndarray | None = None, input_bits: int | None = None, dt: float | None = None,
                    timesteps: int | None = None, overwrite: bool = False, system: str | None = None,
                    chips: int | None = None, nir_for: str = "spec", input_quantum: float | None = None) -> ExportResult:
    """Export the NIR file ``nir_path`` for ``target`` into ``out_dir``; nothing is left behind on failure.
    ``calibration_x``: samples that size each layer's scale and the input range (else worst-case bounds,
    x in [0, 1]); ``input_quantum``: the data's own input step, if any; ``dt``, ``timesteps``: where the file's
    metadata lacks them (export/nir_import.py import_nir)."""
    writer = get_target(target)
    check_output_folder(out_dir, overwrite=overwrite, protect=[nir_path])  # before any work
    bits = checked_input_bits(nir_path, input_bits)
    frozen, imported = frozen_from_nir(nir_path, dt=dt, timesteps=timesteps)
    frozen.input_quantum = input_quantum
    provenance = {"source_checkpoint": str(nir_path), "source_format": "NIR",
                  "source_sha256": imported["source_sha256"], "tool": TOOL_NAME, "tool_version": __version__,
                  "import": imported}
    if writer.chip:  # a network too big for the system is refused from its shapes, before calibration
        check_system_fits(frozen, writer.chip, system, chips)
    net, layer_reports = quantize_imported(nir_path, frozen, calibration_x, bits, provenance)
    resources = check_resources(net, writer.chip, system, chips) if writer.chip else None
    export = ExportInput(target, net, frozen, frozen, source_sha256=imported["source_sha256"],
                         options={"nir_for": nir_for})
    manifest = write_export_folder(out_dir, export, layer_reports, provenance, THRESHOLD_POLICY, None, resources,
                                   overwrite=overwrite, protect=[nir_path])
    return ExportResult(Path(out_dir), net, layer_reports, manifest)
