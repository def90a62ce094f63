"""NIR files (the Neuromorphic Intermediate Representation, written by snnTorch, Norse, Sinabs, Rockpool,
SpikingJelly and our nir target): recognising one by its content.

A NIR file is HDF5 too (``nir.write``: a root group ``node`` holding the graph); a lava-dl netx file holds
a ``layer`` group instead. :func:`is_nir` claims only the first, and the netx importer (netx.py) leaves such
files alone, so one file never matches both importers.

Reading one is the export stage's job (export/nir_import.py registers the importer "nir"): a NIR graph is a
float network, which becomes a deployable one only through freeze's float layers and quantize, and the core
imports no stage (tests/core/test_layering.py).
"""

from __future__ import annotations

import os

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
