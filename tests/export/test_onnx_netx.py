"""lava-dl 0.6.0's own netx files through the onnx target: the integer step graph looped by onnxruntime equals the
reference simulator bit for bit (identity input layers, bias input, the 'average' readout, the sigma-delta kinds'
graded messages), and what the graph cannot hold (delays, recurrent synapses) is refused in one line naming
file, layer and field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.onnx_writer import build_onnx
from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers.netx import read_netx


def assert_same_run(net, x, payloads=False):
    """onnx == reference: every spiking layer's spikes and the readout trace (None when the last layer spikes)."""
    reference = simulate(net, x, payloads=payloads)
    onnx = run_onnx(build_onnx(net), x, payloads=payloads)
    assert onnx.spikes.keys() == reference.spikes.keys() == {layer.name for layer in net.layers if layer.spiking}
    for name, spikes in reference.spikes.items():
        np.testing.assert_array_equal(onnx.spikes[name], spikes, err_msg=name)
    assert (onnx.readout_trace is None) == (reference.readout_trace is None)
    if reference.readout_trace is not None:
        np.testing.assert_array_equal(onnx.readout_trace, reference.readout_trace)
    return onnx, reference


def test_mnist_net_bias_input_and_readout(lava_dl_files):
    net = read_netx(lava_dl_files / "mnist.net", timesteps=8)
    assert net.input_encoding.kind == "bias" and net.layers[0].kind == "identity" and net.has_readout
    x = (np.random.default_rng(0).random((3, 784)) * 100).astype(np.float32)
    onnx, _ = assert_same_run(net, x)
    assert all(onnx.spikes[name].sum() > 100 for name in ("input0", "dense1", "dense2"))
    assert np.unique(onnx.readout_trace[:, -1]).size > 10  # a readout that moved


def test_tiny_net_equals_lava_dls_recorded_output(lava_dl_files):
    """tiny.net's image as its input neurons' bias: conv2's spikes in sample time are lava-dl's recorded window
    (tests/core/test_lava_dl_files.py relates the two times)."""
    net = read_netx(lava_dl_files / "tiny.net", timesteps=17)
    image = np.load(lava_dl_files / "gts/tinynet/input_bias.npy").transpose(2, 1, 0)  # (X, Y, C) -> (C, H, W)
    x = np.stack([image, image[:, ::-1], 3 * image])
    onnx, _ = assert_same_run(net, x, payloads=True)
    truth = np.load(lava_dl_files / "gts/tinynet/output.npy")[0].transpose(2, 1, 0, 3)[..., 1:]  # (X, Y, C, T)
    conv2 = onnx.spikes["conv2"][0, :15].reshape(15, *net.layer("conv2").output_shape).transpose(3, 2, 1, 0)
    assert truth.sum() == 92 and np.array_equal(conv2, truth)


def test_pilotnet_lif_on_its_own_image(lava_dl_files):
    net = read_netx(lava_dl_files / "gts/pilotnet_lif/network.net", timesteps=4)
    image = np.load(lava_dl_files / "gts/pilotnet_lif/image.npy").transpose(2, 1, 0)
    onnx, _ = assert_same_run(net, np.stack([image, image[:, :, ::-1]]), payloads=True)
    assert all(onnx.spikes[name].any() for name in ("input0", "conv1", "conv2", "conv3", "conv4", "conv5"))


def test_ntidigits_delays_and_average_readout(lava_dl_files):
    """ntidigits.net: dense layers with per-input delays up to 62 steps and lava-dl's 'average' readout, on lava-dl's
    own input spikes."""
    net = read_netx(lava_dl_files / "gts/ntidigits/ntidigits.net", timesteps=80)
    assert net.layers[0].max_delay > 40 and net.layers[-1].name == "average5"
    spikes = np.load(lava_dl_files / "gts/ntidigits/input.npy")[:, :80].T  # (T, 64)
    x = np.stack([spikes, spikes[::-1]]).astype(np.int64)
    onnx, _ = assert_same_run(net, x, payloads=True)
    assert onnx.readout_trace[:, -1].any() and all(s.any() for s in onnx.spikes.values())


@pytest.mark.parametrize("make", ["_delay_file", "_recurrent_file"])
def test_hand_made_delays_and_recurrence(make, tmp_path):
    """test_netx_temporal's files (runs there equal lava-dl's netx): a delay per input, per synapse, one clipped
    to 62; a dense_rec block."""
    import warnings

    from tests.export import test_netx_temporal

    rng = np.random.default_rng(3)
    getattr(test_netx_temporal, make)(tmp_path / "net.h5", rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the delay clipped to 62
        net = read_netx(tmp_path / "net.h5", timesteps=70)
    x = (rng.random((3, 70, net.input_size)) < 0.35).astype(np.int64)
    onnx, _ = assert_same_run(net, x, payloads=True)
    assert all(0.02 < s.mean() < 0.9 for s in onnx.spikes.values())


@pytest.mark.parametrize("name, steps", [("network.net", 6), ("square_network.net", 4)])
def test_pilotnet_sdnn_graded_messages_and_sigma_readout(lava_dl_files, name, steps):
    """The sigma-delta kinds (delta input encoder, sigma_delta, the sigma readout; square_network.net ends in a
    sigma_delta layer): messages value for value, the sigma trace, on lava-dl's frame scaled step by step."""
    net = read_netx(lava_dl_files / "gts/pilotnet_sdnn" / name, timesteps=steps)
    _, height, width = net.input_shape
    frame = np.load(lava_dl_files / "gts/pilotnet_sdnn/input.npy")[..., 0].transpose(2, 1, 0)[:, :height, :width]
    x = np.stack([np.stack([frame * (t + 1) // 2 for t in range(steps)]),
                  np.stack([frame[:, ::-1] * (steps - t) for t in range(steps)])])
    onnx, reference = assert_same_run(net, x, payloads=True)
    assert onnx.messages.keys() == reference.messages.keys() == set(onnx.spikes)
    for layer, values in reference.messages.items():
        np.testing.assert_array_equal(onnx.messages[layer], values, err_msg=layer)
        assert np.abs(values).max() > 1, layer  # graded, not 0/1
    assert (net.has_readout and onnx.readout_trace[1].any()) or onnx.messages["conv4"].any()


def test_graded_messages_beyond_their_declared_bits_stay_exact(lava_dl_files):
    """Nothing clips a sigma-delta message to its 16 declared bits: PilotNet SDNN's frame scaled by 30,001
    sends messages near 2**25, whose conv sums float32 cannot hold in one piece; the graph splits them."""
    net = read_netx(lava_dl_files / "gts/pilotnet_sdnn/network.net", timesteps=4)
    frame = np.load(lava_dl_files / "gts/pilotnet_sdnn/input.npy")[..., 0].transpose(2, 1, 0)
    onnx, reference = assert_same_run(net, frame[None].astype(np.int64) * 30001, payloads=True)
    assert max(int(np.abs(values).max()) for values in reference.messages.values()) > 1 << 24
    for layer, values in reference.messages.items():
        np.testing.assert_array_equal(onnx.messages[layer], values, err_msg=layer)


def test_time_varying_bias_input_is_refused_as_the_reference_refuses_it(lava_dl_files):
    net = read_netx(lava_dl_files / "mnist.net", timesteps=4)
    frames = np.ones((1, 4, 784))
    for run in (lambda: simulate(net, frames), lambda: run_onnx(build_onnx(net), frames)):
        with pytest.raises(UserError, match="bias input sets the input neurons' bias once per sample"):
            run()


def _two_sources_with_delays(path):
    """A layer summing two sources through delayed synapses: the graph keeps one source's past messages."""
    from dsatgo_deploy import network as N

    first = N.Layer("first", ["input"], np.array([[2, -4, 6], [8, 2, -2]]), 0, np.zeros(2), 6, [40], 1024, 512)
    second = N.Layer("second", ["input"], np.array([[4, 2, 6], [2, 8, -2]]), 0, np.zeros(2), 6, [40], 1024, 512)
    out = N.Layer("out", ["first", "second"], np.array([[4, 6]]), 0, np.zeros(1), 6, [30], 1024, 512,
                  delay=np.array([[1, 3]]))
    net = N.DeployableNetwork(5, (3,), N.InputEncoding.spikes(), [first, second, out], provenance={"file": str(path)})
    N.save(net, path)
    return path


def test_what_the_graph_cannot_hold_is_refused_in_one_line(tmp_path, capsys):
    from dsatgo_deploy.network import load

    path = _two_sources_with_delays(tmp_path / "two.npz")
    message = f"{path}: layer 'out': field 'delay': the onnx target keeps the past messages of one source"
    with pytest.raises(UserError, match=f"^{message}"):
        build_onnx(load(path))
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    code = main(["sim", str(path), "--backend", "onnx", "--input", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and message in err
