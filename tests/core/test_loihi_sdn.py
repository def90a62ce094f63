"""dsatgo_deploy.loihi_sdn against lava-dl's block ground truths (tests/lava/lib/dl/netx/test_blocks.py of
lava-dl 0.6.0: how each was driven is restated beside each test) and against Lava's own processes."""

from __future__ import annotations

import numpy as np
import torch

from dsatgo_deploy import loihi, loihi_sdn


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


def test_sum_pool_is_lavas_grouped_conv_with_a_constant_kernel():
    """sum_pool against Lava's Conv process (fixed_pt) with groups = channels and every weight equal."""
    from dsatgo_deploy import lava_compat

    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    from lava.proc.conv.process import Conv

    rng = np.random.default_rng(11)
    steps, channels = 4, 3
    spikes = (rng.random((7, 6, channels, steps)) < 0.5).astype(int)  # (X, Y, C, T)
    conv = Conv(weight=np.full((channels, 2, 2, 1), 3), input_shape=(7, 6, channels), stride=2, padding=1,
                groups=channels)
    source, sink = io.source.RingBuffer(data=spikes), io.sink.RingBuffer(shape=conv.a_out.shape, buffer=steps)
    source.s_out.connect(conv.s_in)
    conv.a_out.connect(sink.a_in)
    try:
        conv.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = sink.data.get()
    finally:
        conv.stop()
    messages = torch.from_numpy(spikes.transpose(3, 2, 1, 0))  # T, C, H, W
    ours = loihi_sdn.delayed(loihi_sdn.sum_pool(messages, (2, 2), (2, 2), (1, 1), weight=3)[None])[0]
    assert np.array_equal(ours.numpy().transpose(3, 2, 1, 0), lava) and lava.max() >= 6


def test_group_sum_is_the_average_readouts_numerator():
    spikes = torch.tensor([[[1, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]]])
    assert loihi_sdn.group_sum(spikes, 2).tolist() == [[[2, 1], [2, 3]]]
