"""Operation counts and the Loihi 2 system model of layers with synaptic delays or a recurrent synapse, and
counts of time-varying input (hardware_sim/counts.py, dsatgo_deploy/loihi2_system.py)."""

from __future__ import annotations

import math

import numpy as np

from dsatgo_deploy import loihi2_system as l2
from dsatgo_deploy import network as N
from dsatgo_deploy.hardware_sim.counts import count_operations
from dsatgo_deploy.hardware_sim.reference import simulate


def _net(delay: bool, recurrent: bool) -> N.DeployableNetwork:
    rng = np.random.default_rng(7)
    weight = rng.integers(-20, 60, (12, 9)) * 2
    weight[weight % 6 == 0] = 0  # some absent synapses
    hidden = N.Layer("hidden", ["input"], weight, 0, np.zeros(12), 6, [300], 1024, 512,
                     delay=rng.integers(0, 5, (12, 9)) if delay else None,
                     weight_rec=(rng.integers(-30, 40, (12, 12)) * 2 * (rng.random((12, 12)) < 0.5)) if recurrent else None)
    out = N.Layer("out", ["hidden"], rng.integers(0, 80, (4, 12)), 0, np.zeros(4), 6, [60], 1024, 512)
    net = N.DeployableNetwork(16, (9,), N.InputEncoding.spikes(), [hidden, out])
    net.validate()
    return net


def test_recurrent_spikes_and_time_varying_input_are_counted_step_by_step():
    net = _net(delay=True, recurrent=True)
    x = (np.random.default_rng(8).random((3, 16, 9)) < 0.4).astype(np.int64)
    record = simulate(net, x, payloads=True)
    counts = count_operations(net, record.spikes, x)
    hidden = net.layers[0]
    spikes = record.spikes["hidden"].astype(np.int64)
    assert 0.05 < spikes.mean() < 0.8
    expected = ((x != 0).astype(np.int64) @ (hidden.weight != 0).T.astype(np.int64)).sum(axis=(0, 2))  # sent at its step: delays change no count
    expected[1:] += (spikes[:, :-1] @ (hidden.weight_rec != 0).T.astype(np.int64)).sum(axis=(0, 2))
    np.testing.assert_array_equal(counts.layers[0].synops, expected)
    np.testing.assert_array_equal(counts.layers[1].synops, (spikes @ (net.layers[1].weight != 0).T.astype(np.int64)).sum(axis=(0, 2)))
    # The same network without its recurrent synapse counts only the input's events.
    plain = _net(delay=True, recurrent=False)
    plain_counts = count_operations(plain, simulate(plain, x, payloads=True).spikes, x)
    np.testing.assert_array_equal(plain_counts.layers[0].synops, ((x != 0).astype(np.int64) @ (hidden.weight != 0).T.astype(np.int64)).sum(axis=(0, 2)))


def test_system_model_stores_delay_bits_and_feeds_a_recurrent_layer_back():
    plain, delayed, recurrent = _net(False, False), _net(True, False), _net(False, True)
    spec_plain, spec_delayed, spec_recurrent = (l2.network_specs(net)[0] for net in (plain, delayed, recurrent))
    assert (spec_plain.delay_bits, spec_delayed.delay_bits) == (0, 6)
    assert spec_recurrent.fan_in == 9 + 12 and "hidden" in spec_recurrent.feeds
    limits = l2.CoreLimits(synaptic_bytes=40)  # 40 bytes: 4 rows of 9 plain weights, 2 rows of 9 delayed ones
    assert l2.allocate_layer(spec_plain, limits).cores == math.ceil(12 / 4)
    delayed_alloc = l2.allocate_layer(spec_delayed, limits)
    assert delayed_alloc.cores == math.ceil(12 / (40 // math.ceil(9 * 14 / 8)))
    assert delayed_alloc.synaptic_bytes_per_core == 2 * 16
