"""hardware_sim.netx_direct on files lava-dl does not ship (recurrence, per-synapse delays), against Lava's own
netx run of the same file, and loihi_sdn's sigma-delta variants against Lava's SigmaDelta and Delta. (Input
neurons and SDNN files go through the importer: tests/core/test_lava_dl_files.py.)"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from dsatgo_deploy import lava_compat, loihi_sdn
from dsatgo_deploy.errors import UserError
from hardware_sim import netx_direct as nd


def _neuron(group, vth: int, i_decay: int, v_decay: int) -> None:
    n = group.create_group("neuron")
    n["type"], n["iDecay"], n["vDecay"], n["vThMant"] = b"CUBA", i_decay, v_decay, vth
    n["refDelay"], n["gradedSpike"] = 1, False


def _recurrent_delay_file(path, rng) -> None:
    """input(8) -> dense_rec(6, bias) -> dense(5) with one delay per synapse."""
    with h5py.File(path, "w") as h5:
        layer = h5.create_group("layer")
        g = layer.create_group("0")
        g["type"], g["shape"] = [b"input"], [8]
        g = layer.create_group("1")
        g["type"], g["shape"], g["inFeatures"], g["outFeatures"] = [b"dense_rec"], [6], 8, 6
        g["weight"] = rng.integers(-40, 60, (6, 8)).astype(np.float32) * 2
        g["weight_rec"] = rng.integers(-50, 40, (6, 6)).astype(np.float32) * 2
        g["bias"] = rng.integers(-20, 30, 6).astype(np.float32)
        _neuron(g, 30, 1024, 512)
        g = layer.create_group("2")
        g["type"], g["shape"], g["inFeatures"], g["outFeatures"] = [b"dense"], [5], 6, 5
        g["weight"] = rng.integers(-60, 80, (5, 6)).astype(np.float32) * 2
        g["delay"] = rng.integers(0, 5, (5, 6)).astype(np.float32)
        _neuron(g, 20, 2048, 1024)


def _lava(build, steps: int):
    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    first, sink = build()
    try:
        first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return sink.data.get()
    finally:
        first.stop()


def test_recurrence_and_synaptic_delays_match_lavas_netx_run(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "rec.net"
    _recurrent_delay_file(path, rng)
    steps = 30
    spikes = (rng.random((8, steps)) < 0.4).astype(int)

    def build():
        from lava.lib.dl import netx
        from lava.proc import io

        net = netx.hdf5.Network(net_config=str(path))
        source, sink = io.source.RingBuffer(data=spikes), io.sink.RingBuffer(shape=net.out.shape, buffer=steps)
        source.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        return net, sink

    lava = _lava(build, steps)
    blocks = nd.read_blocks(str(path))
    assert blocks[0].weight_rec is not None and blocks[1].delay is not None
    ours = nd.lava_layout(nd.run_blocks(blocks, steps, input_spikes=spikes.T)[-1]["s"])
    assert np.array_equal(ours, lava) and 5 < lava.sum() < lava.size - 5
    # both features shape the result: without the recurrent weights, or without the delays, it differs
    for changed in (dataclasses.replace(blocks[0], weight_rec=np.zeros_like(blocks[0].weight_rec)),
                    dataclasses.replace(blocks[1], delay=np.zeros_like(blocks[1].delay))):
        variant = [changed if b.index == changed.index else b for b in blocks]
        assert not np.array_equal(nd.lava_layout(nd.run_blocks(variant, steps, input_spikes=spikes.T)[-1]["s"]), lava)


@pytest.mark.parametrize("relu, cum_error", [(True, True), (False, False), (False, True)])
def test_sigma_delta_variants_match_lavas_processes(relu, cum_error):
    rng = np.random.default_rng(int(relu) * 2 + int(cum_error))
    steps, n = 25, 12
    data = rng.integers(-40000, 40000, (n, steps))  # SigmaDelta does not shift a_in; vth is 7 << 12
    bias = rng.integers(-20, 20, n)

    def build():
        from lava.proc import io
        from lava.proc.sdn.process import ActivationMode, SigmaDelta

        source, sink = io.source.RingBuffer(data=data), io.sink.RingBuffer(shape=(n,), buffer=steps)
        neuron = SigmaDelta(shape=(n,), vth=7, bias=bias, spike_exp=6, state_exp=6, cum_error=cum_error,
                            act_mode=ActivationMode.RELU if relu else ActivationMode.UNIT)
        source.s_out.connect(neuron.a_in)
        neuron.s_out.connect(sink.a_in)
        return source, sink

    lava = _lava(build, steps)
    params = loihi_sdn.SigmaDeltaParameters(int(loihi_sdn.sdnn_scaled(7, 6, 6)),
                                            loihi_sdn.sdnn_scaled(torch.from_numpy(bias), 6, 6), 6, relu, cum_error)
    ours, _ = loihi_sdn.sigma_delta_sequence(params, torch.from_numpy(data.T[None].astype(np.int64)))
    assert np.array_equal(ours[0].numpy().T, lava) and np.count_nonzero(lava) > 20


def test_delta_cumulative_error_matches_lavas_process():
    rng = np.random.default_rng(7)
    steps, n = 25, 12
    data = rng.integers(-400, 400, (n, steps))

    def build():
        from lava.proc import io
        from lava.proc.sdn.process import Delta

        source, sink = io.source.RingBuffer(data=data), io.sink.RingBuffer(shape=(n,), buffer=steps)
        neuron = Delta(shape=(n,), vth=30, spike_exp=6, state_exp=6, cum_error=True)
        source.s_out.connect(neuron.a_in)
        neuron.s_out.connect(sink.a_in)
        return source, sink

    lava = _lava(build, steps)
    ours = loihi_sdn.delta_input_sequence(torch.from_numpy(data.T[None].astype(np.int64)), 30, cum_error=True)
    assert np.array_equal(ours[0].numpy().T, lava) and np.count_nonzero(lava) > 20


def test_bad_delay_shape_is_refused_by_layer_and_field(tmp_path):
    path = tmp_path / "bad.net"
    _recurrent_delay_file(path, np.random.default_rng(0))
    with h5py.File(path, "a") as h5:
        del h5["layer/2/delay"]
        h5["layer/2/delay"] = np.ones(4, np.float32)
    with pytest.raises(UserError, match=r"layer/2/delay has shape \(4,\)"):
        nd.read_blocks(str(path))


def test_input_and_sdnn_neurons_are_left_to_the_importer(lava_dl_files):
    with pytest.raises(UserError, match=r"layer/0/neuron: an input neuron is read by .*read_netx"):
        nd.read_blocks(str(lava_dl_files / "tiny.net"))
