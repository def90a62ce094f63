"""Run the netx blocks the importer does not read yet directly through the integer kinds (loihi, loihi_sdn).

The importer (dsatgo_deploy.importers.netx) reads input neurons, LIF and SDNN blocks into the
deployable format, and the reference simulator reproduces lava-dl's recordings of them. What it
lacks is here: netx's ``DelayDense`` (per-synapse delays, ntidigits.net) and ``RecurrentDense``
(dense_rec) blocks of CUBA/LOIHI LIF neurons, with conv, flatten and dense around them, run from rest
for T steps on spikes sent into the first synapse, recording every block's output and state in
Lava's x-first layout (X, Y, C) with time last, as lava-dl's ground truths are stored. Layout here is
torch's (C, H, W); Lava's (X, Y, C) is its reverse. Blocks netx itself does not build ('pool',
'average', ...) are refused, naming the layer and its type field; input and SDNN neurons are left to
read_netx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import torch

from dsatgo_deploy import loihi, loihi_sdn
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.importers.netx import optimize_weight_bits

#: netx's CUBA neuron for a dense layer without one (hdf5.py create_dense): a non-leaky integrator
#: that never fires (vThMant is ``1 << 18 - 1`` = 2**17).
MISSING_NEURON = {"type": b"CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}


@dataclass
class Block:
    """One netx block: kind 'conv' or 'dense', its synapse and its neuron fields."""

    index: int
    kind: str
    shape: tuple[int, ...]  # (C, H, W) or (n,)
    neuron: dict[str, Any]
    bias: np.ndarray | None = None
    weight: np.ndarray | None = None  # conv: (out, in, kh, kw) raw; dense: what Lava's Dense uses
    weight_exp: int = 0
    delay: np.ndarray | None = None  # dense: (out, in)
    weight_rec: np.ndarray | None = None  # dense_rec: (out, out), sharing weight's bits and exponent
    conv: dict[str, tuple[int, int]] = field(default_factory=dict)
    flatten_before: bool = False


def _neuron_fields(group: Any) -> dict[str, Any]:
    return {key: group[key][()] for key in group.keys()}


def _kind(neuron: dict[str, Any]) -> str:
    kind = neuron["type"]
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def read_blocks(path: str, num_layers: int | None = None) -> list[Block]:
    """The blocks netx builds from ``path`` (its first num_layers hdf5 layers, as netx's argument)."""
    blocks: list[Block] = []
    flatten = False
    with h5py.File(path, "r") as h5:
        layers = h5["layer"]
        count = len(layers) if num_layers is None else min(num_layers, len(layers))
        for i in range(count):
            group = layers[str(i)]
            kind = group["type"][0].decode()
            shape = tuple(int(s) for s in np.ravel(group["shape"][()]))
            neuron = _neuron_fields(group["neuron"]) if "neuron" in group else None
            if neuron is not None:
                _check_neuron(path, i, neuron)
            bias = np.asarray(group["bias"][()], dtype=np.float64) if "bias" in group else None
            if kind == "input":
                if neuron is not None:
                    raise UserError(f"{path}: layer/{i}/neuron: an input neuron is read by "
                                    "dsatgo_deploy.importers.netx.read_netx, not here")
                continue
            if kind == "flatten":
                flatten = True
                continue
            if kind == "conv":
                if int(group["groups"][()]) != 1:
                    raise UserError(f"{path}: layer/{i}/groups = {int(group['groups'][()])}: only 1 is supported")
                weight = np.asarray(group["weight"][()])
                conv = {key: tuple(int(v) for v in np.broadcast_to(group[key][()], (2,)))
                        for key in ("stride", "padding", "dilation")}
                blocks.append(Block(i, "conv", shape, neuron, bias, weight.reshape(weight.shape[:4]).astype(np.int64),
                                    conv=conv))
            elif kind in ("dense", "dense_rec"):
                blocks.append(_dense_block(path, group, i, neuron or dict(MISSING_NEURON), bias, flatten))
                flatten = False
            else:
                raise UserError(f"{path}: layer/{i}/type = '{kind}': lava-dl's netx does not build this block "
                                "(NotImplementedError), so there is no Lava behaviour to reproduce")
    return blocks


def _check_neuron(path: str, index: int, neuron: dict[str, Any]) -> None:
    kind = _kind(neuron)
    if kind not in ("CUBA", "LOIHI"):
        raise UserError(f"{path}: layer/{index}/neuron/type = '{kind}': only CUBA and LOIHI neurons are run here "
                        "(SDNN files: dsatgo_deploy.importers.netx.read_netx)")


def _dense_block(path: str, group: Any, index: int, neuron: dict, bias: np.ndarray | None, flatten: bool) -> Block:
    out = int(np.prod(group["shape"][()]))
    weight = np.asarray(group["weight"][()]).reshape(out, -1).astype(int)
    inputs = weight.shape[1]
    if group["type"][0] == b"dense_rec":  # netx optimizes [weight | weight_rec] together, then splits it
        weight = np.hstack((weight, np.asarray(group["weight_rec"][()]).reshape(out, -1).astype(int)))
    scaled, bits, exponent, _ = optimize_weight_bits(weight)
    used = loihi.representable_weights(torch.from_numpy(np.asarray(scaled, np.int64)), bits).numpy()
    used, used_rec = used[:, :inputs], (used[:, inputs:] if used.shape[1] > inputs else None)
    weight = weight[:, :inputs]
    delay = None
    if "delay" in group:
        delay = np.clip(np.asarray(group["delay"][()]), 0, loihi_sdn.NETX_MAX_DELAY).astype(int)
        if delay.ndim == 1 and delay.size == weight.shape[0]:
            delay = np.repeat(delay.reshape(-1, 1), weight.shape[1], axis=1)
        elif delay.ndim == 1 and delay.size == weight.shape[1]:
            delay = np.repeat(delay.reshape(1, -1), weight.shape[0], axis=0)
        elif delay.shape != weight.shape:
            raise UserError(f"{path}: layer/{index}/delay has shape {delay.shape}; weight is {weight.shape}")
    if used_rec is not None and delay is not None:
        raise UserError(f"{path}: layer/{index}/delay: a recurrent block with delays is not supported (netx builds "
                        "its recurrent DelayDense without the weight exponent)")
    return Block(index, "dense", (out,), neuron, bias, used, int(exponent), delay, weight_rec=used_rec,
                 flatten_before=flatten)


def _per_neuron(bias: np.ndarray | None, shape: tuple[int, ...]) -> torch.Tensor:
    """netx's bias_mant: per channel (conv) or per neuron, int32 (trunc0)."""
    if bias is None:
        return torch.zeros(shape, dtype=torch.int64)
    values = torch.from_numpy(np.asarray(bias).astype(np.int32).astype(np.int64))
    if len(shape) == 3 and values.numel() == shape[0]:
        return values.reshape(-1, 1, 1).expand(shape).clone()
    return values.reshape(shape)


def _lif_parameters(neuron: dict, bias: torch.Tensor) -> loihi.LIFParameters:
    return loihi.LIFParameters(int(neuron["iDecay"]) - 1, int(neuron["vDecay"]), loihi.effective_bias(bias, 6),
                               int(neuron["vThMant"]))


def _lif_run(neuron: dict, bias: torch.Tensor, a: torch.Tensor, reset: tuple[int, int] | None = None
             ) -> dict[str, torch.Tensor]:
    """netx's CUBA/LOIHI neuron: du = iDecay - 1, dv = vDecay, vth = vThMant, bias_exp 6.

    reset (interval, offset): LIFReset's u = v = 0 on receiving a(t) at 1-based steps t with
    ``t % interval == offset % interval`` (netx's block k gets offset reset_offset + 1 + k)."""
    params = _lif_parameters(neuron, bias)
    state = loihi.lif_initial_state(a[:, 0].shape)
    record = {name: torch.empty(a.shape, dtype=torch.int64) for name in ("s", "u", "v")}
    for t in range(a.shape[1]):
        if reset is not None and (t + 1) % reset[0] == reset[1] % reset[0]:
            state = loihi.lif_initial_state(a[:, 0].shape)
        state, fired = loihi.lif_step(params, state, a[:, t])
        record["s"][:, t], record["u"][:, t], record["v"][:, t] = fired, state.u, state.v
    return record


def _neuron_run(block: Block, a: torch.Tensor, reset: tuple[int, int] | None) -> dict[str, torch.Tensor]:
    if block.weight_rec is not None:
        if reset is not None:
            raise UserError(f"layer/{block.index}/weight_rec: a recurrent block with reset_interval is not supported")
        params = _lif_parameters(block.neuron, _per_neuron(block.bias, a.shape[2:]))
        spikes, v = loihi_sdn.recurrent_lif_sequence(params, a, torch.from_numpy(block.weight_rec.astype(np.float64)),
                                                     block.weight_exp, False)
        return {"s": spikes.to(torch.int64), "v": v}
    return _lif_run(block.neuron, _per_neuron(block.bias, a.shape[2:]), a, reset)


def run_blocks(blocks: list[Block], steps: int, input_spikes: np.ndarray, reset_interval: int | None = None,
               reset_offset: int = 0) -> list[dict[str, torch.Tensor]]:
    """Run from rest for ``steps`` steps (batch 1) on input_spikes (T, *shape), sent into the first synapse; one
    record per block (s, u, v), each (1, T, *shape) in (C, H, W) layout. reset_interval/reset_offset are netx's
    Network arguments."""
    records: list[dict[str, torch.Tensor]] = []
    spikes = np.asarray(input_spikes, dtype=np.int64)
    previous = torch.from_numpy(spikes).reshape(1, steps, *spikes.shape[1:])
    for position, block in enumerate(blocks):
        reset = None if reset_interval is None else (reset_interval, reset_offset + 1 + position)
        records.append(_neuron_run(block, _synapse(block, previous), reset))
        previous = records[-1]["s"]
    return records


def _synapse(block: Block, messages: torch.Tensor) -> torch.Tensor:
    """What the block's synapse delivers at each step (its latency included), for 0/1 spike messages."""
    batch, steps = messages.shape[:2]
    if block.kind == "conv":
        weight = torch.from_numpy(block.weight.astype(np.float64))
        flat = messages.reshape(batch * steps, *messages.shape[2:])
        a = loihi.conv_accumulate(weight, flat, block.conv["stride"], block.conv["padding"],
                                  block.conv["dilation"], False)
        return loihi_sdn.delayed(a.reshape(batch, steps, *a.shape[1:]))
    flat = messages.reshape(batch, steps, -1)  # (C, H, W) C-order: netx's flatten of (X, Y, C)
    weight = torch.from_numpy(block.weight.astype(np.float64))
    if block.delay is not None:
        return loihi_sdn.delayed_synapse_sequence(weight, torch.from_numpy(block.delay), block.weight_exp, flat, False)
    a = loihi.dense_accumulate(weight, flat.reshape(batch * steps, -1), block.weight_exp, False)
    return loihi_sdn.delayed(a.reshape(batch, steps, -1))


def lava_layout(record: torch.Tensor) -> np.ndarray:
    """(1, T, C, H, W) or (1, T, n) to Lava's (X, Y, C, T) or (n, T)."""
    array = record[0].numpy()
    if array.ndim == 4:
        return array.transpose(3, 2, 1, 0)
    return array.transpose(1, 0)
