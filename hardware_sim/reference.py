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
chosen per layer from the worst-case bound).
"""

from __future__ import annotations

import numpy as np
import torch

from dsatgo_deploy import loihi
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer
from dsatgo_deploy.neurons.cuba_lif import CubaLIF
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
        # A conv whose sums over all its sources stay below NO_WRAP_BOUND meets no wrap: its synaptic input
        # is the float32 conv sums, added over sources and handed to the neurons as they are.
        self.unwrapped = (layer.kind == "conv" and self.dtype == torch.float32 and len(layer.sources)
                          * loihi.synaptic_sum_bound(layer.weight, max_message) < loihi.NO_WRAP_BOUND)


def _synaptic_input(prepared: _PreparedLayer, messages: torch.Tensor) -> torch.Tensor:
    """One synapse (Dense or Conv) on (B, T, ...) integer (or bool spike) messages -> (B, T, neurons) int64 a
    (an unwrapped conv: its float32 sums)."""
    layer = prepared.layer
    batch, steps = messages.shape[:2]
    flat = messages.reshape(batch * steps, *layer.input_shape)
    if prepared.unwrapped:
        geometry = layer.conv
        acc = loihi.conv_sum_within_bound(prepared.weight, flat, geometry.stride, geometry.padding, geometry.dilation,
                                          prepared.graded)
    elif layer.kind == "conv":
        geometry = layer.conv
        acc = loihi.conv_accumulate(prepared.weight, flat, geometry.stride, geometry.padding, geometry.dilation,
                                    prepared.graded)
    else:
        acc = loihi.dense_accumulate(prepared.weight, flat, layer.weight_exp, prepared.graded)
    return acc.reshape(batch, steps, -1)


def _layer_input(prepared: _PreparedLayer, outputs: dict[str, torch.Tensor], steps: int,
                 static_input: bool = True) -> torch.Tensor:
    """a(t) of a layer: its synapse applied to each source, summed in the neuron's int32 in-port."""
    layer = prepared.layer
    if layer.sources == [INPUT] and static_input:
        # Direct encoding: the same payload every step, so the synapse is computed once.
        return _synaptic_input(prepared, outputs[INPUT][:, :1]).expand(-1, steps, -1)
    total = _synaptic_input(prepared, outputs[layer.sources[0]])
    for source in layer.sources[1:]:
        total = total + _synaptic_input(prepared, outputs[source])
    if prepared.unwrapped:  # exact float32 integers below 2**23: no wrap; lif_sequence takes them as they are
        return total
    return loihi.wrap_signed(total, 32)


def _neuron_sequence(layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The neuron kind's recurrence over T (dsatgo_deploy.neurons); returns (spikes (B, T, n) bool, v after
    each step (B, T, n) for the non-spiking readout, None for spiking layers, whose v nobody reads)."""
    kind = layer.neuron_kind
    if a.is_floating_point() and not isinstance(kind, CubaLIF):  # lif_sequence takes float sums; others integers
        a = a.to(torch.int64)
    return kind.reference(layer, bias, a, steps)


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
