"""``dsatgo train``: its flags and the command."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import types as types_
from ..errors import UserError
from .common import EXIT_OK, _Formatter, _print_json


def cmd_train(args: argparse.Namespace) -> int:
    import os
    from dataclasses import fields

    from ..train.loop import TrainConfig, metrics_path, train
    from ..train.presets import describe_presets, preset_fields

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
    from ..fileio import check_output_file

    # before any training: a checkpoint is replaced only when asked to
    check_output_file(config.out, overwrite=args.resume or args.overwrite, flag="--resume or --overwrite")
    started = time.time()
    summary = train(config)
    summary["seconds"] = round(time.time() - started, 1)
    if int(os.environ.get("RANK", "0")) != 0:
        return EXIT_OK  # under torchrun only process 0 reports and plots
    if args.plot:
        from ..train.plots import plot_metrics

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


def _preset_table() -> str:
    from ..train.presets import describe_presets

    return describe_presets()


def add_train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..train.data import DATASETS
    from ..train.loop import MODELS, LOSSES, OPTIMIZERS, SURROGATE_VARIANTS
    from ..train.neuron import ABLATIONS, DECAY_MODES

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
    return train
