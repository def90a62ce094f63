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

from dsatgo_deploy import loihi
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.runs import RunRecord


class _PreparedLayer:
    """A layer's integer parameters as tensors on the simulation device."""

    def __init__(self, layer: Layer, max_message: int, device: torch.device) -> None:
        self.layer = layer
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


def _synaptic_input(prepared: _PreparedLayer, messages: torch.Tensor) -> torch.Tensor:
    """One synapse (Dense or Conv) on (B, T, ...) integer (or bool spike) messages -> (B, T, neurons) int64 a."""
    layer = prepared.layer
    batch, steps = messages.shape[:2]
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


def _layer_input(prepared: _PreparedLayer, outputs: dict[str, torch.Tensor], steps: int,
                 static_input: bool = True) -> torch.Tensor:
    """a(t) of a layer: its synapse applied to each source, summed in the neuron's int32 in-port."""
    layer = prepared.layer
    if layer.sources == [INPUT] and static_input and prepared.delay is None:
        # Direct encoding: the same payload every step, so the synapse is computed once.
        return _synaptic_input(prepared, outputs[INPUT][:, :1]).expand(-1, steps, -1)
    total = sum(_synaptic_input(prepared, outputs[source]) for source in layer.sources)
    return loihi.wrap_signed(total, 32)


def _neuron_sequence(layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The neuron kind's recurrence over T (dsatgo_deploy.neurons); returns (spikes (B, T, n) bool, v after
    each step (B, T, n) for the non-spiking readout, None for spiking layers, whose v nobody reads)."""
    return layer.neuron_kind.reference(layer, bias, a, steps)


def _recurrent_sequence(prepared: _PreparedLayer, a: torch.Tensor, steps: int) -> tuple[torch.Tensor, None]:
    """A LIF layer with a recurrent Dense (``weight_rec``): step by step, its spikes of step t - 1 through
    W_rec (shifted by weight_exp, wrap32) join a(t) in the neuron's int32 in-port; spikes (B, T, n) bool."""
    layer = prepared.layer
    thresholds = layer.neuron_kind.thresholds(layer, steps)
    state = loihi.lif_initial_state(a[:, 0].shape, a.device)
    fired = torch.zeros(a[:, 0].shape, dtype=torch.bool, device=a.device)
    spikes = []
    for t in range(steps):
        recurrent = loihi.dense_accumulate(prepared.weight_rec, fired, layer.weight_exp, False)
        params = loihi.LIFParameters(layer.current_decay, layer.voltage_decay, prepared.bias, thresholds[t])
        state, fired = loihi.lif_step(params, state, loihi.wrap_signed(a[:, t] + recurrent, 32))
        spikes.append(fired)
    return torch.stack(spikes, dim=1), None


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
) -> RunRecord:
    """Run the network on samples x: static (B, *input_shape), the same input every timestep, or
    time-varying (B, T, *input_shape); analog (encoded with the network's input encoding), or the integer
    payloads (spikes: 0/1) themselves if ``payloads``."""
    device = torch.device(device)
    encoded = encode_input(net, x, payloads=payloads)
    static_input = encoded.ndim == 2
    max_payload = max(abs(v) for v in net.input_encoding.payload_range)
    prepared = [_PreparedLayer(layer, max_payload if layer.sources == [INPUT] else 1, device) for layer in net.layers]
    chunks_spikes: dict[str, list[np.ndarray]] = {layer.name: [] for layer in net.layers if layer.spiking}
    chunks_readout: list[np.ndarray] = []
    steps = net.timesteps
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size].to(device)
        # Direct encoding: the same payload every step; time-varying input: one payload per step.
        outputs = {INPUT: chunk.unsqueeze(1).expand(-1, steps, -1) if static_input else chunk}
        for item in prepared:
            layer = item.layer
            a = _layer_input(item, outputs, steps, static_input)
            if item.weight_rec is not None:
                fired, voltage = _recurrent_sequence(item, a, steps)
            else:
                fired, voltage = _neuron_sequence(layer, item.bias, a, steps)
            if layer.spiking:
                outputs[layer.name] = fired  # bool: a binary synapse only asks which messages are non-zero
                chunks_spikes[layer.name].append(fired.cpu().numpy())
            else:
                chunks_readout.append(voltage.cpu().numpy())
    spikes = {name: np.concatenate(parts) if parts else np.zeros((0, steps, 0), bool) for name, parts in chunks_spikes.items()}
    readout = None
    if net.has_readout:
        readout = np.concatenate(chunks_readout) if chunks_readout else np.zeros((0, steps, net.output.num_neurons), np.int64)
    return RunRecord.from_readout("reference", spikes, readout)
