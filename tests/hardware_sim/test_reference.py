"""The reference simulator's exactness where a network's own declarations do not bound its numbers."""

from __future__ import annotations

import numpy as np
import torch

from dsatgo_deploy import loihi
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers.netx import read_netx


def test_graded_messages_beyond_their_declared_bits_keep_the_sums_exact(lava_dl_files, monkeypatch):
    """Nothing clips a sigma-delta message to its message_bits (lava-dl's PilotNet SDNN declares 16 and
    sends 8,444 on its own frame); a frame scaled by 30,001 sends messages near 2**25, whose sums float32
    cannot hold. The run must equal one computed in float64 throughout (exact below 2**53)."""
    folder = lava_dl_files / "gts/pilotnet_sdnn"
    net = read_netx(folder / "network.net", timesteps=6)
    frame = np.load(folder / "input.npy")[..., 0].transpose(2, 1, 0)[None].astype(np.int64) * 30001
    run = simulate(net, frame, payloads=True, latency=True)
    peak = max(int(np.abs(messages).max()) for messages in run.messages.values())
    assert peak > 1 << 24 and max(layer.message_bits for layer in net.layers) == 16
    monkeypatch.setattr(loihi, "exact_float_dtype", lambda weight, max_message: torch.float64)
    exact = simulate(net, frame, payloads=True, latency=True)
    assert run.messages.keys() == exact.messages.keys()
    for layer, messages in exact.messages.items():
        assert np.array_equal(run.messages[layer], messages), layer
    assert np.array_equal(run.readout_trace, exact.readout_trace)
