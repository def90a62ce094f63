"""NIR neuron nodes as Loihi CUBA neurons: the NIR spec's equations, discretised by forward Euler with step dt.

For a node after a synapse whose output is ``x(t) = W m(t) + b`` (the node's input current), per neuron i:

    LIF      tau dv/dt = (v_leak - v) + r x        v[t] = (1 - dt/tau) v[t-1] + (dt/tau) (v_leak + r x[t])
    IF       dv/dt = r x                           v[t] = v[t-1] + dt r x[t]
    CubaLIF  tau_syn dI/dt = -I + w_in x           I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in x[t]
             tau_mem dv/dt = (v_leak - v) + r I    v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) (v_leak + r I[t])
    LI       as LIF, never fires (a readout: v[T] is the output)
    I        as IF, never fires (a readout)

spiking nodes fire when v > v_threshold and then set v = v_reset. The current is updated before the voltage
reads it (as snnTorch's Synaptic and Loihi do; Norse's LIFCell reads the previous step's current). So a
layer is freeze's float neuron (export/freeze.py) with

    decay (U's factor)   1 - dt/tau (LIF, LI, CubaLIF: tau_mem), 1 (IF, I)
    input gain g_i       r dt/tau, r dt, or (dt/tau_syn) w_in (dt/tau_mem) r for CubaLIF: multiplies row i of W and b
    bias                 dt v_leak / tau (added to v each step, Loihi's bias)
    current decay        1 - dt/tau_syn (CubaLIF)

Per-neuron thresholds: with reset to zero, neuron i with threshold theta_i fires exactly when the same neuron
with its input, bias and potential divided by theta_i crosses 1, so row i and bias i are divided by theta_i and
the layer's threshold is 1 (Loihi has one threshold per layer). Loihi has one decay per layer: tau, tau_syn must
be equal across a layer; a conv layer shares its kernel over a channel, so r, w_in, v_leak and v_threshold must
be equal within a channel. What cannot map is refused naming the file, the node and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from dsatgo_deploy.errors import UserError

SPIKING = ("LIF", "CubaLIF", "IF")
READOUTS = ("LI", "I")
#: metadata keys a writer might use to say that its neurons reset by subtraction (NIR has no such reset)
RESET_KEYS = ("reset", "reset_mechanism", "reset_method")


class NodeRef:
    """One node of a NIR file, for reading its fields and naming it in errors."""

    def __init__(self, origin: str, key: str, node: Any) -> None:
        self.origin, self.key, self.node = origin, key, node
        self.type = type(node).__name__

    def fail(self, field: str | None, message: str) -> NoReturn:
        where = f"{self.origin}: node '{self.key}' ({self.type})"
        raise UserError(f"{where}: field '{field}': {message}" if field else f"{where}: {message}")

    def array(self, field: str) -> np.ndarray:
        """The field as float64, finite."""
        value = getattr(self.node, field, None)
        if value is None:
            self.fail(field, "missing")
        try:
            values = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(field, f"is {value!r}, not numbers")
        if not np.all(np.isfinite(values)):
            self.fail(field, "holds NaN or infinite values")
        return values

    def values(self, field: str, shape: tuple[int, ...]) -> np.ndarray:
        """The field per neuron of a layer of ``shape`` (scalars broadcast); a (C, H, W) layer's must be equal
        within each channel (a conv kernel is shared over its channel)."""
        values = self.array(field)
        if values.ndim and values.size == int(np.prod(shape)):  # one per neuron, e.g. (1, n) or Conv1d's (C, L)
            values = values.reshape(shape)
        elif len(shape) == 3 and values.shape == (shape[0],):  # one per channel
            values = values.reshape(-1, 1, 1)
        try:
            values = np.broadcast_to(values, shape).astype(np.float64)
        except ValueError:
            self.fail(field, f"has shape {values.shape}; the layer has shape {shape}")
        if len(shape) == 3:
            flat = values.reshape(shape[0], -1)
            if np.any(flat != flat[:, :1]):
                self.fail(field, "differs within a channel; a conv layer shares its kernel and bias over a channel, "
                                 "so Loihi can take it only per channel")
        return values

    def uniform(self, field: str, shape: tuple[int, ...]) -> float:
        """A field Loihi holds once per layer (a decay): one value, or the same value for every neuron."""
        values = self.values(field, shape)
        if values.size and np.any(values != values.reshape(-1)[0]):
            self.fail(field, f"varies across the layer ({values.min():.6g} to {values.max():.6g}); Loihi has one "
                             "decay per layer")
        return float(values.reshape(-1)[0]) if values.size else 0.0


@dataclass
class NeuronMap:
    """A NIR neuron as freeze's float neuron (module doc): per neuron arrays of the layer's shape."""

    kind: str
    decay: float
    input_gain: np.ndarray
    voltage_bias: np.ndarray
    threshold: np.ndarray | None  # None: a non-spiking readout
    current_decay: float | None = None


def _ratio(ref: NodeRef, field: str, shape: tuple[int, ...], dt: float) -> float:
    """dt / tau of a time constant; refused where forward Euler's decay 1 - dt / tau would be negative."""
    tau = ref.uniform(field, shape)
    if not tau > 0:
        ref.fail(field, f"is {tau:g}; a time constant must be positive")
    ratio = dt / tau
    if ratio > 1.0:
        ref.fail(field, f"is {tau:.6g} s, shorter than dt = {dt:.6g} s: forward Euler's decay 1 - dt/tau = "
                        f"{1.0 - ratio:.6g} is negative (pass the time step the source framework ran with: --dt)")
    return ratio


def _check_reset(ref: NodeRef, shape: tuple[int, ...]) -> None:
    """Loihi resets v to 0: only v_reset = 0 maps; a node whose metadata says it resets by subtraction is refused."""
    metadata = getattr(ref.node, "metadata", None) or {}
    for key in RESET_KEYS:
        if key in metadata and "sub" in str(metadata[key]).lower():
            ref.fail(f"metadata/{key}", f"is {metadata[key]!r}: Loihi resets v to 0; a subtractive reset has no "
                                        "Loihi equivalent")
    if getattr(ref.node, "v_reset", None) is None:
        return  # NIR's default: 0
    reset = ref.values("v_reset", shape)
    if np.any(reset != 0):
        ref.fail("v_reset", f"is {reset.reshape(-1)[np.flatnonzero(reset)[0]]:.6g} for some neurons; Loihi resets v "
                            "to 0 (only v_reset = 0 maps)")


def _thresholds(ref: NodeRef, shape: tuple[int, ...]) -> np.ndarray:
    threshold = ref.values("v_threshold", shape)
    if np.any(threshold <= 0):
        ref.fail("v_threshold", f"is {threshold.min():.6g} for some neurons; Loihi fires on a positive threshold "
                                "(a neuron at rest would fire at once)")
    return threshold


def map_neuron(ref: NodeRef, shape: tuple[int, ...], dt: float) -> NeuronMap:
    """The float neuron of a NIR neuron node of ``shape`` (module doc)."""
    kind = ref.type
    zeros = np.zeros(shape)
    if kind in ("LIF", "LI"):
        ratio = _ratio(ref, "tau", shape, dt)
        gain = ref.values("r", shape) * ratio
        leak = ref.values("v_leak", shape) * ratio
        if kind == "LI":
            return NeuronMap(kind, 1.0 - ratio, gain, leak, None)
        _check_reset(ref, shape)
        return NeuronMap(kind, 1.0 - ratio, gain, leak, _thresholds(ref, shape))
    if kind in ("IF", "I"):
        gain = ref.values("r", shape) * dt
        if kind == "I":
            return NeuronMap(kind, 1.0, gain, zeros, None)
        _check_reset(ref, shape)
        return NeuronMap(kind, 1.0, gain, zeros, _thresholds(ref, shape))
    if kind == "CubaLIF":
        synaptic = _ratio(ref, "tau_syn", shape, dt)
        membrane = _ratio(ref, "tau_mem", shape, dt)
        gain = synaptic * ref.values("w_in", shape) * membrane * ref.values("r", shape)
        leak = ref.values("v_leak", shape) * membrane
        _check_reset(ref, shape)
        alpha = 1.0 - synaptic
        return NeuronMap(kind, 1.0 - membrane, gain, leak, _thresholds(ref, shape), alpha if alpha > 0 else None)
    ref.fail(None, f"is not a neuron this importer maps ({', '.join(SPIKING + READOUTS)})")
