"""Every architecture train/ builds, exported to Loihi fixed point, runs identically in Lava
fixed_pt and in the reference simulator: every spike, every layer, every timestep, 20 samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsatgo_deploy.checkpoint import save_checkpoint
from dsatgo_deploy.export.exporter import export_checkpoint
from dsatgo_deploy.hardware_sim.lava_backend import run_lava
from dsatgo_deploy.hardware_sim.reference import simulate

from .test_freeze import ARCHITECTURES, settled_checkpoint

SAMPLES = 20


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_exported_architecture_is_bit_exact_in_lava(name, tmp_path):
    build, shape = ARCHITECTURES[name]
    arch = build()
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (SAMPLES, *shape)).astype(np.float32)
    checkpoint = settled_checkpoint(arch, x)
    path = tmp_path / "model.pt"
    save_checkpoint(path, arch, checkpoint["state_dict"], {"epoch": 0})
    net = export_checkpoint(path, tmp_path / "loihi", calibration_x=x).network
    assert net.timesteps >= 2
    reference = simulate(net, x)
    lava = run_lava(net, x, timeout_s=600)
    assert reference.spikes.keys() == lava.spikes.keys()
    fired = 0
    for layer, spikes in reference.spikes.items():
        np.testing.assert_array_equal(lava.spikes[layer], spikes, err_msg=f"{name}: layer {layer}")
        fired += int(spikes.sum())
    np.testing.assert_array_equal(lava.readout_trace, reference.readout_trace)
    assert fired > 100  # the comparison is about real activity
    if name == "resnet19":
        assert any(len(layer.sources) > 1 for layer in net.layers)  # residual sums reach Lava
