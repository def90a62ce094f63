"""The metadata entry and the input/output names that tie an ONNX graph to dsatgo-deploy, shared by
its writer and its runner.

export/onnx_writer.py stores, under :data:`METADATA_KEY`, JSON with the kind of
graph ('integer' or 'float'), T, the input shape and encoding, and the layers
(name, neurons, spiking); hardware_sim/onnx_runner.py reads it back.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import UserError

METADATA_KEY = "dsatgo"


def input_name(layer: str, field: str) -> str:
    """Name of a state input: ``<layer>.u`` / ``<layer>.v``."""
    return f"{layer}.{field}"


def output_name(layer: str, field: str) -> str:
    """Name of an output: ``<layer>.spikes``, ``<layer>.u_next``, ``<layer>.v_next``, ``<layer>.current``."""
    return f"{layer}.{field}"


def read_metadata(model: Any) -> dict[str, Any]:
    """The ``dsatgo`` metadata entry of an onnx.ModelProto; UserError when it has none."""
    entries = {prop.key: prop.value for prop in model.metadata_props}
    if METADATA_KEY not in entries:
        raise UserError(f"this ONNX model has no '{METADATA_KEY}' metadata: it was not written by dsatgo-deploy")
    return json.loads(entries[METADATA_KEY])
