"""``dsatgo demo``: its flags and the command."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import types as types_
from .common import EXIT_OK, EXIT_PARITY_FAILED, _Formatter, _print_json


def cmd_demo(args: argparse.Namespace) -> int:
    from ..pipeline.demo import run_demo

    summary = run_demo(Path(args.out), epochs=args.epochs, samples=args.samples, lava=not args.no_lava,
                       overwrite=args.overwrite)
    if args.json:
        _print_json(summary)
    return EXIT_OK if summary.get("passed", False) else EXIT_PARITY_FAILED


def add_demo_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    demo = sub.add_parser("demo", help="train, export, simulate, check parity and report on digits",
                          formatter_class=_Formatter, epilog="example:\n  dsatgo demo --out demo_out")
    demo.add_argument("--out", default="demo_out", help="output folder")
    demo.add_argument("--epochs", type=types_.POSITIVE, default=40, help="training epochs")
    demo.add_argument("--samples", type=types_.POSITIVE, default=None, help="test samples for Lava (default: all)")
    demo.add_argument("--no-lava", action="store_true", help="skip the Lava run")
    demo.add_argument("--overwrite", action="store_true", help="replace an output folder an earlier demo wrote")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)
    return demo
