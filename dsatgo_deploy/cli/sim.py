"""``dsatgo sim`` and ``dsatgo parity``: run a deployable network; compare the spikes of two engines."""

from __future__ import annotations

import argparse
import time

from . import types as types_
from ..errors import UserError
from .common import (EXIT_OK, EXIT_PARITY_FAILED, _add_input_argument, _add_netx_arguments, _add_timeout_argument,
                     _check_network_source, _Formatter, _load_data, _load_network, _print_json, _test_samples)


def cmd_sim(args: argparse.Namespace) -> int:
    from ..hardware_sim.counts import spikes_per_inference
    from ..pipeline.sharding import join

    shard = join(args.device)  # under torchrun: this process's block of the samples
    net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape, args.dt)
    if args.report:  # outputs are checked before the run
        from ..hardware_sim.report import check_report_output

        check_report_output(args.report)
    if args.save_spikes:
        from ..fileio import check_output_file

        check_output_file(args.save_spikes, overwrite=True)
    data = _load_data(net.provenance.get("training", {}), args, net.input_shape)
    x, y = _test_samples(data, args.samples)
    started = time.time()
    record = shard.run(args.backend, net=net, checkpoint=None, x=x, progress=not args.json)
    if not shard.main:
        return EXIT_OK
    seconds = time.time() - started
    if args.save_spikes:
        from ..hardware_sim.recording import save_recording

        save_recording(args.save_spikes, record)
    accuracy = None if y is None else float((record.predictions == y).mean())
    spikes = spikes_per_inference(net, record.spikes)  # hardware_sim/counts.py counts them for every report
    result = {"backend": args.backend, "samples": len(x), "accuracy": accuracy, "seconds": round(seconds, 3),
              "spikes_per_inference": spikes}
    if args.report:
        from ..pipeline.reports import write_network_report

        write_network_report(net, x, y, args.report, record=record, source=args.network, device=args.device)
        result["report"] = str(args.report)
    if args.json:
        _print_json(result)
    else:
        scored = "no labels" if accuracy is None else f"accuracy {accuracy:.2%}"
        print(f"{args.backend}: {scored} on {len(x)} samples in {seconds:.2f} s")
        for name, count in spikes.items():
            print(f"  {name:<10} {count:10.1f} spikes per inference")
    return EXIT_OK


def cmd_parity(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..hardware_sim.parity import apply_tolerance, compare, format_report
    from ..pipeline.sharding import join
    from ..pipeline.sides import SIDES

    shard = join(args.device)  # under torchrun: this process's block of the samples
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if len(sides) != 2 or any(s not in SIDES for s in sides):
        raise UserError(f"--sides takes two of {', '.join(SIDES)} separated by a comma, got {args.sides!r}")
    checkpoint = load_checkpoint(args.model) if args.model else None
    net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape, args.dt) if args.network else None
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
    x, y = _test_samples(data, args.samples)
    records = [shard.run(side, net=net, checkpoint=checkpoint, x=x, progress=not args.json,
                         recording=args.recorded) for side in sides]
    if not shard.main:
        return EXIT_OK
    # Tolerances the user left out take the pair's defaults (hardware_sim/parity.py default_tolerance).
    report = apply_tolerance(compare(records[0], records[1], y), args.min_class_agreement, args.min_spike_agreement)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(format_report(report))
    return EXIT_OK if report.passed else EXIT_PARITY_FAILED


def add_sim_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..pipeline.sides import SIDES

    sim = sub.add_parser("sim", help="run a deployable network on a data set", formatter_class=_Formatter,
                         epilog="example:\n  dsatgo sim runs/digits/loihi --backend lava --samples 100\n"
                                "  dsatgo sim model_netx.h5 --timesteps 16 --dataset digits   (a lava-dl netx file)\n"
                                "  dsatgo sim model.nir --dt 1e-4 --timesteps 8 --dataset digits   (a NIR file)")
    from ..importers import importers

    sim.add_argument("network", help="export folder, network.npz, or "
                                     + " or ".join(importer.description for importer in importers()))
    sim.add_argument("--backend", default="reference", choices=[s for s in SIDES if s not in ("torch", "recorded")],
                     help="lava-float: Lava's floating_pt models (an approximation of lava); onnx: the "
                          "one-timestep integer ONNX graph looped over T by onnxruntime")
    _add_netx_arguments(sim)
    _add_input_argument(sim)
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
    return sim


def add_parity_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..hardware_sim.parity import FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT
    from ..pipeline.sides import SIDES

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
    parity.add_argument("--network", help="export folder, network.npz, a lava-dl netx HDF5 file or a NIR file "
                                           "(for reference, lava, onnx and recorded)")
    _add_netx_arguments(parity)
    _add_input_argument(parity)
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
    return parity
