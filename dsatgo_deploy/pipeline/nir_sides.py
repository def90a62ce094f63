"""Parity sides ``nir:<framework>``: a NIR file run in another framework through its own importer
(hardware_sim/nir_frameworks.py), its layers named as the other sides name them.

Which file a side runs: among the NIR files given, the one written for that framework (our writer's
``nir_for`` metadata; snnTorch reads the ``spec`` file), else one another tool wrote, else one written
for the spec, else the first; the side says which file it ran, for whom that file was written, and
whether its framework reads it as written (Norse and Sinabs read a spec file otherwise: docs/interop.md).

Layer names: a file dsatgo-deploy wrote names each layer's LIF node ``<layer>.lif``
(export/nir_writer.py :func:`node_names`): the side records it as ``<layer>``, as the reference does.
A foreign file's layers keep the key of their neuron node (how the NIR importer names deployable layers),
and so does any node whose key names a layer of the network the other sides run (our file imported as
the network: its layers are named by the node keys too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.nir_writer import node_names
from dsatgo_deploy.fileio import TOOL_NAME
from dsatgo_deploy.hardware_sim.nir_frameworks import (KNOWN_FRAMEWORKS, READS_THE_SPEC, SIDE_PREFIX, input_shape,
                                                      read_graph, run_framework)
from dsatgo_deploy.importers.nir import graph_timing
from dsatgo_deploy.runs import RunRecord

NIR_SIDES = tuple(SIDE_PREFIX + framework for framework in KNOWN_FRAMEWORKS)


@dataclass(frozen=True)
class NirSource:
    """The NIR files the nir sides may run, and the caller's T and dt (before a file's metadata, as the importer)."""

    files: tuple[str, ...]
    timesteps: int | None = None
    dt: float | None = None
    graphs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def metadata(self, path: str) -> dict[str, Any]:
        if path not in self.graphs:
            self.graphs[path] = read_graph(path).metadata or {}
        return self.graphs[path]


def is_nir_side(side: str) -> bool:
    return side.startswith(SIDE_PREFIX)


def framework_of(side: str) -> str:
    """The framework of a side ``nir:<framework>``; a UserError for an unknown one."""
    framework = side[len(SIDE_PREFIX):]
    if framework not in KNOWN_FRAMEWORKS:
        raise UserError(f"unknown NIR side {side!r} (known: {', '.join(NIR_SIDES)})")
    return framework


def _reads_as_written(framework: str, nir_for: str | None) -> int:
    """0: the file was written for ``framework`` (snnTorch reads the spec file as written); 1: another tool
    wrote it (nothing to say); 2: written for the spec, which ``framework`` reads otherwise; 3: for another
    consumer. Up to 1 the framework reads the file as its writer meant."""
    if nir_for == framework or (nir_for == "spec" and framework in READS_THE_SPEC):
        return 0
    return 1 if nir_for is None else 2 if nir_for == "spec" else 3


def side_file(side: str, source: NirSource) -> tuple[str, str | None]:
    """(the file ``side`` runs, the consumer it was written for: None for a file another tool wrote)."""
    if not source.files:
        raise UserError(f"the {side} side needs a NIR file: --nir FILE, an export folder written with "
                        "--target nir, or a .nir file as --network")
    framework = framework_of(side)
    written_for = {path: source.metadata(path).get("nir_for") for path in source.files}
    path = min(source.files, key=lambda p: _reads_as_written(framework, written_for[p]))
    return path, (None if written_for[path] is None else str(written_for[path]))


def describe(side: str, source: NirSource) -> dict[str, Any]:
    """What a report says of a nir side: its file, for whom it was written, and whether it reads as written."""
    path, nir_for = side_file(side, source)
    return {"file": path, "nir_for": nir_for,
            "as_written": _reads_as_written(framework_of(side), nir_for) <= 1}


def layer_name(key: str, producer: str | None) -> str:
    """The layer a spiking node's key stands for: our layer name in our own files, the key otherwise."""
    if producer != TOOL_NAME:
        return key
    layer = key.removesuffix(node_names("")["lif"])
    return layer if node_names(layer)["lif"] == key else key


def run_nir_side(side: str, source: NirSource, x: np.ndarray, layers: Collection[str] = ()) -> RunRecord:
    """Run ``side`` on x (B, ...): FrameworkUnavailable (hardware_sim/nir_frameworks.py) when its framework
    cannot run here. ``layers``: the layer names of the network the other sides run (module doc)."""
    framework = framework_of(side)
    path, _ = side_file(side, source)
    graph = read_graph(path)  # each side its own copy: an importer may alter the graph
    timesteps, dt = graph_timing(graph, path, source.timesteps, source.dt)  # as the reference's import runs it
    record = run_framework(framework, graph, x, timesteps, dt)
    producer = (graph.metadata or {}).get("producer")
    spikes = {key if key in layers else layer_name(key, producer): value for key, value in record.spikes.items()}
    return RunRecord(record.name, spikes, record.predictions, record.readout_trace)


def nir_input_shape(path: str) -> tuple[int, ...]:
    """The sample shape of a NIR file's input node (for loading data when no network or model says)."""
    return input_shape(read_graph(path))


def is_nir_file(path: str | Path) -> bool:
    """Whether ``path`` names a NIR file (by its suffix: NIR files are HDF5 like netx files)."""
    return Path(path).is_file() and Path(path).suffix.lower() == ".nir"
