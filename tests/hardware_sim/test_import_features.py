"""Reference and Lava backend on what netx import needs: binary spike input changing every step, a spiking
last layer (no readout), fewer weight bits, du = -1, per-neuron conv bias; and Lava's floating_pt models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim.lava_backend import float_parameters, run_lava
from dsatgo_deploy.hardware_sim.parity import compare
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.pipeline.sides import SIDES, run_side
from dsatgo_deploy.network import ConvGeometry, DeployableNetwork, InputEncoding, Layer


def spiking_net(seed: int = 0, steps: int = 3) -> DeployableNetwork:
    """spikes (2, 6, 5) -> conv 3 ch (per-neuron bias, du = -1) -> dense 12 (6 weight bits, exponent -1)
    -> dense 4 spiking output."""
    rng = np.random.default_rng(seed)
    conv = ConvGeometry((2, 6, 5), padding=(1, 1))
    conv_w = 2 * rng.integers(-40, 64, (3, 2, 3, 3))
    n_conv = 3 * 6 * 5
    dense_w = loihi.representable_weights(torch.from_numpy(rng.integers(-160, 200, (12, n_conv))), 6).numpy()
    out_w = 2 * rng.integers(-50, 100, (4, 12))
    layers = [
        Layer("c", ["input"], conv_w, 0, rng.integers(-20, 40, n_conv), 6, [60], -1, 600, kind="conv", conv=conv),
        Layer("d", ["c"], dense_w, -1, rng.integers(-10, 30, 12), 6, rng.integers(800, 1600, steps), 1024, 300,
              num_weight_bits=6),
        Layer("out", ["d"], out_w, 0, np.zeros(4), 0, [200], 2000, 1000),
    ]
    net = DeployableNetwork(steps, (2, 6, 5), InputEncoding.spikes(), layers)
    net.validate()
    return net


def test_static_input_equals_the_same_input_repeated_over_time():
    net = spiking_net()
    x = (np.random.default_rng(1).random((6, 2, 6, 5)) < 0.4).astype(np.int64)
    static = simulate(net, x, payloads=True)
    repeated = simulate(net, np.repeat(x[:, None], net.timesteps, axis=1), payloads=True)
    for name in static.spikes:
        np.testing.assert_array_equal(static.spikes[name], repeated.spikes[name])
    assert static.readout_trace is None and static.readout is None
    np.testing.assert_array_equal(static.predictions, static.spikes["out"].sum(axis=1).argmax(axis=1))
    # Analog input with the spike encoding: every non-zero value is one spike.
    analog = simulate(net, x * np.random.default_rng(2).uniform(0.1, 3, x.shape))
    np.testing.assert_array_equal(analog.spikes["c"], static.spikes["c"])


def test_input_shapes_are_recognised_or_refused():
    net = spiking_net()
    assert not net.is_time_varying(np.zeros((2, 2, 6, 5))) and not net.is_time_varying(np.zeros((2, 60)))
    assert net.is_time_varying(np.zeros((2, 3, 2, 6, 5))) and net.is_time_varying(np.zeros((2, 3, 60)))
    assert net.encode_input(np.ones((2, 3, 60))).shape == (2, 3, 60)
    with pytest.raises(UserError, match=r"input of shape \(2, 4, 60\) fits neither static samples \(B, 2, 6, 5\)"):
        simulate(net, np.zeros((2, 4, 60)))


def test_reference_equals_lava_on_time_varying_spikes_and_a_spiking_output():
    net = spiking_net()
    x = (np.random.default_rng(3).random((20, net.timesteps, 2, 6, 5)) < 0.35).astype(np.int64)
    reference = simulate(net, x, payloads=True)
    for name, spikes in reference.spikes.items():
        assert 0.03 < spikes.mean() < 0.9, f"layer {name} fires at rate {spikes.mean():.3f}"
    assert not np.array_equal(reference.spikes["c"][:, 0], reference.spikes["c"][:, 1])  # the input changes
    lava = run_lava(net, x, payloads=True, timeout_s=300)
    assert lava.readout_trace is None
    for name in reference.spikes:
        np.testing.assert_array_equal(lava.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    np.testing.assert_array_equal(lava.predictions, reference.predictions)


def test_float_parameters_follow_the_documented_mapping():
    net = spiking_net()
    p = float_parameters(net.layer("d"), net.timesteps)
    layer = net.layer("d")
    assert p["du"] == 1025 / 4096 and p["dv"] == 300 / 4096
    np.testing.assert_array_equal(p["weight"], layer.weight * 0.5)
    np.testing.assert_array_equal(p["bias"], layer.bias_mant * 2**6 / 64)
    np.testing.assert_array_equal(p["vth_schedule"], layer.threshold_schedule)
    conv = float_parameters(net.layer("c"), net.timesteps)
    assert conv["du"] == 0.0  # du = -1: no current decay
    assert float_parameters(net.layer("out"), 3)["vth_schedule"].tolist() == [200.0] * 3


def test_lava_floating_point_agrees_with_fixed_point_on_the_trained_digits_mlp(exported, digits):
    """floating_pt is an approximation (no rounding, wrap or saturation); on the digits MLP its predicted
    classes agree with fixed_pt on nearly every sample (measured: 100 of 100)."""
    net = exported.network
    x = digits.x_test[:100]
    fixed = run_side("lava", net=net, checkpoint=None, x=x)
    floating = run_side("lava-float", net=net, checkpoint=None, x=x)
    assert "lava-float" in SIDES and floating.name == "lava-float"
    report = compare(fixed, floating, digits.y_test[:100])
    assert report.class_agreement >= 0.9, report.class_agreement
    assert report.layers[0].spike_count_agreement >= 0.8
    assert report.accuracy[1] > 0.8


def test_lava_floating_point_runs_conv_residual_and_spiking_output():
    """Float Conv, relays of a residual sum and a spiking output: the float run tracks fixed point."""
    from tests.hardware_sim.test_lava_backend import RESIDUAL_DENSE_NET, random_graph

    net = spiking_net()
    x = (np.random.default_rng(3).random((10, net.timesteps, 2, 6, 5)) < 0.35).astype(np.int64)
    fixed = simulate(net, x, payloads=True)
    floating = run_lava(net, x, payloads=True, select_tag="floating_pt", timeout_s=300)
    assert floating.readout_trace is None
    for name in fixed.spikes:
        assert (floating.spikes[name] == fixed.spikes[name]).mean() > 0.8, name
    residual = random_graph(6, (12,), RESIDUAL_DENSE_NET, 3, thresholds=1500, weight_low=-112)
    payloads = np.random.default_rng(106).integers(0, 256, size=(10, 12))
    fixed = simulate(residual, payloads, payloads=True)
    floating = run_lava(residual, payloads, payloads=True, select_tag="floating_pt", timeout_s=300)
    assert floating.readout_trace.dtype == np.float64
    for name in fixed.spikes:
        assert (floating.spikes[name] == fixed.spikes[name]).mean() > 0.8, name
    assert np.corrcoef(floating.readout_trace.ravel(), fixed.readout_trace.ravel())[0, 1] > 0.9
    with pytest.raises(UserError, match="select_tag 'bit_accurate'"):
        run_lava(residual, payloads, payloads=True, select_tag="bit_accurate")
