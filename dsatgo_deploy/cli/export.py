"""``dsatgo export`` and ``dsatgo-export``: their flags and the command."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import types as types_
from ..errors import UserError
from .common import EXIT_OK, _Formatter, _load_data, _print_json


def cmd_export(args: argparse.Namespace) -> int:
    from ..checkpoint import check_loaded_contents, load_checkpoint
    from ..export.exporter import check_export_fits, export_checkpoint

    from ..export.targets import target_names

    if args.target not in target_names():
        raise UserError(f"unknown --target {args.target!r} (known: {', '.join(target_names())})")
    model = Path(args.model)
    from ..importers.nir import is_nir

    if is_nir(model):
        return _export_nir(args, model)
    # header and architecture only: a network too big for the system is refused from its shapes, before
    # the tensors are read and checked (then the whole checkpoint is, before any data is loaded)
    checkpoint = load_checkpoint(model, contents=False)
    out = Path(args.out) if args.out else model.with_name(f"{model.stem}_{args.target}")
    from ..fileio import check_output_folder

    check_output_folder(out, overwrite=args.overwrite, protect=[model])  # before any data is loaded
    check_export_fits(checkpoint, model, args.target, args.system, args.chips)  # from shapes, in seconds
    check_loaded_contents(checkpoint, model)
    calibration = labels = None
    if args.calibrate > 0:
        data = _load_data(checkpoint["meta"], args, checkpoint["arch"]["input_shape"])
        calibration, labels = data.x_train[: args.calibrate], data.y_train[: args.calibrate]
    result = export_checkpoint(model, out, target=args.target, calibration_x=calibration, calibration_y=labels,
                               threshold_policy=args.threshold_policy, input_bits=args.input_bits,
                               overwrite=args.overwrite, system=args.system, chips=args.chips,
                               nir_for=args.nir_for, checkpoint=checkpoint)
    if args.report:
        from ..pipeline.reports import write_export_report

        data = _load_data(checkpoint["meta"], args, checkpoint["arch"]["input_shape"])
        write_export_report(result, checkpoint, data.x_test, data.y_test, calibration_x=calibration,
                            system=args.system, chips=args.chips)
    _print_result(args, model, result, args.threshold_policy)
    return EXIT_OK


def _export_nir(args: argparse.Namespace, model: Path) -> int:
    """dsatgo-export of a NIR file (export/nir_export.py): calibration data only from --dataset."""
    from ..export.nir_export import THRESHOLD_POLICY, export_nir_file
    from ..export.nir_import import frozen_from_nir

    if args.report:
        raise UserError(f"{model}: --report needs a checkpoint (the ladder's torch rungs); run `dsatgo report` on the "
                        "export folder instead")
    out = Path(args.out) if args.out else model.with_name(f"{model.stem}_{args.target}")
    calibration = quantum = None
    if args.dataset and args.calibrate > 0:
        frozen, _ = frozen_from_nir(model, dt=args.dt, timesteps=args.timesteps)
        data = _load_data({}, args, frozen.input_shape)
        calibration, quantum = data.x_train[: args.calibrate], data.input_quantum
    result = export_nir_file(model, out, args.target, calibration_x=calibration, input_bits=args.input_bits,
                             dt=args.dt, timesteps=args.timesteps, overwrite=args.overwrite, system=args.system,
                             chips=args.chips, nir_for=args.nir_for, input_quantum=quantum)
    _print_result(args, model, result, THRESHOLD_POLICY)
    return EXIT_OK


def _print_result(args: argparse.Namespace, model: Path, result, threshold_policy: str) -> None:
    if args.json:
        _print_json({"out": str(result.out_dir), "manifest": result.manifest})
    else:
        print(f"exported {model} -> {result.out_dir}/ (target {args.target}, {threshold_policy} thresholds)")
        if result.manifest.get("netx", {}).get("reason"):
            print(f"  note: no netx file: {result.manifest['netx']['reason']}")
        for layer, q in zip(result.network.layers, result.layers):
            schedule = ",".join(str(v) for v in q.threshold_schedule_int) or "readout"
            print(f"  {layer.name:<10} {layer.fan_in:>5} -> {layer.num_neurons:<5} scale {q.scale:10.2f}  "
                  f"weight_exp {q.weight_exp:>2}  clipped {q.weights_clipped}  vth [{schedule}]")


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from ..export.targets import target_names
    from ..export.thresholds import POLICIES
    from ..loihi2_system import SYSTEMS
    from ..export.nir_writer import NIR_FOR

    parser.add_argument("model", help="checkpoint written by `dsatgo train` (model.pt), or a NIR file (snnTorch, "
                                      "Norse, Sinabs, ...; docs/interop.md, Importing NIR)")
    parser.add_argument("--target", default="loihi", choices=target_names(), help="what to write")
    parser.add_argument("--out", help="output folder (default: <model>_<target> beside the checkpoint)")
    parser.add_argument("--threshold-policy", default="schedule", choices=POLICIES,
                        help="schedule: DS-ATGO's T thresholds per layer; per-layer: one threshold per layer")
    parser.add_argument("--calibrate", type=types_.NON_NEGATIVE, default=256, metavar="N",
                        help="training samples used to size each layer's scale (0: worst-case bounds; a NIR file "
                             "is calibrated only with --dataset, else worst-case bounds and input in [0, 1])")
    parser.add_argument("--dataset", help="data set for calibration (default: the one the model was trained on)")
    parser.add_argument("--data-root", help="folder of a file-based data set (default: the one used in training)")
    parser.add_argument("--input-bits", type=types_.integer(*EXPORT_INPUT_BITS), default=8,
                        help=f"bits of the graded input spikes ({EXPORT_INPUT_BITS[0]} to {EXPORT_INPUT_BITS[1]})")
    parser.add_argument("--timesteps", type=types_.POSITIVE, metavar="T",
                        help="NIR file: timesteps per sample (default: the file's metadata 'timesteps')")
    parser.add_argument("--dt", type=types_.SECONDS, metavar="SECONDS",
                        help="NIR file: the time step its neurons are integrated with, forward Euler (default: the "
                             "file's metadata 'dt'; snnTorch 1.0.0 writes for 1e-4; a file from Norse 1.1.0's "
                             "to_nir(dt=d) runs as Norse ran it with d**2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder dsatgo-deploy wrote (never one holding other files)")
    parser.add_argument("--system", choices=list(SYSTEMS),
                        help="Loihi 2 system the resource check places the network on: one chip (default), "
                             "Kapoho Point (8 chips), Hala Point (1152 chips)")
    parser.add_argument("--chips", type=types_.POSITIVE, metavar="N", help="Loihi 2 system of N chips (instead of --system)")
    parser.add_argument("--nir-for", default="spec", choices=NIR_FOR,
                        help="target nir: the NIR spec (snnTorch reads it), or the parameters Norse or Sinabs "
                             "read (docs/interop.md) [spec]")
    parser.add_argument("--report", action="store_true",
                        help="also run the test set and write report.json, report.md and plots into <out>/report")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=cmd_export)


# Graded payloads: a signed input needs 2 bits (sign + magnitude); Loihi 2 graded spikes carry up to 24.
EXPORT_INPUT_BITS = (2, 24)
EXPORT_EXAMPLE = ("example:\n  dsatgo-export runs/digits/model.pt --target loihi --out runs/digits/loihi\n"
                  "  dsatgo-export snn.nir --dt 1e-4 --timesteps 8 --dataset digits --target loihi   (a NIR file)")


def add_export_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    export = sub.add_parser("export", help="freeze, quantize and write targets (same as dsatgo-export)",
                            formatter_class=_Formatter, epilog=EXPORT_EXAMPLE)
    _add_export_arguments(export)
    return export
