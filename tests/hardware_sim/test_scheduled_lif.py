"""ScheduledLIF on Lava's CPU simulator against a numpy reference of the
fixed point rules (docs/loihi_arithmetic.md: Dense weights, LIF) and against stock
LIFReset."""

from dsatgo_deploy import lava_compat

lava_compat.install()  # before the first lava import

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer as SourceBuffer  # noqa: E402
from lava.proc.lif.process import LIF, LIFReset  # noqa: E402

from dsatgo_deploy.hardware_sim.lava_procs.scheduled_lif import (  # noqa: E402
    NEVER_FIRES_VTH,
    ScheduledLIF,
    schedule_phase,
)

# Lava's compiler, looking for ScheduledLIF's models, also executes every .py
# file of hardware_sim/ as a stand-alone module; sibling modules with relative
# imports then warn "Cannot import module ...". Harmless here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Cannot import module.*when searching ProcessModels:UserWarning"
)

P = 4
STEPS = 3 * P + 2


# --------------------------------------------------------------------------
# numpy reference, written from the fixed point rules, independent of lava
# --------------------------------------------------------------------------
def wrap32(x):
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) % 2**32) - 2**31


def ref_dense_graded(weights, data):
    """Dense with num_message_bits > 0 and even weights in [-256, 254]: the
    output at step t is W @ x(t-1) (one step latency, zeros at t = 1)."""
    w = np.asarray(weights, dtype=np.int64)
    out = np.zeros((w.shape[0], data.shape[1]), dtype=np.int64)
    out[:, 1:] = wrap32(w @ data[:, :-1].astype(np.int64))
    return out


def ref_scheduled_lif(a, *, du, dv, bias_mant, bias_exp, vth_schedule, reset_offset):
    """Fixed point LIF with per-phase threshold and LIFReset's reset."""
    n, steps = a.shape
    period = len(vth_schedule)
    u = np.zeros(n, dtype=np.int64)
    v = np.zeros(n, dtype=np.int64)
    bm = np.broadcast_to(np.asarray(bias_mant, dtype=np.int64), (n,))
    be = np.broadcast_to(np.asarray(bias_exp, dtype=np.int64), (n,))
    eb = np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))
    spikes = np.zeros((n, steps), dtype=np.int64)
    seen = {"u_wrapped": False, "v_saturated": False}
    for t in range(1, steps + 1):
        if t % period == reset_offset % period:
            u[:] = 0
            v[:] = 0
        p = u * (4096 - (du + 1))
        cu = wrap32(np.sign(p) * (np.abs(p) >> 12) + wrap32(a[:, t - 1] << 6))
        wrapped = (cu > 2**23) | (cu <= -(2**23))
        seen["u_wrapped"] |= bool(wrapped.any())
        u = np.where(cu > 2**23, cu - 2**24, np.where(cu <= -(2**23), cu + 2**24, cu))
        q = v * (4096 - dv)
        raw_v = wrap32(np.sign(q) * (np.abs(q) >> 12) + u + eb)
        seen["v_saturated"] |= bool((np.abs(raw_v) > 2**23 - 1).any())
        v = np.clip(raw_v, -(2**23 - 1), 2**23 - 1)
        s = v > (int(vth_schedule[(t - reset_offset) % period]) << 6)
        v[s] = 0
        spikes[:, t - 1] = s
    return spikes, u, v, seen


# --------------------------------------------------------------------------
# lava helpers
# --------------------------------------------------------------------------
def run_lava(data, weights, neurons, tag, steps=STEPS):
    """source -> Dense(graded) -> each neuron process -> sink; returns the
    recorded spikes of each neuron and the neurons' final (u, v)."""
    src = SourceBuffer(data=data)
    dense = Dense(weights=weights, num_message_bits=8)
    src.s_out.connect(dense.s_in)
    sinks = []
    for neuron in neurons:
        dense.a_out.connect(neuron.a_in)
        sink = SinkBuffer(shape=neuron.s_out.shape, buffer=steps)
        neuron.s_out.connect(sink.a_in)
        sinks.append(sink)
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        spikes = [sink.data.get() for sink in sinks]
        states = [(neuron.u.get(), neuron.v.get()) for neuron in neurons]
    finally:
        src.stop()
    return spikes, states


FIXED_CASES = {
    # du = 4095: u keeps no memory (u = a << 6 every step)
    "du4095": dict(
        seed=1, n_in=6, n_out=5, x_range=(-20, 40), w_range=(-40, 80),
        du=4095, dv=300, bias_mant=[3, -2, 0, 5, 1], bias_exp=2,
        vth_schedule=[60, 200, 15, 400], reset_offset=1,
    ),
    # decays with rounding toward zero on negative values, offset != 1
    "decay": dict(
        seed=2, n_in=6, n_out=5, x_range=(-30, 30), w_range=(-60, 60),
        du=1234, dv=777, bias_mant=-7, bias_exp=3,
        vth_schedule=[300, 90, 700, 150], reset_offset=2,
    ),
    # large graded input: u leaves 24 bits and wraps, v saturates
    "overflow": dict(
        seed=3, n_in=8, n_out=5, x_range=(0, 128), w_range=(-60, 128),
        du=0, dv=0, bias_mant=0, bias_exp=0,
        vth_schedule=[2**17 - 1, 50000, 2**16, 1000], reset_offset=0,
    ),
}


def _case_inputs(case):
    rng = np.random.default_rng(case["seed"])
    data = rng.integers(*case["x_range"], size=(case["n_in"], STEPS)).astype(np.int32)
    weights = 2 * rng.integers(*case["w_range"], size=(case["n_out"], case["n_in"]))
    weights = np.clip(weights, -256, 254)  # even, in range: Dense keeps them as is
    return data, weights


def _lif_kwargs(case):
    return {k: case[k] for k in ("du", "dv", "bias_mant", "bias_exp")}


@pytest.mark.parametrize("name", sorted(FIXED_CASES))
def test_fixed_point_matches_numpy_reference(name):
    case = FIXED_CASES[name]
    data, weights = _case_inputs(case)
    n_out = case["n_out"]
    lif = ScheduledLIF(
        shape=(n_out,), vth_schedule=case["vth_schedule"],
        reset_offset=case["reset_offset"], **_lif_kwargs(case),
    )
    assert lif.reset_interval == P and lif.reset_offset == case["reset_offset"]
    (spikes,), ((u, v),) = run_lava(data, weights, [lif], "fixed_pt")

    a = ref_dense_graded(weights, data)
    ref_s, ref_u, ref_v, seen = ref_scheduled_lif(
        a, vth_schedule=case["vth_schedule"], reset_offset=case["reset_offset"],
        **_lif_kwargs(case),
    )
    np.testing.assert_array_equal(spikes.astype(np.int64), ref_s)
    np.testing.assert_array_equal(u.astype(np.int64), ref_u)
    np.testing.assert_array_equal(v.astype(np.int64), ref_v)

    # the comparison is not vacuous ...
    assert 0 < ref_s.sum() < ref_s.size
    # ... and the schedule matters: any constant threshold gives other spikes
    for vth in case["vth_schedule"]:
        const_s = ref_scheduled_lif(
            a, vth_schedule=[vth] * P, reset_offset=case["reset_offset"],
            **_lif_kwargs(case),
        )[0]
        assert not np.array_equal(const_s, ref_s)
    if name == "overflow":
        assert seen["u_wrapped"] and seen["v_saturated"]


CONST_CASES = {
    "fixed_pt": dict(
        lif=dict(du=2000, dv=500, bias_mant=4, bias_exp=1), vth=120,
        x=(-20, 40), w=(-40, 80),
    ),
    "floating_pt": dict(
        lif=dict(du=0.25, dv=0.125, bias_mant=0.5), vth=150.0,
        x=(-20, 40), w=(-40, 80),
    ),
}


@pytest.mark.parametrize("tag", sorted(CONST_CASES))
@pytest.mark.parametrize("reset_offset", [0, 1, 3])
def test_constant_schedule_equals_lif_reset(tag, reset_offset):
    case = CONST_CASES[tag]
    rng = np.random.default_rng(10 + reset_offset)
    data = rng.integers(*case["x"], size=(5, STEPS))
    weights = 2 * rng.integers(*case["w"], size=(6, 5))
    if tag == "fixed_pt":
        data = data.astype(np.int32)
    else:
        data = data.astype(float)
        weights = weights.astype(float)
    sched = ScheduledLIF(
        shape=(6,), vth_schedule=[case["vth"]] * P, reset_offset=reset_offset, **case["lif"]
    )
    stock = LIFReset(
        shape=(6,), vth=case["vth"], reset_interval=P, reset_offset=reset_offset,
        **case["lif"],
    )
    (s_sched, s_stock), ((u1, v1), (u2, v2)) = run_lava(data, weights, [sched, stock], tag)
    assert 0 < s_stock.sum() < s_stock.size
    np.testing.assert_array_equal(s_sched, s_stock)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(v1, v2)


def ref_float_scheduled_lif(a, *, du, dv, bias_mant, vth_schedule, reset_offset):
    n, steps = a.shape
    period = len(vth_schedule)
    u = np.zeros(n)
    v = np.zeros(n)
    spikes = np.zeros((n, steps))
    for t in range(1, steps + 1):
        if t % period == reset_offset % period:
            u *= 0
            v *= 0
        u = u * (1 - du)
        u += a[:, t - 1]
        v = v * (1 - dv) + u + bias_mant
        s = v > vth_schedule[(t - reset_offset) % period]
        v[s] = 0
        spikes[:, t - 1] = s
    return spikes


def test_floating_point_follows_schedule():
    rng = np.random.default_rng(7)
    data = rng.integers(-20, 40, size=(5, STEPS)).astype(float)
    weights = (2 * rng.integers(-40, 80, size=(6, 5))).astype(float)
    params = dict(du=0.25, dv=0.125, bias_mant=0.5)
    vth_schedule = [80.0, 300.0, 20.0, 150.0]
    lif = ScheduledLIF(shape=(6,), vth_schedule=vth_schedule, reset_offset=1, **params)
    (spikes,), _ = run_lava(data, weights, [lif], "floating_pt")
    a = np.zeros((6, STEPS))
    a[:, 1:] = weights @ data[:, :-1]
    ref = ref_float_scheduled_lif(a, vth_schedule=vth_schedule, reset_offset=1, **params)
    assert 0 < ref.sum() < ref.size
    np.testing.assert_array_equal(spikes, ref)


def test_never_fires_vth():
    lif = LIF(shape=(2,), vth=NEVER_FIRES_VTH, du=0, dv=0, bias_mant=4095, bias_exp=7)
    sink = SinkBuffer(shape=(2,), buffer=30)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=30), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        spikes = sink.data.get()
        v = lif.v.get()
    finally:
        lif.stop()
    assert spikes.sum() == 0
    np.testing.assert_array_equal(v, 2**23 - 1)  # saturated, still below 2**23


def test_phase_helpers():
    for offset in range(0, 9):
        for t in range(1, 30):
            phase = schedule_phase(t, P, offset)
            assert 0 <= phase < P
            assert (phase == 0) == (t % P == offset % P)  # phase 0 at the reset steps (module doc)


def test_process_validation():
    with pytest.raises(ValueError):
        ScheduledLIF(shape=(2,), vth_schedule=[])
    with pytest.raises(ValueError):
        ScheduledLIF(shape=(2,), vth_schedule=[[1, 2], [3, 4]])
    with pytest.raises(ValueError):
        ScheduledLIF(shape=(2,), vth_schedule=[1, 2, 3], reset_interval=4)
    with pytest.raises(ValueError):
        ScheduledLIF(shape=(2,), vth_schedule=[1, 2, 3], reset_offset=-1)
    lif = ScheduledLIF(shape=(2,), vth_schedule=[1, 2, 3], reset_interval=3, reset_offset=5)
    assert lif.reset_interval == 3 and lif.reset_offset == 5
    np.testing.assert_array_equal(lif.vth_schedule.get(), [1, 2, 3])
