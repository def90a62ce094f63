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


def interface(last: str, has_readout: bool, integer: bool, readout_var: str = "v", graded: bool = False
              ) -> dict[str, Any]:
    """Names and use of a step graph's inputs and outputs, for a reader without this package (docs/interop.md).
    ``last``: the last layer; ``readout_var``: the state its output is read from (a readout); ``graded``: whether
    it sends graded messages (``<layer>.messages``) rather than spikes."""
    sent = output_name(last, "messages" if graded else "spikes")
    if integer:
        x = ("x: int64 (batch, *input_shape): the input payloads m = clip(round(x' / input_quantum)) within "
             "input_payload_range, x' = (x - mean) / std per channel when input_encoding has mean and std; "
             "binary spikes when its kind is 'spikes'; when it is 'bias', the bias mantissas of the input layer's "
             "neurons (the same at every step)")
        state = ("<layer>.<name> for each name in the layer's 'state' (u and v for LIF kinds; sigma, act, residue "
                 "for sigma-delta kinds): int64 (batch, neurons), zeros at t = 0, then <layer>.<name>_next")
        final = output_name(last, f"{readout_var}_next")
        result = f"{final} after step T-1" if has_readout else f"the count of non-zero {sent} over T"
    else:
        x = "x: float32 (batch, *input_shape): the raw input (the graph normalises when input_normalization is set)"
        state = "<layer>.u: float32 (batch, neurons) per spiking layer, zeros at t = 0, then <layer>.u_next"
        final = output_name(last, "current")
        result = f"the mean of {final} over the T steps" if has_readout else f"the spike counts of {sent} over T"
    return {"input_names": ["x", "t"], "output_name": final if has_readout else sent,
            "usage": {"x": x + "; the same x at every step (direct encoding) for a static sample",
                      "t": "int64 scalar: the timestep 0..T-1", "state": state,
                      "output": f"run T = timesteps steps; the network output is {result}; argmax: the class"}}
