"""Reference simulator == Lava fixed_pt, bit for bit: every spike, every layer, every timestep."""

from __future__ import annotations

import numpy as np
import pytest

from dsatgo_deploy import loihi
from dsatgo_deploy.network import DeployableNetwork, Layer, InputEncoding
from dsatgo_deploy.hardware_sim.lava_backend import LavaRunError, run_lava
from dsatgo_deploy.hardware_sim.reference import simulate


def random_network(seed: int, sizes: list[int], timesteps: int, big: bool = False) -> DeployableNetwork:
    """A random valid deployable network; ``big`` drives u and v into wrap and saturation."""
    rng = np.random.default_rng(seed)
    layers = []
    source, width = "input", sizes[0]
    for index, size in enumerate(sizes[1:]):
        last = index == len(sizes) - 2
        weight = 2 * rng.integers(-128, 128, size=(size, width))
        weight[rng.random(weight.shape) < 0.3] = 0
        layers.append(Layer(
            name="readout" if last else f"l{index}", sources=[source], weight=weight,
            weight_exp=int(rng.integers(0, 3) if big else rng.integers(-3, 1)),
            bias_mant=rng.integers(-4096, 4096, size) if big else rng.integers(-200, 200, size), bias_exp=6,
            threshold_schedule=np.zeros(0) if last else rng.integers(0, 3000, timesteps),
            current_decay=int(rng.choice([0, 4095, rng.integers(0, 4096)])),
            voltage_decay=int(rng.choice([0, 4096, rng.integers(0, 4097)])),
            spiking=not last, input_message_bits=8 if index == 0 else 0, scale=1.0))
        source, width = layers[-1].name, size
    net = DeployableNetwork(timesteps, (sizes[0],), InputEncoding(bits=8, step=1.0 / 255), layers)
    net.validate()
    return net


def assert_bit_exact(net: DeployableNetwork, payloads: np.ndarray) -> None:
    reference = simulate(net, payloads, payloads=True)
    lava = run_lava(net, payloads, payloads=True, timeout_s=300)
    assert reference.spikes.keys() == lava.spikes.keys()
    for name in reference.spikes:
        np.testing.assert_array_equal(lava.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    np.testing.assert_array_equal(lava.readout_trace, reference.readout_trace)


@pytest.mark.parametrize("seed, sizes, timesteps, big", [
    (0, [12, 10, 4], 3, False),
    (1, [16, 12, 9, 7, 5], 2, False),  # 4 layers deep with T = 2: latency > T, resets at every depth
    (2, [20, 15, 3], 4, True),  # wrap and saturation
])
def test_reference_equals_lava_on_random_networks(seed, sizes, timesteps, big):
    net = random_network(seed, sizes, timesteps, big)
    payloads = np.random.default_rng(seed + 100).integers(0, 256, size=(20, sizes[0]))
    reference = simulate(net, payloads, payloads=True)
    assert any(s.any() for s in reference.spikes.values())  # the test must exercise spikes
    assert_bit_exact(net, payloads)


def test_reference_equals_lava_on_the_trained_digits_mlp_for_100_samples(exported, digits):
    net = exported.network
    x = digits.x_test[:100]
    reference = simulate(net, x)
    lava = run_lava(net, x, timeout_s=300)
    np.testing.assert_array_equal(lava.spikes["fc1"], reference.spikes["fc1"])
    np.testing.assert_array_equal(lava.readout_trace, reference.readout_trace)
    assert reference.spikes["fc1"].sum() > 1000
    assert (lava.predictions == digits.y_test[:100]).mean() > 0.8


def test_samples_do_not_leak_into_each_other(exported, digits):
    """A sample's result does not depend on which samples streamed before it."""
    x = digits.x_test[:6]
    forward = run_lava(exported.network, x, timeout_s=300)
    backward = run_lava(exported.network, x[::-1], timeout_s=300)
    np.testing.assert_array_equal(forward.spikes["fc1"], backward.spikes["fc1"][::-1])
    np.testing.assert_array_equal(forward.readout_trace, backward.readout_trace[::-1])


def test_never_fires_threshold_cannot_be_reached():
    assert (loihi.NEVER_FIRES_VTH << loihi.THRESHOLD_SHIFT) > loihi.VOLTAGE_LIMIT


def test_a_failing_lava_process_surfaces_its_real_exception(monkeypatch):
    net = random_network(3, [6, 5, 2], 2)
    from dsatgo_deploy.hardware_sim.lava_procs import scheduled_lif

    def broken(self):
        raise ZeroDivisionError("injected failure inside the neuron model")

    monkeypatch.setattr(scheduled_lif.PyScheduledLifModelBitAcc, "scale_threshold", broken)
    with pytest.raises(LavaRunError, match="ZeroDivisionError.*injected failure"):
        run_lava(net, np.ones((2, 6), dtype=np.int64), payloads=True, timeout_s=120)
