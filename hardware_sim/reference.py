"""The reference simulator: a deployable network in vectorised Loihi integer arithmetic.

Bit-exact twin of Lava's ``Loihi2SimCfg(select_tag='fixed_pt')`` models (every
rule comes from dsatgo_deploy.loihi), batched over samples, on CPU or GPU.

Time here is sample time: layer l at timestep t receives its source's output of
timestep t. On Loihi (and in Lava) each Dense synapse adds one step of latency,
so layer l's step t happens at wall step t + l; the values are the same, which
is what the Lava backend and the parity checker rely on.

Layer by layer, all T steps at once for the synapse (one matmul or conv per
source over B x T messages; several sources, a folded residual ADD, are summed
in the neuron's int32 input as Lava's InPort sums its channels), then the
neuron recurrence over T. The input is the same payload every step (static
samples, the synapse is then computed once) or a different one every step
(time-varying samples, (B, T, *input_shape): event data). Float matmul is exact
because every partial sum is an integer below 2**24 (float32) or 2**53 (float64,
chosen per layer from the worst-case bound). A layer with synaptic delays
sums one masked synapse per distinct delay, each shifted d steps later; a
recurrent layer steps its neuron one timestep at a time, its own spikes of the
step before joining a(t) through ``weight_rec`` (network.py's equations).
"""

from __future__ import annotations

import numpy as np
import torch

from dsatgo_deploy import loihi, loihi_sdn
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.neurons.cuba_lif import CubaLIF
from dsatgo_deploy.runs import RunRecord


class _PreparedLayer:
    """A layer's integer parameters as tensors on the simulation device."""

    def __init__(self, layer: Layer, max_message: int, device: torch.device) -> None:
        self.layer, self.max_message, self.device = layer, max_message, device
        # Each source's synapse is computed on its own, so one source's messages bound the sums.
        self.dtype = loihi.exact_float_dtype(layer.weight, max_message)
        self.weight = torch.as_tensor(layer.weight, dtype=self.dtype, device=device)
        self.bias = loihi.effective_bias(torch.as_tensor(layer.bias_per_neuron, device=device), layer.bias_exp)
        self.graded = layer.input_message_bits > 0
        # Optional synapse fields (format version 3): delays per synapse and a recurrent Dense.
        self.delay = None if layer.delay is None else torch.as_tensor(layer.delay, device=device)
        self.weight_rec = (None if layer.weight_rec is None else
                           torch.as_tensor(layer.weight_rec, dtype=loihi.exact_float_dtype(layer.weight_rec, 1),
                                           device=device))
        # A conv whose sums over all its sources stay below NO_WRAP_BOUND meets no wrap: its synaptic input
        # is the float32 conv sums, added over sources and handed to the neurons as they are.
        self.unwrapped = (layer.kind == "conv" and self.dtype == torch.float32 and len(layer.sources)
                          * loihi.synaptic_sum_bound(layer.weight, max_message) < loihi.NO_WRAP_BOUND)


def _synaptic_input(prepared: _PreparedLayer, messages: torch.Tensor) -> torch.Tensor:
    """One synapse (Dense or Conv) on (B, T, ...) integer (or bool spike) messages -> (B, T, neurons) int64 a;
    an identity layer's neuron receives the messages themselves."""
    layer = prepared.layer
    batch, steps = messages.shape[:2]
    if layer.kind == "identity":
        return messages.reshape(batch, steps, -1).to(torch.int64)
    flat = messages.reshape(batch * steps, *layer.input_shape)
    if layer.kind == "conv":
        geometry = layer.conv
        acc = loihi.conv_accumulate(prepared.weight, flat, geometry.stride, geometry.padding, geometry.dilation,
                                    prepared.graded)
    elif prepared.delay is not None:
        return _delayed_dense_input(prepared, flat.reshape(batch, steps, -1))
    else:
        acc = loihi.dense_accumulate(prepared.weight, flat, layer.weight_exp, prepared.graded)
    return acc.reshape(batch, steps, -1)


def _unwrapped_conv_input(prepared: _PreparedLayer, sources: list[torch.Tensor]) -> torch.Tensor:
    """An unwrapped conv's synaptic input from all its sources' (B, T, ...) messages at once: one convolution
    of their sum (loihi.conv_sum_within_bound), (B, T, neurons) float32 exact integers."""
    layer, geometry = prepared.layer, prepared.layer.conv
    batch, steps = sources[0].shape[:2]
    flat = [messages.reshape(batch * steps, *layer.input_shape) for messages in sources]
    sums = loihi.conv_sum_within_bound(prepared.weight, flat, geometry.stride, geometry.padding, geometry.dilation,
                                       prepared.graded)
    return sums.reshape(batch, steps, -1)


def _delayed_dense_input(prepared: _PreparedLayer, messages: torch.Tensor) -> torch.Tensor:
    """A Dense with synaptic delays on (B, T, n_in) messages: ``wrap32(sum over d of shift(W_d m(t - d)))``,
    each delay's slot shifted on its own before the int32 sum (Lava's DelayDense; network.py's equations)."""
    batch, steps = messages.shape[:2]
    flat = messages.reshape(batch * steps, -1)
    total = torch.zeros((batch, steps, prepared.weight.shape[0]), dtype=torch.int64, device=messages.device)
    for d in torch.unique(prepared.delay).tolist():
        if d >= steps:
            continue
        slot = torch.where(prepared.delay == d, prepared.weight, torch.zeros_like(prepared.weight))
        acc = loihi.dense_accumulate(slot, flat, prepared.layer.weight_exp, prepared.graded).reshape(batch, steps, -1)
        total[:, d:] += acc[:, : steps - d]
    return loihi.wrap_signed(total, 32)


def _for_messages(prepared: _PreparedLayer, sources: list[torch.Tensor]) -> _PreparedLayer:
    """The layer as prepared for its declared messages, or prepared again for the largest graded message its
    sources really sent: nothing clips a sigma-delta message to its ``message_bits`` (Lava's are int32; lava-dl's
    PilotNet SDNN sends 41,772 from a 16-bit layer), and the float sums are exact only below the bound they
    were chosen for."""
    if not prepared.graded:
        return prepared
    peak = max((int(messages.abs().max()) for messages in sources if messages.numel()), default=0)
    if peak <= prepared.max_message:
        return prepared
    if loihi.synaptic_sum_bound(prepared.layer.weight, peak) >= 1 << 53:
        raise UserError(f"layer '{prepared.layer.name}': a message of {peak} makes synaptic sums no float "
                        "computes exactly (2**53 or more)")
    return _PreparedLayer(prepared.layer, peak, prepared.device)


def _layer_input(prepared: _PreparedLayer, outputs: dict[str, torch.Tensor], steps: int,
                 static_input: bool = True) -> torch.Tensor:
    """a(t) of a layer: its synapse applied to each source, summed in the neuron's int32 in-port."""
    prepared = _for_messages(prepared, [outputs[source] for source in prepared.layer.sources])
    layer = prepared.layer
    if layer.sources == [INPUT] and static_input and prepared.delay is None:
        # Direct encoding: the same payload every step, so the synapse is computed once.
        once = outputs[INPUT][:, :1]
        a = _unwrapped_conv_input(prepared, [once]) if prepared.unwrapped else _synaptic_input(prepared, once)
        return a.expand(-1, steps, -1)
    if prepared.unwrapped:  # exact float32 integers below 2**23: no wrap; lif_sequence takes them as they are
        return _unwrapped_conv_input(prepared, [outputs[source] for source in layer.sources])
    total = _synaptic_input(prepared, outputs[layer.sources[0]])
    for source in layer.sources[1:]:
        total = total + _synaptic_input(prepared, outputs[source])
    return loihi.wrap_signed(total, 32)


def _neuron_sequence(layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int, record: tuple[str, ...]
                     ) -> dict[str, torch.Tensor]:
    """The neuron kind's recurrence over T (dsatgo_deploy.neurons): {"s": messages (B, T, n) (bool spikes, or
    int64 graded), the readout's trace under its kind's readout_var, and each state in ``record``}."""
    kind = layer.neuron_kind
    if a.is_floating_point() and not isinstance(kind, CubaLIF):  # lif_sequence takes float sums; others integers
        a = a.to(torch.int64)
    wanted = tuple(record) + (() if layer.spiking or kind.readout_var in record else (kind.readout_var,))
    return kind.run_reference(layer, bias, a, steps, wanted)


def _max_message(net: DeployableNetwork, layer: Layer) -> int:
    """The largest magnitude of one message the layer's synapse multiplies."""
    if layer.sources == [INPUT]:
        return max(abs(v) for v in net.input_encoding.payload_range)
    return 1 << (layer.input_message_bits - 1) if layer.input_message_bits else 1


def _recurrent_sequence(prepared: _PreparedLayer, a: torch.Tensor, steps: int, record: tuple[str, ...]
                        ) -> dict[str, torch.Tensor]:
    """A LIF layer with a recurrent Dense (``weight_rec``): step by step, its spikes of step t - 1 through
    W_rec (shifted by weight_exp, wrap32) join a(t) in the neuron's int32 in-port; {"s": spikes (B, T, n)
    bool, and u, v after each step where ``record`` asks}."""
    layer = prepared.layer
    thresholds = layer.neuron_kind.thresholds(layer, steps)
    state = loihi.lif_initial_state(a[:, 0].shape, a.device)
    fired = torch.zeros(a[:, 0].shape, dtype=torch.bool, device=a.device)
    trace: dict[str, list[torch.Tensor]] = {key: [] for key in ("s", *record)}
    for t in range(steps):
        recurrent = loihi.dense_accumulate(prepared.weight_rec, fired, layer.weight_exp, False)
        params = loihi.LIFParameters(layer.current_decay, layer.voltage_decay, prepared.bias, thresholds[t])
        state, fired = loihi.lif_step(params, state, loihi.wrap_signed(a[:, t] + recurrent, 32))
        values = {"s": fired, "u": state.u, "v": state.v}
        for key in trace:
            trace[key].append(values[key])
    return {key: torch.stack(parts, dim=1) for key, parts in trace.items()}


def encode_input(net: DeployableNetwork, x: np.ndarray | torch.Tensor, payloads: bool = False) -> torch.Tensor:
    """Samples -> int64 messages: (B, input_size) for static samples (B, *input_shape), (B, T, input_size)
    for time-varying ones (B, T, *input_shape); analog unless ``payloads`` (DeployableNetwork.encode_input)."""
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return torch.from_numpy(net.encode_input(array, payloads=payloads))


@torch.no_grad()
def simulate(
    net: DeployableNetwork,
    x: np.ndarray | torch.Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 1024,
    payloads: bool = False,
    record: tuple[str, ...] = (),
    latency: bool = False,
    reset_interval: int | None = None,
    forced: dict[str, np.ndarray] | None = None,
) -> RunRecord:
    """Run the network on samples x: static (B, *input_shape), the same input every timestep, or
    time-varying (B, T, *input_shape); analog (encoded with the network's input encoding), or the integer
    payloads (spikes: 0/1) themselves if ``payloads``.

    record: neuron states to keep for every layer ("u", "v", "sigma", as its kind has them), after each step,
        in RunRecord.states. latency: run in Loihi's wall time instead of sample time: every Dense or Conv
        synapse delivers one step late (an identity none) and no layer restarts when the sample reaches it,
        as Lava runs netx's SDNN blocks (which ignore reset_interval) and as lava-dl recorded them.
    reset_interval: with latency, netx's reset_interval R (reset_offset 0): the layer at position k restarts
        from rest at wall steps k + n R, if netx resets its kind (LIF: LIFReset); T is then the wall steps run.
    Bias input (InputEncoding kind "bias"): each static sample's payloads are the bias mantissa of the identity
    layer reading the input, whose a(t) is 0.
    forced: teacher forcing, {layer: (B, T, n) messages} of another run of the same samples (spikes, or a
        graded layer's values): a layer named there sends those to the layers it feeds instead of its own, so
        each layer's result measures its own error given the other run's inputs, not every error before it."""
    device = torch.device(device)
    encoded = encode_input(net, x, payloads=payloads)
    if net.input_encoding.kind == "bias" and encoded.ndim != 2:
        raise UserError("bias input sets the input neurons' bias once per sample: samples must be static "
                        f"(B, {', '.join(map(str, net.input_shape))}), not time-varying")
    static_input = encoded.ndim == 2 and not latency
    _check_forced(net, forced, len(encoded))
    prepared = [_PreparedLayer(layer, _max_message(net, layer), device) for layer in net.layers]
    chunks: dict[str, list[dict[str, np.ndarray]]] = {layer.name: [] for layer in net.layers}
    steps = net.timesteps
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size].to(device)
        # Direct encoding: the same payload every step; time-varying input: one payload per step.
        outputs = {INPUT: chunk.unsqueeze(1).expand(-1, steps, -1) if chunk.ndim == 2 else chunk}
        for position, item in enumerate(prepared):
            layer, bias = item.layer, item.bias
            if net.input_encoding.kind == "bias" and layer.sources == [INPUT]:
                bias = loihi.effective_bias(chunk, layer.bias_exp)  # (B, n): the samples' bias mantissas
                a = torch.zeros((len(chunk), steps, layer.num_neurons), dtype=torch.int64, device=device)
            else:
                a = _layer_input(item, outputs, steps, static_input)
            if latency and layer.latency:
                a = loihi_sdn.delayed(a, layer.latency)
            if item.weight_rec is not None:
                states = _recurrent_sequence(item, a, steps, record)
            elif latency and reset_interval and layer.neuron_kind.netx_reset:
                states = _restarted_sequence(layer, bias, a, steps, record, position, reset_interval)
            else:
                states = _neuron_sequence(layer, bias, a, steps, record)
            outputs[layer.name] = states["s"]  # bool spikes (a binary synapse only asks which are non-zero) or graded
            if forced is not None and layer.name in forced:
                outputs[layer.name] = torch.as_tensor(np.asarray(forced[layer.name][start:start + batch_size]),
                                                      device=device)
            chunks[layer.name].append({name: value.cpu().numpy() for name, value in states.items()})
    return _record(net, chunks, record)


def _check_forced(net: DeployableNetwork, forced: dict[str, np.ndarray] | None, samples: int) -> None:
    """Forced messages name spiking layers of ``net`` and have their (B, T, n) shape."""
    for name, messages in (forced or {}).items():
        layer = next((item for item in net.layers if item.name == name and item.spiking), None)
        if layer is None:
            raise ValueError(f"forced messages for '{name}', which is no spiking layer of the network")
        expected = (samples, net.timesteps, layer.num_neurons)
        if tuple(np.shape(messages)) != expected:
            raise ValueError(f"layer '{name}': forced messages of shape {tuple(np.shape(messages))}, expected {expected}")


def _restarted_sequence(layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int, record: tuple[str, ...],
                        position: int, interval: int) -> dict[str, torch.Tensor]:
    """The kind's recurrence restarted from rest at 0-based steps ``position + n * interval`` (netx's block
    ``position`` gets LIFReset's reset_offset 1 + position: it resets on receiving a(t) at 1-based t)."""
    starts = sorted({0} | set(range(position % interval, steps, interval)))
    parts = [_neuron_sequence(layer, bias, a[:, start:end], end - start, record)
             for start, end in zip(starts, starts[1:] + [steps])]
    return {key: torch.cat([part[key] for part in parts], dim=1) for key in parts[0]}


def _record(net: DeployableNetwork, chunks: dict[str, list[dict[str, np.ndarray]]], record: tuple[str, ...]
            ) -> RunRecord:
    """The run's RunRecord from each layer's chunks of states."""
    def joined(name: str, key: str) -> np.ndarray:
        parts = [part[key] for part in chunks[name]]
        return np.concatenate(parts) if parts else np.zeros((0, net.timesteps, net.layer(name).num_neurons), np.int64)

    spiking = [layer for layer in net.layers if layer.spiking]
    messages = {layer.name: joined(layer.name, "s") for layer in spiking}
    readout = None
    if net.has_readout:
        readout = joined(net.output.name, net.output.neuron_kind.readout_var).astype(np.int64)
    run = RunRecord.from_readout("reference", messages, readout)
    run.messages = {layer.name: messages[layer.name].astype(np.int64) for layer in spiking if layer.message_bits}
    run.states = {layer.name: {key: joined(layer.name, key) for key in record} for layer in net.layers} if record else {}
    return run
