"""Reference simulator == Lava fixed_pt, bit for bit: every spike, every layer, every timestep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsatgo_deploy import loihi
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.network import ConvGeometry, DeployableNetwork, InputEncoding, Layer
from dsatgo_deploy.hardware_sim import lava_backend
from dsatgo_deploy.hardware_sim.lava_backend import LavaRunError, run_lava
from dsatgo_deploy.hardware_sim.reference import simulate


def _random_layer(rng, name: str, sources: list[str], weight_shape: tuple[int, ...], timesteps: int, *,
                  readout: bool, graded: bool, big: bool = False, conv: ConvGeometry | None = None,
                  thresholds: int = 3000, weight_low: int = -128) -> Layer:
    """A random valid layer: even weights in [2 * weight_low, 254] (30% zero), 8-bit graded input when
    ``graded``; conv layers get weight_exp 0 and one bias per channel. ``big`` drives u and v into wrap
    and saturation."""
    weight = 2 * rng.integers(weight_low, 128, size=weight_shape)
    weight[rng.random(weight.shape) < 0.3] = 0
    if conv is not None:
        weight_exp = 0
    else:
        weight_exp = int(rng.integers(0, 3) if big else rng.integers(-3, 1))
    biases = weight_shape[0]  # dense: one per neuron; conv: one per output channel
    return Layer(
        name=name, sources=sources, weight=weight, weight_exp=weight_exp,
        bias_mant=rng.integers(-4096, 4096, biases) if big else rng.integers(-200, 200, biases), bias_exp=6,
        threshold_schedule=np.zeros(0) if readout else rng.integers(0, thresholds, timesteps),
        current_decay=int(rng.choice([0, 4095, rng.integers(0, 4096)])),
        voltage_decay=int(rng.choice([0, 4096, rng.integers(0, 4097)])),
        spiking=not readout, input_message_bits=8 if graded else 0, scale=1.0,
        kind="dense" if conv is None else "conv", conv=conv)


def random_network(seed: int, sizes: list[int], timesteps: int, big: bool = False) -> DeployableNetwork:
    """A random valid dense chain; ``big`` drives u and v into wrap and saturation."""
    rng = np.random.default_rng(seed)
    layers = []
    source, width = "input", sizes[0]
    for index, size in enumerate(sizes[1:]):
        last = index == len(sizes) - 2
        layers.append(_random_layer(rng, "readout" if last else f"l{index}", [source], (size, width), timesteps,
                                    readout=last, graded=index == 0, big=big))
        source, width = layers[-1].name, size
    net = DeployableNetwork(timesteps, (sizes[0],), InputEncoding(bits=8, step=1.0 / 255), layers)
    net.validate()
    return net


def random_graph(seed: int, input_shape: tuple[int, ...], specs: list[tuple], timesteps: int,
                 thresholds: int = 3000, weight_low: int = -128) -> DeployableNetwork:
    """A random valid network of any shape the format allows; the last spec is the readout.

    Each spec is ``(name, sources, size)`` for a dense layer or ``(name, sources, dict(channels=, kernel=,
    stride=, padding=, dilation=))`` for a conv layer (kernel etc. as (H, W) pairs; missing: 3x3, 1, 0, 1).
    A layer with several sources sums them (a folded residual ADD); they must have equal shapes.
    """
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape)}
    layers = []
    for index, (name, sources, spec) in enumerate(specs):
        in_shape = shapes[sources[0]]
        common = dict(readout=index == len(specs) - 1, graded=sources == ["input"], thresholds=thresholds,
                      weight_low=weight_low)
        if isinstance(spec, dict):
            conv = ConvGeometry(in_shape, stride=spec.get("stride", (1, 1)), padding=spec.get("padding", (0, 0)),
                                dilation=spec.get("dilation", (1, 1)))
            weight_shape = (spec["channels"], in_shape[0], *spec.get("kernel", (3, 3)))
            layers.append(_random_layer(rng, name, list(sources), weight_shape, timesteps, conv=conv, **common))
        else:
            layers.append(_random_layer(rng, name, list(sources), (spec, int(np.prod(in_shape))), timesteps, **common))
        shapes[name] = layers[-1].output_shape
    net = DeployableNetwork(timesteps, tuple(input_shape), InputEncoding(bits=8, step=1.0 / 255), layers)
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


def coincident_inputs(layer: Layer, spikes: dict[str, np.ndarray], at_least: int = 2) -> int:
    """(sample, timestep, neuron) triples where ``at_least`` of the layer's sources send non-zero synaptic
    input at once: the residual sum is really exercised there."""
    weight = torch.from_numpy(layer.weight.astype(np.float64))
    nonzero = []
    for source in layer.sources:
        s = spikes[source]
        messages = torch.from_numpy(s.reshape(-1, *layer.input_shape).astype(np.float64))
        if layer.kind == "conv":
            g = layer.conv
            a = loihi.conv_accumulate(weight, messages, g.stride, g.padding, g.dilation, graded=False)
        else:
            a = loihi.dense_accumulate(weight, messages, layer.weight_exp, graded=False)
        nonzero.append(a.reshape(len(messages), -1).numpy() != 0)
    return int((np.sum(nonzero, axis=0) >= at_least).sum())


def check_conv_or_residual_network(net: DeployableNetwork, samples: int, seed: int) -> None:
    """Every spiking layer fires (but not always), every multi-source layer sums sources at once, and
    Lava equals the reference bit for bit."""
    payloads = np.random.default_rng(seed).integers(0, 256, size=(samples, net.input_size))
    reference = simulate(net, payloads, payloads=True)
    for name, spikes in reference.spikes.items():
        assert 0.05 < spikes.mean() < 0.9, f"layer {name} fires at rate {spikes.mean():.2f}"
    for layer in net.layers:
        if len(layer.sources) > 1:
            assert coincident_inputs(layer, reference.spikes) > 0, f"layer {layer.name} never sums its sources"
            assert coincident_inputs(layer, reference.spikes, len(layer.sources)) > 0
    assert_bit_exact(net, payloads)


CONV_NET = [
    ("c1", ["input"], dict(channels=3, padding=(1, 1))),
    ("c2", ["c1"], dict(channels=4, stride=(2, 2))),
    ("readout", ["c2"], 5),
]
# SEW-style residual net: depths stem 1, a 2, b 3, c 4 (stem waits 2 steps), d 5 (stem 3, b 1, c 0), readout 6.
RESIDUAL_CONV_NET = [
    ("stem", ["input"], dict(channels=4, padding=(1, 1))),
    ("a", ["stem"], dict(channels=4, padding=(1, 1))),
    ("b", ["a"], dict(channels=4, padding=(1, 1))),
    ("c", ["stem", "b"], dict(channels=4, padding=(1, 1))),
    ("d", ["stem", "b", "c"], dict(channels=4, padding=(1, 1))),
    ("readout", ["d"], 5),
]
# Dense residual net: d0 is delayed by 1 (into d2), 2 (into d3) and 3 steps (into the readout), one shared chain.
RESIDUAL_DENSE_NET = [
    ("d0", ["input"], 10),
    ("d1", ["d0"], 10),
    ("d2", ["d0", "d1"], 10),
    ("d3", ["d0", "d1", "d2"], 10),
    ("readout", ["d3", "d0"], 4),
]
# Non-square input, asymmetric kernel/stride/padding/dilation, a dense layer reading the (C, H, W) input
# directly, and a conv readout: every (C, H, W) <-> (X, Y, C) conversion of the backend.
ODD_GEOMETRY_NET = [
    ("side", ["input"], 6),
    ("g", ["input"], dict(channels=3, kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    ("readout", ["g"], dict(channels=2, kernel=(2, 3), padding=(0, 1))),
]


def test_layer_depths_and_shared_relays_of_residual_networks(tmp_path):
    net = random_graph(2, (2, 6, 5), RESIDUAL_CONV_NET, 2, thresholds=2000, weight_low=-96)
    assert net.depths() == {"input": 0, "stem": 1, "a": 2, "b": 3, "c": 4, "d": 5, "readout": 6}
    graph = lava_backend._build(net, np.zeros((1, net.input_size), np.int64), lava_backend._import_lava(), tmp_path)
    # c waits 2 steps for stem; d waits 3 for stem (same chain) and 1 for b.
    assert set(graph.relays) == {("stem", 1), ("stem", 2), ("stem", 3), ("b", 1)}
    assert net.relay_delays() == {"stem": 3, "b": 1}  # what the resource estimate counts
    dense = random_graph(6, (12,), RESIDUAL_DENSE_NET, 3, thresholds=1500, weight_low=-112)
    graph = lava_backend._build(dense, np.zeros((1, 12), np.int64), lava_backend._import_lava(), tmp_path)
    assert set(graph.relays) == {("d0", 1), ("d0", 2), ("d0", 3), ("d1", 1)}
    assert graph.total_steps == 3 + 5 and set(graph.recordings) == {"d0", "d1", "d2", "d3"}


def test_reference_equals_lava_on_a_conv_network_with_graded_input():
    net = random_graph(0, (2, 6, 5), CONV_NET, 2, thresholds=2000, weight_low=-96)
    check_conv_or_residual_network(net, samples=20, seed=100)


def test_reference_equals_lava_on_a_residual_conv_network():
    net = random_graph(2, (2, 6, 5), RESIDUAL_CONV_NET, 2, thresholds=2000, weight_low=-96)
    check_conv_or_residual_network(net, samples=20, seed=102)


def test_reference_equals_lava_on_a_residual_dense_network():
    net = random_graph(6, (12,), RESIDUAL_DENSE_NET, 3, thresholds=1500, weight_low=-112)
    check_conv_or_residual_network(net, samples=20, seed=106)


def test_reference_equals_lava_on_odd_conv_geometry_and_a_conv_readout():
    net = random_graph(1, (2, 7, 5), ODD_GEOMETRY_NET, 2, thresholds=2000, weight_low=-128)
    assert net.layer("g").output_shape == (3, 4, 3) and net.output.output_shape == (2, 3, 3)
    check_conv_or_residual_network(net, samples=10, seed=100)


def test_reference_equals_lava_when_conv_sums_wrap_at_24_bits():
    """Graded input with fan-in 288 and large weights: Lava's Conv wraps most sums to 24 bits; the
    wrapped layer then feeds a residual sum."""
    specs = [("wide", ["input"], dict(channels=3, padding=(1, 1))), ("c2", ["wide"], dict(channels=3, padding=(1, 1))),
             ("sum", ["wide", "c2"], dict(channels=3, padding=(1, 1))), ("readout", ["sum"], 4)]
    net = random_graph(5, (32, 3, 3), specs, 2, thresholds=2000, weight_low=-96)
    rng = np.random.default_rng(5)
    net.layers[0].weight = 2 * rng.integers(90, 128, size=net.layers[0].weight.shape)
    net.validate()
    payloads = rng.integers(200, 256, size=(10, net.input_size))
    exact = torch.nn.functional.conv2d(torch.from_numpy(payloads.reshape(10, 32, 3, 3).astype(np.float64)),
                                       torch.from_numpy(net.layers[0].weight.astype(np.float64)), padding=1)
    assert (exact.abs() >= 2**23).float().mean() > 0.3  # a third or more of the sums wrap
    reference = simulate(net, payloads, payloads=True)
    assert all(s.any() for s in reference.spikes.values())
    assert coincident_inputs(net.layer("sum"), reference.spikes) > 0
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


def test_lava_equals_reference_on_a_cropped_pilotnet_sdnn(lava_dl_files):
    """lava-dl's square PilotNet SDNN (delta input, four sigma-delta conv layers, graded 16-bit messages), two
    samples streamed back to back through one compiled graph: every message value equal, so the per-sample reset
    of our sigma-delta process models (lava_procs/reset_sdn.py) starts each sample from rest as the reference does."""
    folder = lava_dl_files / "gts/pilotnet_sdnn"
    net = read_netx(folder / "square_network.net", timesteps=3)
    frame = np.load(folder / "input.npy")[:33, :, :, 0].transpose(2, 1, 0)  # (X, Y, C) crop -> (C, H, W)
    x = np.stack([frame, frame[:, ::-1] * 2])
    reference, lava = simulate(net, x, payloads=True), run_lava(net, x, payloads=True)
    assert list(lava.messages) == [layer.name for layer in net.layers]
    for layer in net.layers:
        assert np.array_equal(lava.messages[layer.name], reference.messages[layer.name]), layer.name
        assert np.count_nonzero(reference.messages[layer.name][1]) > 0
    # the second sample is not the first one's continuation: run alone, it gives the same messages
    alone = simulate(net, x[1:], payloads=True)
    assert np.array_equal(alone.messages["conv4"][0], lava.messages["conv4"][1])


def test_lava_equals_reference_on_tiny_net_with_bias_input(lava_dl_files):
    """lava-dl's tiny.net: its LIF input neuron driven by each sample's bias (InputEncoding "bias", the PilotNet LIF
    tutorial's per-sample bias), two samples streamed through one graph (BiasInputLIF switches the bias per sample):
    every spike equal to the reference, which runs each sample from rest."""
    net = read_netx(lava_dl_files / "tiny.net", timesteps=6)
    assert net.input_encoding.kind == "bias"
    first = np.load(lava_dl_files / "gts/tinynet/input_bias.npy").astype(int).transpose(2, 1, 0)  # (C, H, W)
    x = np.stack([first, first[:, ::-1, ::-1] // 2 + 5])
    reference, lava = simulate(net, x, payloads=True), run_lava(net, x, payloads=True)
    for layer in net.layers:
        assert np.array_equal(lava.spikes[layer.name], reference.spikes[layer.name]), layer.name
    assert reference.spikes["conv2"][1].sum() > 0 and not np.array_equal(reference.spikes["conv1"][0],
                                                                          reference.spikes["conv1"][1])
