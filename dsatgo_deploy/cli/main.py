"""The two programs: ``dsatgo`` (one subcommand a module of this package) and ``dsatgo-export``; errors a
user can fix print one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .. import __version__
from ..errors import UserError
from .common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, _add_memory_budget, _Formatter, _lava_timeout, _Parser
from .demo import add_demo_parser
from .export import EXPORT_EXAMPLE, _add_export_arguments, add_export_parser
from .report import add_report_parser
from .sim import add_parity_parser, add_sim_parser
from .train import add_train_parser


def build_parser() -> argparse.ArgumentParser:
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
    add_train_parser(sub)
    export = add_export_parser(sub)
    sim = add_sim_parser(sub)
    parity = add_parity_parser(sub)
    report = add_report_parser(sub)
    for reader in (export, sim, parity, report):
        _add_memory_budget(reader)
    add_demo_parser(sub)
    return parser


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    from ..limits import budget_override

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
