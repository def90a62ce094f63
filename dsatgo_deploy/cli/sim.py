"""``dsatgo sim`` and ``dsatgo parity``: run a deployable network; compare the spikes of two engines."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import types as types_
from ..errors import UserError
from .common import (EXIT_OK, EXIT_PARITY_FAILED, _add_input_argument, _add_netx_arguments, _add_timeout_argument,
                     _check_network_source, _Formatter, _load_data, _load_network, _print_json, _test_samples)


def cmd_sim(args: argparse.Namespace) -> int:
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
    if args.save_spikes:  # the one mode that holds every spike: the recording is one file of whole arrays
        from ..hardware_sim.run_summary import summarize

        record = shard.run(args.backend, net=net, checkpoint=None, x=x, progress=not args.json)
        summary = None if record is None else summarize(net, record, x if args.report else None)
    else:  # chunk by chunk, in bounded memory; under torchrun only the summaries travel
        summary = shard.summarize(args.backend, net=net, x=x, chunk=args.chunk, counts=bool(args.report),
                                  progress=not args.json)
    if not shard.main:
        return EXIT_OK
    seconds = time.time() - started
    if args.save_spikes:
        from ..hardware_sim.recording import save_recording

        save_recording(args.save_spikes, record)
    accuracy = summary.accuracy(y)
    spikes = summary.spikes_per_inference()  # hardware_sim/counts.py counts them for every report
    result = {"backend": args.backend, "samples": len(x), "accuracy": accuracy, "seconds": round(seconds, 3),
              "spikes_per_inference": spikes}
    if args.report:
        from ..pipeline.reports import write_network_report

        write_network_report(net, x, y, args.report, summary=summary, source=args.network, device=args.device)
        result["report"] = str(args.report)
    if args.json:
        _print_json(result)
    else:
        scored = "no labels" if accuracy is None else f"accuracy {accuracy:.2%}"
        print(f"{args.backend}: {scored} on {len(x)} samples in {seconds:.2f} s")
        for name, count in spikes.items():
            print(f"  {name:<10} {count:10.1f} spikes per inference")
    return EXIT_OK


def _parse_sides(text: str) -> list[str]:
    """The sides of --sides: two or more, each once; a UserError naming the known ones otherwise."""
    from ..pipeline.nir_sides import NIR_SIDES, framework_of, is_nir_side
    from ..pipeline.sides import SIDES

    sides = [s.strip() for s in text.split(",") if s.strip()]
    known = f"{', '.join(SIDES)}, {', '.join(NIR_SIDES)}"
    if len(sides) < 2 or len(set(sides)) != len(sides) or any(s not in SIDES and not is_nir_side(s) for s in sides):
        raise UserError(f"--sides takes two of {known} (or more: each compared with the first), separated by "
                        f"commas, each once, got {text!r}")
    for side in filter(is_nir_side, sides):
        framework_of(side)  # an unknown framework is refused by name
    return sides


def _nir_source(args: argparse.Namespace, sides: list[str]):
    """The NIR files of the nir sides: --nir, the export folder's NIR file, or --network when it is one."""
    from ..export.targets.nir import NIR_FILE
    from ..fileio import verify_manifest
    from ..pipeline.nir_sides import NirSource, is_nir_file, is_nir_side

    if not any(is_nir_side(s) for s in sides):
        return None
    files = list(args.nir or [])
    if args.network and Path(args.network).is_dir() and (Path(args.network) / NIR_FILE).is_file():
        verify_manifest(args.network, [NIR_FILE])
        files.append(str(Path(args.network) / NIR_FILE))
    elif args.network and is_nir_file(args.network):
        files.append(str(args.network))
    for path in files:
        if not Path(path).is_file():
            raise UserError(f"--nir {path}: no such file")
    if not files:
        raise UserError("the nir sides need a NIR file: --nir FILE, --network FOLDER exported with --target nir, "
                        "or --network FILE.nir")
    return NirSource(tuple(files), args.timesteps, args.dt)


def _input_shape(net, checkpoint: dict | None, nir) -> tuple[int, ...]:
    from ..pipeline.nir_sides import nir_input_shape

    if net is not None:
        return net.input_shape
    return checkpoint["arch"]["input_shape"] if checkpoint is not None else nir_input_shape(nir.files[0])


def cmd_parity(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..hardware_sim.parity import apply_tolerance, format_many, format_note, format_report, many_from_tallies
    from ..pipeline.nir_sides import describe, is_nir_side
    from ..pipeline.sharding import join

    shard = join(args.device)  # under torchrun: this process's block of the samples
    sides = _parse_sides(args.sides)
    nir = _nir_source(args, sides)
    checkpoint = load_checkpoint(args.model) if args.model else None
    needs_net = any(s != "torch" and not is_nir_side(s) for s in sides)
    # an export folder's network also tells the nir sides' data set; a .nir file is not loaded unless needed
    wanted = args.network and (needs_net or Path(args.network).is_dir())
    net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape, args.dt) if wanted else None
    _check_network_source(net, checkpoint, args.model)
    if "torch" in sides and checkpoint is None:
        raise UserError("the torch side needs --model MODEL.pt")
    if needs_net and net is None:
        raise UserError("the reference, lava, onnx and recorded sides need --network (an export folder, "
                        "network.npz or a netx file)")
    if ("recorded" in sides) != (args.recorded is not None):
        raise UserError("--recorded FILE goes with the recorded side: --sides reference,recorded --recorded FILE")
    if args.teacher_forced and "reference" not in sides[1:]:
        raise UserError("--teacher-forced feeds the reference side the first side's spikes: list that side first, "
                        "then reference (e.g. --sides torch,reference)")
    training = net.provenance.get("training", {}) if net else checkpoint["meta"] if checkpoint else {}
    data = _load_data(training, args, _input_shape(net, checkpoint, nir))
    x, y = _test_samples(data, args.samples)
    # chunk by chunk, the sides in lockstep; under torchrun each process its block, rank 0 merges the tallies
    merged = shard.tally(sides, net=net, checkpoint=checkpoint, x=x, y=y, chunk=args.chunk, progress=not args.json,
                         recording=args.recorded, nir=nir, teacher_forced=args.teacher_forced)
    if not shard.main:
        return EXIT_OK
    tallies, unavailable = merged
    notes = {side: describe(side, nir) for side in sides if is_nir_side(side) and side not in unavailable}
    forced = ({"teacher_forced": f"each layer of reference fed {sides[0]}'s spikes of its sources: its own error, "
                                 "not the compounding of every error before it"} if args.teacher_forced else {})
    if len(sides) == 2 and not unavailable:  # two sides: one pair, reported as it always was
        # Tolerances the user left out take the pair's defaults (hardware_sim/parity.py default_tolerance).
        report = apply_tolerance(tallies[sides[1]].report(), args.min_class_agreement, args.min_spike_agreement)
        if args.json:
            _print_json(report.to_dict() | ({"notes": notes} if notes else {}) | forced)
        else:
            print("\n".join([*(f"teacher forced: {text}" for text in forced.values()),
                             *(format_note(side, note) for side, note in notes.items()), format_report(report)]))
        return EXIT_OK if report.passed else EXIT_PARITY_FAILED
    ran = len(unavailable) < len(sides)
    many = many_from_tallies(sides, tallies, unavailable, len(x) if ran else 0, args.min_class_agreement,
                             args.min_spike_agreement)
    many.notes = notes
    if args.json:
        _print_json(many.to_dict() | forced)
    else:
        print("\n".join([*(f"teacher forced: {text}" for text in forced.values()), format_many(many)]))
    return EXIT_OK if many.passed else EXIT_PARITY_FAILED


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
    from .common import _add_chunk_argument

    _add_chunk_argument(sim)
    sim.add_argument("--report", metavar="DIR", help="also write report.json, report.md and plots into DIR")
    sim.add_argument("--save-spikes", metavar="FILE",
                     help="write every spiking layer's spikes and the predictions to FILE (.npz), the format "
                          "`dsatgo parity --recorded` reads; this mode holds every spike in memory (no --chunk)")
    sim.add_argument("--json", action="store_true", help="print the figures as JSON")
    sim.set_defaults(func=cmd_sim)
    return sim


def add_parity_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..hardware_sim.parity import FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT
    from ..pipeline.nir_sides import NIR_SIDES
    from ..pipeline.sides import SIDES

    parity = sub.add_parser("parity", help="compare spikes of two engines (or more, each against the first); "
                                           "exit 1 beyond tolerance",
                            formatter_class=_Formatter,
                            epilog="example:\n  dsatgo parity --model runs/digits/model.pt --network runs/digits/loihi "
                                   "--sides reference,lava --samples 100\n"
                                   "  dsatgo parity --network runs/digits/nir --sides reference,nir:snntorch,nir:norse,"
                                   "nir:sinabs \\\n      --nir runs/digits/nir_norse/network.nir "
                                   "--nir runs/digits/nir_sinabs/network.nir\n\n"
                                   "default tolerances: two integer sides (reference, lava, onnx, recorded) must agree "
                                   "exactly;\na float side (torch, lava-float, nir:*) must reach "
                                   f"{FLOAT_MIN_CLASS_AGREEMENT:.0%} class and {FLOAT_MIN_SPIKE_AGREEMENT:.0%} "
                                   "spike-count agreement\n(measured on digits MLPs: at least 98 % and 99.6 %; "
                                   "hardware_sim/parity.py)\n\n"
                                   "exit status: 0 within tolerance, 1 beyond, 2 on bad input")
    parity.add_argument("--model", help="checkpoint (for the torch side)")
    parity.add_argument("--network", help="export folder, network.npz, a lava-dl netx HDF5 file or a NIR file "
                                           "(for reference, lava, onnx and recorded); an export folder written "
                                           "with --target nir, or a .nir file, also gives the nir sides their file")
    _add_netx_arguments(parity)
    _add_input_argument(parity)
    parity.add_argument("--sides", default="reference,lava",
                        help=f"two or more of {', '.join(SIDES)}, {', '.join(NIR_SIDES)}, separated by commas; "
                             "each side after the first is compared with the first. nir:F runs a NIR file in "
                             "framework F through F's own importer; a framework that cannot run here is reported, "
                             "not failed")
    parity.add_argument("--nir", action="append", metavar="FILE",
                        help="NIR file for the nir sides (repeat it: each side takes the file written for its "
                             "framework, `dsatgo-export --target nir --nir-for F`, else a spec file)")
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
    from .common import _add_chunk_argument

    _add_chunk_argument(parity)
    parity.add_argument("--teacher-forced", action="store_true",
                        help="feed each layer of the reference side the first side's spikes of its sources, so each "
                             "layer's agreement measures its own quantization error: in a deep network a float and "
                             "an integer run drift apart with depth even when every layer is right (README: Safety)")
    parity.add_argument("--json", action="store_true", help="print the report as JSON")
    parity.set_defaults(func=cmd_parity)
    return parity
