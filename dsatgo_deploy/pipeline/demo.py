"""The whole path on scikit-learn's digits, as ``make demo`` runs it.

train (DS-ATGO MLP) -> export (Loihi fixed point, netx) -> reference simulator
-> Lava fixed_pt -> parity (torch vs reference vs Lava) -> report (spikes,
synaptic operations, energy, latency, and the accuracy ladder float adaptive ->
frozen schedule -> per-layer threshold -> quantized -> Lava) -> <out>/report.json,
rendered as <out>/report.md with its PNG plots, with the figures printed.

report.json has the shape of every report (hardware_sim/report/report.schema.json),
with the sections only the demo fills: ``accuracies`` (per engine and rung),
``parity`` (per pair of engines), ``export`` (per layer), ``passed`` and the times.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dsatgo_deploy.fileio import atomic_directory, folder_manifest, write_json
from dsatgo_deploy.hardware_sim.parity import ParityReport, format_report
from dsatgo_deploy.hardware_sim.report import format_terminal


def _say(message: str) -> None:
    print(message, flush=True)


def run_demo(out: Path, epochs: int = 40, samples: int | None = None, lava: bool = True,
             hidden: tuple[int, ...] = (128,), timesteps: int = 4, seed: int = 0,
             overwrite: bool = False) -> dict[str, Any]:
    """Run every stage; return (and write to out/report.json, rendered to out/report.md) the figures.

    ``out`` is built under a temporary name beside it and renamed only when every stage is done, so
    an interrupted or failing demo leaves no partial folder; ``overwrite`` replaces a folder an
    earlier demo wrote (never one holding other files)."""
    if epochs < 1 or (samples is not None and samples < 1):
        from dsatgo_deploy.errors import UserError

        raise UserError(f"the demo needs epochs >= 1 and samples >= 1, got epochs {epochs}, samples {samples}")
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as staging:
        summary = _run_stages(staging, out, epochs, samples, lava, hidden, timesteps, seed)
        written = sorted(p.name for p in staging.iterdir() if p.is_file())
        folder_manifest(staging, written, written=["loihi"], kind="demo")
    return summary


def _run_stages(out: Path, final: Path, epochs: int, samples: int | None, lava: bool, hidden: tuple[int, ...],
                timesteps: int, seed: int) -> dict[str, Any]:
    """The demo's stages, writing into ``out`` (the temporary folder that becomes ``final``)."""
    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.hardware_sim import report as reports
    from dsatgo_deploy.hardware_sim.parity import apply_tolerance, compare
    from dsatgo_deploy.train.data import load_digits
    from dsatgo_deploy.train.loop import TrainConfig, train

    from .ladder import compute_ladder
    from .sides import run_reference, run_torch

    started = time.time()
    data = load_digits()
    x, y = data.x_test[:samples], data.y_test[:samples]

    _say(f"[1/5] training a DS-ATGO spiking MLP 64-{'-'.join(map(str, hidden))}-10, T={timesteps}, "
         f"{epochs} epochs on digits ({len(data.x_train)} train / {len(data.x_test)} test images)")
    model_path = out / "model.pt"
    train(TrainConfig(hidden=list(hidden), timesteps=timesteps, epochs=epochs, seed=seed, out=str(model_path),
                      device="cpu"), data)
    checkpoint = load_checkpoint(model_path)

    _say("[2/5] exporting to Loihi fixed point (threshold schedules, 8-bit weights, netx HDF5)")
    export_dir = out / "loihi"
    exported = export_checkpoint(model_path, export_dir, calibration_x=data.x_train[:256],
                                 source_label=str(final / model_path.name))
    net = exported.network

    _say(f"[3/5] simulating {len(x)} test samples: torch float model and the bit-exact reference")
    torch_run = run_torch(checkpoint, x)
    reference_run = run_reference(net, x)
    accuracy = {"float": float((torch_run.predictions == y).mean()),
                "quantized_reference": float((reference_run.predictions == y).mean())}
    lava_seconds = None
    # Every pair is judged by the defaults `dsatgo parity` applies (hardware_sim/parity.py default_tolerance).
    parity_reports = {"torch_vs_reference": apply_tolerance(compare(torch_run, reference_run, y))}
    lava_run = None
    if lava:
        _say(f"[4/5] running the same {len(x)} samples in Lava (Loihi2SimCfg fixed_pt), compiled once")
        from .sides import run_lava

        lava_started = time.time()
        lava_run = run_lava(net, x, progress=True)
        lava_seconds = round(time.time() - lava_started, 2)
        accuracy["lava"] = float((lava_run.predictions == y).mean())
        parity_reports["reference_vs_lava"] = apply_tolerance(compare(reference_run, lava_run, y))
        parity_reports["torch_vs_lava"] = apply_tolerance(compare(torch_run, lava_run, y))
    else:
        _say("[4/5] Lava run skipped (--no-lava)")

    _say("[5/5] counting spikes and synaptic operations; energy and latency per inference; accuracy ladder")
    ladder = compute_ladder(checkpoint, net, x, y, calibration_x=data.x_train[:256],
                            runs={"torch": torch_run, "reference": reference_run, "lava": lava_run})
    accuracy.update({"float_adaptive": ladder["rungs"][0]["accuracy"], "float_per_layer": ladder["rungs"][2]["accuracy"]})
    summary = reports.build_report(net, x, y, record=reference_run, ladder=ladder,
                                   source=str(final / export_dir.name), dataset="digits")
    summary["accuracies"] = accuracy
    summary["parity"] = {name: parity_section(report) for name, report in parity_reports.items()}
    summary["export"] = export_section(exported, final / export_dir.name)
    summary["passed"] = (all(r.passed for r in parity_reports.values())
                         and abs(accuracy["float"] - accuracy["quantized_reference"]) <= 0.02)
    if lava_seconds is not None:
        summary["lava_seconds"] = lava_seconds
    summary["seconds"] = round(time.time() - started, 1)
    write_json(out / "report.json", summary)
    rendered = reports.render(summary, out)

    _print_figures(summary, parity_reports, final, rendered)
    return summary


def export_section(exported: Any, folder: Path) -> dict[str, Any]:
    """What export did per layer (export.exporter.ExportResult, written to ``folder``), as report.json's
    ``export`` holds it."""
    return {"folder": str(folder), "layers": [
        {"name": q.name, "scale": q.scale, "weight_exp": q.weight_exp, "weights_clipped": q.weights_clipped,
         "threshold_schedule": q.threshold_schedule_int} for q in exported.layers]}


def parity_section(report: ParityReport) -> dict[str, Any]:
    """One comparison of two engines, as report.json's ``parity`` holds it."""
    return {
        "bit_exact": report.bit_exact, "class_agreement": report.class_agreement,
        "passed": report.passed, "failures": report.failures, "tolerance": vars(report.tolerance),
        "layers": [{"layer": l.layer, "spikes": list(l.spikes), "spike_train_agreement": l.spike_train_agreement,
                    "spike_count_agreement": l.spike_count_agreement, "mismatched_entries": l.mismatched_entries}
                   for l in report.layers],
        "first_divergence": None if report.first_divergence is None else vars(report.first_divergence),
    }


def _print_figures(summary: dict[str, Any], parity_reports: dict[str, ParityReport], final: Path,
                   rendered: list[Path]) -> None:
    """The terminal table, each parity report, and the demo's headline figures."""
    _say("")
    _say(format_terminal(summary))
    for report in parity_reports.values():
        _say("")
        _say(format_report(report))
    _say("")
    _say("=" * 72)
    accuracy = summary["accuracies"]
    _say(f"float accuracy (torch, adaptive thresholds frozen) : {accuracy['float']:.2%}")
    _say(f"quantized accuracy (reference simulator)           : {accuracy['quantized_reference']:.2%}")
    if "lava" in accuracy:
        _say(f"Lava accuracy (Loihi2SimCfg fixed_pt)              : {accuracy['lava']:.2%}")
        exact = parity_reports["reference_vs_lava"]
        entries = summary["samples"] * summary["timesteps"] * sum(l["neurons"] for l in summary["layers"] if l["spiking"])
        _say(f"reference vs Lava: {'bit-exact' if exact.bit_exact else 'DIFFERENT'} on {summary['samples']} samples "
             f"({entries} spike entries, {sum(l.mismatched_entries for l in exact.layers)} mismatched)")
        _say(f"torch vs Lava predicted-class agreement            : {parity_reports['torch_vs_lava'].class_agreement:.2%}")
    _say(f"torch vs reference spike-train agreement           : "
         + ", ".join(f"{l.layer} {l.spike_train_agreement:.2%}" for l in parity_reports["torch_vs_reference"].layers))
    _say(f"spikes per inference                                : {summary['totals']['spikes']:.1f}")
    _say(f"synaptic operations per inference                   : {summary['totals']['synops']:.1f}")
    for energy in summary["energy"]:
        pj, ann = energy["totals"]["snn_total_pj"], energy["totals"]["ann_pj"]
        _say(f"energy per inference, {energy['profile']:<10}                 : {pj / 1000:.3f} nJ"
             + (f" (equivalent ANN {ann / 1000:.3f} nJ)" if ann is not None else ""))
    _say(f"report: {final / 'report.json'}, {final / rendered[0].name} ({len(rendered) - 1} plots)   "
         f"total time {summary['seconds']} s   "
         + ("PASSED" if summary["passed"] else "FAILED"))
