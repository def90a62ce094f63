"""ONNX target: one timestep of a network as a standard ONNX graph, state in, state out.

Two graphs, both opset 17, both checked with ``onnx.checker``, both run by
onnxruntime's CPU provider (hardware_sim/onnx_runner.py loops them over T):

**Integer graph** (:func:`build_onnx`, from a :class:`DeployableNetwork`): bit-exact
to the reference simulator (hardware_sim/reference.py), spike for spike and
voltage for voltage, including u's 24-bit wrap, v's saturation and the int32
wraps of the synaptic input (dsatgo_deploy/loihi.py states every rule).

    inputs   x              (batch, *input_shape) int64  payloads of this timestep (graded
                            values, or spikes: any non-zero entry is one spike); the same
                            every step for a static sample (direct encoding)
             t              ()  int64   sample timestep 0..T-1; each layer's threshold is
                                        read from its per-timestep table (an initializer)
             <layer>.u      (batch, neurons) int64   state after the previous step,
             <layer>.v      (batch, neurons) int64   zeros at t = 0; every layer, readout too
                                                     (the neuron kind's ``onnx_state``: u, v
                                                     for LIF kinds; sigma, act, residue for
                                                     sigma-delta; delays and recurrence add
                                                     their own, onnx_support.py)
    outputs  <layer>.spikes (batch, neurons) bool    every spiking layer (<layer>.messages,
                                                     int64, for graded messages)
             <layer>.u_next, <layer>.v_next          the new state; the readout's v_next
                                                     after step T is the network's output
                                                     (without a readout: the last layer's
                                                     spike counts over T)

Every layer's synapse reads its sources' spikes of the SAME timestep (sample
time, no synaptic latency), as the reference does; identity layers, bias input,
delays, recurrence and what the graph refuses: export/onnx_support.py. How integers
stay exact in a graph whose MatMul/Conv are float:

* Dense: ``MatMul`` in float32 when every partial sum is an integer below 2**24
  (``loihi.exact_float_dtype``), else float64 (exact below 2**53); Cast to int64.
* Conv: onnxruntime's CPU Conv exists only in float32, so a graded input whose
  bound reaches 2**24 is split into chunks of b bits (``m = sum_k m_k 2**(b k)``,
  low chunks by ``Mod`` fmod=0, i.e. floor), each chunk's Conv exact, recombined in
  int64. A conv whose weights times fan-in alone reach 2**24 cannot be made exact
  this way and raises a UserError naming the layer.
* wrap to n bits: ``Mod(x + 2**(n-1), 2**n) - 2**(n-1)`` with fmod=0 (floor);
  ``x << e``: Mul by 2**e; ``x >> e`` (floor): ``(x - Mod(x, 2**e)) / 2**e``
  (exact integer Div); decay toward zero: ``Sign(p) * (Abs(p) / 4096)`` with
  p = x * factor; v's saturation: ``Clip`` on int64; spike: ``Greater`` (strict),
  reset: ``Where``.

**Float graph** (:func:`build_float_onnx`, from a :class:`FrozenNetwork`): the frozen
float model (export/freeze.py), float32, same interface shape:

    inputs   x (batch, *input_shape) float32 raw input (the graph normalises per
             channel when the model does), t () int64, <layer>.u (batch, neurons)
             float32 per spiking layer (potential after the previous step's reset)
    outputs  <layer>.spikes bool, <layer>.u_next float32, <readout>.current: the
             readout's input current I(t); the network output is its mean over T

    U(t) = tau U(t-1) (1 - S(t-1)) + I(t),  S(t) = U(t) >= theta(t)

Large constants are stored compactly and rebuilt in the graph (export/onnx_storage.py): the integer graph's
weights as int8 (Loihi's mantissas over their common factor 2) Cast to the compute dtype, per-neuron biases
once per channel, each array once however many synapses read it.

Both models carry a ``dsatgo`` metadata entry (JSON: kind, T, input shape and
encoding, layers with names, neurons, spiking; input_names, output_name and usage in
words; the integer graph's input_quantum) from which the runner needs nothing else.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import numpy as np

from dsatgo_deploy import loihi, loihi_sdn
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import atomic_file
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.onnx_metadata import input_name, interface, output_name, read_metadata

from .onnx_builder import OPSET, _Builder  # noqa: F401  (OPSET and _Builder are reached through this module too)
from .onnx_support import (check_onnx_expressible, delayed_dense_input, identity_input, recurrent_input,
                           synapse_state)

BATCH = "batch"
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


# --------------------------------------------------------------------------- integer graph


def _conv_attrs(layer: Layer) -> dict[str, Any]:
    geometry = layer.conv
    kh, kw = layer.weight.shape[2:]
    return dict(kernel_shape=[int(kh), int(kw)], strides=list(geometry.stride),
                pads=[geometry.padding[0], geometry.padding[1], geometry.padding[0], geometry.padding[1]],
                dilations=list(geometry.dilation))


def _conv_chunks(layer: Layer, max_message: int) -> list[tuple[int, int]]:
    """(shift, bound) of each chunk a graded conv input is split into so that every float32 Conv is exact."""
    per_unit = max(loihi.synaptic_sum_bound(layer.weight, 1), 1)  # largest sum of |W| of one output channel
    if per_unit >= FLOAT32_EXACT:
        raise UserError(f"layer '{layer.name}': conv whose kernel magnitudes sum to {per_unit} "
                        "cannot be computed exactly by onnxruntime's float32-only Conv (bound >= 2**24); "
                        "the onnx target cannot express this conv layer")
    if per_unit * max(max_message, 1) < FLOAT32_EXACT:
        return [(0, max_message)]
    bits = 1
    while per_unit * (1 << (bits + 1)) < FLOAT32_EXACT:
        bits += 1
    chunks, offset, bound = [], 0, max_message
    while per_unit * bound >= FLOAT32_EXACT:
        chunks.append((offset, (1 << bits) - 1))
        bound = -(-bound // (1 << bits))  # the rest after a floor split: ceil(|m| / 2**b)
        offset += bits
    chunks.append((offset, bound))
    return chunks


def _dense_synapse(b: _Builder, layer: Layer, messages: str, graded: bool, max_message: int,
                   source_shape: tuple[int, ...], weight: np.ndarray | None = None, hint: str = "weight_t") -> str:
    """a = wrap32((W @ m) shifted by weight_exp), with a graded sum wrapped to int32 first; a source of
    shape (C, H, W) lets the weights be stored once per channel where they repeat over H and W. ``weight``:
    another matrix than the layer's (one delay's synapses, the recurrent ones), stored as ``<layer>.<hint>``."""
    import torch

    weight = layer.weight if weight is None else weight
    dtype = loihi.exact_float_dtype(weight, max_message)
    np_dtype, onnx_type = (np.float32, b.TP.FLOAT) if dtype == torch.float32 else (np.float64, b.TP.DOUBLE)
    if loihi.synaptic_sum_bound(weight, max_message) >= FLOAT64_EXACT:
        raise UserError(f"layer '{layer.name}': dense synaptic sums can reach 2**53; the onnx target cannot "
                        "compute this layer exactly")
    flat = b.reshape(b.cast(messages, onnx_type), (-1, weight.shape[1]))
    channels = (source_shape[0],) if len(source_shape) == 3 else ()
    weight_t = b.stored(weight.T, np_dtype, f"{layer.name}.{hint}", channels)
    total = b.cast(b.op("MatMul", [flat, weight_t]), b.TP.INT64)
    if graded:
        total = b.wrap(total, 32)
    return b.wrap(b.shift(total, layer.weight_exp), 32)


def _conv_synapse(b: _Builder, layer: Layer, messages: str, graded: bool, max_message: int,
                  source_shape: tuple[int, ...]) -> str:
    """a = wrap24(W (*) m), float32 Conv per exact chunk of the messages, flattened (C, H, W)."""
    weight = b.stored(layer.weight, np.float32, f"{layer.name}.weight")
    attrs = _conv_attrs(layer)
    chunks = _conv_chunks(layer, max_message if graded else 1)
    rest, total = messages, None
    for index, (offset, _) in enumerate(chunks):
        if index < len(chunks) - 1:
            step = chunks[index + 1][0] - offset
            part = b.op("Mod", [rest, b.i64(1 << step)], fmod=0)
            rest = b.op("Div", [b.op("Sub", [rest, part]), b.i64(1 << step)])
        else:
            part = rest
        image = b.reshape(b.cast(part, b.TP.FLOAT), (-1, *layer.input_shape))
        value = b.cast(b.op("Conv", [image, weight], **attrs), b.TP.INT64)
        value = b.shift(value, offset)
        total = value if total is None else b.add(total, value)
    return b.reshape(b.wrap(total, loihi.STATE_BITS), (-1, layer.num_neurons))


def _synaptic_input(b: _Builder, net: DeployableNetwork, layer: Layer, produced: dict[str, str], flat_x: str,
                    binary: dict[str, str], shapes: dict[str, tuple[int, ...]], history: str | None
                    ) -> tuple[str, str | None]:
    """a(t) of a Dense or Conv layer: its synapse on each source's messages, summed (wrap32 when several); with
    delays, from its source's ``history`` (onnx_support.py), whose next value is returned too (else None)."""
    graded = layer.input_message_bits > 0
    if INPUT in layer.sources and not graded and INPUT not in binary:
        # binary input spikes: every non-zero payload is one spike, as in the reference (m = x != 0)
        binary[INPUT] = b.op("Not", [b.op("Equal", [flat_x, b.i64(0)])], hint="input_spikes")
    source_shape = tuple(net.input_shape) if layer.sources[0] == INPUT else shapes[layer.sources[0]]
    # the largest |message| of a source: the input's payload range; a graded layer's messages are int32, whatever
    # its message_bits declare (a static graph cannot widen its sums for the messages sent, as the reference does)
    bounds = [max(abs(v) for v in net.input_encoding.payload_range) if source == INPUT else
              loihi_sdn.MAX_GRADED_MESSAGE if graded else 1 for source in layer.sources]
    messages = [binary[INPUT] if source == INPUT and not graded else produced[source] for source in layer.sources]
    if layer.delay is not None:  # one source (check_onnx_expressible)
        return delayed_dense_input(b, layer, messages[0], history, lambda m, weight, hint: _dense_synapse(
            b, layer, m, graded, bounds[0], source_shape, weight, hint))
    synapse = _conv_synapse if layer.kind == "conv" else _dense_synapse
    parts = [synapse(b, layer, m, graded, bound, source_shape) for m, bound in zip(messages, bounds)]
    a = parts[0]
    for part in parts[1:]:
        a = b.add(a, part)
    return (b.wrap(a, 32) if len(parts) > 1 else a), None


def build_onnx(net: DeployableNetwork):
    """The integer-exact one-timestep ONNX model (onnx.ModelProto) of a deployable network; what it cannot hold
    (onnx_support.py) is refused before any node is built."""
    net.validate()
    check_onnx_expressible(net)
    b = _Builder()
    TP, helper = b.TP, b.helper
    # x has the network's input shape (images for conv nets), as the float graph's x; flattened inside
    inputs = [helper.make_tensor_value_info("x", TP.INT64, [BATCH, *net.input_shape]),
              helper.make_tensor_value_info("t", TP.INT64, [])]
    outputs = []
    flat_x = b.reshape("x", (-1, net.input_size)) if len(net.input_shape) > 1 else "x"
    produced: dict[str, str] = {INPUT: flat_x}  # layer -> its messages of this step (int64 payloads or bool spikes)
    binary: dict[str, str] = {}
    shapes = {layer.name: tuple(layer.output_shape) for layer in net.layers}
    layers_meta = []
    for layer in net.layers:
        n, kind = layer.num_neurons, layer.neuron_kind
        sizes = {name: n for name in kind.onnx_state} | synapse_state(layer)  # state per sample: the neuron's, delays'
        state = {name: input_name(layer.name, name) for name in sizes}
        inputs += [helper.make_tensor_value_info(state[name], TP.INT64, [BATCH, size]) for name, size in sizes.items()]
        history_next, bias = None, None
        if layer.kind == "identity":  # no synapse; under bias input the samples set its bias (onnx_support.py)
            a, bias = identity_input(b, net, layer, produced, flat_x)
        else:
            a, history_next = _synaptic_input(b, net, layer, produced, flat_x, binary, shapes, state.get("history"))
        if layer.weight_rec is not None:  # its own spikes of the step before, through weight_rec
            a = recurrent_input(b, layer, a, state["s"], lambda m, weight, hint: _dense_synapse(
                b, layer, m, False, 1, (n,), weight, hint))
        # the neuron kind's step (dsatgo_deploy.neurons): its next state and, for a spiking kind, its messages
        step = kind.onnx_step(b, layer, a, {name: state[name] for name in kind.onnx_state}, net.timesteps, bias=bias)
        for key, dtype in (("spikes", TP.BOOL), ("messages", TP.INT64)):  # binary spikes or graded messages
            if key in step:
                outputs.append(helper.make_tensor_value_info(step[key], dtype, [BATCH, n]))
                produced[layer.name] = step[key]
        if "s" in sizes:
            step["s_next"] = b.op("Cast", [step["spikes"]], output=output_name(layer.name, "s_next"), to=TP.INT64)
        step["history_next"] = history_next
        outputs += [helper.make_tensor_value_info(step[f"{name}_next"], TP.INT64, [BATCH, size])
                    for name, size in sizes.items()]
        layers_meta.append({"name": layer.name, "neurons": n, "spiking": layer.spiking,
                            "shape": list(layer.output_shape), "state": sizes, "message_bits": layer.message_bits,
                            "readout_var": kind.readout_var})
    encoding, last = net.input_encoding, net.layers[-1]
    metadata = {"kind": "integer", "format_version": 3, "timesteps": net.timesteps,
                "input_shape": list(net.input_shape), "input_encoding": asdict(encoding),
                "input_quantum": None if encoding.kind == "spikes" else float(encoding.step),
                "input_payload_range": list(encoding.payload_range),
                "layers": layers_meta,
                **interface(last.name, not last.spiking, integer=True, readout_var=last.neuron_kind.readout_var,
                            graded=last.message_bits > 0)}
    return b.model("dsatgo_integer_step", inputs, outputs, metadata,
                   "One timestep of a dsatgo deployable network, integer-exact to the reference simulator "
                   "(state in, state out; see dsatgo_deploy.export.onnx_writer).")


# --------------------------------------------------------------------------- float graph


def build_float_onnx(frozen):
    """The float32 one-timestep ONNX model of a frozen float network (export/freeze.py)."""
    for layer in frozen.layers:  # an imported (NIR) layer's synaptic current or leaky readout: not in this graph
        if layer.current_tau is not None or (not layer.spiking and layer.tau is not None):
            raise UserError(f"layer '{layer.name}': the float ONNX graph has no synaptic current or leaky readout "
                            "(a NIR file's CubaLIF, LI or I); export --target loihi or nir for this network")
    b = _Builder()
    TP, helper = b.TP, b.helper
    input_shape = tuple(int(d) for d in frozen.input_shape)
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [BATCH, *input_shape]),
              helper.make_tensor_value_info("t", TP.INT64, [])]
    outputs = []
    x = "x"
    if frozen.normalize is not None:
        shape = (1, -1) + (1,) * (len(input_shape) - 1)
        mean = np.asarray(frozen.normalize["mean"], np.float32).reshape(shape)
        std = np.asarray(frozen.normalize["std"], np.float32).reshape(shape)
        x = b.op("Div", [b.op("Sub", [x, b.const(mean, np.float32, "mean")]), b.const(std, np.float32, "std")])
    produced: dict[str, str] = {INPUT: x}
    shapes: dict[str, tuple[int, ...]] = {INPUT: input_shape}
    layers_meta = []
    for layer in frozen.layers:
        n = int(layer.weight.shape[0]) if layer.conv is None else None
        sources = [produced[s] if s == INPUT else b.cast(produced[s], TP.FLOAT) for s in layer.sources]
        messages = sources[0] if len(sources) == 1 else b.op("Sum", sources)
        if layer.conv is None:
            flat = b.reshape(messages, (-1, int(layer.weight.shape[1])))
            source_shape = shapes[layer.sources[0]]  # after a global pool: one weight row per channel, stored once
            channels = (source_shape[0],) if len(source_shape) == 3 else ()
            current = b.op("MatMul", [flat, b.stored(layer.weight.T, np.float32, f"{layer.name}.weight_t", channels)])
            current = b.add(current, b.const(layer.bias.astype(np.float32), np.float32, f"{layer.name}.bias"))
            shape = (n,)
        else:
            geometry = layer.conv
            image = b.reshape(messages, (-1, *geometry.input_shape))
            kh, kw = layer.weight.shape[2:]
            conv = b.op("Conv", [image, b.const(layer.weight.astype(np.float32), np.float32, f"{layer.name}.weight"),
                                 b.const(layer.bias.astype(np.float32), np.float32, f"{layer.name}.bias")],
                        kernel_shape=[int(kh), int(kw)], strides=[int(s) for s in geometry.stride],
                        pads=[int(geometry.padding[0]), int(geometry.padding[1])] * 2)
            c_out = int(layer.weight.shape[0])
            h = (geometry.input_shape[1] + 2 * geometry.padding[0] - kh) // geometry.stride[0] + 1
            w = (geometry.input_shape[2] + 2 * geometry.padding[1] - kw) // geometry.stride[1] + 1
            shape = (c_out, h, w)
            n = c_out * h * w
            current = b.reshape(conv, (-1, n))
        shapes[layer.name] = shape
        layers_meta.append({"name": layer.name, "neurons": n, "spiking": layer.spiking, "shape": list(shape)})
        if not layer.spiking:
            out = b.op("Identity", [current], output=output_name(layer.name, "current"))
            outputs.append(helper.make_tensor_value_info(out, TP.FLOAT, [BATCH, n]))
            continue
        u_in = input_name(layer.name, "u")
        inputs.append(helper.make_tensor_value_info(u_in, TP.FLOAT, [BATCH, n]))
        potential = b.add(b.op("Mul", [u_in, b.const(float(layer.tau), np.float32, "tau")]), current)
        table = b.const(np.asarray(layer.threshold_schedule, np.float32), np.float32, f"{layer.name}.threshold_table")
        spikes = b.op("GreaterOrEqual", [potential, b.op("Gather", [table, "t"], axis=0)],
                      output=output_name(layer.name, "spikes"))
        u_out = b.op("Where", [spikes, b.const(0.0, np.float32), potential], output=output_name(layer.name, "u_next"))
        outputs += [helper.make_tensor_value_info(spikes, TP.BOOL, [BATCH, n]),
                    helper.make_tensor_value_info(u_out, TP.FLOAT, [BATCH, n])]
        produced[layer.name] = spikes
    metadata = {"kind": "float", "format_version": 2, "timesteps": int(frozen.timesteps),
                "input_shape": list(input_shape), "layers": layers_meta,
                "input_normalization": None if frozen.normalize is None else
                {key: [float(v) for v in frozen.normalize[key]] for key in ("mean", "std")},
                **interface(frozen.layers[-1].name, not frozen.layers[-1].spiking, integer=False)}
    return b.model("dsatgo_float_step", inputs, outputs, metadata,
                   "One timestep of a dsatgo frozen float network (float32; state in, state out; "
                   "see dsatgo_deploy.export.onnx_writer).")


# --------------------------------------------------------------------------- files


def _write(model, path: str | os.PathLike) -> None:
    with atomic_file(path, "wb") as handle:
        handle.write(model.SerializeToString())


def write_onnx(net: DeployableNetwork, path: str | os.PathLike) -> dict[str, Any]:
    """Write the integer-exact step graph; returns its description for the manifest."""
    model = build_onnx(net)
    _write(model, path)
    return describe(model)


def write_float_onnx(frozen, path: str | os.PathLike) -> dict[str, Any]:
    """Write the float32 step graph of the frozen network; returns its description for the manifest."""
    model = build_float_onnx(frozen)
    _write(model, path)
    return describe(model)


def metadata(model) -> dict[str, Any]:
    """The ``dsatgo`` metadata entry of a model written here (UserError when it has none)."""
    return read_metadata(model)


def describe(model) -> dict[str, Any]:
    """Opset, inputs and outputs of a model: what the manifest records."""
    graph = model.graph
    return {"opset": OPSET, "kind": metadata(model)["kind"], "nodes": len(graph.node),
            "inputs": [value.name for value in graph.input], "outputs": [value.name for value in graph.output]}
