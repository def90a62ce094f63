"""``dsatgo report``: its flags and the command."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import types as types_
from ..errors import UserError
from .common import (EXIT_OK, _add_input_argument, _add_netx_arguments, _add_timeout_argument, _check_network_source, _Formatter,
                     _load_data, _load_network, _print_json, _test_samples)


def cmd_report(args: argparse.Namespace) -> int:
    from ..pipeline import reports

    if Path(args.network).suffix == ".json":  # an existing report.json: render it only
        _refuse_work_flags(args)
        out = Path(args.network)
        report = reports.load_report(out)
        files = reports.render(report, out.parent, args.format)
    else:
        if args.lava and not args.model:
            raise UserError("--lava runs the ladder's Lava rung and needs --model (the trained checkpoint)")
        net = _load_network(args.network, args.timesteps, args.input_bits, args.input_shape, args.dt)
        out = Path(args.out) if args.out else (Path(args.network) if Path(args.network).is_dir()
                                                else Path(args.network).parent) / reports.REPORT_JSON
        reports.check_report_output(out.parent, args.format, out.name)  # before any work
        checkpoint = None
        if args.model:
            from ..checkpoint import load_checkpoint

            checkpoint = load_checkpoint(args.model)
            _check_network_source(net, checkpoint, args.model)
        data = _load_data(net.provenance.get("training", {}), args, net.input_shape)
        x, y = _test_samples(data, args.samples)
        from ..pipeline.sharding import join

        shard = join(args.device)  # the backend's run is sharded under torchrun; rank 0 writes the report
        # counted chunk by chunk, in bounded memory; the ladder's rungs (--model) too, on rank 0
        summary = shard.summarize(args.backend, net=net, x=x, chunk=args.chunk, counts=True, progress=not args.json)
        if not shard.main:
            return EXIT_OK
        calibration = data.x_train[: args.calibrate] if checkpoint is not None and args.calibrate > 0 else None
        report, files = reports.write_network_report(
            net, x, y, out.parent, profiles=args.profile, summary=summary, chunk=args.chunk, checkpoint=checkpoint,
            calibration_x=calibration, lava=args.lava, fmt=args.format, source=args.network, device=shard.device,
            json_name=out.name, system=args.system, chips=args.chips)
    if args.json:
        _print_json(report)
    else:
        print(reports.format_terminal(report))
        print("report written: " + ", ".join(str(f) for f in files))
    return EXIT_OK


#: flags that ask for work on the network; a report.json is only rendered again, so they would be ignored
_NETWORK_FLAGS = ("model", "lava", "system", "chips", "samples", "dataset", "data_root", "input", "timesteps", "input_bits",
                  "input_shape", "out")


def _refuse_work_flags(args: argparse.Namespace) -> None:
    given = [name for name in _NETWORK_FLAGS if getattr(args, name, None) not in (None, False)]
    if args.backend != "reference":
        given.append("backend")
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        verb = "needs" if len(given) == 1 else "need"
        raise UserError(f"{args.network}: a report.json is rendered again as it is; {flags} {verb} the network "
                        "(pass the export folder, network.npz or netx file instead)")


def add_report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..hardware_sim.report import DEFAULT_PROFILES, FORMATS
    from ..loihi2_system import SYSTEMS

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
    _add_input_argument(report)
    report.add_argument("--profile", nargs="+", default=list(DEFAULT_PROFILES),
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
    from .common import _add_chunk_argument

    _add_chunk_argument(report)
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)
    return report
