"""Validation of a deployable network: every field and bit width (:func:`validate`), header integers,
resources, graded conv sums.

They live here to keep network.py to its format; :func:`validate` is also ``dsatgo_deploy.network.validate``.
Messages have the form ``<file>: layer '<name>': field '<field>': <what is wrong>`` (see :func:`fail`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits, loihi
from .errors import NetworkFormatError
from .neurons import neuron_kinds

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
_INT_FIELDS = ("weight_exp", "bias_exp", "current_decay", "voltage_decay", "input_message_bits", "num_weight_bits",
               "message_bits")


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
    if spec.get("shape") is not None:
        check_integers(origin, name, "shape", spec["shape"])
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
    """Refuse a conv layer on graded input whose synaptic sum can reach 2**31 (docs/loihi_arithmetic.md); graded
    messages of a layer (``message_bits`` b) reach 2**(b - 1) in magnitude."""
    largest_payload = (max(abs(v) for v in encoding.payload_range) if layer.sources == ["input"]
                       else 1 << (layer.input_message_bits - 1))
    bound = loihi.synaptic_sum_bound(layer.weight, largest_payload)
    if bound >= CONV_GRADED_SUM_LIMIT:
        fail(origin, layer.name, "weight", f"with {layer.input_message_bits}-bit graded input a neuron's synaptic sum can reach "
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


def _check_range(origin: str, layer: str, field_name: str, values: np.ndarray | int, lo: int, hi: int) -> None:
    arr = np.asarray(values)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        fail(origin, layer, field_name, f"value {int(bad)} outside [{lo}, {hi}]")


def validate(net: DeployableNetwork, origin: str = "network") -> None:
    """Check every field and bit width of ``net``; raise NetworkFormatError naming file, layer, field."""
    from .network import INPUT, LAYER_KINDS, READABLE_VERSIONS, WEIGHT_BITS_RANGE  # network.py imports this module

    if net.format_version not in READABLE_VERSIONS:
        fail(origin, None, "format_version", f"version {net.format_version} is not supported (this tool reads "
              f"{', '.join(map(str, READABLE_VERSIONS))})")
    if not 1 <= net.timesteps <= limits.MAX_TIMESTEPS:
        fail(origin, None, "timesteps", f"must be in [1, {limits.MAX_TIMESTEPS}], got {net.timesteps}")
    if not net.layers:
        fail(origin, None, "layers", "the network has no layers")
    shapes: dict[str, tuple[int, ...]] = {INPUT: net.input_shape}
    for index, layer in enumerate(net.layers):
        name = layer.name
        if not name or name == INPUT or name in shapes:
            fail(origin, name or f"#{index}", "name", "layer names must be unique, non-empty and not 'input'")
        if layer.kind not in LAYER_KINDS:
            fail(origin, name, "kind", f"unknown layer kind {layer.kind!r} (known: {', '.join(LAYER_KINDS)})")
        _check_sources(origin, net, layer, shapes)
        if layer.weight.ndim in (2, 4) and layer.weight.shape[0] < 1:
            fail(origin, name, "weight", "a layer needs at least one neuron")
        if layer.kind == "identity":
            _check_identity(origin, layer, shapes[layer.sources[0]])
        elif layer.kind == "conv":
            if layer.conv is None:
                fail(origin, name, "conv", "a conv layer needs its geometry (input_shape, stride, padding, dilation)")
            if layer.weight.ndim != 4:
                fail(origin, name, "weight", f"a conv weight is (C_out, C_in, KH, KW), got shape {layer.weight.shape}")
            if layer.weight.shape[1] != layer.conv.input_shape[0]:
                fail(origin, name, "weight", f"has {layer.weight.shape[1]} input channels, input_shape {layer.conv.input_shape}")
            if min(layer.output_shape) < 1:
                fail(origin, name, "conv", f"output shape {layer.output_shape} is empty")
            if layer.weight_exp != 0:
                fail(origin, name, "weight_exp", f"is {layer.weight_exp}; Lava's Conv ignores weight exponents, so conv layers need 0")
            if layer.bias_mant.shape not in ((layer.weight.shape[0],), (layer.num_neurons,)):
                fail(origin, name, "bias_mant", f"shape {layer.bias_mant.shape} is neither ({layer.weight.shape[0]},) (one bias "
                      f"per output channel) nor ({layer.num_neurons},) (one per neuron, (C, H, W) order)")
        else:
            if layer.conv is not None:
                fail(origin, name, "conv", "a dense layer has no conv geometry")
            if layer.weight.ndim != 2:
                fail(origin, name, "weight", f"a dense weight is (out, in), got shape {layer.weight.shape}")
            if layer.bias_mant.shape != (layer.num_neurons,):
                fail(origin, name, "bias_mant", f"shape {layer.bias_mant.shape} != ({layer.num_neurons},)")
        for source in layer.sources:
            source_shape = shapes[source]
            fits = (source_shape == layer.input_shape) if layer.kind == "conv" else (
                int(np.prod(source_shape)) == layer.input_size)
            if not fits:
                fail(origin, name, "weight", f"expects input {layer.input_shape}, but source {source!r} gives {source_shape}")
        _check_range(origin, name, "num_weight_bits", layer.num_weight_bits, *WEIGHT_BITS_RANGE)
        representable = (layer.weight if layer.kind == "identity" else
                         loihi.representable_weights(_as_tensor(layer.weight), layer.num_weight_bits).numpy())
        if not np.array_equal(representable, layer.weight):
            bad = np.argwhere(representable != layer.weight)[0]
            fail(origin, name, "weight", f"weight[{', '.join(str(int(i)) for i in bad)}] = {int(layer.weight[tuple(bad)])} is not "
                  f"{'an' if layer.num_weight_bits == 8 else 'a'} {layer.num_weight_bits}-bit Loihi weight for a {loihi.weight_sign_mode(_as_tensor(layer.weight))} matrix "
                  f"(Lava would use {int(representable[tuple(bad)])})")
        _check_range(origin, name, "weight_exp", layer.weight_exp, *loihi.WEIGHT_EXP_RANGE)
        expected_bits = (net.input_encoding.messages if layer.sources == [INPUT] else
                         net.layer(layer.sources[0]).message_bits if len(layer.sources) == 1 else 0)
        if layer.input_message_bits != expected_bits:
            fail(origin, name, "input_message_bits", f"is {layer.input_message_bits}, but its sources {layer.sources} send "
                  f"{'graded ' + str(expected_bits) + '-bit payloads' if expected_bits else 'binary spikes'}")
        _validate_neuron(layer, net.timesteps, _LayerChecks(origin, name))
        check_delay_and_recurrence(origin, layer, net.format_version)
        if not (np.isfinite(layer.scale) and layer.scale > 0):
            fail(origin, name, "scale", f"must be a positive number, got {layer.scale}")
        if layer.kind == "conv" and layer.input_message_bits > 0:
            check_conv_graded_sum(origin, layer, net.input_encoding)
        shapes[name] = layer.output_shape
    if net.input_encoding.kind == "bias":
        _check_bias_input(origin, net)
    for layer in net.layers[:-1]:
        if not layer.spiking:
            fail(origin, layer.name, "spiking", "only the last layer may be a non-spiking readout")
    check_resources(net, origin)


def check_delay_and_recurrence(origin: str, layer: Layer, format_version: int) -> None:
    """The optional ``delay`` and ``weight_rec`` arrays of a layer (format version 3): dense only, shapes
    (out, in) and (out, out), delays in Loihi's [0, 63], recurrent weights that Lava's Dense keeps with the
    layer's num_weight_bits, a spiking LIF neuron to feed back."""
    from .loihi_sdn import LAVA_MAX_DELAY
    from .network import DELAY_VERSION
    from .neurons.cuba_lif import CubaLIF  # network.py imports this module

    for field_name in ("delay", "weight_rec"):
        if getattr(layer, field_name) is None:
            continue
        if format_version < DELAY_VERSION:
            fail(origin, layer.name, field_name, f"is set, but format_version {format_version} files hold none "
                 f"(added in version {DELAY_VERSION})")
        if layer.kind != "dense":
            fail(origin, layer.name, field_name, f"only dense layers have it, not {layer.kind} layers")
    out = int(layer.weight.shape[0])
    if layer.delay is not None:
        if layer.delay.shape != layer.weight.shape:
            fail(origin, layer.name, "delay", f"shape {layer.delay.shape} != the weight's {layer.weight.shape} (out, in)")
        _check_range(origin, layer.name, "delay", layer.delay, 0, LAVA_MAX_DELAY)
    if layer.weight_rec is not None:
        if layer.weight_rec.shape != (out, out):
            fail(origin, layer.name, "weight_rec", f"shape {layer.weight_rec.shape} != ({out}, {out}): the layer's "
                 "spikes back to itself")
        if not layer.spiking or not isinstance(layer.neuron_kind, CubaLIF):
            fail(origin, layer.name, "weight_rec", f"a {layer.neuron_name} neuron has no LIF spikes to feed back")
        representable = loihi.representable_weights(_as_tensor(layer.weight_rec), layer.num_weight_bits).numpy()
        if not np.array_equal(representable, layer.weight_rec):
            bad = tuple(np.argwhere(representable != layer.weight_rec)[0])
            fail(origin, layer.name, "weight_rec", f"weight_rec[{', '.join(str(int(i)) for i in bad)}] = "
                 f"{int(layer.weight_rec[bad])} is not a {layer.num_weight_bits}-bit Loihi weight for a "
                 f"{loihi.weight_sign_mode(_as_tensor(layer.weight_rec))} matrix (Lava would use {int(representable[bad])})")


class _LayerChecks:
    """The field checks a neuron kind's validate() uses (dsatgo_deploy.neurons.FieldChecks)."""

    def __init__(self, origin: str, layer: str) -> None:
        self.origin, self.layer = origin, layer

    def fail(self, field_name: str, message: str) -> None:
        fail(self.origin, self.layer, field_name, message)

    def in_range(self, field_name: str, values: np.ndarray | int, lo: int, hi: int) -> None:
        _check_range(self.origin, self.layer, field_name, values, lo, hi)


def _validate_neuron(layer: Layer, timesteps: int, check: _LayerChecks) -> None:
    if layer.neuron_name not in neuron_kinds():
        check.fail("neuron", f"unknown neuron kind {layer.neuron_name!r} (known: {', '.join(neuron_kinds())})")
    kind = layer.neuron_kind
    if layer.spiking != kind.spiking:
        check.fail("spiking", f"is {layer.spiking}, but a {kind.name} neuron {'spikes' if kind.spiking else 'does not spike'}")
    if not kind.graded and layer.message_bits != 0:
        check.fail("message_bits", f"is {layer.message_bits}, but a {kind.name} neuron sends binary spikes (0)")
    kind.validate(layer, timesteps, check)


def _check_sources(origin: str, net: DeployableNetwork, layer: Layer, shapes: dict[str, tuple[int, ...]]) -> None:
    """A layer's sources: earlier layers or the input, each once; the input, and graded messages, alone."""
    from .network import INPUT

    name = layer.name
    if not layer.sources:
        fail(origin, name, "sources", "a layer reads at least one source")
    for source in layer.sources:
        if source not in shapes:
            fail(origin, name, "sources", f"reads {source!r}, which is not an earlier layer or 'input'")
    if INPUT in layer.sources and len(layer.sources) > 1:
        kind = "graded input" if net.input_encoding.kind == "graded" else "the input"
        fail(origin, name, "sources", f"{kind} cannot be summed with other sources")
    graded_sources = [s for s in layer.sources if s != INPUT and net.layer(s).message_bits]
    if graded_sources and len(layer.sources) > 1:  # the Lava graph relays only 0/1 spikes
        fail(origin, name, "sources", f"the graded messages of {graded_sources[0]!r} cannot be summed with other "
                                      "sources")
    if len(set(layer.sources)) != len(layer.sources):
        fail(origin, name, "sources", f"lists a source twice: {layer.sources}")


def _check_bias_input(origin: str, net: DeployableNetwork) -> None:
    """Bias input: every layer reading the input is an identity LIF whose bias the samples set (its own is 0)."""
    from .network import INPUT

    for layer in net.layers:
        if INPUT not in layer.sources:
            continue
        if layer.kind != "identity" or layer.neuron_kind.graded or not layer.spiking:
            fail(origin, layer.name, "kind", "bias input sets the bias of an identity layer of LIF neurons, got a "
                                             f"{layer.kind} layer of {layer.neuron_name} neurons")
        if layer.bias_mant.any():
            fail(origin, layer.name, "bias_mant", "bias input sets this layer's bias per sample: its own must be 0")


def _check_identity(origin: str, layer: Layer, source_shape: tuple[int, ...]) -> None:
    """An identity layer: no synapse (empty weight, no exponent, no conv geometry), its shape its one source's."""
    if layer.shape is None:
        fail(origin, layer.name, "shape", "an identity layer needs its shape (its source's)")
    if layer.weight.size or layer.weight_exp or layer.conv is not None:
        fail(origin, layer.name, "weight", "an identity layer has no synapse: weight empty, weight_exp 0, no conv")
    if len(layer.sources) != 1:
        fail(origin, layer.name, "sources", "an identity layer reads exactly one source")
    if layer.shape != tuple(source_shape):
        fail(origin, layer.name, "shape", f"is {layer.shape}, but its source {layer.sources[0]!r} gives {source_shape}")
    if layer.bias_mant.shape != (layer.num_neurons,):
        fail(origin, layer.name, "bias_mant", f"shape {layer.bias_mant.shape} != ({layer.num_neurons},)")


def _as_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))

