"""What every command shares: exit codes, the parser and help formatter, JSON printing, loading a
network or a data set, and the flags several commands take."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import types as types_
from ..errors import UserError
from ..export import nir_import  # noqa: F401  (registers the importer "nir": a NIR graph needs freeze and quantize)

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

    import numpy as np

    from ..train.data import DataSplit, load_dataset, load_samples

    if getattr(args, "input", None):  # the user's own samples: no data set of ours involved
        if getattr(args, "dataset", None) or getattr(args, "data_root", None):
            raise UserError("--input gives the samples itself: drop --dataset/--data-root")
        x, y = load_samples(args.input)
        rest, size = x.shape[1:], math.prod(input_shape)
        static = math.prod(rest) == size
        if not static and not (len(rest) >= 2 and math.prod(rest[1:]) == size):
            raise UserError(f"{args.input}: samples of shape {tuple(rest)}, but the network takes "
                            f"{tuple(input_shape)} (static) or (T, {', '.join(map(str, input_shape))}) (time-varying)")
        return DataSplit(x[:0], np.zeros(0, np.int64), x, y, 0, tuple(input_shape), None,
                         encoding="direct" if static else "sequence")
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


def _test_samples(data, count: int | None):
    """The first ``count`` (all: None) test samples and their labels (None when the samples came unlabelled)."""
    return data.x_test[:count], None if data.y_test is None else data.y_test[:count]


def _load_network(path: str, timesteps: int | None = None, input_bits: int | None = None,
                  input_shape: tuple[int, ...] | None = None, dt: float | None = None):
    """A deployable network from a .npz file, an export folder holding network.npz, a lava-dl netx
    HDF5 file (recognised by its HDF5 signature, whatever its name; lava-dl's own hold no T or input
    encoding: pass ``timesteps``, ``input_bits`` for graded input (0 for spikes) and, for a file that
    starts with a conv layer and has no input layer, ``input_shape``; ours carry them), or a NIR file
    (export/nir_import.py: ``timesteps`` and ``dt`` where its metadata lacks them). A file of an
    export folder is first checked against the folder's manifest.json hashes."""
    from ..export.exporter import NETWORK_FILE
    from ..fileio import verify_manifest
    from ..importers import find_importer
    from ..network import load

    candidate = Path(path)
    if candidate.is_dir():
        verify_manifest(candidate)
        candidate = candidate / NETWORK_FILE
    else:
        verify_manifest(candidate.parent, [candidate.name])
    importer = find_importer(candidate)  # a foreign file (dsatgo_deploy/importers), by its content
    if importer is not None:
        return importer.read(candidate, timesteps=timesteps, input_bits=input_bits, input_shape=input_shape, dt=dt)
    return load(candidate)


def _check_network_source(net, checkpoint: dict | None, model: str | None) -> None:
    """UserError when ``net`` records the SHA-256 of the checkpoint it was exported from and
    ``checkpoint`` is another one (a lava-dl netx file records none: nothing to check)."""
    recorded = net.provenance.get("source_sha256") if net is not None else None
    if checkpoint is not None and recorded and recorded != checkpoint["sha256"]:
        raise UserError(f"--model {model} (SHA-256 {checkpoint['sha256']}) is not the checkpoint the network was "
                        f"exported from (SHA-256 {recorded}); pass that checkpoint or export this one")


NETX_INPUT_BITS = (0, 24)  # 0: binary spikes


def _add_netx_arguments(parser: argparse.ArgumentParser) -> None:
    """What a lava-dl netx HDF5 file or a NIR file does not say about itself (see :func:`_load_network`)."""
    parser.add_argument("--timesteps", type=types_.POSITIVE,
                        help="netx or NIR file: timesteps per sample (lava-dl's netx files and most NIR files do "
                             "not hold it; ours do)")
    parser.add_argument("--input-bits", type=types_.integer(*NETX_INPUT_BITS), default=None,
                        help="netx file: bits of graded input payloads (0: binary spikes, x != 0; at most "
                             f"{NETX_INPUT_BITS[1]}; default: what the file says, else 0); NIR file: bits of its "
                             "analog input's payloads, 2 or more (default 8). A lava-dl netx file whose input layer "
                             "is a LIF (mnist.net, PilotNet) is driven by its bias without this flag: each sample "
                             "value becomes its bias mantissa, and 0/1 samples reach no usual threshold (mnist.net's "
                             "input never fires): scale them (PilotNet's image holds 1..76) or give --input-bits to "
                             "send them as messages")
    parser.add_argument("--dt", type=types_.SECONDS, metavar="SECONDS",
                        help="NIR file: the time step its neurons are integrated with (forward Euler; default: the "
                             "file's metadata 'dt'; snnTorch 1.0.0 writes for 1e-4, Norse 1.1.0's to_nir for "
                             "dt**2 with its dt: docs/interop.md)")
    parser.add_argument("--input-shape", type=types_.shape, metavar="C,H,W",
                        help="netx file without an input layer whose first layer is a conv: its input shape")


def _add_input_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="FILE",
                        help="samples to run instead of a data set: a .npy (N, *input_shape) or (N, T, *input_shape), "
                             "or an .npz with x and optional integer labels y (for netx and NIR files; "
                             "accuracy only with labels). A netx file driven by its input's bias (see --input-bits) "
                             "takes each value as a bias mantissa: samples within [0, 1] must be scaled")


def _add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=types_.SECONDS, metavar="SECONDS",
                        help="end a Lava run that takes longer (its processes stopped): one line, exit 2")


def _add_memory_budget(parser: argparse.ArgumentParser) -> None:
    from ..limits import ENV_VAR, parse_size

    parser.add_argument("--memory-budget", type=parse_size, metavar="SIZE",
                        help=f"most memory a file may need before it is refused, e.g. 16G (default: half the "
                             f"available memory, or ${ENV_VAR})")


def _add_chunk_argument(parser: argparse.ArgumentParser) -> None:
    from ..pipeline.streaming import DEFAULT_CHUNK

    parser.add_argument("--chunk", type=types_.POSITIVE, default=DEFAULT_CHUNK, metavar="N",
                        help="samples run and reduced at a time: memory holds one chunk's spikes per side, "
                             "whatever --samples (a Lava side runs its samples at once)")


def _lava_timeout(seconds: float | None):
    """--timeout: the limit of every Lava run of the command (a no-op without one)."""
    import contextlib

    if seconds is None:
        return contextlib.nullcontext()
    from ..hardware_sim.lava_backend import run_timeout

    return run_timeout(seconds)
