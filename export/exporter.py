"""Export a checkpoint to an output folder: freeze, quantize, write targets, manifest.

Output folder (written under a temporary name and renamed only when complete):

    network.npz          the deployable network (dsatgo_deploy.network)
    network_netx.h5      lava-dl netx HDF5 (target loihi; per-layer thresholds), when netx can
                         express the network (chains of dense/conv layers; not residual ADDs:
                         the manifest then says why it is absent)
    manifest.json        source checkpoint hash, tool version, settings, file hashes
    export_report.json   per layer: scale, exponents, rounding and clipping counts, thresholds,
                         resources; the cost of one threshold per layer against the schedule
    export_report.md     the same for people
    network.onnx         target onnx: one timestep as an integer-exact ONNX graph (state in, state out;
                         export/onnx_writer.py), and network_float.onnx, the same for the frozen float model
    network.nir          target nir: the frozen float network as a NIR graph (export/nir_writer.py); threshold
                         schedules collapsed to the per-layer policy, with a warning per layer
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsatgo_deploy import __version__
from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import TOOL_NAME, atomic_directory, check_output_folder, sha256_file, write_json
from dsatgo_deploy.network import DeployableNetwork, save

from .freeze import freeze
from .resources import check_resources, check_system_fits
from .quantize import LayerQuantization, quantize
from .targets import ExportInput, get_target
from .targets.loihi import NETX_FILE
from .targets.nir import NIR_FILE
from .targets.onnx import ONNX_FILE, ONNX_FLOAT_FILE
from .thresholds import POLICIES, calibrate, compare_statistics

NETWORK_FILE = "network.npz"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "export_report.json"
REPORT_MD_FILE = "export_report.md"


@dataclass
class ExportResult:
    out_dir: Path
    network: DeployableNetwork
    layers: list[LayerQuantization]
    manifest: dict[str, Any]


def check_export_fits(checkpoint: dict, checkpoint_path: str | os.PathLike, target: str,
                      system: str | None = None, chips: int | None = None) -> None:
    """UserError when ``target``'s chip or system cannot hold the checkpoint's network, from its shapes
    alone (no tensor read: ``load_checkpoint(path, contents=False)`` suffices): the CLI calls it before it
    loads any calibration data."""
    writer = get_target(target)
    if writer.chip:
        check_system_fits(freeze(checkpoint, str(checkpoint_path), weights=False), writer.chip, system, chips)


def export_checkpoint(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    target: str = "loihi",
    calibration_x: np.ndarray | None = None,
    calibration_y: np.ndarray | None = None,
    threshold_policy: str = "schedule",
    input_bits: int = 8,
    overwrite: bool = False,
    source_label: str | None = None,
    system: str | None = None,
    chips: int | None = None,
    nir_for: str = "spec",
    checkpoint: dict | None = None,
) -> ExportResult:
    """Export ``checkpoint_path`` for ``target`` into ``out_dir``; nothing is left behind on failure.
    ``source_label``: the checkpoint's path as recorded (default ``checkpoint_path``; the demo gives
    the final one, not its temporary folder's). ``checkpoint``: its payload, when the caller has
    already loaded it with load_checkpoint (so it is not read twice)."""
    writer = get_target(target)
    check_output_folder(out_dir, overwrite=overwrite, protect=[checkpoint_path])  # before any work
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(checkpoint_path)
    frozen = freeze(checkpoint, str(checkpoint_path))
    provenance = {
        "source_checkpoint": source_label or str(checkpoint_path),
        "source_sha256": checkpoint["sha256"],
        "tool": TOOL_NAME,
        "tool_version": __version__,
        "training": {k: v for k, v in checkpoint["meta"].items() if k in ("epoch", "dataset", "data_root", "test_accuracy")},
    }
    if threshold_policy not in POLICIES:
        raise UserError(f"unknown threshold policy {threshold_policy!r} (known: {', '.join(POLICIES)})")
    if writer.chip:  # a network too big for the system is refused from its shapes, before calibration
        check_system_fits(frozen, writer.chip, system, chips)
    calibration = calibrate(frozen, calibration_x)  # two float passes over the calibration samples
    per_layer, schedule_run, per_layer_run = calibration.per_layer, calibration.schedule_run, calibration.per_layer_run
    policy_cost = (compare_statistics(frozen, per_layer, schedule_run, per_layer_run, len(calibration_x), calibration_y)
                   if schedule_run is not None else None)
    chosen, chosen_run = (frozen, schedule_run) if threshold_policy == "schedule" else (per_layer, per_layer_run)
    net, layer_reports = quantize(chosen, calibration_x, input_bits, threshold_policy, provenance,
                                  max_currents=None if chosen_run is None else chosen_run.max_abs_current)
    # before anything is written; a target that runs anywhere (onnx, nir) has no chip's limits
    resources = check_resources(net, writer.chip, system, chips) if writer.chip else None
    manifest = write_export_folder(out_dir, ExportInput(target, net, chosen, per_layer, source_sha256=checkpoint["sha256"],
                                                        options={"nir_for": nir_for}),
                                   layer_reports, provenance, threshold_policy, policy_cost, resources,
                                   overwrite=overwrite, protect=[checkpoint_path])
    return ExportResult(Path(out_dir), net, layer_reports, manifest)


def write_export_folder(out_dir: str | os.PathLike, export: ExportInput, layer_reports: list[LayerQuantization],
                        provenance: dict[str, Any], threshold_policy: str, policy_cost: dict | None,
                        resources: dict | None, *, overwrite: bool, protect: list) -> dict[str, Any]:
    """Write the output folder (module doc) atomically: network.npz, the target's files, the export report and
    the manifest, which it returns. Shared by checkpoints and imported files (export/nir_export.py)."""
    net, target = export.network, export.target
    writer = get_target(target)
    with atomic_directory(out_dir, overwrite=overwrite, protect=protect) as staging:
        save(net, staging / NETWORK_FILE)
        written = writer.write(export, staging)
        files = [NETWORK_FILE, *written.files]
        report = {"target": target, "threshold_policy": threshold_policy, "timesteps": net.timesteps,
                  "threshold_policy_cost": policy_cost, "resources": resources,
                  "input_encoding": asdict(net.input_encoding),
                  "layers": [asdict(r) | {"kind": layer.kind, "sources": layer.sources,
                                          "neurons": layer.num_neurons, "fan_in": layer.fan_in,
                                          "current_decay": layer.current_decay, "voltage_decay": layer.voltage_decay}
                             for r, layer in zip(layer_reports, net.layers)]}
        write_json(staging / REPORT_FILE, report)
        (staging / REPORT_MD_FILE).write_text(render_report_markdown(report, provenance))
        files += [REPORT_FILE, REPORT_MD_FILE]
        manifest = {"format": "dsatgo-export-manifest", "format_version": 1, **provenance, "target": target,
                    "quantization": {k: v for k, v in net.quantization.items() if k != "layers"},
                    **({"netx": {}} | written.manifest),
                    "files": {name: sha256_file(staging / name) for name in files}}
        write_json(staging / MANIFEST_FILE, manifest)
    return manifest


def _fmt_thresholds(values: list, limit: int = 6) -> str:
    shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def render_report_markdown(report: dict[str, Any], provenance: dict[str, Any]) -> str:
    """export_report.json as Markdown tables."""
    lines = [f"# Export report: {provenance.get('source_checkpoint')}", "",
             f"target `{report['target']}`, threshold policy `{report['threshold_policy']}`, T = {report['timesteps']}, "
             f"input: {report['input_encoding']['bits']}-bit graded spikes, step {report['input_encoding']['step']:.6g}"
             + (" (normalised per channel on the host)" if report['input_encoding'].get('mean') else ""),
             f"source SHA-256 `{provenance.get('source_sha256')}`, dsatgo-deploy {provenance.get('tool_version')}", "",
             "## Layers", "",
             "| layer | kind | neurons | fan-in | scale | w exp | rounded | clipped | zeroed | bias clipped | dv | thresholds (float) | thresholds (int) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for layer in report["layers"]:
        lines.append(f"| {layer['name']} | {layer.get('kind', 'dense')} | {layer['neurons']} | {layer['fan_in']} | "
                     f"{layer['scale']:.4g} | {layer['weight_exp']} | {layer['weights_rounded']} | "
                     f"{layer['weights_clipped']} | {layer['weights_zeroed']} | {layer['bias_clipped']} | "
                     f"{layer['voltage_decay']} | {_fmt_thresholds(layer['threshold_schedule_float']) or 'readout'} | "
                     f"{_fmt_thresholds(layer['threshold_schedule_int']) or '-'} |")
    cost = report.get("threshold_policy_cost")
    if cost:
        lines += ["", f"## One threshold per layer against the schedule ({cost['samples']} calibration samples, float)", "",
                  "| layer | schedule | per-layer threshold | spikes/inference, schedule | spikes/inference, per-layer |",
                  "|---|---|---:|---:|---:|"]
        for name, item in cost["layers"].items():
            counts = item["spikes_per_inference"]
            lines.append(f"| {name} | {_fmt_thresholds(item['schedule'])} | {item['per_layer_threshold']:.4g} | "
                         f"{counts['schedule']:.1f} | {counts['per-layer']:.1f} |")
        if cost.get("accuracy"):
            lines += ["", f"accuracy: schedule {cost['accuracy']['schedule']:.2%}, per-layer "
                          f"{cost['accuracy']['per-layer']:.2%}; predicted-class agreement {cost['class_agreement']:.2%}"]
    resources = report.get("resources")
    if resources:
        lines += ["", f"## Resources on {resources['chip']} ({resources['model']})", "",
                  "| layer | neurons | synapses | synaptic memory (bytes) | fan-in | cores |", "|---|---:|---:|---:|---:|---:|"]
        for item in resources["layers"]:
            lines.append(f"| {item['name']} | {item['neurons']} | {item['synapses']} | {item['synaptic_memory_bytes']} | "
                         f"{item['fan_in']} | {item['cores']} |")
        lines += ["", f"total: {resources['total_cores']} cores ({resources['limits']['cores']['value']} per chip, "
                      f"{resources['chips']} chip(s) used{' of ' + resources['system'] if 'system' in resources else ''}; "
                      f"old upper bound {resources['upper_bound_total_cores']}), "
                      f"{resources['total_neurons']} neurons, {resources['total_synapses']} synapses"]
    return "\n".join(lines) + "\n"
