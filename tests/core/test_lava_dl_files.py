"""lava-dl 0.6.0's own netx files read by the importer (read_netx) and run by the reference simulator, against
lava-dl's recorded ground truths and Lava's own netx run (ntidigits.net, with its delays and average block:
tests/export/test_netx_temporal.py).

How each ground truth was made is read from lava-dl's tests (tests/lava/lib/dl/netx/test_hdf5.py,
test_hdf5_nx.py, test_blocks.py): the drive, the reset and the recorded variable are restated here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dsatgo_deploy import lava_compat
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.network import INPUT, DeployableNetwork
from hardware_sim.reference import simulate

PILOTNET_LIF_LAYERS = ["input"] + [f"conv-{i}" for i in range(5)] + [f"fc-{i}" for i in range(3)]
#: lava-dl's PilotNet LIF voltages hold 128 wherever the neuron fired (Lava's fixed_pt resets v to 0)
RECORDED_V_AT_SPIKE = 128


def _torch_to_lava(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(T, n) in the format's (C, H, W) order to lava-dl's recorded (X, Y, C, T) or (n, T)."""
    array = values.reshape(len(values), *shape)
    return array.transpose(3, 2, 1, 0) if array.ndim == 4 else array.T


def _tiny(folder, steps=17):
    """tiny.net through the importer (its LIF input neuron driven by the image as its bias) and the reference in
    Loihi wall time; test_tinynet's Reset processes (interval 17, offset i - 1) equal netx's reset_interval=17."""
    net = read_netx(folder / "tiny.net", timesteps=steps)
    bias = np.load(folder / "gts/tinynet/input_bias.npy").transpose(2, 1, 0)  # (X, Y, C) -> (C, H, W)
    return net, simulate(net, bias[None], payloads=True, latency=True, reset_interval=17)


def _lava_layout(run, net, name, key="s"):
    """A layer's record of sample 0 in lava-dl's recorded layout, (X, Y, C, T) or (n, T)."""
    values = run.spikes[name] if key == "s" else run.states[name][key]
    return _torch_to_lava(values[0], net.layer(name).output_shape)


def test_tiny_net_output_and_input_spikes(lava_dl_files):
    net, run = _tiny(lava_dl_files)
    assert net.input_encoding.kind == "bias" and [layer.kind for layer in net.layers] == ["identity", "conv", "conv"]
    output = _lava_layout(run, net, "conv2")
    truth = np.load(lava_dl_files / "gts/tinynet/output.npy")[0].transpose(2, 1, 0, 3)[..., 1:]
    assert truth.size == 540 and truth.sum() == 92
    assert np.array_equal(output[..., 2:17], truth)  # test_tinynet's window and offset
    spikes = _lava_layout(run, net, "input0")
    truth = np.load(lava_dl_files / "gts/tinynet/input.npy")[0].transpose(2, 1, 0, 3)[..., 1:]
    assert np.array_equal(spikes[..., :15], truth)  # the recorded input is one step late
    # the recorded window is sample time: the format's own run (every layer from rest when the sample reaches it)
    sample_time = simulate(net, np.load(lava_dl_files / "gts/tinynet/input_bias.npy").transpose(2, 1, 0)[None],
                           payloads=True)
    assert np.array_equal(sample_time.spikes["conv2"][0, :15], run.spikes["conv2"][0, 2:17])


def test_pilotnet_lif_every_layer(lava_dl_files):
    folder = lava_dl_files / "gts/pilotnet_lif"
    net = read_netx(folder / "network.net", timesteps=25)
    bias = np.load(folder / "image.npy").transpose(2, 1, 0)
    run = simulate(net, bias[None], payloads=True, latency=True, reset_interval=17, record=("u", "v"))
    compared = 0
    for layer, name in zip(net.layers, PILOTNET_LIF_LAYERS):
        spikes = _lava_layout(run, net, layer.name)[..., :24]
        assert np.array_equal(spikes, np.load(folder / f"{name}.npy")), name
        compared += spikes.size
        if name == "input":
            continue
        assert np.array_equal(_lava_layout(run, net, layer.name, "u")[..., :24], np.load(folder / f"{name}-u.npy")), name
        v = np.where(spikes, RECORDED_V_AT_SPIKE, _lava_layout(run, net, layer.name, "v")[..., :24])
        assert np.array_equal(v, np.load(folder / f"{name}-v.npy")), name
        compared += 2 * spikes.size
    assert compared == 9_511_776
    # fc-3 (vThMant 2**17 - 1: it could fire, so it is imported as a spiking layer): silent as recorded, u and v
    # equal for steps 0..7, then the recording departs from the recorded fc-2 spikes themselves: fc-2 neuron 5
    # fires at step 7 (weight -24), yet the recorded fc-3 current at step 8 is 0; we follow fc-2's recording.
    readout = net.layers[9].name
    assert not run.spikes[readout].any() and not np.load(folder / "fc-3-s.npy").any()
    recorded_u, recorded_v = np.load(folder / "fc-3-u.npy")[0], np.load(folder / "fc-3-v.npy")[0]
    assert np.array_equal(_lava_layout(run, net, readout, "u")[0, :8], recorded_u[:8])
    assert np.array_equal(_lava_layout(run, net, readout, "v")[0, :8], recorded_v[:8])
    fc2 = np.load(folder / "fc-2.npy")
    assert fc2[5, 7] and recorded_u[8] == 0 and _lava_layout(run, net, readout, "u")[0, 8] == -24 << 6


def test_pilotnet_sdnn_output(lava_dl_files):
    """test_pilotnet_sdnn: a one-frame RingBuffer into the input Delta's a_in, 9 steps, the Sigma output;
    through the importer and the reference simulator in Loihi wall time (netx's SDNN blocks never reset)."""
    folder = lava_dl_files / "gts/pilotnet_sdnn"
    net = read_netx(folder / "network.net", timesteps=9)
    assert [layer.neuron for layer in net.layers] == ["delta"] + ["sigma_delta"] * 7 + ["sigma"]
    frame = np.load(folder / "input.npy")[..., 0].transpose(2, 1, 0)  # (X, Y, C) -> (C, H, W)
    run = simulate(net, frame[None], payloads=True, latency=True)
    truth = np.load(folder / "output.npy")
    assert np.array_equal(_torch_to_lava(run.readout_trace[0], (1,)), truth) and np.abs(truth).max() == 461416
    # in sample time (every layer from rest when the frame reaches it) the output differs: the biases act earlier
    assert not np.array_equal(simulate(net, frame[None], payloads=True).readout_trace[0, :, 0], truth[0])


def test_pilotnet_sdnn_square_sigmas(lava_dl_files):
    """netx's skip_layers=1: act0 (the Delta's graded messages) into conv 1's synapse; each layer's sigma."""
    folder = lava_dl_files / "gts/pilotnet_sdnn"
    act = np.load(folder / "act0.npy")[:33, :33]  # (X, Y, C, T) graded input messages
    imported = read_netx(folder / "square_network.net", timesteps=act.shape[-1])
    layers = [dataclasses.replace(imported.layers[1], sources=[INPUT])] + imported.layers[2:]
    net = DeployableNetwork(act.shape[-1], layers[0].input_shape, imported.input_encoding, layers)
    net.validate()
    run = simulate(net, act.transpose(3, 2, 1, 0)[None], payloads=True, latency=True, record=("sigma",))
    for k, layer in enumerate(layers):
        truth = np.load(folder / f"sigma{k + 1}_square.npy")
        assert np.array_equal(_torch_to_lava(run.states[layer.name]["sigma"][0], layer.output_shape), truth), k
        assert np.count_nonzero(truth) > 0


def _lava_run(path, steps, wire):
    lava_compat.install()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    net = netx.hdf5.Network(net_config=str(path))
    sink = io.sink.RingBuffer(shape=net.out_layer.out.shape, buffer=steps)
    net.out_layer.out.connect(sink.a_in)
    wire(net, io)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return sink.data.get()
    finally:
        net.stop()


def test_tiny_net_matches_lavas_netx_run(lava_dl_files):
    steps = 8
    bias = np.load(lava_dl_files / "gts/tinynet/input_bias.npy")

    def wire(net, io):
        net.in_layer.neuron.bias_mant.init = bias

    lava = _lava_run(lava_dl_files / "tiny.net", steps, wire)
    net = read_netx(lava_dl_files / "tiny.net", timesteps=steps)
    ours = simulate(net, bias.transpose(2, 1, 0)[None], payloads=True, latency=True)  # netx without reset_interval
    assert np.array_equal(_lava_layout(ours, net, "conv2"), lava) and lava.sum() > 0


def test_pilotnet_sdnn_matches_lavas_netx_run(lava_dl_files):
    folder = lava_dl_files / "gts/pilotnet_sdnn"
    frame = np.load(folder / "input.npy")
    steps = 9

    def wire(net, io):
        net.source = io.source.RingBuffer(data=frame)
        net.source.s_out.connect(net.in_layer.neuron.a_in)

    lava = _lava_run(folder / "network.net", steps, wire)
    run = simulate(read_netx(folder / "network.net", timesteps=steps), frame[..., 0].transpose(2, 1, 0)[None],
                   payloads=True, latency=True)
    assert np.array_equal(_torch_to_lava(run.readout_trace[0], (1,)), lava) and np.abs(lava).sum() > 0


def test_mnist_net_matches_lavas_netx_run(lava_dl_files):
    """mnist.net has no recorded truth: its second hidden layer against Lava's netx run, the input neuron
    driven by a bias (its hdf5 bias/weight feed only netx's unused transform)."""
    steps = 6
    bias = np.random.default_rng(5).integers(0, 60, 784)
    path = lava_dl_files / "mnist.net"
    lava_compat.install()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    net = netx.hdf5.Network(net_config=str(path))
    sink = io.sink.RingBuffer(shape=net.layers[2].out.shape, buffer=steps)
    net.layers[2].out.connect(sink.a_in)
    net.in_layer.neuron.bias_mant.init = bias
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = sink.data.get()
    finally:
        net.stop()
    net = read_netx(path, timesteps=steps)
    assert [layer.kind for layer in net.layers] == ["identity", "dense", "dense", "dense"]
    assert net.layers[3].neuron == "readout"  # no neuron in the file: netx's CUBA that never fires
    ours = simulate(net, bias[None], payloads=True, latency=True)
    assert np.array_equal(_lava_layout(ours, net, "dense2"), lava) and lava.sum() > 20


def test_per_sample_bias_input_with_reset_matches_lava(lava_dl_files):
    """tiny.net with netx's reset_interval, the input neuron's bias_mant set anew before each sample (the PilotNet
    LIF tutorial's per-sample bias input): two samples of bias input in the format, each from rest, are Lava's stream.
    conv1 (depth 1) runs sample s's step t at wall step s T + t + 1."""
    interval, samples = 6, 2
    first = np.load(lava_dl_files / "gts/tinynet/input_bias.npy").astype(int)  # (X, Y, C)
    biases = np.stack([first, first[::-1, ::-1] // 2 + 5])
    lava_compat.install()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    net = netx.hdf5.Network(net_config=str(lava_dl_files / "tiny.net"), reset_interval=interval)
    sink = io.sink.RingBuffer(shape=net.layers[1].out.shape, buffer=interval * samples)
    net.layers[1].out.connect(sink.a_in)
    net.in_layer.neuron.bias_mant.init = biases[0]
    try:
        for s in range(samples):
            if s:
                net.in_layer.neuron.bias_mant.set(biases[s])
            net.run(condition=RunSteps(num_steps=interval), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = sink.data.get()
    finally:
        net.stop()
    ours = read_netx(lava_dl_files / "tiny.net", timesteps=interval)
    run = simulate(ours, biases.transpose(0, 3, 2, 1), payloads=True)
    stream = _torch_to_lava(run.spikes["conv1"].reshape(samples * interval, -1), (24, 6, 6))
    assert np.array_equal(stream[..., :-1], lava[..., 1:]) and lava[..., interval:].sum() > 10


def test_sdnn_activation_other_than_relu_is_refused(lava_dl_files, tmp_path):
    import shutil

    import h5py

    path = tmp_path / "square.net"
    shutil.copy(lava_dl_files / "gts/pilotnet_sdnn/square_network.net", path)
    with h5py.File(path, "a") as h5:
        del h5["layer/2/neuron/activation"]
        h5["layer/2/neuron/activation"] = b"sigmoid"
    with pytest.raises(UserError, match=r"square.net: layer 2 \(conv\): field 'neuron/activation': is 'sigmoid'"):
        read_netx(path, timesteps=4)
