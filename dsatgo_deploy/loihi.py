"""Loihi fixed-point arithmetic, exactly as Lava's bit-accurate CPU models compute it.

This module is the project's single source of integer truth: the reference
simulator, the quantizer and the tests all use it. Every rule here was read from
lava-nc 0.10.0 (``lava/proc/lif/models.py: AbstractPyLifModelFixed``,
``lava/proc/dense/models.py: AbstractPyDenseModelBitAcc``,
``lava/utils/weightutils.py``) and is pinned by property tests to a plain
Python-integer statement of the same rules (tests/core/test_loihi.py).

Functions are pure and vectorised over torch int64 tensors (any device), in the
style of Norse: NamedTuple parameters and state, no hidden mutation. Two of them
run faster forms where those are proved equal and tested against the same oracle:
:func:`lif_sequence` (a whole population over T, in int32 when the input allows)
and float32 synapses (no wraps, which cannot trigger below 2**24).

Bit widths (Loihi 1/2 neuron core, as Lava declares them):

======================  ======================================  ==============
quantity                range                                   Lava field
======================  ======================================  ==============
weight mantissa         8 bit: [-256, 254] even (mixed sign),   Dense.weights
                        [0, 255] (excitatory), [-255, 0]
weight exponent         [-8, 7] (shift of the synaptic SUM)     weight_exp
synaptic input a        int32 on the wire                       a_out / a_in
current decay du        12 bit [0, 4095]; factor (4095-du)/4096 du
                        (-1 allowed: netx iDecay 0, no decay)
voltage decay dv        [0, 4096]; factor (4096-dv)/4096        dv
current u               24 bit (wraps)                          u
voltage v               24 bit, saturates at +-(2**23 - 1)      v
bias mantissa           13 bit signed [-4096, 4095]             bias_mant
bias exponent           3 bit [0, 7]                            bias_exp
threshold mantissa      17 bit unsigned [0, 131071]; << 6       vth
======================  ======================================  ==============
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

#: Bit widths and the constants that follow from them.
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
CURRENT_DECAY_OFFSET = 1  # Lava's ds_offset: du = 0 still leaks 1/4096
VOLTAGE_DECAY_OFFSET = 0  # Lava's dm_offset
ACTIVATION_SHIFT = 6  # synaptic input is MSB-aligned by << 6
THRESHOLD_SHIFT = 6  # vth mantissa is MSB-aligned by << 6
STATE_BITS = 24
STATE_HALF = 1 << (STATE_BITS - 1)  # 2**23
VOLTAGE_LIMIT = STATE_HALF - 1  # v saturates at +-(2**23 - 1)
WEIGHT_BITS = 8
WEIGHT_EXP_RANGE = (-8, 7)
BIAS_MANT_BITS = 13
BIAS_MANT_RANGE = (-(1 << (BIAS_MANT_BITS - 1)), (1 << (BIAS_MANT_BITS - 1)) - 1)
BIAS_EXP_RANGE = (0, 7)
THRESHOLD_BITS = 17
THRESHOLD_RANGE = (0, (1 << THRESHOLD_BITS) - 1)
#: du = -1 is netx's iDecay = 0 (factor 4096/4096: no current decay); Lava keeps the
#: Python value of the scalar du, so it works in fixed_pt (docs/loihi_arithmetic.md, LIF).
CURRENT_DECAY_RANGE = (-1, 4095)
VOLTAGE_DECAY_RANGE = (0, 4096)
#: A LIF whose vth mantissa is 2**17 never fires: vth << 6 = 2**23 exceeds the
#: largest voltage, 2**23 - 1. netx uses the same value for a missing neuron.
NEVER_FIRES_VTH = 1 << THRESHOLD_BITS


def wrap_signed(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap of an int64 tensor to ``bits`` bits.

    ``((x + 2**(bits-1)) & (2**bits - 1)) - 2**(bits-1)``: bitwise AND on int64 is
    exact for negative values too, and much cheaper than a remainder.
    """
    half = 1 << (bits - 1)
    return torch.bitwise_and(x + half, (1 << bits) - 1) - half


def shift(x: torch.Tensor, exponent: int | torch.Tensor) -> torch.Tensor:
    """``x << e`` for e >= 0, arithmetic ``x >> -e`` (floor) otherwise, as numpy does."""
    if isinstance(exponent, int):
        return x << exponent if exponent >= 0 else x >> -exponent
    exponent = torch.as_tensor(exponent, dtype=torch.int64, device=x.device)
    return torch.where(exponent >= 0, x << exponent.clamp(min=0), x >> (-exponent).clamp(min=0))


def decay(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``sign(x * f) * (|x * f| >> 12)``: Loihi's decay rounds toward zero."""
    if factor == 0:  # du = 4095 / dv = 4096: no memory at all
        return torch.zeros_like(x)
    if factor == DECAY_UNITY:  # no decay
        return x
    product = x * factor
    return torch.sign(product) * (product.abs() >> DECAY_SHIFT)


def current_decay_factor(du: int) -> int:
    """Multiplier of u per step, over 4096: (4096 - (du + 1))."""
    return DECAY_UNITY - (du + CURRENT_DECAY_OFFSET)


def voltage_decay_factor(dv: int) -> int:
    """Multiplier of v per step, over 4096: (4096 - dv)."""
    return DECAY_UNITY - (dv + VOLTAGE_DECAY_OFFSET)


def effective_bias(bias_mant: torch.Tensor, bias_exp: int | torch.Tensor) -> torch.Tensor:
    """Bias added to v every step: ``bias_mant << bias_exp`` (int32)."""
    return wrap_signed(shift(bias_mant.to(torch.int64), bias_exp), 32)


def _as_messages(inputs: torch.Tensor, dtype: torch.dtype, graded: bool) -> torch.Tensor:
    """Messages as the synapse's float dtype: the payload itself (graded) or 1 per non-zero message."""
    if graded:
        return inputs.to(dtype)
    return (inputs if inputs.dtype == torch.bool else inputs != 0).to(dtype)


def dense_accumulate(
    weight: torch.Tensor, inputs: torch.Tensor, weight_exp: int, graded: bool
) -> torch.Tensor:
    """Synaptic input of a Dense layer for a batch of input messages.

    ``a = wrap32((sum_j W[i, j] * m_j) shifted by weight_exp)`` where m_j is the
    graded payload (graded) or 1 for every non-zero message (binary). The shift
    applies to the SUM (floor for negative exponents), as in Lava's Dense. A
    graded sum is Lava's int32 ``weights.dot(s_in)``, so it wraps to 32 bits
    BEFORE the shift (matters for |sum| >= 2**31 with weight_exp < 0); a binary
    sum is int64 there and is not wrapped before the shift.

    weight: (out, in) float tensor holding integers; inputs: (batch, in) integer
    messages (any integer or float dtype holding integers, or bool spikes). Float
    matmul is exact while every partial sum stays below 2**24 (float32) or 2**53
    (float64); the caller picks the weight dtype (see :func:`exact_float_dtype`).
    float32 weights are that promise (|sum| < 2**24), under which both wraps are
    identities (|sum << 7| < 2**31), so they are skipped. Returns int64 (batch, out).
    """
    messages = _as_messages(inputs, weight.dtype, graded)
    total = (messages @ weight.t()).to(torch.int64)  # exact integers: the cast drops nothing
    if weight.dtype == torch.float32:
        return shift(total, weight_exp)
    if graded:
        total = wrap_signed(total, 32)
    return wrap_signed(shift(total, weight_exp), 32)


def conv_accumulate(
    weight: torch.Tensor,
    inputs: torch.Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    graded: bool,
) -> torch.Tensor:
    """Synaptic input of a Conv layer: ``a = wrap24(W (*) m)`` (Lava ``PyConvModelFixed``).

    Torch's cross-correlation in (C, H, W) layout equals Lava's flipped-kernel
    convolution in (X, Y, C) layout once netx's transform is applied
    (docs/loihi_arithmetic.md: Conv, netx files). Lava's Conv ignores weight_exp and does not
    clip or truncate weights; its output buffer is a 24-bit WRAP.
    weight: (C_out, C_in, KH, KW) float holding integers; inputs: (N, C_in, H, W) messages as
    for :func:`dense_accumulate`. Returns int64 (N, C_out, Ho, Wo).
    """
    total = _conv_sums(weight, inputs, stride, padding, dilation, graded)
    return wrap_signed(total.to(torch.int64), STATE_BITS)


def _conv_sums(weight: torch.Tensor, inputs: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int], graded: bool) -> torch.Tensor:
    """The convolution's sums in the weights' float dtype (exact integers where the caller's bound holds)."""
    messages = _as_messages(inputs, weight.dtype, graded)
    return torch.nn.functional.conv2d(messages, weight, stride=stride, padding=padding, dilation=dilation)


#: A layer whose synaptic sums, over all its sources together, stay below this bound (2**23) meets no wrap
#: on the way to its neurons: the Conv's 24-bit buffer, the in-port's 32-bit sum and a Dense sum shifted by
#: up to 2**7 are identities there, and float32 adds such integers exactly.
NO_WRAP_BOUND = 1 << (STATE_BITS - 1)


def conv_sum_within_bound(
    weight: torch.Tensor,
    sources: Sequence[torch.Tensor],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    graded: bool,
) -> torch.Tensor:
    """The sum over ``sources`` (each (N, C_in, H, W) messages as for :func:`dense_accumulate`) of
    :func:`conv_accumulate`, for a synapse whose sums over all its sources together stay below
    NO_WRAP_BOUND (``len(sources) * synaptic_sum_bound``): no wrap applies anywhere, and convolution is
    linear, so the sources' messages are added first and convolved once, ``W (*) m_1 + W (*) m_2 =
    W (*) (m_1 + m_2)`` exactly (a residual layer costs one convolution, as in the float model). Returns
    the float32 sums themselves (exact integers), no int64 round trip."""
    if weight.dtype != torch.float32:
        raise ValueError("conv_sum_within_bound: float32 weights only (a sum bound below 2**23)")
    messages = _as_messages(sources[0], weight.dtype, graded)
    for source in sources[1:]:
        messages = messages + _as_messages(source, weight.dtype, graded)
    return _conv_sums(weight, messages, stride, padding, dilation, graded=True)


def synaptic_sum_bound(weight: "np.ndarray | torch.Tensor", max_abs_message: int) -> int:
    """Largest |partial sum| a synapse can form: max over output neurons (conv: output channels) of
    ``sum |W| * max |message|``, a message counting as 1 when binary (max_abs_message 0 or 1)."""
    magnitudes = np.abs(np.asarray(weight, dtype=np.int64))
    if magnitudes.size == 0:
        return 0
    per_neuron = magnitudes.reshape(magnitudes.shape[0], -1).sum(axis=1)
    return int(per_neuron.max()) * max(int(max_abs_message), 1)


def exact_float_dtype(weight: "np.ndarray | torch.Tensor", max_abs_message: int) -> torch.dtype:
    """The narrowest float dtype whose matmul (or conv) with these integer weights is exact for any
    messages up to max_abs_message: float32 while :func:`synaptic_sum_bound` is below 2**24."""
    return torch.float32 if synaptic_sum_bound(weight, max_abs_message) < (1 << 24) else torch.float64


class LIFParameters(NamedTuple):
    """Fixed-point CUBA LIF parameters of one layer (all integers).

    du: current decay, 12 bit; dv: voltage decay, [0, 4096];
    bias: effective bias (bias_mant << bias_exp), int64 tensor broadcastable to v;
    threshold: vth mantissa (17 bit), scalar int or int64 tensor broadcastable to v;
    the neuron fires when v > threshold << 6.
    """

    du: int
    dv: int
    bias: torch.Tensor
    threshold: int | torch.Tensor


class LIFState(NamedTuple):
    """Current u (24-bit wrap) and voltage v (24-bit saturating), int64 tensors."""

    u: torch.Tensor
    v: torch.Tensor


def lif_initial_state(shape: tuple[int, ...], device: torch.device | str = "cpu") -> LIFState:
    zeros = torch.zeros(shape, dtype=torch.int64, device=device)
    return LIFState(u=zeros, v=zeros.clone())


def lif_subthreshold(params: LIFParameters, state: LIFState, a_in: torch.Tensor) -> LIFState:
    """One step of u and v before the spike test (Lava ``subthr_dynamics``).

        u' = wrap24( wrap32( decay(u, 4095 - du) + wrap32(a << 6) ) )
        v' = clip( wrap32( decay(v, 4096 - dv) + u' + bias ), +-(2**23 - 1) )

    wrap24 is Lava's single +-2**24 correction: u' in (-2**23, 2**23].
    """
    decayed_u = decay(state.u, current_decay_factor(params.du))
    summed = wrap_signed(decayed_u + wrap_signed(a_in << ACTIVATION_SHIFT, 32), 32)
    u = torch.where(summed > STATE_HALF, summed - 2 * STATE_HALF, summed)
    u = torch.where(summed <= -STATE_HALF, summed + 2 * STATE_HALF, u)
    decayed_v = decay(state.v, voltage_decay_factor(params.dv))
    v = wrap_signed(decayed_v + u + params.bias, 32).clamp(-VOLTAGE_LIMIT, VOLTAGE_LIMIT)
    return LIFState(u=u, v=v)


def lif_step(
    params: LIFParameters, state: LIFState, a_in: torch.Tensor
) -> tuple[LIFState, torch.Tensor]:
    """One Loihi LIF step: dynamics, strict threshold ``v > vth << 6``, v reset to 0.

    u is not reset (Lava's LIF resets only v). Returns the new state and the
    boolean spike tensor.
    """
    state = lif_subthreshold(params, state, a_in)
    threshold = params.threshold
    if isinstance(threshold, torch.Tensor):
        threshold = threshold.to(torch.int64)
    spikes = state.v > (threshold << THRESHOLD_SHIFT)
    v = torch.where(spikes, torch.zeros_like(state.v), state.v)
    return LIFState(u=state.u, v=v), spikes


#: Inputs with |a| <= 2**17 (so |a << 6| <= 2**23) let :func:`lif_sequence` run from rest in int32:
#: no intermediate can leave int32 and the single +-2**24 correction of u is a true 24-bit wrap.
INT32_SAFE_INPUT = 1 << (STATE_BITS - 1 - ACTIVATION_SHIFT)
#: ... provided the effective bias stays within this bound (13-bit mantissas << 7 are below 2**19).
INT32_SAFE_BIAS = 1 << STATE_BITS


def _decay_split(x: torch.Tensor, factor: int) -> torch.Tensor:
    """:func:`decay` without the 2**35 product: ``(|x| f) >> 12 = (|x| >> 12) f + ((|x| & 4095) f) >> 12``.

    For |x| <= 2**23 and factor <= 4096 every term stays below 2**24, so it is exact in int32
    (docs/loihi_arithmetic.md, batched arithmetic).
    """
    if factor == 0:
        return torch.zeros_like(x)
    if factor == DECAY_UNITY:
        return x
    magnitude = x.abs()
    decayed = (magnitude >> DECAY_SHIFT) * factor + (((magnitude & (DECAY_UNITY - 1)) * factor) >> DECAY_SHIFT)
    return decayed * x.sign()


def lif_sequence(
    du: int,
    dv: int,
    bias: torch.Tensor,
    thresholds: Sequence[int | torch.Tensor],
    a: torch.Tensor,
    record_voltage: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A LIF population from rest (u = v = 0) over T steps of synaptic input a (B, T, *n).

    Equal, bit for bit, to T calls of :func:`lif_step` from :func:`lif_initial_state` with
    ``LIFParameters(du, dv, bias, thresholds[t])`` (a: any integer dtype, or floats holding integers below
    2**31); returns spikes (B, T, *n) bool and, with
    ``record_voltage``, v after each step (B, T, *n) int64 (else None).

    Fast path (the common case, about 6x fewer memory passes): when |a| <= 2**17 and
    |bias| <= 2**24 the state lives in int32. By induction u stays in (-2**23, 2**23]: the decayed u
    is no larger, so u + (a << 6) lies in [-2**24, 2**24], where Lava's single +-2**24 correction
    equals the modular wrap ``((x + 2**23 - 1) & (2**24 - 1)) - (2**23 - 1)``; then
    |decay(v) + u + bias| < 2**25, so no int32 wrap ever triggers and none is computed.
    Otherwise (|a| up to int32, possible with wide fan-in) every step goes through :func:`lif_step`.
    """
    steps = a.shape[1]
    if len(thresholds) != steps:
        raise ValueError(f"lif_sequence: {len(thresholds)} thresholds for {steps} timesteps")
    # The same input every step (an expanded view, stride 0 over T) is bounded and shifted once.
    distinct = a[:, :1] if a.stride(1) == 0 else a
    magnitude = _max_magnitude(distinct)
    fits_int32 = magnitude <= INT32_SAFE_INPUT and _max_magnitude(bias) <= INT32_SAFE_BIAS
    if not fits_int32:
        a = a.to(torch.int64)  # integers held as floats (an unwrapped conv's sums) too
        state = lif_initial_state(a[:, 0].shape, a.device)
        spikes, voltages = [], []
        for t in range(steps):
            state, fired = lif_step(LIFParameters(du, dv, bias, thresholds[t]), state, a[:, t])
            spikes.append(fired)
            if record_voltage:
                voltages.append(state.v)
        return torch.stack(spikes, dim=1), (torch.stack(voltages, dim=1) if record_voltage else None)

    wrap_offset = STATE_HALF - 1
    wrap_mask = (1 << STATE_BITS) - 1
    current_factor, voltage_factor = current_decay_factor(du), voltage_decay_factor(dv)
    # du = 4095 keeps no u: u = a << 6, which |a| < 2**17 keeps inside (-2**23, 2**23), where the wrap is an identity
    u_is_input = current_factor == 0 and magnitude < INT32_SAFE_INPUT
    a_shifted = (distinct.to(torch.int32) << ACTIVATION_SHIFT).expand(a.shape)
    bias32 = bias.to(device=a.device, dtype=torch.int32)
    u = v = None
    fired_all = torch.empty(a.shape, dtype=torch.bool, device=a.device)
    voltages = torch.empty(a.shape, dtype=torch.int64, device=a.device) if record_voltage else None
    for t in range(steps):
        # from rest (u = v = 0) the decays at t = 0 give 0, and du = 4095 leaves u nothing: both are skipped
        u_in = a_shifted[:, t] if t == 0 or current_factor == 0 else _decay_split(u, current_factor) + a_shifted[:, t]
        u = u_in if u_is_input else ((u_in + wrap_offset) & wrap_mask) - wrap_offset
        v = (u + bias32) if t == 0 else (_decay_split(v, voltage_factor) + u + bias32)
        v.clamp_(-VOLTAGE_LIMIT, VOLTAGE_LIMIT)
        threshold = thresholds[t]
        if isinstance(threshold, torch.Tensor):
            threshold = threshold.to(device=a.device, dtype=torch.int32)
        fired = v > (threshold << THRESHOLD_SHIFT)
        v.masked_fill_(fired, 0)  # v is this step's own tensor
        fired_all[:, t] = fired
        if voltages is not None:
            voltages[:, t] = v
    return fired_all, voltages


def _max_magnitude(x: torch.Tensor) -> int:
    if x.numel() == 0:
        return 0
    low, high = torch.aminmax(x)
    return max(-int(low), int(high))


def weight_sign_mode(weight: torch.Tensor) -> str:
    """Lava's sign mode of a weight matrix: 'excitatory', 'inhibitory' or 'mixed'."""
    if bool((weight >= 0).all()):
        return "excitatory"
    if bool((weight <= 0).all()):
        return "inhibitory"
    return "mixed"


def representable_weights(weight: torch.Tensor, num_weight_bits: int = WEIGHT_BITS) -> torch.Tensor:
    """The weights Lava's Dense actually uses (clip, then truncate; weightutils.py).

    Mixed-sign matrices lose their lowest bit (8 bits including the sign), so
    odd weights floor to even ones: 11 -> 10, -11 -> -12. ``num_weight_bits``
    drops ``8 - num_weight_bits (+1 mixed)`` low bits; 9 bits keep odd mixed
    weights. More bits than that (a negative count) give all zeros, as numpy's
    shifts by a negative count do in Lava.
    """
    w = weight.to(torch.int64)
    mode = weight_sign_mode(w)
    truncated_bits = WEIGHT_BITS - num_weight_bits + (mode == "mixed")
    if truncated_bits < 0:
        return torch.zeros_like(w)
    if mode == "mixed":
        w = w.clamp(-256, 255)
        return (w >> truncated_bits) << truncated_bits
    if mode == "excitatory":
        w = w.clamp(0, 255)
        return (w >> truncated_bits) << truncated_bits
    w = (-w).clamp(0, 255)
    return -((w >> truncated_bits) << truncated_bits)
