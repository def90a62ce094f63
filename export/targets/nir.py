"""Target nir: the frozen float network as a NIR graph (export/nir_writer.py)."""

from __future__ import annotations

from pathlib import Path

from .registry import ExportInput, Target, TargetOutput, register_target

NIR_FILE = "network.nir"


def write(export: ExportInput, staging: Path) -> TargetOutput:
    from ..nir_writer import write_nir

    nir_for = export.options.get("nir_for", "spec")  # the spec, or a consumer's variant (docs/interop.md)
    return TargetOutput([NIR_FILE], {"nir": {"file": NIR_FILE, **write_nir(export.frozen, staging / NIR_FILE,
                                                                            export.per_layer, nir_for=nir_for)}})


register_target(Target("nir", write, help="the float network as NIR (threshold schedules collapsed)"))
