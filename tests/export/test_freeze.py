"""Freeze computes what the torch model computes in eval mode, for every architecture train/ builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsatgo_deploy.train.zoo import convnet_architecture, mlp_architecture, resnet19_architecture, vggsnn_architecture
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.freeze import freeze, run_frozen
from dsatgo_deploy.pipeline.sides import run_torch
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import NeuronConfig

NEURON = NeuronConfig()._asdict()


def settled_checkpoint(arch: dict, x: np.ndarray, passes: int = 80, seed: int = 0) -> dict:
    """A randomly initialised model whose running thresholds and tdBN statistics have
    settled on x (train-mode forward passes, no weight update): it fires like a trained one."""
    torch.manual_seed(seed)
    model = build_model(arch)
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(torch.from_numpy(x))
    return {"arch": arch, "state_dict": model.state_dict(), "meta": {}}


ARCHITECTURES = {
    "mlp+bn": (lambda: _with_bn(mlp_architecture(64, [32, 16], 10, 3, NEURON)), (64,)),
    "convnet": (lambda: convnet_architecture((1, 8, 8), 10, 3, NEURON, channels=(8, "pool", 16, "pool"),
                                             hidden=(32,)), (1, 8, 8)),
    "vggsnn": (lambda: vggsnn_architecture((2, 16, 16), 10, 2, NEURON, width=0.0625, encoding="direct"), (2, 16, 16)),
    "resnet19": (lambda: resnet19_architecture((3, 8, 8), 10, 2, NEURON, width=0.0625), (3, 8, 8)),
}


def _with_bn(arch: dict) -> dict:
    for layer in arch["layers"][:-1]:
        layer["bn"] = True
    return arch


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_frozen_network_equals_the_torch_model(name):
    build, shape = ARCHITECTURES[name]
    arch = build()
    x = np.random.default_rng(1).uniform(0, 1, (12, *shape)).astype(np.float32)
    checkpoint = settled_checkpoint(arch, x)
    torch_run = run_torch(checkpoint, x)
    frozen = freeze(checkpoint)
    readout, spikes, _ = run_frozen(frozen, x)
    assert set(spikes) == set(torch_run.spikes)
    total = 0
    for layer, frozen_spikes in spikes.items():
        # float32 torch vs float64 here: a potential exactly at a threshold may flip, nothing more
        assert (frozen_spikes != torch_run.spikes[layer]).mean() < 2e-3, layer
        total += frozen_spikes.sum()
    assert total > 0
    assert (readout.argmax(1) == torch_run.predictions).mean() >= 11 / 12


def test_resnet_residual_adds_become_summed_sources():
    arch = resnet19_architecture((3, 16, 16), 10, 2, NEURON, width=0.0625)
    frozen = freeze(settled_checkpoint(arch, np.zeros((2, 3, 16, 16), np.float32), passes=1))
    sources = {layer.name: layer.sources for layer in frozen.layers}
    assert sources["s1b2_conv1"] == ["s1b1_conv2", "stem"]
    assert sources["s1b3_conv1"] == ["s1b2_conv2", "s1b1_conv2", "stem"]
    assert sources["s2b2_conv1"] == ["s2b1_conv2", "s2b1_down"]
    assert len(frozen.layers) == 21  # 20 spiking layers and the readout


def test_avgpool_is_folded_into_the_next_conv_exactly():
    arch = convnet_architecture((1, 8, 8), 10, 2, NEURON, channels=(4, "pool", 6), hidden=())
    frozen = freeze(settled_checkpoint(arch, np.zeros((2, 1, 8, 8), np.float32), passes=1))
    conv2 = frozen.layers[1]
    assert conv2.conv.stride == (2, 2) and conv2.weight.shape[2:] == (6, 6)


def test_unsupported_features_name_layer_and_field():
    arch = convnet_architecture((1, 9, 9), 10, 2, NEURON, channels=(4, "pool", 6), hidden=())
    with pytest.raises(UserError, match="layer 'conv2'.*does not tile"):
        freeze(settled_checkpoint(arch, np.zeros((2, 1, 9, 9), np.float32), passes=1), "odd.pt")


def test_frozen_thresholds_follow_the_training_modes():
    """Eval-mode thresholds per train/neuron.py: adaptive reads the running thresholds, estimated is
    f_c sqrt(1 + tau^2) v_th0, fixed is v_th0; defaults are train's NeuronConfig's (adaptive, 1.0, 1.0)."""
    import math

    from dsatgo_deploy.neurons import neuron_kind

    kind = neuron_kind("scheduled_lif")

    def unread():
        raise AssertionError("running thresholds are read in adaptive mode only")

    estimated = kind.frozen_schedule({"threshold_mode": "estimated", "f_c": 0.5, "v_th0": 2.0}, 0.6, unread, 3)
    assert estimated.tolist() == [0.5 * math.sqrt(1.0 + 0.6 * 0.6) * 2.0] * 3
    assert kind.frozen_schedule({"threshold_mode": "fixed"}, 0.6, unread, 2).tolist() == [1.0, 1.0]
    assert kind.frozen_schedule({"threshold_mode": "estimated"}, 0.0, unread, 1).tolist() == [1.0]
    assert kind.frozen_schedule({}, 0.6, lambda: np.array([3.0, 4.0]), 2).tolist() == [3.0, 4.0]
