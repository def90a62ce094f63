"""The command line: ``dsatgo train | export | sim | parity | report | demo`` and ``dsatgo-export``.

Only this module knows every stage. Errors a user can fix print one line on
stderr (``dsatgo: error: ...``) and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__
from . import cli_types as types_
from .errors import UserError

EXIT_OK, EXIT_PARITY_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; defaults shown only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Bad flags print one line, ``prog: error: ...`` (no usage block: --help has it), and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def _load_data(training: dict, args: argparse.Namespace, input_shape: tuple[int, ...] | list[int]):
    """The data set a model was trained on (from its checkpoint meta or the network's
    provenance), unless --dataset / --data-root say otherwise, shaped as the model's
    ``input_shape`` (images for a conv net, vectors for an MLP); UserError when its samples
    do not fit that shape."""
    import math

    from .train.data import load_dataset

    name = getattr(args, "dataset", None) or training.get("dataset") or "digits"
    root = getattr(args, "data_root", None) or training.get("data_root")
    try:
        data = load_dataset(name, root=root, image=len(input_shape) > 1)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if math.prod(data.input_shape) != math.prod(input_shape):
        raise UserError(f"data set {name!r}: samples of shape {tuple(data.input_shape)}, but the network takes "
                        f"{tuple(input_shape)} (pass the data set it was trained on with --dataset)")
    return data


def _load_network(path: str, timesteps: int | None = None, input_bits: int | None = None,
                  input_shape: tuple[int, ...] | None = None):
    """A deployable network from a .npz file, an export folder holding network.npz, or a lava-dl netx
    HDF5 file (recognised by its HDF5 signature, whatever its name; lava-dl's own hold no T or input
    encoding: pass ``timesteps``, ``input_bits`` for graded input (0 for spikes) and, for a file that
    starts with a conv layer and has no input layer, ``input_shape``; ours carry them). A file of an
    export folder is first checked against the folder's manifest.json hashes."""
    from .export.exporter import NETWORK_FILE
    from .fileio import verify_manifest
    from .importers import find_importer
    from .network import load

    candidate = Path(path)
    if candidate.is_dir():
        verify_manifest(candidate)
        candidate = candidate / NETWORK_FILE
    else:
        verify_manifest(candidate.parent, [candidate.name])
    importer = find_importer(candidate)  # a foreign file (dsatgo_deploy/importers), by its content
    if importer is not None:
        return importer.read(candidate, timesteps=timesteps, input_bits=input_bits, input_shape=input_shape)
    return load(candidate)


def _check_network_source(net, checkpoint: dict | None, model: str | None) -> None:
    """UserError when ``net`` records the SHA-256 of the checkpoint it was exported from and
    ``checkpoint`` is another one (a lava-dl netx file records none: nothing to check)."""
    recorded = net.provenance.get("source_sha256") if net is not None else None
    if checkpoint is not None and recorded and recorded != checkpoint["sha256"]:
        raise UserError(f"--model {model} (SHA-256 {checkpoint['sha256']}) is not the checkpoint the network was "
                        f"exported from (SHA-256 {recorded}); pass that checkpoint or export this one")


# --------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    import os
    from dataclasses import fields

    from .train.loop import TrainConfig, metrics_path, train
    from .train.presets import describe_presets, preset_fields

    values: dict[str, Any] = {}
    if args.preset == "list":
        print("presets (flags and --config override their fields):\n" + describe_presets())
        return EXIT_OK
    if args.preset:
        try:
            values.update(preset_fields(args.preset))
        except ValueError as exc:
            raise UserError(f"--preset: {exc}") from None
    if args.config:
        config_path = Path(args.config)
        try:
            values.update(json.loads(config_path.read_text()))
        except FileNotFoundError:
            raise UserError(f"{config_path}: no such config file") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(values, dict):
            raise UserError(f"{config_path}: expected a JSON object of TrainConfig fields")
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{config_path}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for name in ("dataset", "data_root", "model", "hidden", "channels", "width", "timesteps", "epochs", "batch_size",
                 "lr", "momentum", "optimizer", "ablation", "seed", "device", "out", "weight_decay", "loss",
                 "label_smoothing", "surrogate_variant", "decay_mode"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.no_augment:
        values["augment"] = False
    if args.autoaugment is not None:
        values["autoaugment"] = args.autoaugment
    if args.resume:
        values["resume"] = True
    values["progress"] = not args.no_progress and not args.json
    try:
        config = TrainConfig(**values)
        config.validate()
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad training configuration: {exc}") from None
    from .fileio import check_output_file

    # before any training: a checkpoint is replaced only when asked to
    check_output_file(config.out, overwrite=args.resume or args.overwrite, flag="--resume or --overwrite")
    started = time.time()
    summary = train(config)
    summary["seconds"] = round(time.time() - started, 1)
    if int(os.environ.get("RANK", "0")) != 0:
        return EXIT_OK  # under torchrun only process 0 reports and plots
    if args.plot:
        from .train.plots import plot_metrics

        out = Path(config.out)
        summary["plots"] = [str(p) for p in plot_metrics(metrics_path(out), out.with_suffix(""))]
    if args.json:
        _print_json({k: v for k, v in summary.items() if k != "history"})
    else:
        print(f"trained {config.model} on {config.dataset}: test accuracy {summary['test_accuracy']:.2%} "
              f"after {config.epochs} epochs ({summary['seconds']} s); checkpoint {summary['checkpoint']}")
        for plot in summary.get("plots", []):
            print(f"  plot {plot}")
    return EXIT_OK


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .export.exporter import export_checkpoint

    from .export.targets import target_names

    if args.target not in target_names():
        raise UserError(f"unknown --target {args.target!r} (known: {', '.join(target_names())})")
    model = Path(args.model)
    checkpoint = load_checkpoint(model)  # fail early, with one line, before any data is loaded
    out = Path(args.out) if args.out else model.with_name(f"{model.stem}_{args.target}")
    from .fileio import check_output_folder

    check_output_folder(out, overwrite=args.overwrite, protect=[model])  # before any data is loaded
    calibration = labels = None
    if args.calibrate > 0:
        data = _load_data(checkpoint["meta"], args, checkpoint["arch"]["input_shape"])
        calibration, labels = data.x_train[: args.calibrate], data.y_train[: args.calibrate]
    result = export_checkpoint(model, out, target=args.target, calibration_x=calibration, calibration_y=labels,
                               threshold_policy=args.threshold_policy, input_bits=args.input_bits,
                               overwrite=args.overwrite, system=args.system, chips=args.chips,
                               nir_for=args.nir_for)
    if args.report:
        from .pipeline.reports import write_export_report

        data = _load_data(checkpoint["meta"], args, checkpoint["arch"]["input_shape"])
        write_export_report(result, checkpoint, data.x_test, data.y_test, calibration_x=calibration,
                            system=args.system, chips=args.chips)
    if args.json:
        _print_json({"out": str(result.out_dir), "manifest": result.manifest})
    else:
        print(f"exported {model} -> {result.out_dir}/ (target {args.target}, {args.threshold_policy} thresholds)")
        if result.manifest.get("netx", {}).get("reason"):
            print(f"  note: no netx file: {result.manifest['netx']['reason']}")
        for layer, q in zip(result.network.layers, result.layers):
            schedule = ",".join(str(v) for v in q.threshold_schedule_int) or "readout"
            print(f"  {layer.name:<10} {layer.fan_in:>5} -> {layer.num_neurons:<5} scale {q.scale:10.2f}  "
                  f"weight_exp {q.weight_exp:>2}  clipped {q.weights_clipped}  vth [{schedule}]")
    return EXIT_OK


# --------------------------------------------------------------------------- sim


def cmd_sim(args: argparse.Namespace) -> int:
    from .pipeline.sides import run_side

    net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape)
    if args.report:  # outputs are checked before the run
        from .hardware_sim.report import check_report_output

        check_report_output(args.report)
    if args.save_spikes:
        from .fileio import check_output_file

        check_output_file(args.save_spikes, overwrite=True)
    data = _load_data(net.provenance.get("training", {}), args, net.input_shape)
    x, y = data.x_test[: args.samples], data.y_test[: args.samples]
    started = time.time()
    record = run_side(args.backend, net=net, checkpoint=None, x=x, device=args.device, progress=not args.json)
    seconds = time.time() - started
    if args.save_spikes:
        from .hardware_sim.recording import save_recording

        save_recording(args.save_spikes, record)
    accuracy = float((record.predictions == y).mean())
    spikes = {name: int(s.sum()) for name, s in record.spikes.items()}
    result = {"backend": args.backend, "samples": len(x), "accuracy": accuracy, "seconds": round(seconds, 3),
              "spikes_per_inference": {k: v / max(len(x), 1) for k, v in spikes.items()}}
    if args.report:
        from .pipeline.reports import write_network_report

        write_network_report(net, x, y, args.report, record=record, source=args.network, device=args.device)
        result["report"] = str(args.report)
    if args.json:
        _print_json(result)
    else:
        print(f"{args.backend}: accuracy {accuracy:.2%} on {len(x)} test samples in {seconds:.2f} s")
        for name, count in spikes.items():
            print(f"  {name:<10} {count / max(len(x), 1):10.1f} spikes per inference")
    return EXIT_OK


# --------------------------------------------------------------------------- parity


def cmd_parity(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .hardware_sim.parity import apply_tolerance, compare, format_report
    from .pipeline.sides import SIDES, run_side

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if len(sides) != 2 or any(s not in SIDES for s in sides):
        raise UserError(f"--sides takes two of {', '.join(SIDES)} separated by a comma, got {args.sides!r}")
    checkpoint = load_checkpoint(args.model) if args.model else None
    net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape) if args.network else None
    _check_network_source(net, checkpoint, args.model)
    if "torch" in sides and checkpoint is None:
        raise UserError("the torch side needs --model MODEL.pt")
    if any(s != "torch" for s in sides) and net is None:
        raise UserError("the reference, lava, onnx and recorded sides need --network (an export folder, "
                        "network.npz or a netx file)")
    if ("recorded" in sides) != (args.recorded is not None):
        raise UserError("--recorded FILE goes with the recorded side: --sides reference,recorded --recorded FILE")
    data = _load_data(net.provenance.get("training", {}) if net else checkpoint["meta"], args,
                      net.input_shape if net else checkpoint["arch"]["input_shape"])
    x, y = data.x_test[: args.samples], data.y_test[: args.samples]
    records = [run_side(side, net=net, checkpoint=checkpoint, x=x, device=args.device, progress=not args.json,
                        recording=args.recorded) for side in sides]
    # Tolerances the user left out take the pair's defaults (hardware_sim/parity.py default_tolerance).
    report = apply_tolerance(compare(records[0], records[1], y), args.min_class_agreement, args.min_spike_agreement)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_report(report))
    return EXIT_OK if report.passed else EXIT_PARITY_FAILED


# --------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    from .pipeline import reports

    if Path(args.network).suffix == ".json":  # an existing report.json: render it only
        out = Path(args.network)
        report = reports.load_report(out)
        files = reports.render(report, out.parent, args.format)
    else:
        if args.lava and not args.model:
            raise UserError("--lava runs the ladder's Lava rung and needs --model (the trained checkpoint)")
        net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape)
        out = Path(args.out) if args.out else (Path(args.network) if Path(args.network).is_dir()
                                                else Path(args.network).parent) / reports.REPORT_JSON
        reports.check_report_output(out.parent, args.format, out.name)  # before any work
        checkpoint = None
        if args.model:
            from .checkpoint import load_checkpoint

            checkpoint = load_checkpoint(args.model)
            _check_network_source(net, checkpoint, args.model)
        data = _load_data(net.provenance.get("training", {}), args, net.input_shape)
        x, y = data.x_test[: args.samples], data.y_test[: args.samples]
        record = None
        if args.backend == "lava":
            from .pipeline.sides import run_lava

            record = run_lava(net, x, progress=not args.json)
        calibration = data.x_train[: args.calibrate] if checkpoint is not None and args.calibrate > 0 else None
        report, files = reports.write_network_report(
            net, x, y, out.parent, profiles=args.profile, record=record, checkpoint=checkpoint,
            calibration_x=calibration, lava=args.lava, fmt=args.format, source=args.network, device=args.device,
            json_name=out.name, system=args.system, chips=args.chips)
    if args.json:
        _print_json(report)
    else:
        print(reports.format_terminal(report))
        print("report written: " + ", ".join(str(f) for f in files))
    return EXIT_OK


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline.demo import run_demo

    summary = run_demo(Path(args.out), epochs=args.epochs, samples=args.samples, lava=not args.no_lava,
                       overwrite=args.overwrite)
    if args.json:
        _print_json(summary)
    return EXIT_OK if summary.get("passed", False) else EXIT_PARITY_FAILED


# --------------------------------------------------------------------------- parser


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from .export.targets import target_names
    from .export.thresholds import POLICIES
    from .loihi2_system import SYSTEMS
    from .export.nir_writer import NIR_FOR

    parser.add_argument("model", help="checkpoint written by `dsatgo train` (model.pt)")
    parser.add_argument("--target", default="loihi", choices=target_names(), help="what to write")
    parser.add_argument("--out", help="output folder (default: <model>_<target> beside the checkpoint)")
    parser.add_argument("--threshold-policy", default="schedule", choices=POLICIES,
                        help="schedule: DS-ATGO's T thresholds per layer; per-layer: one threshold per layer")
    parser.add_argument("--calibrate", type=types_.NON_NEGATIVE, default=256, metavar="N",
                        help="training samples used to size each layer's scale (0: worst-case bounds)")
    parser.add_argument("--dataset", help="data set for calibration (default: the one the model was trained on)")
    parser.add_argument("--data-root", help="folder of a file-based data set (default: the one used in training)")
    parser.add_argument("--input-bits", type=types_.integer(*EXPORT_INPUT_BITS), default=8,
                        help=f"bits of the graded input spikes ({EXPORT_INPUT_BITS[0]} to {EXPORT_INPUT_BITS[1]})")
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
NETX_INPUT_BITS = (0, 24)  # 0: binary spikes
EXPORT_EXAMPLE = "example:\n  dsatgo-export runs/digits/model.pt --target loihi --out runs/digits/loihi"


def _add_netx_arguments(parser: argparse.ArgumentParser) -> None:
    """What a lava-dl netx HDF5 file does not say about itself (see :func:`_load_network`)."""
    parser.add_argument("--timesteps", type=types_.POSITIVE,
                        help="netx file: timesteps per sample (lava-dl's netx files do not hold it; ours do)")
    parser.add_argument("--input-bits", type=types_.integer(*NETX_INPUT_BITS), default=None,
                        help="netx file: bits of graded input payloads (0: binary spikes, x != 0; at most "
                             f"{NETX_INPUT_BITS[1]}; default: what the file says, else 0)")
    parser.add_argument("--input-shape", type=types_.shape, metavar="C,H,W",
                        help="netx file without an input layer whose first layer is a conv: its input shape")


def _add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=types_.SECONDS, metavar="SECONDS",
                        help="end a Lava run that takes longer (its processes stopped): one line, exit 2")


def _preset_table() -> str:
    from .train.presets import describe_presets

    return describe_presets()


def build_parser() -> argparse.ArgumentParser:
    from .hardware_sim.parity import FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT
    from .hardware_sim.report import FORMATS
    from .loihi2_system import SYSTEMS
    from .pipeline.sides import SIDES
    from .train.data import DATASETS
    from .train.loop import MODELS, LOSSES, OPTIMIZERS, SURROGATE_VARIANTS
    from .train.neuron import ABLATIONS, DECAY_MODES

    parser = _Parser(
        prog="dsatgo", formatter_class=_Formatter,
        description="Train DS-ATGO spiking networks, export them to Loihi fixed point, "
                    "and check them in Lava and a bit-exact reference simulator.",
        epilog="example (the whole path on scikit-learn's digits):\n"
               "  dsatgo train --out runs/digits/model.pt\n"
               "  dsatgo-export runs/digits/model.pt --target loihi --out runs/digits/loihi\n"
               "  dsatgo parity --model runs/digits/model.pt --network runs/digits/loihi --sides torch,lava\n"
               "  dsatgo report runs/digits/loihi")
    parser.add_argument("--version", action="version", version=f"dsatgo-deploy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a DS-ATGO network", formatter_class=_Formatter,
        epilog="examples:\n"
               "  dsatgo train --dataset digits --hidden 128 --timesteps 4 --epochs 40 --out runs/digits/model.pt\n"
               "  dsatgo train --dataset digits --model convnet --epochs 20 --plot --out runs/digits_cnn/model.pt\n"
               "  dsatgo train --dataset cifar10 --data-root ~/data --model resnet19 -T 2 --optimizer sgd --lr 0.1 \\\n"
               "      --weight-decay 1e-4 --batch-size 100 --epochs 400 --out runs/cifar10/model.pt\n"
               "  torchrun --nproc_per_node=4 -m dsatgo_deploy.cli train --config cifar10.json   (one process per GPU)\n\n"
               "data sets: digits and synthetic are built in; mnist, fashion_mnist (IDX files), cifar10, cifar100\n"
               "(python or binary version folders) and events / cifar10_dvs (train.npz + test.npz with 'frames'\n"
               "(N, T, C, H, W) and 'labels'; cifar10_dvs also as the original .aedat class folders or\n"
               "SpikingJelly's frames_number_10_split_by_number/ folders) and imagenet (train/ and val/ class\n"
               "folders of images) are read from --data-root; nothing is downloaded.\n\n"
               "presets (--preset NAME; flags and --config override their fields):\n" + _preset_table())
    train.add_argument("--preset", help="a paper recipe (see below; `--preset list`): its fields, then --config, "
                                        "then flags")
    train.add_argument("--config", help="JSON file with TrainConfig fields (flags override it)")
    train.add_argument("--dataset", choices=DATASETS, metavar="DATASET", help=f"{', '.join(DATASETS)} [digits]")
    train.add_argument("--data-root", help="folder holding the files of a file-based data set")
    train.add_argument("--model", choices=MODELS, help="architecture [mlp]")
    train.add_argument("--width", type=types_.real(0.0, low_open=True),
                       help="channel multiplier of convnet, vggsnn, resnet19 [1.0]")
    train.add_argument("--hidden", type=types_.POSITIVE, nargs="+", help="hidden Linear sizes of mlp and convnet [128]")
    train.add_argument("--channels", type=types_.channel, nargs="+",
                       help="convnet conv blocks and 2x2 pools, e.g. 32 pool 64 pool")
    train.add_argument("--timesteps", "-T", type=types_.POSITIVE, help="timesteps T [4; event data: its frames per sample]")
    train.add_argument("--epochs", type=types_.POSITIVE, help="epochs [30]")
    train.add_argument("--batch-size", type=types_.POSITIVE, help="mini-batch size per process [32]")
    train.add_argument("--lr", type=types_.real(0.0, low_open=True),
                       help="learning rate (cosine schedule over the epochs) [2e-3]")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer [adam]")
    train.add_argument("--momentum", type=types_.FRACTION, help="SGD momentum, 0 to 1 [0.9]")
    train.add_argument("--weight-decay", type=types_.real(0.0), help="weight decay [0]")
    train.add_argument("--loss", choices=LOSSES, help="cross-entropy of the T-averaged readout, or TET [ce]")
    train.add_argument("--label-smoothing", type=types_.real(0.0, 0.999), help="label smoothing, in [0, 1) [0.1]")
    train.add_argument("--no-augment", action="store_true", help="no training augmentation (CIFAR: crop + flip)")
    train.add_argument("--autoaugment", action=argparse.BooleanOptionalAction, default=None,
                       help="CIFAR-10 AutoAugment policy after crop + flip [off; on in the CIFAR presets]")
    train.add_argument("--ablation", choices=tuple(ABLATIONS),
                       help="adaptive threshold and/or TGO surrogate width [ds-atgo]")
    train.add_argument("--surrogate-variant", choices=SURROGATE_VARIANTS,
                       help="TGO width from dVth (paper) or sigma (authors' code) [paper]")
    train.add_argument("--decay-mode", choices=DECAY_MODES, help="learnable PLIF decay or fixed 0.2 [plif]")
    train.add_argument("--seed", type=types_.NON_NEGATIVE, help="random seed [0]")
    train.add_argument("--device", type=types_.train_device, help="auto, cpu, cuda, cuda:1 ... [auto]")
    train.add_argument("--out", help="checkpoint path, rewritten every epoch [runs/digits/model.pt]")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    train.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --out")
    train.add_argument("--plot", action="store_true",
                       help="draw firing-rate, window-share and training-curve PNGs beside the checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="freeze, quantize and write targets (same as dsatgo-export)",
                            formatter_class=_Formatter, epilog=EXPORT_EXAMPLE)
    _add_export_arguments(export)

    sim = sub.add_parser("sim", help="run a deployable network on a data set", formatter_class=_Formatter,
                         epilog="example:\n  dsatgo sim runs/digits/loihi --backend lava --samples 100\n"
                                "  dsatgo sim model_netx.h5 --timesteps 16 --dataset digits   (a lava-dl netx file)")
    from .importers import importers

    sim.add_argument("network", help="export folder, network.npz, or "
                                     + " or ".join(importer.description for importer in importers()))
    sim.add_argument("--backend", default="reference", choices=[s for s in SIDES if s not in ("torch", "recorded")],
                     help="lava-float: Lava's floating_pt models (an approximation of lava); onnx: the "
                          "one-timestep integer ONNX graph looped over T by onnxruntime")
    _add_netx_arguments(sim)
    sim.add_argument("--dataset", help="data set (default: the one the model was trained on)")
    sim.add_argument("--data-root", help="folder of a file-based data set (default: the one used in training)")
    sim.add_argument("--samples", type=types_.POSITIVE, default=None, help="test samples (default: all)")
    sim.add_argument("--device", type=types_.device, default="cpu", help="torch device of the reference simulator")
    _add_timeout_argument(sim)
    sim.add_argument("--report", metavar="DIR", help="also write report.json, report.md and plots into DIR")
    sim.add_argument("--save-spikes", metavar="FILE",
                     help="write every spiking layer's spikes and the predictions to FILE (.npz), the format "
                          "`dsatgo parity --recorded` reads")
    sim.add_argument("--json", action="store_true", help="print the figures as JSON")
    sim.set_defaults(func=cmd_sim)

    parity = sub.add_parser("parity", help="compare spikes of two engines; exit 1 beyond tolerance",
                            formatter_class=_Formatter,
                            epilog="example:\n  dsatgo parity --model runs/digits/model.pt --network runs/digits/loihi "
                                   "--sides reference,lava --samples 100\n\n"
                                   "default tolerances: two integer sides (reference, lava, onnx, recorded) must agree "
                                   "exactly;\na float side (torch, lava-float) must reach "
                                   f"{FLOAT_MIN_CLASS_AGREEMENT:.0%} class and {FLOAT_MIN_SPIKE_AGREEMENT:.0%} "
                                   "spike-count agreement\n(measured on digits MLPs: at least 98 % and 99.6 %; "
                                   "hardware_sim/parity.py)\n\n"
                                   "exit status: 0 within tolerance, 1 beyond, 2 on bad input")
    parity.add_argument("--model", help="checkpoint (for the torch side)")
    parity.add_argument("--network", help="export folder, network.npz or a lava-dl netx HDF5 file "
                                           "(for reference, lava, onnx and recorded)")
    _add_netx_arguments(parity)
    parity.add_argument("--sides", default="reference,lava", help=f"two of {', '.join(SIDES)}")
    parity.add_argument("--recorded", metavar="FILE",
                        help="spikes another engine recorded (a Loihi 2 system, another machine; the format is "
                             "in hardware_sim/recording.py, and `dsatgo sim --save-spikes` writes it)")
    parity.add_argument("--dataset", help="data set (default: the one the model was trained on)")
    parity.add_argument("--data-root", help="folder of a file-based data set (default: the one used in training)")
    parity.add_argument("--samples", type=types_.POSITIVE, default=100, help="test samples")
    parity.add_argument("--min-class-agreement", type=types_.FRACTION, metavar="F",
                        help="fraction of equal predictions required, 0 to 1 (default: by the pair of sides, below)")
    parity.add_argument("--min-spike-agreement", type=types_.FRACTION, metavar="F",
                        help="fraction of (sample, neuron) spike counts that must be equal, per layer, 0 to 1 "
                             "(default: by the pair of sides, below)")
    parity.add_argument("--device", type=types_.device, default="cpu",
                        help="torch device for the torch and reference sides")
    _add_timeout_argument(parity)
    parity.add_argument("--json", action="store_true", help="print the report as JSON")
    parity.set_defaults(func=cmd_parity)

    report = sub.add_parser(
        "report", help="spikes, synaptic operations, energy and latency per inference: JSON, Markdown/HTML, plots",
        formatter_class=_Formatter,
        epilog="examples:\n  dsatgo report runs/digits/loihi --profile loihi1 cmos45nm\n"
               "  dsatgo report runs/digits/loihi --model runs/digits/model.pt --lava --format html   (with the ladder)\n"
               "  dsatgo report runs/digits/loihi/report.json   (render an existing report again)\n\n"
               "writes report.json, report.md (or .html, images embedded) and report_*.png into one folder")
    report.add_argument("network", help="export folder, network.npz or a lava-dl netx HDF5 file; "
                                        "or a report.json to render")
    _add_netx_arguments(report)
    report.add_argument("--profile", nargs="+", default=["loihi1", "loihi2", "cmos45nm"],
                        help="device profiles: built-in names or JSON files")
    report.add_argument("--model", help="the trained checkpoint the network came from: adds the accuracy ladder "
                                        "(float adaptive, frozen schedule, per-layer threshold, quantized, Lava)")
    report.add_argument("--calibrate", type=types_.NON_NEGATIVE, default=256, metavar="N",
                        help="training samples calibrating the ladder's per-layer thresholds (as export does)")
    report.add_argument("--lava", action="store_true", help="run Lava for the ladder's last rung (needs --model)")
    report.add_argument("--backend", default="reference", choices=["reference", "lava"],
                        help="engine whose spikes are counted")
    report.add_argument("--format", default="md", choices=FORMATS,
                        help="md: Markdown beside PNG plots; html: one self-contained file")
    report.add_argument("--dataset", help="data set (default: the one the model was trained on)")
    report.add_argument("--data-root", help="folder of a file-based data set (default: the one used in training)")
    report.add_argument("--samples", type=types_.POSITIVE, default=None, help="test samples (default: all)")
    report.add_argument("--out", help="report.json path; the rendered report goes beside it "
                                      "(default: beside the network)")
    report.add_argument("--device", type=types_.device, default="cpu", help="torch device of the reference simulator")
    report.add_argument("--system", choices=list(SYSTEMS),
                        help="Loihi 2 system of the report's system model (default: the smallest that holds the network)")
    report.add_argument("--chips", type=types_.POSITIVE, metavar="N", help="Loihi 2 system of N chips (instead of --system)")
    _add_timeout_argument(report)
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)

    for reader in (export, sim, parity, report):
        _add_memory_budget(reader)
    demo = sub.add_parser("demo", help="train, export, simulate, check parity and report on digits",
                          formatter_class=_Formatter, epilog="example:\n  dsatgo demo --out demo_out")
    demo.add_argument("--out", default="demo_out", help="output folder")
    demo.add_argument("--epochs", type=types_.POSITIVE, default=40, help="training epochs")
    demo.add_argument("--samples", type=types_.POSITIVE, default=None, help="test samples for Lava (default: all)")
    demo.add_argument("--no-lava", action="store_true", help="skip the Lava run")
    demo.add_argument("--overwrite", action="store_true", help="replace an output folder an earlier demo wrote")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_memory_budget(parser: argparse.ArgumentParser) -> None:
    from .limits import ENV_VAR, parse_size

    parser.add_argument("--memory-budget", type=parse_size, metavar="SIZE",
                        help=f"most memory a file may need before it is refused, e.g. 16G (default: half the "
                             f"available memory, or ${ENV_VAR})")


def _lava_timeout(seconds: float | None):
    """--timeout: the limit of every Lava run of the command (a no-op without one)."""
    import contextlib

    if seconds is None:
        return contextlib.nullcontext()
    from .hardware_sim.lava_backend import run_timeout

    return run_timeout(seconds)


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    from .limits import budget_override

    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        with budget_override(getattr(args, "memory_budget", None)), _lava_timeout(getattr(args, "timeout", None)):
            return func(args)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        if argv is None:  # the command line, not a caller in Python: end now
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


def _exit_now(code: int) -> None:
    """Exit after an interrupt without the interpreter's module teardown, which takes seconds after a Lava
    run (torch and Lava's modules); exit handlers still run (multiprocessing removes its folders)."""
    import atexit
    import os

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    return _run(build_parser(), argv)


def export_main(argv: Sequence[str] | None = None) -> int:
    """``dsatgo-export``: the same as ``dsatgo export``."""
    parser = _Parser(
        prog="dsatgo-export", formatter_class=_Formatter,
        description="Freeze a DS-ATGO checkpoint (thresholds, decays), quantize it to Loihi fixed point "
                    "and write the deployable network, the target's file (loihi: a lava-dl netx HDF5 file; onnx: "
                    "an integer-exact one-timestep ONNX graph; nir: a NIR graph) and a manifest.",
        epilog=EXPORT_EXAMPLE)
    _add_export_arguments(parser)
    _add_memory_budget(parser)
    return _run(parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
