"""Import of lava-dl netx HDF5 files (dsatgo_deploy/importers/netx.py: read_netx).

An imported network must compute what Lava computes when lava-dl's own
``netx.hdf5.Network`` loads the file: every spike of every layer, on networks
exported by slayer itself, on our writer's files, and on netx's lossy corners.
"""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsatgo_deploy import lava_compat, loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.importers.netx import is_hdf5, netx_dense_weights, optimize_weight_bits, read_netx
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.network import InputEncoding

lava_compat.install()


# --------------------------------------------------------------------------- helpers


def run_netx(path, payloads: np.ndarray, steps: int, input_message_bits: int = 0, input_shape=None) -> list[np.ndarray]:
    """Run the file through lava-dl's own netx.hdf5.Network (reset_interval T, reset_offset 1) in Lava fixed_pt.

    payloads: (B, T, *netx input shape), i.e. Lava's (X, Y, C) layout for 3-D inputs. Returns the spikes
    of every netx block, (B, T, *block shape), realigned to sample time (block k sees the input k+1 steps
    later)."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    samples = len(payloads)
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=input_message_bits, reset_interval=steps,
                            reset_offset=1, input_shape=input_shape)
    total = samples * steps + len(net.layers)
    data = np.zeros(net.inp.shape + (total,), dtype=np.int32)
    data[..., : samples * steps] = np.moveaxis(payloads.reshape(samples * steps, *net.inp.shape), 0, -1)
    source = Source(data=data)
    source.s_out.connect(net.inp)
    monitors = []
    for block in net.layers:
        monitor = Monitor()
        monitor.probe(block.neuron.s_out, total)
        monitors.append(monitor)
    try:
        net.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        wall = [np.asarray(m.get_data()[b.neuron.name]["s_out"]) for m, b in zip(monitors, net.layers)]
    finally:
        net.stop()
    index = np.arange(samples)[:, None] * steps + np.arange(steps)[None, :]
    return [w[index + k + 1].astype(bool) for k, w in enumerate(wall)]


def assert_same_spikes_as_netx(net, netx_spikes: list[np.ndarray], reference) -> None:
    """Our reference's spikes (B, T, n), (C, H, W) order, against netx's (B, T, *Lava shape)."""
    assert len(netx_spikes) == len(net.layers)
    for layer, lava in zip(net.layers, netx_spikes):
        if len(layer.output_shape) == 3:
            lava = lava.transpose(0, 1, 4, 3, 2)  # (X, Y, C) -> (C, Y, X) = (C, H, W)
        lava = lava.reshape(*lava.shape[:2], -1)
        if layer.spiking:
            np.testing.assert_array_equal(reference.spikes[layer.name], lava, err_msg=f"layer {layer.name}")
        else:
            assert not lava.any()


# --------------------------------------------------------------------------- weights


@st.composite
def int_matrices(draw):
    n_out, n_in = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    values = draw(st.sampled_from([
        st.integers(-300, 300), st.integers(0, 300), st.integers(-300, 0), st.integers(-256, 254),
        st.sampled_from([-256, -128, -64, -32, 0]), st.sampled_from([0, 2, 4, 6, 8]), st.integers(-3, 3)]))
    matrix = np.array(draw(st.lists(st.lists(values, min_size=n_in, max_size=n_in), min_size=n_out, max_size=n_out)))
    return matrix


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(int_matrices(), st.sampled_from([0, 8]), st.integers(0, 2**31 - 1))
def test_imported_dense_weights_compute_what_netx_makes_lava_compute(weight, message_bits, seed):
    """Our port of optimize_weight_bits equals lava-dl's; the imported (weights, bits, exponent) give the
    synaptic input Lava's Dense (weightutils clip + truncate, shift of the sum) gives for netx's w'."""
    from lava.lib.dl.netx.utils import optimize_weight_bits as lava_optimize
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    if not weight.any():
        with pytest.raises(OverflowError):
            optimize_weight_bits(weight)
        return
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):  # lava prints clipping warnings
        lava_w, lava_bits, lava_exp, lava_mode = lava_optimize(weight.copy())
    ours_w, ours_bits, ours_exp, ours_mode = optimize_weight_bits(weight)
    np.testing.assert_array_equal(ours_w, lava_w)
    assert (ours_bits, ours_exp, ours_mode) == (lava_bits, lava_exp, lava_mode.name.lower())

    # What Lava's Dense does with netx's w' (PyDenseModelBitAcc.run_spk).
    mode = determine_sign_mode(lava_w.astype(np.int32))
    used = truncate_weights(clip_weights(lava_w.astype(np.int32), mode, num_bits=8), mode, lava_bits)
    rng = np.random.default_rng(seed)
    messages = (rng.integers(0, 256, (16, weight.shape[1])) if message_bits else rng.integers(0, 2, (16, weight.shape[1])))
    messages[0] = 255 if message_bits else 1
    if message_bits:
        acc = (used.astype(np.int64) @ messages.T).astype(np.int32).astype(np.int64)
    else:
        acc = used.astype(np.int64) @ (messages.T != 0)
    lava_a = (acc << lava_exp if lava_exp > 0 else acc >> -lava_exp).T

    try:
        w, bits, exp, lossy = netx_dense_weights(weight, message_bits)
    except UserError:
        pytest.fail(f"no layer for {weight.tolist()}")
    assert np.array_equal(loihi.representable_weights(torch.from_numpy(w), bits).numpy(), w)
    ours_a = loihi.dense_accumulate(torch.from_numpy(w).double(), torch.from_numpy(messages).double(), exp,
                                    graded=message_bits > 0).numpy()
    np.testing.assert_array_equal(ours_a, lava_a)
    if not lossy:  # netx kept the file's integers: the layer holds them as they are
        assert (w.tolist(), bits, exp) == (weight.tolist(), 8, 0) or not np.array_equal(
            loihi.representable_weights(torch.from_numpy(weight), 8).numpy(), weight)


def test_netx_dense_weights_on_the_documented_corners():
    # Lossless mixed weights: the file's own integers, 8 bits, no exponent.
    w, bits, exp, lossy = netx_dense_weights(np.array([[10, -4, 0, 254]]))
    assert (w.tolist(), bits, exp, lossy) == ([[10, -4, 0, 254]], 8, 0, False)
    # Odd mixed weights cannot be 8-bit mixed weights: the layer keeps netx's w' = w << 4 on 5 bits and
    # the exponent -4, which Lava keeps exactly.
    w, bits, exp, lossy = netx_dense_weights(np.array([[11, -3]]))
    assert (w.tolist(), bits, exp, lossy) == ([[176, -48]], 5, -4, False)
    # docs/loihi_arithmetic.md (netx files): all <= 0, |min| a power of two: -128 acts as -96.
    w, bits, exp, lossy = netx_dense_weights(np.array([[-128], [-64], [-96], [-32]]).T)
    assert lossy and (w.tolist(), bits, exp) == ([[-96, -64, -96, -32]], 8, 0)
    # (ii) excitatory max > 255: netx zeroes the layer.
    w, bits, exp, lossy = netx_dense_weights(np.array([[300, 4]]))
    assert lossy and not w.any()


def test_representable_weights_with_more_than_8_bits_match_lava():
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    rng = np.random.default_rng(3)
    for values, mode in (((-256, 256), SignMode.MIXED), ((0, 256), SignMode.EXCITATORY), ((-255, 1), SignMode.INHIBITORY)):
        w = rng.integers(*values, (5, 7)).astype(np.int32)
        w[0, 0] = values[0] if mode != SignMode.EXCITATORY else values[1] - 1
        w[0, 1] = 3 if mode != SignMode.INHIBITORY else -3
        for bits in (1, 7, 8, 9, 10):
            lava = truncate_weights(clip_weights(w.copy(), mode, num_bits=8), mode, bits)
            ours = loihi.representable_weights(torch.from_numpy(w.astype(np.int64)), bits).numpy()
            np.testing.assert_array_equal(ours, lava, err_msg=f"{mode} {bits} bits")


# --------------------------------------------------------------------------- (a) slayer's own export


def test_a_slayer_cuba_network_exported_by_lava_dl_runs_like_netx_in_lava(tmp_path):
    """Conv, Conv, Flatten, Dense, Dense slayer CUBA blocks (slayer quantizes the weights itself; two blocks
    with a mean-only batch norm export a bias), exported with the blocks' own export_hdf5 as lava-dl's
    tutorials do; 24 samples of binary spike input changing every step: our reference equals lava-dl's
    netx.hdf5.Network in Lava fixed_pt on every spike of every layer, and so does our own Lava graph."""
    import lava.lib.dl.slayer as slayer

    from dsatgo_deploy.hardware_sim.lava_backend import run_lava

    torch.manual_seed(0)
    channels, height, width, steps = 2, 7, 6, 4
    neuron = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.05, "requires_grad": False}
    normed = {**neuron, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Conv(normed, channels, 4, (3, 2), padding=1, weight_scale=3),
        slayer.block.cuba.Conv(neuron, 4, 5, 3, stride=2, weight_scale=3),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(normed, 5 * 3 * 3, 12, weight_scale=3),
        slayer.block.cuba.Dense(neuron, 12, 6, weight_scale=3),
    ]).eval()
    with torch.no_grad():
        y = (torch.rand(1, channels, height, width, steps) < 0.3).float()
        for block in blocks:  # one forward pass gives the neurons their shapes
            y = block(y)
        blocks[0].neuron.norm.running_mean = torch.tensor([0.06, -0.1, 0.0, 0.03])
        blocks[3].neuron.norm.running_mean = torch.linspace(-0.08, 0.08, 12)
    path = tmp_path / "slayer.net"  # any name: the file is recognised as HDF5
    with h5py.File(path, "w") as handle:
        layer_group = handle.create_group("layer")
        for index, block in enumerate(blocks):
            block.export_hdf5(layer_group.create_group(f"{index}"))
    assert is_hdf5(path)

    net = read_netx(path, timesteps=steps, input_shape=(channels, height, width))
    assert [(layer.name, layer.kind) for layer in net.layers] == [
        ("conv0", "conv"), ("conv1", "conv"), ("dense3", "dense"), ("dense4", "dense")]
    assert net.input_encoding.kind == "spikes" and net.output.spiking and not net.has_readout
    assert net.layers[0].bias_mant.any() and net.layers[2].bias_mant.any()
    with h5py.File(path) as handle:
        assert net.layers[0].current_decay == int(handle["layer/0/neuron/iDecay"][()]) - 1
        np.testing.assert_array_equal(net.layers[2].weight, handle["layer/3/weight"][()].astype(int))

    samples = 24
    x = (np.random.default_rng(1).random((samples, steps, channels, height, width)) < 0.3).astype(np.int64)
    reference = simulate(net, x, payloads=True)
    for name, spikes in reference.spikes.items():
        assert 0.02 < spikes.mean() < 0.9, f"layer {name} fires at rate {spikes.mean():.3f}"
    netx_spikes = run_netx(path, x.transpose(0, 1, 4, 3, 2), steps, input_shape=(width, height, channels))
    assert_same_spikes_as_netx(net, netx_spikes, reference)
    ours = run_lava(net, x, payloads=True, timeout_s=300)
    for name in reference.spikes:
        np.testing.assert_array_equal(ours.spikes[name], reference.spikes[name], err_msg=f"layer {name}")
    assert ours.readout_trace is None
    np.testing.assert_array_equal(ours.predictions, reference.spikes["dense4"].sum(axis=1).argmax(axis=1))


# --------------------------------------------------------------------------- (b) our writer, read back


def test_our_netx_file_reads_back_as_the_network_we_wrote(trained_checkpoint, digits, tmp_path):
    from dsatgo_deploy.export.exporter import NETX_FILE, export_checkpoint

    result = export_checkpoint(trained_checkpoint, tmp_path / "out", calibration_x=digits.x_train[:64],
                               threshold_policy="per-layer")
    written = result.network
    back = read_netx(tmp_path / "out" / NETX_FILE, written.input_encoding.bits, timesteps=written.timesteps,
                     input_encoding=written.input_encoding)
    assert back.input_shape == written.input_shape and back.input_encoding == written.input_encoding
    assert back.timesteps == written.timesteps and len(back.layers) == len(written.layers)
    for a, b in zip(written.layers, back.layers):
        for field in ("name", "sources", "kind", "weight_exp", "num_weight_bits", "bias_exp", "current_decay",
                      "voltage_decay", "spiking", "input_message_bits", "conv"):
            assert getattr(a, field) == getattr(b, field), (a.name, field)
        for field in ("weight", "bias_mant"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{a.name}.{field}")
        if a.spiking:
            assert [a.threshold_at(t) for t in range(written.timesteps)] == \
                [b.threshold_at(t) for t in range(written.timesteps)]
        else:
            assert b.threshold_schedule.size == 0
    x = digits.x_test[:50]
    np.testing.assert_array_equal(simulate(back, x).readout_trace, simulate(written, x).readout_trace)


def test_a_readout_without_neuron_and_graded_input(tmp_path):
    """A dense last layer without a neuron gets netx's default (iDecay 0, vDecay 4096, vThMant 2**17): the
    non-spiking readout, du = -1 (no current decay)."""
    path = tmp_path / "net.h5"
    with h5py.File(path, "w") as h5:
        _dense(h5, 0, np.array([[4, -2, 6], [2, 2, -8]]), neuron=dict(vThMant=100, iDecay=4096, vDecay=0))
        _dense(h5, 1, np.array([[3, 1]]), neuron=None)
    net = read_netx(path, 4, timesteps=3)
    assert net.input_encoding == InputEncoding(kind="graded", bits=4, step=1 / 15)
    readout = net.output
    assert not readout.spiking and (readout.current_decay, readout.voltage_decay) == (-1, 4096)
    assert readout.weight.tolist() == [[3, 1]] and net.has_readout
    result = simulate(net, np.array([[15, 15, 0]]), payloads=True)
    assert result.readout_trace.shape == (1, 3, 1)


# --------------------------------------------------------------------------- (c) a lossy corner, per-neuron bias


def _dense(h5, index, weight, neuron=None, bias=None, kind=b"dense"):
    group = h5.require_group("layer").create_group(str(index))
    group.create_dataset("type", data=np.array([kind]))
    group.create_dataset("shape", data=np.array([weight.shape[0]]))
    group.create_dataset("weight", data=weight.astype(np.float32))
    if bias is not None:
        group.create_dataset("bias", data=np.asarray(bias, dtype=np.float32))
    if neuron is not None:
        for key, value in {"type": b"CUBA", "refDelay": 1, "gradedSpike": False, **neuron}.items():
            group.create_dataset(f"neuron/{key}", data=value)
    return group


LOSSY_VTH, LOSSY_BIAS = 60, (1000, 2000)


def _lossy_file(path, rng):
    """input (2, 5, 4) -> conv 3x3 pad 1, 3 channels, per-neuron bias (X, Y, C) -> flatten -> dense 8, all
    weights <= 0 with |min| = 128 (netx's lossy corner) and a positive bias -> dense 5, mixed, spiking."""
    with h5py.File(path, "w") as h5:
        layers = h5.create_group("layer")
        entry = layers.create_group("0")
        entry.create_dataset("type", data=np.array([b"input"]))
        entry.create_dataset("shape", data=np.array([2, 5, 4]))
        conv = layers.create_group("1")
        conv.create_dataset("type", data=np.array([b"conv"]))
        conv.create_dataset("shape", data=np.array([3, 5, 4]))
        conv.create_dataset("weight", data=(2 * rng.integers(-40, 60, (3, 2, 3, 3))).astype(np.float32))
        conv.create_dataset("bias", data=rng.integers(-30, 40, (4, 5, 3)).astype(np.float32))  # (X, Y, C)
        for key, value in dict(stride=1, padding=1, dilation=1, groups=1, inChannels=2, outChannels=3).items():
            conv.create_dataset(key, data=value)
        conv.create_dataset("kernelSize", data=np.array([3, 3]))
        for key, value in {"type": b"CUBA", "vThMant": 120, "iDecay": 1024, "vDecay": 512}.items():
            conv.create_dataset(f"neuron/{key}", data=value)
        layers.create_group("2").create_dataset("type", data=np.array([b"flatten"]))
        lossy = -rng.choice([0, 32, 64, 96, 128], size=(8, 60), p=[0.8, 0.05, 0.05, 0.05, 0.05])
        lossy[0, 0] = -128
        _dense(h5, 3, lossy, neuron=dict(vThMant=LOSSY_VTH, iDecay=0, vDecay=300), bias=rng.integers(*LOSSY_BIAS, 8))
        _dense(h5, 4, 2 * rng.integers(-60, 100, (5, 8)), neuron=dict(vThMant=40, iDecay=2048, vDecay=1024))
    return lossy


def test_a_lossy_netx_corner_imports_to_what_lava_computes(tmp_path):
    path = tmp_path / "lossy.h5"
    rng = np.random.default_rng(4)
    lossy = _lossy_file(path, rng)
    with pytest.warns(UserWarning, match=r"layer 3 \(dense\): field 'weight': netx's optimize_weight_bits"):
        net = read_netx(path, timesteps=3)
    assert net.input_shape == (2, 5, 4)
    dense = net.layer("dense3")
    assert not np.array_equal(dense.weight << -dense.weight_exp, lossy)  # Lava does not use the file's weights
    assert net.layer("conv1").bias_mant.shape == (3 * 5 * 4,)  # per neuron, (C, H, W) order
    assert net.layers[1].current_decay == -1 and net.output.spiking

    samples, steps = 20, 3
    x = (rng.random((samples, steps, 2, 5, 4)) < 0.4).astype(np.int64)
    reference = simulate(net, x, payloads=True)
    for name, spikes in reference.spikes.items():
        assert 0.02 < spikes.mean() < 0.95, f"layer {name} fires at rate {spikes.mean():.3f}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        netx_spikes = run_netx(path, x.transpose(0, 1, 4, 3, 2), steps)
    assert_same_spikes_as_netx(net, netx_spikes, reference)
    # The file's own weights would give other spikes: the corner matters.
    exact = net.layer("dense3")
    exact.weight, exact.weight_exp, exact.num_weight_bits = lossy, 0, 8
    assert not np.array_equal(simulate(net, x, payloads=True).spikes["dense3"], reference.spikes["dense3"])


# --------------------------------------------------------------------------- refusals


def _refusal_file(path, mutate):
    with h5py.File(path, "w") as h5:
        entry = h5.create_group("layer").create_group("0")
        entry.create_dataset("type", data=np.array([b"input"]))
        entry.create_dataset("shape", data=np.array([4]))
        _dense(h5, 1, np.array([[2, -2, 4, 6], [2, 2, 2, 2]]), neuron=dict(vThMant=10, iDecay=0, vDecay=0))
        _dense(h5, 2, np.array([[2, -4]]), neuron=dict(vThMant=10, iDecay=0, vDecay=0))
        mutate(h5)


def _set_type(index, kind):
    def mutate(h5):
        del h5[f"layer/{index}/type"]
        h5[f"layer/{index}"].create_dataset("type", data=np.array([kind.encode()]))
    return mutate


def _add(key, value):
    def mutate(h5):
        h5.create_dataset(key, data=value)
    return mutate


def _delete(key):
    def mutate(h5):
        del h5[key]
    return mutate


def _sdnn_activation(activation):
    def mutate(h5):
        _replace("layer/1/neuron/type", b"SDNN")(h5)
        h5["layer/1/neuron"].create_dataset("activation", data=activation)
    return mutate


def _sdnn_threshold(vth):
    def mutate(h5):
        _replace("layer/1/neuron/type", b"SDNN")(h5)
        _replace("layer/1/neuron/vThMant", vth)(h5)
    return mutate


def _replace(key, value):
    def mutate(h5):
        del h5[key]
        h5.create_dataset(key, data=value)
    return mutate


REFUSED = {
    **{f"type {kind}": (_set_type(2, kind), rf"layer 2 \({kind}\): layer type '{kind}' is not implemented by netx")
       for kind in ("pool", "concat", "convT", "unpool")},
    "recurrent dense without weight_rec": (_set_type(1, "dense_rec"), r"layer 1 \(dense_rec\): field 'weight_rec': "
                                                                      r"missing"),
    "recurrent dense with delays": (lambda h5: (_set_type(1, "dense_rec")(h5), _add("layer/1/weight_rec", np.eye(2))(h5),
                                                _add("layer/1/delay", np.array([0, 3]))(h5)),
                                    r"layer 1 \(dense_rec\): field 'delay': a recurrent block with delays"),
    "recurrent readout without a neuron": (lambda h5: (_set_type(2, "dense_rec")(h5), _add("layer/2/weight_rec", np.eye(1))(h5),
                                                       h5.__delitem__("layer/2/neuron")),
                                           r"layer 2 \(dense_rec\): field 'neuron': missing: netx's default neuron never"),
    "average not last": (_set_type(1, "average"), r"layer 1 \(average\): an 'average' block must be the file's last"),
    "average of unequal groups": (lambda h5: (_set_type(2, "average")(h5), _replace("layer/2/shape", np.array([3]))(h5)),
                                  r"layer 2 \(average\): field 'shape': gives 3 groups, which do not split the 2"),
    "unknown type": (_set_type(2, "sigma"), r"layer 2 \(sigma\): field 'type': unknown layer type 'sigma'"),
    "input neuron without its fields": (_add("layer/0/neuron/type", b"CUBA"), r"layer 0 \(input\): field "
                                                                              r"'neuron/iDecay': missing"),
    "RF neuron": (_replace("layer/1/neuron/type", b"RF"), r"layer 1 \(dense\): field 'neuron/type': is 'RF'"),
    "SDNN activation": (_sdnn_activation(b"tanh"), r"layer 1 \(dense\): field 'neuron/activation': is 'tanh'"),
    "hidden layer without a neuron": (_delete("layer/1/neuron"), r"layer 1 \(dense\): field 'neuron': missing: netx "
                                                                 r"then builds a CUBA neuron that never fires"),
    "per-neuron decay": (_replace("layer/1/neuron/iDecay", np.array([1, 2])), r"layer 1 \(dense\): field "
                                                                             r"'neuron/iDecay': has 2 different"),
    "float threshold": (_replace("layer/2/neuron/vThMant", 10.5), r"field 'neuron/vThMant': is 10.5, not an integer"),
    "negative delay": (_add("layer/1/delay", np.array([0, -3])), r"layer 1 \(dense\): field 'delay': holds the "
                                                                 r"negative delay -3"),
    "delay shape": (_add("layer/1/delay", np.zeros(3)), r"layer 1 \(dense\): field 'delay': has shape \(3,\)"),
    "hidden layer without a neuron": (lambda h5: h5.__delitem__("layer/1/neuron"), r"layer 1 \(dense\): field "
                                      r"'neuron': missing: netx then builds a CUBA neuron that never fires"),
    "hidden layer that never fires": (_replace("layer/1/neuron/vThMant", 2**17), r"layer 1 \(dense\): field "
                                                                                 r"'neuron/vThMant': is 131072"),
    "all-zero weights": (_replace("layer/2/weight", np.zeros((1, 2))), r"layer 2 \(dense\): field 'weight': all "
                                                                      r"weights are 0"),
    "bias shape": (_add("layer/1/bias", np.zeros(3)), r"layer 1 \(dense\): field 'bias': has shape \(3,\)"),
    "fan-in mismatch": (_replace("layer/2/weight", np.ones((1, 3))), r"layer 2 \(dense\): field 'weight': has 3 "
                                                                    r"inputs, but its source gives 2"),
    "13-bit bias": (_add("layer/2/bias", np.array([5000])), r"layer 2 \(dense\): field 'bias': value 5000 outside "
                                                           r"\[-4096, 4095\]: Loihi's bias mantissa is 13-bit signed"),
    "iDecay 4097": (_replace("layer/2/neuron/iDecay", 4097), r"layer 2 \(dense\): field 'neuron/iDecay': is 4097, "
                                                            r"outside \[0, 4096\]"),
    "SDNN threshold beyond int32": (_sdnn_threshold(1 << 20), r"layer 1 \(dense\): field 'neuron/vThMant': is 1048576"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_what_cannot_be_imported_is_refused_naming_layer_and_field(case, tmp_path):
    mutate, pattern = REFUSED[case]
    path = tmp_path / "net.h5"
    _refusal_file(path, mutate)
    with pytest.raises(UserError, match=pattern) as info:
        read_netx(path, timesteps=2)
    assert str(info.value).startswith(str(path))


def test_the_unmodified_refusal_file_imports(tmp_path):
    path = tmp_path / "net.h5"
    _refusal_file(path, lambda h5: None)
    net = read_netx(path, timesteps=2)
    assert [layer.name for layer in net.layers] == ["dense1", "dense2"] and net.output.spiking
    assert net.layers[0].current_decay == -1


@pytest.mark.filterwarnings("ignore:.*optimize_weight_bits does not keep")
def test_conv_specific_refusals(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "c.h5"
    _lossy_file(path, rng)
    with h5py.File(path, "a") as h5:
        del h5["layer/2"]  # no flatten between the conv and the dense layer
    with pytest.raises(UserError, match=r"layer groups must be named 0, 1, 2, ...; found \['0', '1', '3', '4'\]"):
        read_netx(path, timesteps=2)
    with h5py.File(path, "a") as h5:
        h5.move("layer/3", "layer/2")
        h5.move("layer/4", "layer/3")
    with pytest.raises(UserError, match=r"layer 2 \(dense\): a dense layer reads the \(C, H, W\) = \(3, 5, 4\) output"):
        read_netx(path, timesteps=2)
    _lossy_file(path, rng)
    with h5py.File(path, "a") as h5:
        del h5["layer/0"]
        for index in (1, 2, 3, 4):
            h5.move(f"layer/{index}", f"layer/{index - 1}")
    with pytest.raises(UserError, match=r"layer 0 \(conv\): the first layer is a conv layer but the file has no"):
        read_netx(path, timesteps=2)
    assert read_netx(path, timesteps=2, input_shape=(2, 5, 4)).input_shape == (2, 5, 4)
    with h5py.File(path, "a") as h5:
        del h5["layer/0/groups"]
        h5["layer/0"].create_dataset("groups", data=2)
    with pytest.raises(UserError, match=r"layer 0 \(conv\): field 'groups': is 2"):
        read_netx(path, timesteps=2, input_shape=(2, 5, 4))


def test_not_a_netx_file(tmp_path):
    text = tmp_path / "x.h5"
    text.write_text("hello")
    assert not is_hdf5(text)
    with pytest.raises(UserError, match="not an HDF5 file"):
        read_netx(text, timesteps=2)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(UserError, match="no 'layer' group"):
        read_netx(tmp_path / "empty.h5", timesteps=2)
