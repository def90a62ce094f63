"""The netx entries that act across time, read as netx reads them: a dense layer's synaptic ``delay``, the
recurrent ``dense_rec`` block (``weight_rec``) and lava-dl's ``average`` block (docs/netx_kinds.md).

Kept apart from netx_layers.py, which calls these for its dense entries; ``entry`` is netx_layers'
``_Entry`` (fail, has, array, ints, index, type).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.loihi_sdn import NETX_MAX_DELAY
from dsatgo_deploy.network import Layer

from .netx_weights import _representable, optimize_weight_bits

#: The readout an 'average' block becomes: u forgets every step (du = 4095) and v never decays (dv = 0),
#: so v after T steps is 64 times the spikes its synapses counted.
AVERAGE_CURRENT_DECAY = 4095
AVERAGE_VOLTAGE_DECAY = 0


def read_delay(entry: Any, weight_shape: tuple[int, int]) -> np.ndarray | None:
    """A dense entry's ``delay`` as netx's create_dense expands it: a scalar for every synapse, (out,) per
    output neuron (netx's choice when out == in), (in,) per input, or (out, in); clipped to [0, 62]
    (netx warns and clips above 62), then truncated to integers (DelayDense's ``astype(int)``).
    None when the entry has no delay or every delay is 0 (a plain Dense computes the same)."""
    if not entry.has("delay"):
        return None
    delay = entry.array("delay")
    if delay.dtype.kind not in "iuf" or (delay.dtype.kind == "f" and not np.isfinite(delay).all()):
        entry.fail("delay", f"must hold finite real numbers, got {delay.dtype}")
    if delay.size and delay.min() < 0:
        entry.fail("delay", f"holds the negative delay {delay.min():g}; Lava's DelayDense takes delays >= 0")
    if delay.size and delay.max() > NETX_MAX_DELAY:
        warnings.warn(f"{entry.where('delay')}: delays up to {delay.max():g} are clipped to {NETX_MAX_DELAY}, as netx "
                      "clips them", stacklevel=4)
        delay = np.clip(delay, 0, NETX_MAX_DELAY)
    out, inputs = weight_shape
    if delay.ndim == 0:
        delay = np.full(weight_shape, delay[()])
    elif delay.ndim == 1 and delay.size == out:  # netx: "axonal delays", one per output neuron
        delay = np.repeat(delay.reshape(-1, 1), inputs, axis=1)
    elif delay.ndim == 1 and delay.size == inputs:
        delay = np.repeat(delay.reshape(1, -1), out, axis=0)
    elif delay.shape != weight_shape:
        entry.fail("delay", f"has shape {delay.shape}; netx takes a scalar, ({out},) per output, ({inputs},) per "
                            f"input or ({out}, {inputs}) per synapse")
    delay = delay.astype(int).astype(np.int64)
    return delay if delay.any() else None


def recurrent_weights(entry: Any, weight: np.ndarray, input_message_bits: int
                      ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(weight, weight_rec, num_weight_bits, weight_exp) of a ``dense_rec`` entry as Lava computes them: netx
    optimizes ``[weight | weight_rec]`` as one matrix (one bit count, one exponent), then gives each part
    its own Dense, which keeps the bits its own sign mode allows (loihi.representable_weights)."""
    if input_message_bits:
        entry.fail("weight_rec", "a recurrent block reading graded input cannot be imported (the format's "
                                 "recurrent synapse carries binary spikes)")
    weight_rec = entry.ints("weight_rec")
    out = weight.shape[0]
    if weight_rec.ndim == 1:
        weight_rec = weight_rec.reshape(out, -1)
    if weight_rec.shape != (out, out):
        entry.fail("weight_rec", f"has shape {weight_rec.shape}; a block of {out} neurons takes ({out}, {out})")
    inputs = weight.shape[1]
    concat = np.hstack((weight, weight_rec)).astype(np.int64)
    scaled, bits, exponent, _ = optimize_weight_bits(concat)
    used, used_rec = _representable(scaled[:, :inputs], bits), _representable(scaled[:, inputs:], bits)
    if not (1 <= bits <= 9 and loihi.WEIGHT_EXP_RANGE[0] <= exponent <= loihi.WEIGHT_EXP_RANGE[1]):
        entry.fail("weight_rec", f"netx maps [weight | weight_rec] to {bits}-bit weights with exponent {exponent}, "
                                 "which no deployable layer can hold")
    shift = -exponent
    if not (shift >= 0 and np.array_equal(np.hstack((used, used_rec)), concat << shift)):
        warnings.warn(f"{entry.where('weight_rec')}: netx's optimize_weight_bits does not keep [weight | weight_rec]: "
                      "Lava computes with different ones, and so does the imported layer", stacklevel=4)
    return used, used_rec, bits, exponent


def average_readout(entry: Any, previous: Layer | None, name: str) -> Layer:
    """lava-dl's ``average`` block (slayer's Average: the mean of each of ``shape[0]`` equal consecutive
    groups of the previous layer's spikes, in (C, H, W) flatten order) as a non-spiking readout: one
    Dense of weight 1 from every neuron of group k to readout neuron k, whose v after T steps is 64 x the
    group's spike count over the sample (the mean times 64 x group size x T). netx itself does not build
    it (NotImplementedError); lava-dl's own runs stop before it and average on the host."""
    if previous is None or not previous.spiking:
        entry.fail(None, "an 'average' block needs a spiking layer before it")
    groups = int(np.prod(entry.array("shape"))) if entry.has("shape") else 0
    size = previous.num_neurons
    if groups < 1 or size % groups:
        entry.fail("shape", f"gives {groups} groups, which do not split the {size} neurons before it equally")
    weight = np.kron(np.eye(groups, dtype=np.int64), np.ones((1, size // groups), dtype=np.int64))
    return Layer(name=name, sources=[previous.name], weight=weight, weight_exp=0, bias_mant=np.zeros(groups, np.int64),
                 bias_exp=6, threshold_schedule=np.zeros(0, np.int64), current_decay=AVERAGE_CURRENT_DECAY,
                 voltage_decay=AVERAGE_VOLTAGE_DECAY, spiking=False, neuron="readout")


def check_average_range(entries: list[Any], layers: list[Layer], timesteps: int, origin: str) -> None:
    """Refuse an 'average' readout (the file's last entry) whose v could saturate within T steps
    (64 x group size x T > 2**23 - 1): its counts would no longer be exact."""
    if not entries or entries[-1].type != "average":
        return
    last = layers[-1]
    group = int(np.abs(last.weight).sum(axis=1).max())
    if (group * int(timesteps)) << loihi.ACTIVATION_SHIFT > loihi.VOLTAGE_LIMIT:
        raise UserError(f"{origin}: layer {entries[-1].index} (average): {timesteps} steps of {group}-neuron groups "
                        f"can count {group * int(timesteps)} spikes, beyond the "
                        f"{loihi.VOLTAGE_LIMIT >> loihi.ACTIVATION_SHIFT} a readout's v holds; use fewer timesteps")
