"""Importer "nir": a NIR file (snnTorch, Norse, Sinabs, Rockpool, SpikingJelly, or our nir target) becomes a
validated DeployableNetwork for Loihi.

    nir.read -> export/nir_graph.py (the graph walked into freeze's float layers; neurons: nir_neurons.py)
             -> export/quantize.py (one threshold per layer; worst-case bounds, or calibration data)

Time: NIR's neurons are continuous; the file is run as T steps of dt seconds (forward Euler). T and dt are
the caller's (``--timesteps``, ``--dt``), else the graph's metadata ``timesteps`` and ``dt`` (our nir target
writes both): graph_timing (dsatgo_deploy/importers/nir.py), the rule the nir:<framework> sides share too.
Frameworks differ in what they write for the same model (docs/interop.md, Importing NIR): snnTorch 1.0.0
writes its neurons for dt = 1e-4 s; Norse 1.1.0 writes tau = dt / tau_mem_inv (with its dt, default 1e-3),
so dt**2 (1e-6) reproduces Norse's own run of such a file.

The input is analog, the same x at every step (direct encoding), sent as graded spikes of ``input_bits``
bits: its range comes from the calibration data when given, else x in [0, 1] is assumed.

Each deployable layer is named by the key of its NIR neuron node (a readout wired straight from a synapse
to the output: by the synapse's key), so spikes recorded per NIR node compare to our layers by name.

This module registers the importer (dsatgo_deploy/importers; detection by content: dsatgo_deploy/importers/
nir.py); it lives in the export stage because a NIR graph is a float network that only freeze's layers and
quantize make deployable, and the core imports no stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.importers.nir import graph_timing, is_nir
from dsatgo_deploy.importers.registry import Importer, register_importer

if TYPE_CHECKING:
    import numpy as np

    from dsatgo_deploy.network import DeployableNetwork

    from .freeze import FrozenNetwork
    from .quantize import LayerQuantization

DEFAULT_INPUT_BITS = 8
NIR_INPUT_BITS = (2, 24)  # graded payloads: NIR input is analog


def read_graph(path: str | os.PathLike) -> Any:
    """The NIR graph of a file (nir.read); UserError naming the file when it is not one."""
    origin = str(path)
    if not Path(path).is_file():
        raise UserError(f"{origin}: no such file")
    if not is_nir(path):
        raise UserError(f"{origin}: not a NIR file (an HDF5 file with a 'node' group, as nir.write makes)")
    try:
        import nir
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError(f"{origin}: reading NIR needs the 'nir' package: pip install 'dsatgo-deploy[nir]'") from None
    try:
        return nir.read(str(path), type_check=False)  # the walk checks shapes itself (nirtorch keeps batch dims)
    except Exception as exc:  # nir.read raises whatever h5py or a node's constructor raises
        raise UserError(f"{origin}: not a readable NIR file ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def frozen_from_nir(path: str | os.PathLike, *, dt: float | None = None,
                    timesteps: int | None = None) -> tuple[FrozenNetwork, dict[str, Any]]:
    """The float network of a NIR file and its provenance (the file, its SHA-256, dt, T)."""
    from dsatgo_deploy.fileio import sha256_file

    from .nir_graph import frozen_network

    origin = str(path)
    graph = read_graph(path)
    steps, step = graph_timing(graph, origin, timesteps, dt)  # the rule every side shares (importers/nir.py)
    frozen = frozen_network(graph, origin, step, steps)
    provenance = {"imported_from": "NIR", "file": origin, "source_sha256": sha256_file(path), "dt": step,
                  "timesteps": steps, "discretisation": "forward Euler, T steps of dt (export/nir_neurons.py)"}
    return frozen, provenance


def import_nir(path: str | os.PathLike, *, dt: float | None = None, timesteps: int | None = None,
               input_bits: int | None = None, calibration_x: np.ndarray | None = None,
               input_quantum: float | None = None,
               ) -> tuple[DeployableNetwork, FrozenNetwork, list[LayerQuantization]]:
    """A NIR file as (deployable network, its float network, what quantization did per layer) (module doc).
    ``input_quantum``: the input data's own step where it has one (digits: 1/16), so that its payloads are exact
    and small (a conv layer reading them keeps more weight bits: no weight exponent there), as a checkpoint's
    data set gives it to export."""
    bits = checked_input_bits(path, input_bits)
    frozen, provenance = frozen_from_nir(path, dt=dt, timesteps=timesteps)
    frozen.input_quantum = input_quantum
    net, reports = quantize_imported(path, frozen, calibration_x, bits, provenance)
    return net, frozen, reports


def checked_input_bits(path: str | os.PathLike, input_bits: int | None) -> int:
    """Bits of the graded input payloads (default 8); UserError outside NIR_INPUT_BITS."""
    bits = DEFAULT_INPUT_BITS if input_bits is None else int(input_bits)
    if not NIR_INPUT_BITS[0] <= bits <= NIR_INPUT_BITS[1]:
        raise UserError(f"{path}: a NIR graph's input is analog: --input-bits must be in {list(NIR_INPUT_BITS)} "
                        f"(graded payloads), got {bits}")
    return bits


def quantize_imported(path: str | os.PathLike, frozen: FrozenNetwork, calibration_x: np.ndarray | None, bits: int,
                      provenance: dict[str, Any]) -> tuple[DeployableNetwork, list[LayerQuantization]]:
    """quantize with one threshold per layer (an imported layer's is 1: nir_neurons.py); errors name the file."""
    from .quantize import quantize

    try:
        return quantize(frozen, calibration_x, bits, "per-layer", provenance)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _import(path: Path, *, timesteps: int | None, input_bits: int | None, input_shape: tuple[int, ...] | None,
            dt: float | None = None, **_other_formats) -> DeployableNetwork:
    """The registry's reader: no calibration data (x in [0, 1] assumed); a NIR file states its input shape."""
    if input_shape is not None:
        raise UserError(f"{path}: a NIR file states its input shape; --input-shape is for netx files")
    return import_nir(path, dt=dt, timesteps=timesteps, input_bits=input_bits)[0]


register_importer(Importer("nir", is_nir, _import,
                           "a NIR file (snnTorch, Norse, Sinabs, ...; --dt and --timesteps where it lacks them)"))
