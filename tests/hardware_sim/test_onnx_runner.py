"""The ONNX step graph looped by onnxruntime == the reference simulator, bit for bit, on random networks
(dense chains, conv, residual sums, wide graded inputs, wrap and saturation edges)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import onnxruntime as ort  # installed by make (extras onnx)

from dsatgo_deploy import loihi  # noqa: E402
from dsatgo_deploy.errors import UserError  # noqa: E402
from dsatgo_deploy.export.onnx_writer import build_float_onnx, build_onnx, metadata  # noqa: E402
from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx  # noqa: E402
from dsatgo_deploy.hardware_sim.reference import _layer_input, _PreparedLayer, simulate  # noqa: E402
from dsatgo_deploy.network import INPUT, DeployableNetwork, InputEncoding  # noqa: E402
from tests.hardware_sim.test_lava_backend import random_graph, random_network  # noqa: E402


def assert_bit_exact(net: DeployableNetwork, payloads: np.ndarray) -> None:
    reference = simulate(net, payloads, payloads=True)
    onnx = run_onnx(build_onnx(net), payloads, payloads=True)
    assert reference.spikes.keys() == onnx.spikes.keys()
    for name in reference.spikes:
        np.testing.assert_array_equal(onnx.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    np.testing.assert_array_equal(onnx.readout_trace, reference.readout_trace)


def reference_states(net: DeployableNetwork, payloads: np.ndarray, inputs: dict | None = None
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """u and v of every layer after the last step, from the reference's own pieces and loihi.lif_step
    (``inputs`` receives each layer's largest |a|)."""
    steps = net.timesteps
    max_payload = max(abs(v) for v in net.input_encoding.payload_range)
    outputs = {INPUT: torch.from_numpy(payloads).unsqueeze(1).expand(-1, steps, -1)}
    states = {}
    for layer in net.layers:
        prepared = _PreparedLayer(layer, max_payload if layer.sources == [INPUT] else 1, torch.device("cpu"))
        a = _layer_input(prepared, outputs, steps)
        if inputs is not None:
            inputs[layer.name] = int(a.abs().max())
        state = loihi.lif_initial_state(a[:, 0].shape)
        fired_steps = []
        for t in range(steps):
            threshold = layer.threshold_at(t) if layer.spiking else loihi.NEVER_FIRES_VTH
            params = loihi.LIFParameters(layer.current_decay, layer.voltage_decay, prepared.bias, threshold)
            state, fired = loihi.lif_step(params, state, a[:, t])
            fired_steps.append(fired.to(torch.int64))
        outputs[layer.name] = torch.stack(fired_steps, dim=1)
        states[layer.name] = (state.u.numpy(), state.v.numpy())
    return states


def onnx_states(net: DeployableNetwork, payloads: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same, stepping the graph by hand through its documented interface."""
    session = ort.InferenceSession(build_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    state = {}
    for layer in net.layers:
        for field in ("u", "v"):
            state[f"{layer.name}.{field}"] = np.zeros((len(payloads), layer.num_neurons), np.int64)
    for t in range(net.timesteps):
        out = dict(zip(names, session.run(None, {"x": payloads, "t": np.array(t, np.int64), **state})))
        for layer in net.layers:
            for field in ("u", "v"):
                state[f"{layer.name}.{field}"] = out[f"{layer.name}.{field}_next"]
    return {layer.name: (state[f"{layer.name}.u"], state[f"{layer.name}.v"]) for layer in net.layers}


@pytest.mark.parametrize("seed, sizes, timesteps, big", [
    (0, [12, 10, 4], 3, False),
    (1, [16, 12, 9, 7, 5], 2, False),
    (2, [20, 15, 3], 4, True),
    (3, [24, 18, 12, 6], 5, True),
])
def test_dense_chains_bit_exact(seed, sizes, timesteps, big):
    net = random_network(seed, sizes, timesteps, big)
    payloads = np.random.default_rng(seed + 100).integers(0, 256, size=(40, sizes[0]))
    assert any(s.any() for s in simulate(net, payloads, payloads=True).spikes.values())
    assert_bit_exact(net, payloads)


def test_conv_residual_and_dense_after_conv_bit_exact():
    net = random_graph(5, (2, 7, 7), [
        ("c1", ["input"], dict(channels=4, kernel=(3, 3), padding=(1, 1))),
        ("c2", ["c1"], dict(channels=4, kernel=(3, 3), padding=(2, 2), dilation=(2, 2))),
        ("c3", ["c2", "c1"], dict(channels=3, kernel=(2, 2), stride=(2, 2))),  # residual sum of two sources
        ("d1", ["c3"], 10),
        ("d2", ["d1"], 10),
        ("out", ["d2", "d1"], 4),
    ], 3)
    payloads = np.random.default_rng(9).integers(0, 256, size=(40, 98))
    spikes = simulate(net, payloads, payloads=True).spikes
    assert all(spikes[name].any() for name in ("c1", "c2", "c3", "d1"))
    assert_bit_exact(net, payloads)


@pytest.mark.parametrize("bits, signed", [(16, False), (24, True)])
def test_wide_graded_conv_input_is_split_into_exact_chunks(bits, signed):
    net = random_graph(6, (3, 6, 6), [("c1", ["input"], dict(channels=5, kernel=(3, 3), padding=(1, 1))),
                                      ("out", ["c1"], 4)], 3)
    net.input_encoding = InputEncoding(bits=bits, step=1.0, signed=signed)
    net.layers[0].input_message_bits = bits
    if bits == 24:  # sums must stay below 2**31 (docs/loihi_arithmetic.md); 8 * 27 * 2**23 is still far beyond 2**24
        net.layers[0].weight = np.sign(net.layers[0].weight) * np.minimum(np.abs(net.layers[0].weight), 8)
    net.validate()
    lo, hi = net.input_encoding.payload_range
    payloads = np.random.default_rng(1).integers(lo, hi + 1, size=(30, 108))
    payloads[0], payloads[1] = hi, lo
    conv_inputs = sum(1 for node in build_onnx(net).graph.node if node.op_type == "Conv")
    assert conv_inputs > 1  # the bound 254 * 27 * 2**bits exceeds float32's exact range
    assert_bit_exact(net, payloads)


def test_wrap_and_saturation_edges_and_every_state_bit_exact():
    """Large weights, exponent and bias, no decay: a wraps at 32 bits, u at 24 bits, v saturates."""
    net = random_network(7, [20, 12, 6], 6, big=True)
    for layer in net.layers:
        layer.current_decay, layer.voltage_decay = 0, 0
        layer.bias_mant, layer.bias_exp = np.full_like(layer.bias_mant, 4095), 7
    net.layers[0].weight = np.minimum(np.abs(net.layers[0].weight), 254)  # excitatory: sums add up
    net.layers[0].weight_exp = net.layers[1].weight_exp = 7
    net.validate()
    payloads = np.random.default_rng(8).integers(0, 256, size=(30, 20))
    largest: dict[str, int] = {}
    expected, got = reference_states(net, payloads, largest), onnx_states(net, payloads)
    for name in expected:
        np.testing.assert_array_equal(got[name][0], expected[name][0], err_msg=f"u of {name}")
        np.testing.assert_array_equal(got[name][1], expected[name][1], err_msg=f"v of {name}")
    readout = simulate(net, payloads, payloads=True).readout_trace
    assert np.abs(readout).max() == loihi.VOLTAGE_LIMIT  # saturation reached
    assert largest["l0"] << loihi.ACTIVATION_SHIFT >= 1 << 31  # a << 6 wraps at 32 bits, u at 24
    assert largest["readout"] << loihi.ACTIVATION_SHIFT >= 1 << 23
    assert_bit_exact(net, payloads)


def test_runner_accepts_model_bytes_and_file_and_encodes_analog_input(tmp_path):
    net = random_network(0, [12, 10, 4], 3)
    x = np.random.default_rng(2).uniform(0, 1, (25, 12))
    reference = simulate(net, x)
    model = build_onnx(net)
    path = tmp_path / "step.onnx"
    path.write_bytes(model.SerializeToString())
    for source in (model, model.SerializeToString(), path, str(path)):
        result = run_onnx(source, x, batch_size=7)  # several chunks
        np.testing.assert_array_equal(result.readout_trace, reference.readout_trace)
        np.testing.assert_array_equal(result.spikes["l0"], reference.spikes["l0"])
    assert metadata(model)["timesteps"] == 3
    with pytest.raises(TypeError, match="build_onnx"):  # building a network's graph is the writer's job
        run_onnx(net, x)


def test_runner_errors_are_one_line_user_errors(tmp_path):
    net = random_network(0, [12, 10, 4], 3)
    with pytest.raises(UserError, match="no such ONNX file"):
        run_onnx(tmp_path / "missing.onnx", np.zeros((1, 12)))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not an ONNX model"):
        run_onnx(tmp_path / "junk.onnx", np.zeros((1, 12)))
    with pytest.raises(UserError, match="takes 12 input values per sample"):
        run_onnx(build_onnx(net), np.zeros((2, 5), np.int64), payloads=True)


def test_float_graph_is_refused_by_the_integer_runner():
    from dsatgo_deploy.export.freeze import FrozenLayer, FrozenNetwork

    layer = FrozenLayer("fc", ["input"], np.ones((3, 4)), np.zeros(3), 0.5, np.ones(2))
    readout = FrozenLayer("readout", ["fc"], np.ones((2, 3)), np.zeros(2), None, None)
    model = build_float_onnx(FrozenNetwork(2, (4,), [layer, readout]))
    with pytest.raises(UserError, match="expected the 'integer' one"):
        run_onnx(model, np.zeros((1, 4)))


def test_conv_beyond_float32_exactness_fails_naming_the_layer():
    net = random_graph(11, (1024, 9, 9), [("wide", ["input"], dict(channels=1, kernel=(9, 9))),
                                          ("out", ["wide"], 2)], 2)
    wide = net.layer("wide")
    assert loihi.synaptic_sum_bound(wide.weight, 1) < 2**24  # random weights: a float32 conv is exact
    build_onnx(net)
    wide.weight[...] = 254  # 254 * 1024 * 81 kernel taps = 21,067,776 >= 2**24: no float32 Conv is exact
    # With 8-bit graded input such a layer's sums (x 255) also pass 2**31, so validation refuses it first
    # (docs/loihi_arithmetic.md): the network never reaches the ONNX writer.
    with pytest.raises(UserError, match="layer 'wide': field 'weight': with 8-bit graded input a neuron's synaptic sum"):
        build_onnx(net)


def test_float_graph_equals_run_frozen_with_normalisation_conv_and_residual_sum():
    from dsatgo_deploy.export.freeze import FrozenConv, FrozenLayer, FrozenNetwork, run_frozen
    from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx_float

    rng = np.random.default_rng(12)
    geometry = FrozenConv((2, 5, 5), (1, 1), (1, 1))
    layers = [
        FrozenLayer("c1", ["input"], rng.normal(0, 0.5, (3, 2, 3, 3)), rng.normal(0, 0.1, 3), 0.5,
                    np.array([0.6, 0.9, 1.1]), geometry),
        FrozenLayer("c2", ["c1"], rng.normal(0, 0.5, (3, 3, 3, 3)), np.zeros(3), 0.3, np.array([0.5, 0.7, 0.8]),
                    FrozenConv((3, 5, 5), (1, 1), (1, 1))),
        FrozenLayer("d1", ["c2", "c1"], rng.normal(0, 0.3, (8, 75)), np.zeros(8), 0.7, np.array([1.0, 0.9, 1.2])),
        FrozenLayer("readout", ["d1"], rng.normal(0, 0.5, (3, 8)), rng.normal(0, 0.1, 3), None, None),
    ]
    frozen = FrozenNetwork(3, (2, 5, 5), layers, normalize={"mean": [0.4, 0.6], "std": [0.2, 0.3]})
    x = rng.uniform(0, 1, (40, 2, 5, 5))
    readout, spikes, _ = run_frozen(frozen, x)
    result = run_onnx_float(build_float_onnx(frozen), x, batch_size=16)
    assert all(s.any() for s in spikes.values())
    for name in spikes:
        assert (result.spikes[name] != spikes[name]).mean() < 1e-3, name
    np.testing.assert_allclose(result.readout, readout, atol=1e-4)


def test_spike_input_time_varying_samples_no_readout_and_no_current_decay_bit_exact():
    """Networks read from netx files: binary input spikes, one frame per step, a spiking last layer,
    du = -1 (no current decay) and a per-neuron conv bias."""
    net = random_graph(13, (2, 5, 5), [("c1", ["input"], dict(channels=3, kernel=(3, 3), padding=(1, 1))),
                                       ("d1", ["c1"], 12), ("last", ["d1"], 6)], 4)
    net.input_encoding = InputEncoding.spikes()
    c1 = net.layers[0]
    c1.input_message_bits, c1.current_decay = 0, -1
    c1.bias_mant = np.random.default_rng(3).integers(-300, 300, c1.num_neurons)
    last = net.layers[-1]
    last.spiking, last.threshold_schedule = True, np.array([200])
    net.validate()
    frames = np.random.default_rng(4).integers(0, 3, size=(30, 4, 2, 5, 5))  # non-zero entries are spikes
    reference = simulate(net, frames, payloads=True)
    result = run_onnx(build_onnx(net), frames, payloads=True)
    assert reference.readout_trace is None and result.readout_trace is None
    assert all(s.any() for s in reference.spikes.values())
    for name in reference.spikes:
        np.testing.assert_array_equal(result.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    np.testing.assert_array_equal(result.predictions, reference.predictions)
    static = frames[:, 0]
    np.testing.assert_array_equal(run_onnx(build_onnx(net), static, payloads=True).spikes["c1"],
                                  simulate(net, static, payloads=True).spikes["c1"])
