"""Checks of a deployable network beyond single fields: header integers, resources, graded conv sums.

network.py validates with them; they live here to keep that module to its format. Messages have the
form ``<file>: layer '<name>': field '<field>': <what is wrong>`` (see :func:`fail`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits, loihi
from .errors import NetworkFormatError

if TYPE_CHECKING:
    from .network import DeployableNetwork, InputEncoding, Layer

#: Lava's Conv sums graded payloads in float64 and casts to int32; sums beyond int32 differ from the exact,
#: wrapped sum (docs/loihi_arithmetic.md), so a conv layer with graded input must stay below this bound.
CONV_GRADED_SUM_LIMIT = 1 << 31


def fail(origin: str, layer: str | None, field_name: str, message: str) -> None:
    """Raise NetworkFormatError naming the file, the layer (if any) and the field."""
    where = f"{origin}: layer '{layer}': field '{field_name}'" if layer else f"{origin}: field '{field_name}'"
    raise NetworkFormatError(f"{where}: {message}")


#: Header fields that hold integers (JSON numbers without a fraction; 0.5 is refused, never truncated).
_INT_FIELDS = ("weight_exp", "bias_exp", "current_decay", "voltage_decay", "input_message_bits", "num_weight_bits")


def check_integers(origin: str, layer: str | None, field_name: str, value: Any) -> None:
    """A JSON integer, or a list of them: 0.5, true and "8" are refused (never truncated or parsed)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int):
            fail(origin, layer, field_name, f"must be {'integers' if values is value else 'an integer'}, got {value!r}")


def check_layer_spec(origin: str, index: int, spec: Any, arrays: dict[str, np.ndarray],
                     array_fields: tuple[str, ...]) -> None:
    """A layer's header entry before it is built: integer fields hold integers, its arrays are there and integer."""
    if not isinstance(spec, dict):
        fail(origin, f"#{index}", "layers", f"each layer is a JSON object, got {type(spec).__name__}")
    name = str(spec.get("name", f"#{index}"))
    for key in _INT_FIELDS:
        if key in spec:
            check_integers(origin, name, key, spec[key])
    if isinstance(spec.get("conv"), dict):
        for key, value in spec["conv"].items():
            check_integers(origin, name, f"conv.{key}", value)
    for field_name in array_fields:
        key = f"layer{index}.{field_name}"
        if key not in arrays:
            fail(origin, name, field_name, "missing from the file")
        if arrays[key].dtype.kind not in "iu":
            fail(origin, name, field_name, f"must hold integers, got {arrays[key].dtype} (values are never truncated)")


def check_conv_graded_sum(origin: str, layer: Layer, encoding: InputEncoding) -> None:
    """Refuse a conv layer on graded input whose synaptic sum can reach 2**31 (docs/loihi_arithmetic.md)."""
    largest_payload = max(abs(v) for v in encoding.payload_range)
    bound = loihi.synaptic_sum_bound(layer.weight, largest_payload)
    if bound >= CONV_GRADED_SUM_LIMIT:
        fail(origin, layer.name, "weight", f"with {encoding.bits}-bit graded input a neuron's synaptic sum can reach "
             f"{bound} (sum |W| x {largest_payload}), beyond 2**31 - 1: Lava's Conv casts such sums to int32 and "
             "differs from the exact arithmetic; use fewer input bits or smaller weights")


def check_resources(net: DeployableNetwork, origin: str = "network") -> None:
    """Refuse, before any simulation allocates it, a network whose one-sample state (u, v, spikes over T,
    padded conv input) exceeds the memory budget; pure integer arithmetic on the declared shapes."""
    per_sample = 0
    for layer in net.layers:
        neurons = 1
        for size in layer.output_shape:
            neurons *= max(int(size), 0)
        per_sample += neurons * (4 * 8 + net.timesteps)
        if layer.kind == "conv" and layer.conv is not None:
            channels, height, width = layer.conv.input_shape
            per_sample += 8 * channels * (height + 2 * layer.conv.padding[0]) * (width + 2 * layer.conv.padding[1])
    limits.check_memory(origin, "one sample's neuron state and spikes", per_sample)
