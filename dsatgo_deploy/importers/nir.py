"""NIR files (the Neuromorphic Intermediate Representation, written by snnTorch, Norse, Sinabs, Rockpool,
SpikingJelly and our nir target): recognising one by its content.

A NIR file is HDF5 too (``nir.write``: a root group ``node`` holding the graph); a lava-dl netx file holds
a ``layer`` group instead. :func:`is_nir` claims only the first, and the netx importer (netx.py) leaves such
files alone, so one file never matches both importers.

Reading one is the export stage's job (export/nir_import.py registers the importer "nir"): a NIR graph is a
float network, which becomes a deployable one only through freeze's float layers and quantize, and the core
imports no stage (tests/core/test_layering.py).

Time: :func:`graph_timing` decides the T and dt a graph runs with, for the importer and for the parity sides
that run the file in another framework alike (hardware_sim/nir_frameworks.py), so that both run the same
network: the caller's value (``--timesteps``, ``--dt``) first, else the graph's metadata (``timesteps``,
``dt``; our nir target writes both), else a UserError naming the file and the field. dt has no default:
every neuron decays by ``1 - dt / tau``, so a guessed dt is a different network.
"""

from __future__ import annotations

import os
from typing import Any

from .. import limits
from ..errors import UserError
from .netx import is_hdf5

#: the root group nir.write puts the graph in, and the one a netx file has instead
NIR_ROOT_GROUP = "node"
NETX_ROOT_GROUP = "layer"


def is_nir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a NIR file: HDF5 with a root ``node`` group and no netx ``layer`` group."""
    if not is_hdf5(path):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return NIR_ROOT_GROUP in h5 and NETX_ROOT_GROUP not in h5
    except (OSError, RuntimeError, ValueError):
        return False


def _metadata_number(graph: Any, key: str) -> float | None:
    """The graph's metadata ``key`` as a float (h5py gives numpy scalars), None when absent or not a number."""
    value = (getattr(graph, "metadata", None) or {}).get(key)
    try:
        return None if value is None else float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None


def graph_timing(graph: Any, origin: str, timesteps: int | None = None,
                 dt: float | None = None) -> tuple[int, float]:
    """(T, dt seconds) a NIR graph runs with: the caller's, else the graph's metadata ``timesteps`` and ``dt``;
    a UserError naming ``origin`` and the field when neither gives one (module doc: one rule for every side)."""
    if timesteps is None:
        found = _metadata_number(graph, "timesteps")
        if found is None:
            raise UserError(f"{origin}: the NIR file holds no timestep count (no 'timesteps' in its metadata) and "
                            "none was given: pass --timesteps T, the steps per sample")
        timesteps = int(found) if found.is_integer() else found  # 2.5 is refused by name, not truncated
    steps = limits.check_timesteps(origin, "timesteps", timesteps)
    if dt is None:
        dt = _metadata_number(graph, "dt")
        if dt is None:
            raise UserError(f"{origin}: the NIR file holds no time step (no 'dt' in its metadata) and none was given: "
                            "pass --dt SECONDS, the step the source framework ran with (snnTorch 1.0.0: 1e-4)")
    if not (dt > 0 and dt < float("inf")):
        raise UserError(f"{origin}: the time step dt must be a positive number of seconds, got {dt}")
    return steps, float(dt)
