"""dsatgo_deploy.loihi_sdn against lava-dl's block ground truths (tests/lava/lib/dl/netx/test_blocks.py of
lava-dl 0.6.0: how each was driven is restated beside each test) and against Lava's own processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsatgo_deploy import lava_compat, loihi, loihi_sdn


def _lava_kernel_to_torch(kernel: np.ndarray) -> torch.Tensor:
    """Lava's (out, kx, ky, in) flipped kernel to torch's (out, in, kh, kw) correlation kernel."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(0, 3, 2, 1)[:, :, ::-1, ::-1]).astype(np.float64))


def test_delta_input_block(lava_dl_files):
    """Input(Delta, vth 20, spike_exp 6, state_exp 6) fed input_bias * sin(2 pi t / 15), 15 steps."""
    folder = lava_dl_files / "gts/tinynet_sdnn"
    steps = 15
    data = np.repeat(np.load(folder / "input_bias.npy")[..., None], steps, axis=3)
    data = (data * np.sin(2 * np.pi * np.arange(steps) / steps)).astype(int)  # (X, Y, C, T)
    x = torch.from_numpy(data.transpose(3, 0, 1, 2)[None].astype(np.int64))
    out = loihi_sdn.delta_input_sequence(x, vth=20)
    truth = np.load(folder / "input.npy")
    assert np.array_equal(out[0].numpy().transpose(1, 2, 3, 0), truth) and np.count_nonzero(truth) > 1000


def test_sigma_delta_conv_block(lava_dl_files):
    """Conv(SigmaDelta, vth 20, exps 6, bias) run ONE step (the sink's other columns stay 0): the synapse
    delivers nothing yet, so the output is relu(bias << 12) delta-encoded, >> 6."""
    folder = lava_dl_files / "gts/tinynet_sdnn"
    bias = torch.from_numpy(np.load(folder / "layer1_bias.npy")).reshape(24, 1, 1)
    exps = (loihi_sdn.NETX_SPIKE_EXP, loihi_sdn.NETX_STATE_EXP)
    params = loihi_sdn.SigmaDeltaParameters(int(loihi_sdn.sdnn_scaled(20, *exps)), loihi_sdn.sdnn_scaled(bias, *exps),
                                            loihi_sdn.NETX_STATE_EXP)
    messages = torch.from_numpy(np.load(folder / "input.npy").transpose(3, 2, 1, 0).astype(np.int64))  # T, C, H, W
    a = loihi.conv_accumulate(_lava_kernel_to_torch(np.load(folder / "layer1_kernel.npy")), messages[:1],
                              (2, 2), (0, 0), (1, 1), graded=False)
    out, _ = loihi_sdn.sigma_delta_sequence(params, loihi_sdn.delayed(a[None]))
    truth = np.load(folder / "layer1.npy")  # (X, Y, C, T)
    assert np.array_equal(out[0, 0].numpy().transpose(2, 1, 0), truth[..., 0])
    assert not truth[..., 1:].any() and truth[..., 0].max() == 62 << 6


def test_sigma_dense_block(lava_dl_files):
    """Dense(Sigma) with raw weights (8 bits, exponent 0) and binary input (input_message_bits unset)."""
    folder = lava_dl_files / "gts/tinynet_sdnn"
    weight = loihi.representable_weights(torch.from_numpy(np.load(folder / "layer2_weight.npy")))
    messages = torch.from_numpy(np.load(folder / "layer1.npy").reshape(-1, 16).T.astype(np.int64))  # T, 864
    a = loihi.dense_accumulate(weight.to(torch.float64), messages, 0, graded=False)
    out = loihi_sdn.sigma_sequence(loihi_sdn.delayed(a[None]))
    truth = np.load(folder / "layer2.npy")
    assert np.array_equal(out[0].numpy().T, truth) and np.abs(truth).max() == 1006


def test_lif_dense_block(lava_dl_files):
    """Dense(LIF vth 6, du 4095, dv 415) with raw weights over 2000 steps of binary input."""
    folder = lava_dl_files / "gts/dense"
    weight = loihi.representable_weights(torch.from_numpy(np.load(folder / "weight.npy")))
    messages = torch.from_numpy(np.load(folder / "in.npy").T.astype(np.int64))
    a = loihi.dense_accumulate(weight.to(torch.float64), messages, 0, graded=False)
    spikes, _ = loihi.lif_sequence(4095, 415, torch.zeros(256, dtype=torch.int64), [6] * 2000,
                                   loihi_sdn.delayed(a[None]))
    truth = np.load(folder / "out.npy")
    assert np.array_equal(spikes[0].numpy().T, truth) and truth.sum() > 1000


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
