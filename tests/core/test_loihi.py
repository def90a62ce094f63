"""dsatgo_deploy.loihi against an independent plain-Python statement of Loihi's rules.

The oracle below is written from docs/loihi_arithmetic.md (Dense weights and
LIF) and from lava-nc 0.10.0's source (``proc/lif/models.py``,
``proc/dense/models.py``, ``utils/weightutils.py``): Python integers, one neuron
(or one output row) at a time, two's-complement wraps by masking, decays by
integer division of magnitudes; no numpy and no torch. Hypothesis drives both
with inputs across the full ranges, overflow edges included, over sequences of
steps so that the state carries.

The last test runs Lava's own bit-accurate process models (``PyLifModelBitAcc``,
``PyDenseModelBitAcc``) without a Lava runtime, in a fresh interpreter so this
process keeps its sys.modules and multiprocessing start method.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dsatgo_deploy import loihi

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- the oracle
# Plain Python integers only.

V_LIMIT = 2**23 - 1  # v saturates at +-(2**23 - 1)


def o_wrap(x: int, bits: int) -> int:
    """Two's complement: keep the low ``bits`` bits, read the top one as the sign."""
    low = x & ((1 << bits) - 1)
    return low - (1 << bits) if low >= (1 << (bits - 1)) else low


def o_wrap32(x: int) -> int:
    return o_wrap(x, 32)


def o_shift(x: int, e: int) -> int:
    """x * 2**e for e >= 0; floor(x / 2**-e) otherwise (numpy's arithmetic right shift)."""
    return x * 2**e if e >= 0 else x // 2 ** (-e)


def o_decay(x: int, factor: int) -> int:
    """x * factor / 4096, rounded toward zero."""
    product = x * factor
    magnitude = abs(product) // 4096
    return magnitude if product >= 0 else -magnitude


def o_effective_bias(bias_mant: int, bias_exp: int) -> int:
    return o_wrap32(o_shift(bias_mant, bias_exp))


def o_lif_step(u: int, v: int, a: int, du: int, dv: int, bias: int, vth: int):
    """One Lava PyLifModelBitAcc step of one neuron: (u, v before reset, v after, spike)."""
    current = o_wrap32(o_decay(u, 4096 - (du + 1)) + o_wrap32(a * 64))
    if current > 2**23:  # the single +-2**24 correction; u ends in (-2**23, 2**23] only for small a
        current -= 2**24
    elif current <= -(2**23):
        current += 2**24
    voltage = o_wrap32(o_decay(v, 4096 - dv) + current + bias)
    voltage = min(max(voltage, -V_LIMIT), V_LIMIT)
    spike = voltage > vth * 64
    return current, voltage, (0 if spike else voltage), spike


def o_sign_mode(weights: list[list[int]]) -> str:
    flat = [w for row in weights for w in row]
    if min(flat) >= 0:
        return "excitatory"
    if max(flat) <= 0:
        return "inhibitory"
    return "mixed"


def o_representable(weights: list[list[int]], num_weight_bits: int = 8) -> list[list[int]]:
    """Lava's clip_weights then truncate_weights, element by element."""
    mode = o_sign_mode(weights)
    dropped = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    unit = 2**dropped
    out = []
    for row in weights:
        new_row = []
        for w in row:
            if mode == "mixed":
                w = min(max(w, -256), 255)
                new_row.append((w // unit) * unit)  # floor: -11 -> -12
            elif mode == "excitatory":
                w = min(max(w, 0), 255)
                new_row.append((w // unit) * unit)
            else:  # inhibitory: magnitude clipped and truncated toward 0
                magnitude = min(max(-w, 0), 255)
                new_row.append(-((magnitude // unit) * unit))
        out.append(new_row)
    return out


def o_dense(weights: list[list[int]], messages: list[int], weight_exp: int, graded: bool) -> list[int]:
    """Lava's Dense: binary sum of columns with a non-zero message (int64), or graded
    int32 W @ s (wraps, before the shift); the SUM is shifted; the wire is int32."""
    out = []
    for row in weights:
        if graded:
            total = o_wrap32(sum(w * m for w, m in zip(row, messages)))
        else:
            total = sum(w for w, m in zip(row, messages) if m != 0)
        out.append(o_wrap32(o_shift(total, weight_exp)))
    return out


# --------------------------------------------------------------------------- helpers


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def as_list(x: torch.Tensor) -> list:
    return [int(v) for v in x.reshape(-1).tolist()]


# --------------------------------------------------------------------------- strategies

u_values = st.one_of(
    st.integers(-(2**23) + 1, 2**23),
    st.sampled_from([2**23, 2**23 - 1, -(2**23) + 1, -(2**23) + 2, 0, 1, -1, 4095, -4095]),
    st.integers(-(2**31), 2**31 - 1),  # u can leave 24 bits (|a| >= 2**18)
)
v_values = st.one_of(
    st.integers(-V_LIMIT, V_LIMIT),
    st.sampled_from([V_LIMIT, -V_LIMIT, V_LIMIT - 1, 0, 1, -1]),
)
a_values = st.one_of(
    st.integers(-(2**25), 2**25),
    st.integers(-300, 300),
    st.integers(-(2**31), 2**31 - 1),  # anything an int32 wire carries
    st.sampled_from([2**17, -(2**17), 2**17 + 1, -(2**17) - 1, 2**18, -(2**18), 2**18 - 1,
                     2**25, -(2**25), 2**26, 2**31 - 1, -(2**31), 0]),
)
du_values = st.one_of(st.just(0), st.just(4095), st.integers(0, 4095))
dv_values = st.one_of(st.just(0), st.just(4096), st.integers(0, 4096))
vth_values = st.one_of(st.integers(0, 2**17), st.sampled_from([0, 1, 2**17 - 1, 2**17]))


@st.composite
def lif_cases(draw):
    n = draw(st.integers(1, 6))
    per_neuron = st.lists
    steps = draw(st.integers(1, 8))
    per_neuron_vth = draw(st.booleans())
    return dict(
        du=draw(du_values),
        dv=draw(dv_values),
        bias_mant=draw(per_neuron(st.integers(-4096, 4095), min_size=n, max_size=n)),
        bias_exp=draw(per_neuron(st.integers(0, 7), min_size=n, max_size=n)),
        vth=draw(per_neuron(vth_values, min_size=n, max_size=n)) if per_neuron_vth else draw(vth_values),
        u=draw(per_neuron(u_values, min_size=n, max_size=n)),
        v=draw(per_neuron(v_values, min_size=n, max_size=n)),
        a=[draw(per_neuron(a_values, min_size=n, max_size=n)) for _ in range(steps)],
    )


# --------------------------------------------------------------------------- LIF


def _params(case) -> loihi.LIFParameters:
    bias = loihi.effective_bias(t64(case["bias_mant"]), t64(case["bias_exp"]))
    vth = case["vth"]
    return loihi.LIFParameters(
        du=case["du"], dv=case["dv"], bias=bias, threshold=t64(vth) if isinstance(vth, list) else vth
    )


@SETTINGS
@given(lif_cases())
def test_lif_step_matches_oracle_over_several_steps(case):
    n = len(case["u"])
    params = _params(case)
    state = loihi.LIFState(u=t64(case["u"]), v=t64(case["v"]))
    ou, ov = list(case["u"]), list(case["v"])
    vth = case["vth"] if isinstance(case["vth"], list) else [case["vth"]] * n
    bias = [o_effective_bias(m, e) for m, e in zip(case["bias_mant"], case["bias_exp"])]
    assert as_list(params.bias) == bias
    for t, a in enumerate(case["a"]):
        sub = loihi.lif_subthreshold(params, state, t64(a))
        new_state, spikes = loihi.lif_step(params, state, t64(a))
        expected = [o_lif_step(ou[i], ov[i], a[i], case["du"], case["dv"], bias[i], vth[i]) for i in range(n)]
        assert as_list(sub.u) == [e[0] for e in expected], f"u before reset, step {t}"
        assert as_list(sub.v) == [e[1] for e in expected], f"v before reset, step {t}"
        assert as_list(new_state.u) == [e[0] for e in expected], f"u (never reset), step {t}"
        assert as_list(new_state.v) == [e[2] for e in expected], f"v after reset, step {t}"
        assert spikes.dtype == torch.bool and spikes.tolist() == [e[3] for e in expected], f"spikes, step {t}"
        assert all(-V_LIMIT <= x <= V_LIMIT for x in as_list(new_state.v))
        state = new_state
        ou = [e[0] for e in expected]
        ov = [e[2] for e in expected]


@SETTINGS
@given(lif_cases())
def test_lif_step_is_pure(case):
    params = _params(case)
    u, v = t64(case["u"]), t64(case["v"])
    a = t64(case["a"][0])
    before = (u.clone(), v.clone(), a.clone())
    loihi.lif_step(params, loihi.LIFState(u=u, v=v), a)
    assert torch.equal(u, before[0]) and torch.equal(v, before[1]) and torch.equal(a, before[2])


@st.composite
def sequence_cases(draw):
    """A population from rest over T steps: input in the int32 fast path's range, or beyond it."""
    n = draw(st.integers(1, 5))
    batch = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 6))
    small = draw(st.booleans())
    a_strategy = st.one_of(st.integers(-(2**17), 2**17), st.sampled_from([2**17, -(2**17), 0, 1, -1])) \
        if small else a_values
    thresholds = [draw(st.one_of(vth_values, st.lists(vth_values, min_size=n, max_size=n))) for _ in range(steps)]
    return dict(
        du=draw(st.one_of(st.just(-1), du_values)), dv=draw(dv_values),
        bias_mant=draw(st.lists(st.integers(-4096, 4095), min_size=n, max_size=n)),
        bias_exp=draw(st.lists(st.integers(0, 7), min_size=n, max_size=n)),
        thresholds=thresholds,
        a=draw(st.lists(st.lists(st.lists(a_strategy, min_size=n, max_size=n), min_size=steps, max_size=steps),
                        min_size=batch, max_size=batch)),
    )


@SETTINGS
@given(sequence_cases(), st.booleans())
@example(dict(du=4095, dv=0, bias_mant=[4095], bias_exp=[7], thresholds=[2**17, 2**17 - 1],
              a=[[[2**17], [-(2**17)]]]), True)  # the u range edges and the never-firing threshold
@example(dict(du=-1, dv=4096, bias_mant=[0], bias_exp=[0], thresholds=[0, 0],
              a=[[[2**17 + 1], [2**17 + 1]]]), False)  # just past the fast path: the general one
@example(dict(du=4095, dv=4096, bias_mant=[1, 0, -1], bias_exp=[0, 0, 0], thresholds=[10],
              a=[[[10, 10, 10]]]), True)  # v = 641, 640, 639 against vth << 6 = 640: strictly above fires
def test_lif_sequence_matches_the_oracle_from_rest(case, record_voltage):
    """lif_sequence (the reference's fast path, int32 state) equals the oracle step by step."""
    batch, steps, n = len(case["a"]), len(case["a"][0]), len(case["a"][0][0])
    bias = [o_effective_bias(m, e) for m, e in zip(case["bias_mant"], case["bias_exp"])]
    thresholds = [t64(th) if isinstance(th, list) else th for th in case["thresholds"]]
    spikes, voltages = loihi.lif_sequence(case["du"], case["dv"], t64(bias), thresholds, t64(case["a"]),
                                          record_voltage=record_voltage)
    assert spikes.dtype == torch.bool and spikes.shape == (batch, steps, n)
    assert (voltages is None) != record_voltage
    for b in range(batch):
        u, v = [0] * n, [0] * n
        for t in range(steps):
            vth = case["thresholds"][t] if isinstance(case["thresholds"][t], list) else [case["thresholds"][t]] * n
            expected = [o_lif_step(u[i], v[i], case["a"][b][t][i], case["du"], case["dv"], bias[i], vth[i])
                        for i in range(n)]
            assert spikes[b, t].tolist() == [e[3] for e in expected], f"spikes, sample {b}, step {t}"
            if record_voltage:
                assert voltages.dtype == torch.int64 and as_list(voltages[b, t]) == [e[2] for e in expected]
            u, v = [e[0] for e in expected], [e[2] for e in expected]


def test_lif_sequence_checks_its_thresholds():
    try:
        loihi.lif_sequence(0, 0, t64([0]), [5], torch.zeros((1, 2, 1), dtype=torch.int64))
    except ValueError as error:
        assert "1 thresholds for 2 timesteps" in str(error)
    else:
        raise AssertionError("a threshold list shorter than T must be refused")


def _one(u=0, v=0, a=0, du=0, dv=0, bias=0, vth=2**17):
    params = loihi.LIFParameters(du=du, dv=dv, bias=t64([bias]), threshold=vth)
    state, spikes = loihi.lif_step(params, loihi.LIFState(u=t64([u]), v=t64([v])), t64([a]))
    return int(state.u[0]), int(state.v[0]), bool(spikes[0])


def test_lif_hand_examples_from_the_reference():
    # du = 0 still leaks 1/4096 per step (ds_offset = 1); decay rounds toward 0.
    assert _one(u=4096)[0] == 4095
    assert _one(u=1000)[0] == 999 and _one(u=-1000)[0] == -999  # 999.75 -> 999, -999.75 -> -999
    assert _one(u=4095)[0] == 4094
    # du = 4095 keeps no memory: u = a << 6.
    assert _one(u=123456, a=5, du=4095)[0] == 320
    # dv = 0 keeps v (factor 4096/4096), dv = 4096 forgets it.
    assert _one(v=777, dv=0)[1] == 777 and _one(v=777, dv=4096)[1] == 0
    assert _one(v=-1001, dv=2048)[1] == -500  # -500.5 -> -500 (toward zero)
    # The u range is (-2**23, 2**23]: +2**23 stays, -2**23 becomes +2**23.
    assert _one(a=2**17, du=4095)[0] == 2**23
    assert _one(a=-(2**17), du=4095)[0] == 2**23
    assert _one(a=2**17 + 1, du=4095)[0] == -(2**23) + 64
    assert _one(a=-(2**17) - 1, du=4095)[0] == 2**23 - 64
    # One correction only: with |a| >= 2**18 u leaves 24 bits.
    assert _one(a=2**18, du=4095)[0] == 0
    assert _one(a=2**19, du=4095)[0] == 2**24
    assert _one(a=-(2**19), du=4095)[0] == -(2**24)
    # wrap32(a << 6): a = 2**25 gives 2**31 -> -2**31, corrected by +2**24.
    assert _one(a=2**25, du=4095)[0] == -(2**31) + 2**24
    # v saturates at +-(2**23 - 1) and never wraps through the clip.
    assert _one(u=2**23, v=V_LIMIT, bias=4095 << 7)[1] == V_LIMIT
    assert _one(u=-(2**23) + 1, v=-V_LIMIT, bias=-4096 << 7)[1] == -V_LIMIT
    # v wraps in int32 BEFORE the clip. After the +-2**24 correction |u| <= 2**31 - 2**24,
    # so only a bias outside the format reaches this (Lava: int16 bias_mant 32767, bias_exp 16).
    assert _one(a=2**17, v=V_LIMIT, du=4095, dv=0, bias=32767 << 16)[1] == -V_LIMIT
    # Strict threshold v > vth << 6; v resets to 0 and u is kept.
    assert _one(v=640, dv=0, vth=10) == (0, 640, False)
    assert _one(v=641, dv=0, vth=10) == (0, 0, True)
    assert _one(u=64 * 100, v=0, du=4095, a=100, vth=99) == (6400, 0, True)  # u = 6400 kept, v reset
    # vth = 2**17 (2**23 after the shift) never fires: v <= 2**23 - 1.
    assert _one(v=V_LIMIT, dv=0, bias=4095 << 7, vth=2**17)[2] is False
    assert _one(v=V_LIMIT, dv=0, bias=4095 << 7, vth=2**17 - 1)[2] is True


def test_lif_initial_state_and_factors():
    state = loihi.lif_initial_state((2, 3))
    assert state.u.dtype == torch.int64 and state.v.dtype == torch.int64
    assert state.u.shape == (2, 3) and not state.u.any() and not state.v.any()
    assert state.u.data_ptr() != state.v.data_ptr()
    assert loihi.current_decay_factor(0) == 4095 and loihi.current_decay_factor(4095) == 0
    assert loihi.current_decay_factor(-1) == 4096  # netx iDecay = 0: no decay
    assert loihi.voltage_decay_factor(0) == 4096 and loihi.voltage_decay_factor(4096) == 0
    assert loihi.NEVER_FIRES_VTH << loihi.THRESHOLD_SHIFT > loihi.VOLTAGE_LIMIT


@SETTINGS
@given(
    st.lists(st.integers(-4096, 4095), min_size=1, max_size=8),
    st.integers(-8, 7),
    st.data(),
)
def test_effective_bias(mants, exp, data):
    assert as_list(loihi.effective_bias(t64(mants), exp)) == [o_effective_bias(m, exp) for m in mants]
    exps = data.draw(st.lists(st.integers(-8, 7), min_size=len(mants), max_size=len(mants)))
    assert as_list(loihi.effective_bias(t64(mants), t64(exps))) == [o_effective_bias(m, e) for m, e in zip(mants, exps)]


# --------------------------------------------------------------------------- primitives


@SETTINGS
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=8), st.integers(1, 62))
def test_wrap_signed(values, bits):
    assert as_list(loihi.wrap_signed(t64(values), bits)) == [o_wrap(v, bits) for v in values]


def test_wrap_signed_edges():
    x = t64([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, 2**23, -(2**23), 2**24 - 1])
    assert as_list(loihi.wrap_signed(x, 32)) == [2**31 - 1, -(2**31), -(2**31), 2**31 - 1, 0, 2**23, -(2**23), 2**24 - 1]
    assert as_list(loihi.wrap_signed(x, 24)) == [-1, 0, 0, -1, 0, -(2**23), -(2**23), -1]


@SETTINGS
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=8), st.integers(-16, 16), st.data())
def test_shift(values, exp, data):
    assert as_list(loihi.shift(t64(values), exp)) == [o_shift(v, exp) for v in values]
    exps = data.draw(st.lists(st.integers(-16, 16), min_size=len(values), max_size=len(values)))
    assert as_list(loihi.shift(t64(values), t64(exps))) == [o_shift(v, e) for v, e in zip(values, exps)]


def test_shift_floors_negative_values():
    assert as_list(loihi.shift(t64([-1, -3, 3, -4]), -1)) == [-1, -2, 1, -2]


@SETTINGS
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=8), st.integers(0, 4096))
def test_decay(values, factor):
    assert as_list(loihi.decay(t64(values), factor)) == [o_decay(v, factor) for v in values]


# --------------------------------------------------------------------------- Dense



@st.composite
def dense_cases(draw):
    n_out = draw(st.integers(1, 5))
    n_in = draw(st.integers(1, 12))
    graded = draw(st.booleans())
    sign = draw(st.sampled_from(["any", "pos", "neg"]))
    lo, hi = {"any": (-256, 255), "pos": (0, 255), "neg": (-255, 0)}[sign]
    weights = draw(st.lists(st.lists(st.integers(lo, hi), min_size=n_in, max_size=n_in), min_size=n_out, max_size=n_out))
    if graded:
        payload = st.one_of(st.integers(-255, 255), st.integers(-(2**23), 2**24), st.sampled_from([0, 2**24, -(2**23)]))
    else:  # binary: any non-zero message is one spike
        payload = st.one_of(st.sampled_from([0, 1]), st.integers(-5, 5))
    batch = draw(st.integers(1, 3))
    messages = [draw(st.lists(payload, min_size=n_in, max_size=n_in)) for _ in range(batch)]
    return weights, messages, draw(st.integers(-8, 7)), graded


@SETTINGS
@given(dense_cases())
@example(([[256, 256]], [[2**24, 2**24]], -3, True))  # 2**33: int32 W @ s wraps before the shift
@example(([[255, -256]], [[2**23, 2**23 - 1]], -8, True))
@example(([[3, -5]], [[2, 7]], -1, True))
def test_dense_accumulate_matches_oracle(case):
    weights, messages, weight_exp, graded = case
    w = torch.tensor(weights, dtype=torch.float64)
    m = torch.tensor(messages, dtype=torch.float64)
    got = loihi.dense_accumulate(w, m, weight_exp, graded)
    assert got.dtype == torch.int64 and got.shape == (len(messages), len(weights))
    for b, msg in enumerate(messages):
        assert as_list(got[b]) == o_dense(weights, msg, weight_exp, graded)


@SETTINGS
@given(dense_cases())
def test_dense_accumulate_in_the_exact_dtype(case):
    """With the dtype exact_float_dtype picks, float32 included, the result is the oracle's."""
    weights, messages, weight_exp, graded = case
    max_m = max(abs(x) for row in messages for x in row) if graded else 1
    dtype = loihi.exact_float_dtype(np.array(weights), max_m)
    got = loihi.dense_accumulate(torch.tensor(weights, dtype=dtype), torch.tensor(messages, dtype=dtype), weight_exp, graded)
    for b, msg in enumerate(messages):
        assert as_list(got[b]) == o_dense(weights, msg, weight_exp, graded)


def test_dense_hand_examples():
    w = torch.tensor([[3.0, -5.0]])
    m = torch.tensor([[2.0, 7.0]])
    assert as_list(loihi.dense_accumulate(w, m, 0, graded=False)) == [-2]
    assert as_list(loihi.dense_accumulate(w, m, 0, graded=True)) == [-29]
    assert as_list(loihi.dense_accumulate(w, m, -1, graded=True)) == [-15]  # floor of the SUM, not -14
    assert as_list(loihi.dense_accumulate(w, m, 2, graded=True)) == [-116]
    # The shift applies to the sum: per-weight shifting would give 1 + (-3) = -2, not -1.
    assert as_list(loihi.dense_accumulate(w, torch.tensor([[1.0, 1.0]]), -1, graded=False)) == [-1]
    # Binary: every non-zero message, negative ones too, counts as one spike.
    assert as_list(loihi.dense_accumulate(w, torch.tensor([[-4.0, 9.0]]), 0, graded=False)) == [-2]
    # wrap32 of the shifted sum
    big = torch.tensor([[255.0] * 64], dtype=torch.float64)  # sums past 2**24 take float64
    ones = torch.ones(1, 64, dtype=torch.float64)
    assert as_list(loihi.dense_accumulate(big, ones * 2**17, 0, graded=True)) == [o_wrap32(255 * 64 * 2**17)]


# --------------------------------------------------------------------------- weights

@st.composite
def weight_matrices(draw):
    n_out, n_in = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    values = draw(st.sampled_from([st.integers(-400, 400), st.integers(0, 400), st.integers(-400, 0), st.integers(-256, 255)]))
    return draw(st.lists(st.lists(values, min_size=n_in, max_size=n_in), min_size=n_out, max_size=n_out))


@SETTINGS
@given(weight_matrices(), st.integers(1, 8))
def test_representable_weights(weights, bits):
    got = loihi.representable_weights(t64(weights), bits)
    assert got.tolist() == o_representable(weights, bits)
    assert loihi.weight_sign_mode(t64(weights)) == o_sign_mode(weights)
    # Idempotent: what Lava uses is representable as is.
    assert torch.equal(loihi.representable_weights(got, bits), got) or o_sign_mode(got.tolist()) != o_sign_mode(weights)


def test_representable_weights_hand_examples():
    rep = lambda w, bits=8: loihi.representable_weights(t64(w), bits).tolist()  # noqa: E731
    assert rep([[11, -11, 255, 0, -256, 254, 1, -1]]) == [[10, -12, 254, 0, -256, 254, 0, -2]]
    assert rep([[300, -300]]) == [[254, -256]]  # clip to [-256, 255], then even
    assert rep([[11, 255, 300, 0]]) == [[11, 255, 255, 0]]  # excitatory: 8 bits, clip to 255
    assert rep([[-11, -255, -256, -300, 0]]) == [[-11, -255, -255, -255, 0]]  # inhibitory: -255 .. 0
    assert rep([[0, 0]]) == [[0, 0]]
    assert rep([[11, -11]], bits=6) == [[8, -16]]  # mixed, 6 bits: drop 3 bits
    assert rep([[11, 7]], bits=6) == [[8, 4]]  # excitatory, 6 bits: drop 2 bits
    assert rep([[-11, -7]], bits=6) == [[-8, -4]]  # inhibitory: magnitude toward 0
    # Floats are truncated toward zero first (Lava's int32 cast): 10.7 -> 10, -3.2 -> -3 -> -4.
    assert loihi.representable_weights(torch.tensor([[10.7, -3.2]]), 8).tolist() == [[10, -4]]


# --------------------------------------------------------------------------- exact float matmul


@SETTINGS
@given(st.integers(1, 256), st.integers(1, 512), st.integers(0, 2**16), st.integers(-8, 7), st.booleans())
def test_exact_float_dtype_worst_case_integers(max_w, fan_in, max_m, weight_exp, graded):
    """Worst-case integers at the bound: the float matmul in the chosen dtype is exact."""
    if not graded:
        max_m = 1
    bound = max_w * fan_in * max(max_m, 1)
    half = fan_in // 2
    weights = [
        [max_w] * fan_in,  # the largest sum
        [-max_w] * fan_in,  # the smallest
        [max_w] * half + [-max_w] * (fan_in - half),  # largest partial sum, then cancellation
        [max_w - (j % 2) for j in range(fan_in)],  # odd values near the bound
    ]
    messages = [[max_m] * fan_in, [max(max_m - 1, 0)] * fan_in, [max_m if j % 3 else -max_m for j in range(fan_in)]]
    if not graded:
        messages = [[1] * fan_in, [j % 2 for j in range(fan_in)]]
    assert loihi.synaptic_sum_bound(np.array(weights), max_m) == bound  # the first row is the largest
    dtype = loihi.exact_float_dtype(np.array(weights), max_m)
    assert dtype == (torch.float32 if bound < 2**24 else torch.float64)
    got = loihi.dense_accumulate(torch.tensor(weights, dtype=dtype), torch.tensor(messages, dtype=dtype), weight_exp, graded)
    for b, msg in enumerate(messages):
        assert as_list(got[b]) == o_dense(weights, msg, weight_exp, graded)


def test_conv_sum_within_bound_of_several_sources_is_the_sum_of_their_convolutions():
    """A residual layer's sources are added before one convolution: equal, integer for integer, to each
    source's conv_accumulate added in the in-port (no wrap below NO_WRAP_BOUND), binary and graded."""
    rng = np.random.default_rng(5)
    weight = torch.as_tensor(rng.integers(-255, 256, (6, 4, 3, 3)), dtype=torch.float32)
    geometry = ((2, 1), (1, 0), (1, 2))  # stride, padding, dilation
    for graded, sources in ((False, [torch.as_tensor(rng.random((3, 4, 9, 8)) < 0.4) for _ in range(3)]),
                            (True, [torch.as_tensor(rng.integers(-90, 91, (3, 4, 9, 8))) for _ in range(2)])):
        assert len(sources) * loihi.synaptic_sum_bound(weight, 90 if graded else 1) < loihi.NO_WRAP_BOUND
        merged = loihi.conv_sum_within_bound(weight, sources, *geometry, graded)
        separate = sum(loihi.conv_accumulate(weight, source, *geometry, graded) for source in sources)
        assert merged.dtype == torch.float32 and separate.abs().max() > 1000
        assert torch.equal(merged.to(torch.int64), separate)
        originals = [source.clone() for source in sources]
        loihi.conv_sum_within_bound(weight, sources, *geometry, graded)
        assert all(torch.equal(a, b) for a, b in zip(sources, originals))  # the callers' messages stay as they were
    with pytest.raises(ValueError, match="float32"):
        loihi.conv_sum_within_bound(weight.double(), sources, *geometry, True)


def test_exact_float_dtype_bound_is_tight():
    """The bound is the largest sum of |W| of one neuron (a conv output channel: over C_in, KH, KW)
    times the largest message, so a wide layer of small weights still computes in float32."""
    def row(magnitude: int, fan_in: int) -> np.ndarray:
        return np.full((1, fan_in), magnitude)

    assert loihi.exact_float_dtype(row(256, 2**16 - 1), 1) == torch.float32  # bound 2**24 - 256
    assert loihi.exact_float_dtype(row(256, 2**16), 1) == torch.float64  # bound 2**24
    assert loihi.exact_float_dtype(row(-256, 2**16), 0) == torch.float64  # binary: a message counts as 1
    assert loihi.exact_float_dtype(row(255, 64), 2**10) == torch.float32  # 16,711,680 < 2**24
    assert loihi.exact_float_dtype(row(255, 64), 2**10 + 5) == torch.float64  # 16,793,280
    # 784 graded 8-bit inputs with 8-bit weights: the worst case needs float64, typical weights do not.
    wide = np.vstack([np.full(784, 2), np.full(784, -40)])
    assert loihi.synaptic_sum_bound(wide, 255) == 40 * 784 * 255 and loihi.exact_float_dtype(wide, 255) == torch.float32
    assert loihi.exact_float_dtype(np.full((1, 784), 254), 255) == torch.float64
    kernel = np.zeros((3, 2, 3, 3))
    kernel[1] = -7  # channel 1: 18 taps of 7
    assert loihi.synaptic_sum_bound(kernel, 1) == 126
    assert loihi.synaptic_sum_bound(np.zeros((0, 4)), 9) == 0
    # Just past the bound float32 loses integers: 2**24 + 1 is not a float32.
    assert float(torch.tensor(2**24 + 1, dtype=torch.float32)) != 2**24 + 1
    assert float(torch.tensor(2**24 - 1, dtype=torch.float32)) == 2**24 - 1


# --------------------------------------------------------------------------- Lava's own models

_LAVA_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    try:
        from dsatgo_deploy import lava_compat
        lava_compat.install()
        from lava.proc.lif.models import PyLifModelBitAcc
        from lava.proc.dense.models import PyDenseModelBitAcc
    except Exception as exc:  # report, the test decides
        print(json.dumps({"import_error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(0)

    cases = np.load(sys.argv[1], allow_pickle=False)
    out = {}

    class InPort:  # PyInPortVectorDense.recv: zeros of the receiver's dtype + the int32 channel data
        def __init__(self, data, dtype):
            self.data, self.dtype, self.t = data, dtype, 0
        def recv(self):
            x = np.zeros(self.data.shape[1], self.dtype) + self.data[self.t].astype(np.int32)
            self.t += 1
            return x

    class OutPort:  # the channel: self._array[idx][:] = data[:] into the sender's dtype (int32)
        def __init__(self, n):
            self.sent, self.n = [], n
        def send(self, data):
            buf = np.zeros(self.n, np.int32)
            buf[:] = data[:]
            self.sent.append(buf)

    for k in range(int(cases["n_lif"])):
        du, dv, vth = (int(x) for x in cases[f"lif{k}.params"])
        a = cases[f"lif{k}.a"]
        n = a.shape[1]
        m = PyLifModelBitAcc({})
        m.u = cases[f"lif{k}.u"].astype(np.int32)
        m.v = cases[f"lif{k}.v"].astype(np.int32)
        m.bias_mant = cases[f"lif{k}.bias_mant"].astype(np.int16)
        m.bias_exp = cases[f"lif{k}.bias_exp"].astype(np.int16)
        m.du, m.dv, m.vth = du, dv, vth
        m.a_in = InPort(a, np.int16)
        m.s_out = OutPort(n)
        us, vs = [], []
        for t in range(a.shape[0]):
            m.run_spk()
            us.append(m.u.copy()); vs.append(m.v.copy())
        out[f"lif{k}.u"] = np.stack(us); out[f"lif{k}.v"] = np.stack(vs); out[f"lif{k}.s"] = np.stack(m.s_out.sent)

    for k in range(int(cases["n_dense"])):
        weight_exp, num_weight_bits, message_bits = (int(x) for x in cases[f"dense{k}.params"])
        s = cases[f"dense{k}.s"]
        w = cases[f"dense{k}.w"]
        d = PyDenseModelBitAcc({"weight_exp": weight_exp, "num_weight_bits": num_weight_bits})
        d.weights = w.astype(np.int32)
        d.num_message_bits = np.array([message_bits])
        d.a_buff = np.zeros(w.shape[0], np.int32)
        d.s_in = InPort(s, bool)
        d.a_out = OutPort(w.shape[0])
        for t in range(s.shape[0]):
            d.run_spk()
        d.a_out.send(d.a_buff)  # the buffer of the last step
        out[f"dense{k}.a"] = np.stack(d.a_out.sent[1:])
        out[f"dense{k}.w"] = np.asarray(d.weights)

    np.savez(sys.argv[2], **out)
    print(json.dumps({"ok": True}))
    """
)


def _lava_cases(rng: np.random.Generator) -> dict[str, np.ndarray]:
    cases: dict[str, np.ndarray] = {}
    n, steps = 400, 8
    lif_params = [(0, 0, 0), (0, 4096, 2**17), (4095, 0, 2**17 - 1), (4095, 4096, 1), (-1, 0, 100)]
    lif_params += [(int(rng.integers(0, 4096)), int(rng.integers(0, 4097)), int(rng.integers(0, 2**17 + 1))) for _ in range(7)]
    for k, params in enumerate(lif_params):
        u = np.concatenate([rng.integers(-(2**23) + 1, 2**23 + 1, n - 8), [2**23, -(2**23) + 1, 0, 1, -1, 2**23 - 1, 2**30, -(2**30)]])
        v = np.concatenate([rng.integers(-V_LIMIT, V_LIMIT + 1, n - 4), [V_LIMIT, -V_LIMIT, 0, 1]])
        scale = rng.choice([2**8, 2**17, 2**18, 2**25, 2**31], size=(steps, n))
        a = np.clip(rng.integers(-(2**31), 2**31, (steps, n)) % (2 * scale) - scale, -(2**31), 2**31 - 1)
        a[:, :4] = [2**17, -(2**17), 2**18, -(2**31)]
        cases[f"lif{k}.params"] = np.array(params)
        cases[f"lif{k}.u"], cases[f"lif{k}.v"], cases[f"lif{k}.a"] = u, v, a
        cases[f"lif{k}.bias_mant"] = rng.integers(-4096, 4096, n)
        cases[f"lif{k}.bias_exp"] = rng.integers(0, 8, n)
    cases["n_lif"] = np.array(len(lif_params))
    dense = []
    for k in range(16):
        n_out, n_in = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        lo, hi = [(-300, 300), (0, 300), (-300, 0), (-256, 256)][k % 4]
        w = rng.integers(lo, hi + 1, (n_out, n_in))
        message_bits = [0, 8, 24, 0][k % 4] if k < 8 else [24, 0, 8, 24][k % 4]
        if message_bits == 0:
            s = rng.integers(0, 2, (steps, n_in))
        elif message_bits == 8:
            s = rng.integers(0, 256, (steps, n_in))
        else:  # 24-bit payloads: int32 W @ s overflows
            s = rng.integers(-(2**23), 2**23, (steps, n_in))
        params = (int(rng.integers(-8, 8)), int(rng.choice([8, 8, 7, 5])), message_bits)
        cases[f"dense{k}.params"], cases[f"dense{k}.w"], cases[f"dense{k}.s"] = np.array(params), w, s
        dense.append(params)
    cases["n_dense"] = np.array(len(dense))
    return cases


def test_against_lava_bit_accurate_models(tmp_path):
    """Lava's PyLifModelBitAcc.run_spk and PyDenseModelBitAcc.run_spk, without a runtime.

    The process models are instantiated with a proc_params dict; their Vars are set
    with the dtypes Lava's builder gives them and their ports replaced by stand-ins
    that reproduce PyInPortVectorDense.recv and the channel's int32 copy.
    """
    cases = _lava_cases(np.random.default_rng(20240917))
    np.savez(tmp_path / "cases.npz", **cases)
    result = subprocess.run(
        [sys.executable, "-c", _LAVA_SCRIPT, str(tmp_path / "cases.npz"), str(tmp_path / "lava.npz")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # lava is installed by make; failing to import it is a failure, not a reason to skip
    assert "import_error" not in report, report.get("import_error")
    lava = np.load(tmp_path / "lava.npz")

    for k in range(int(cases["n_lif"])):
        du, dv, vth = (int(x) for x in cases[f"lif{k}.params"])
        bias = loihi.effective_bias(torch.from_numpy(cases[f"lif{k}.bias_mant"]), torch.from_numpy(cases[f"lif{k}.bias_exp"]))
        params = loihi.LIFParameters(du=du, dv=dv, bias=bias, threshold=vth)
        state = loihi.LIFState(u=torch.from_numpy(cases[f"lif{k}.u"]), v=torch.from_numpy(cases[f"lif{k}.v"]))
        for t, a in enumerate(cases[f"lif{k}.a"]):
            state, spikes = loihi.lif_step(params, state, torch.from_numpy(a))
            where = f"LIF case {k} (du={du}, dv={dv}, vth={vth}), step {t}"
            np.testing.assert_array_equal(state.u.numpy(), lava[f"lif{k}.u"][t], err_msg=f"u, {where}")
            np.testing.assert_array_equal(state.v.numpy(), lava[f"lif{k}.v"][t], err_msg=f"v, {where}")
            np.testing.assert_array_equal(spikes.numpy().astype(np.int32), lava[f"lif{k}.s"][t], err_msg=f"s, {where}")

    for k in range(int(cases["n_dense"])):
        weight_exp, num_weight_bits, message_bits = (int(x) for x in cases[f"dense{k}.params"])
        w = loihi.representable_weights(torch.from_numpy(cases[f"dense{k}.w"]), num_weight_bits)
        np.testing.assert_array_equal(w.numpy(), lava[f"dense{k}.w"], err_msg=f"weights, Dense case {k}")
        s = torch.from_numpy(cases[f"dense{k}.s"]).double()
        a = loihi.dense_accumulate(w.double(), s, weight_exp, graded=message_bits > 0)
        np.testing.assert_array_equal(
            a.numpy(), lava[f"dense{k}.a"],
            err_msg=f"Dense case {k} (weight_exp={weight_exp}, bits={num_weight_bits}, message bits={message_bits})",
        )
