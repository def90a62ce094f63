"""The generic SpikingNetwork on every architecture: shapes, tdBN, direct encoding, init, checkpoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dsatgo_deploy.architecture import state_dict_keys
from dsatgo_deploy.train.zoo import convnet_architecture, mlp_architecture, resnet19_architecture, vggsnn_architecture
from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint
from dsatgo_deploy.export.freeze import freeze, run_frozen
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import ABLATIONS, NeuronConfig

NEURON = NeuronConfig()._asdict()


def _train_steps(model, x, y, steps=2, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


@pytest.mark.parametrize("arch, x", [
    (mlp_architecture(64, [32, 16], 10, 3, NEURON), torch.rand(5, 64)),
    (convnet_architecture((1, 8, 8), 10, 3, NEURON), torch.rand(5, 1, 8, 8)),
    (convnet_architecture((1, 8, 8), 10, 3, NEURON), torch.rand(5, 64)),  # flat samples are reshaped
    (convnet_architecture((1, 28, 28), 10, 2, NEURON, width=0.25), torch.rand(3, 1, 28, 28)),
    (vggsnn_architecture((2, 16, 16), 10, 3, NEURON, width=1 / 16), torch.rand(3, 3, 2, 16, 16)),
    (resnet19_architecture((3, 32, 32), 10, 2, NEURON, width=1 / 16), torch.rand(2, 3, 32, 32)),
])
def test_forward_shapes_and_traces(arch, x):
    model = build_model(arch)
    assert sorted(model.state_dict()) == sorted(state_dict_keys(arch))
    for mode in (True, False):
        model.train(mode)
        out = model(x)
        assert out.shape == (len(x), 10) and torch.isfinite(out).all()
        per_step = model(x, per_timestep=True)
        assert per_step.shape == (arch["timesteps"], len(x), 10)
        assert torch.allclose(per_step.mean(0), out, atol=1e-6)
    traces = model.traces()
    assert list(traces) == [l["name"] for l in arch["layers"] if l["neuron"] == "lif"]
    for trace in traces.values():
        assert trace.spikes.shape[:2] == (arch["timesteps"], len(x))
        assert set(trace.spikes.unique().tolist()) <= {0.0, 1.0}


def test_resnet19_full_width_has_the_papers_size():
    model = build_model(resnet19_architecture((3, 32, 32), 10, 2, NEURON))
    params = sum(p.numel() for p in model.parameters())
    assert 12.6e6 < params < 12.8e6, params  # ResNet-19: ~12.6-12.7 M parameters
    assert len(model.neurons) == 20
    # Kaiming normal, fan_out, for convolutions; tdBN gamma 1, momentum 0.1, eps 1e-5
    weight = model.synapses["s3b1_conv2"].weight
    assert abs(weight.std().item() / (2.0 / (512 * 9)) ** 0.5 - 1) < 0.05
    norm = model.norms["s3b1_conv2"]
    assert torch.all(norm.weight == 1) and norm.momentum == 0.1 and norm.eps == 1e-5


def test_resnet19_trains_one_step_on_cifar_shapes():
    torch.manual_seed(0)
    model = build_model(resnet19_architecture((3, 32, 32), 10, 2, NEURON, width=1 / 16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    loss = _train_steps(model, x, y, steps=1)
    assert np.isfinite(loss)
    after = model.state_dict()
    changed = [k for k in after if not torch.equal(before[k], after[k])]
    for key in ("synapses.stem.weight", "synapses.readout.weight", "neurons.s2b1_down.decay_logit",
                "neurons.fc1.running_threshold", "norms.s3b2_conv2.running_var", "norms.fc1.running_mean"):
        assert key in changed, key
    # SEW ADD of spikes: block outputs in {0, 1, 2}
    model(x)
    spikes = model.traces()
    assert (spikes["s1b1_conv2"].spikes + spikes["stem"].spikes).max() <= 2


def test_direct_encoding_equals_feeding_the_frames():
    """Computing the first synapse once (and tdBN over its T copies) is exact: a "sequence"
    network fed the same frame T times computes the same outputs, gradients and BN statistics."""
    torch.manual_seed(0)
    direct = convnet_architecture((2, 8, 8), 4, 3, NEURON, channels=(4, "pool", 6), hidden=(8,))
    sequence = copy.deepcopy(direct)
    sequence["encoding"] = "sequence"
    a, b = build_model(direct), build_model(sequence)
    b.load_state_dict(a.state_dict())
    x = torch.rand(6, 2, 8, 8)
    for mode in (True, False, True):
        a.train(mode)
        b.train(mode)
        out_a, out_b = a(x), b(x.unsqueeze(1).expand(6, 3, 2, 8, 8))
        assert torch.allclose(out_a, out_b, atol=1e-5)
        if mode:
            out_a.square().sum().backward()
            out_b.square().sum().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-4), name
    for key, value in a.state_dict().items():
        assert torch.allclose(value.float(), b.state_dict()[key].float(), atol=1e-6), key


def test_tdbn_equals_batchnorm3d_over_batch_time_space():
    torch.manual_seed(0)
    arch = convnet_architecture((3, 6, 6), 4, 3, NEURON, channels=(5,), hidden=(), encoding="sequence")
    model = build_model(arch)
    reference = torch.nn.BatchNorm3d(5)  # the authors' tdBN: BatchNorm3d over (B, C, T, H, W)
    x = torch.rand(4, 3, 3, 6, 6)  # (B, T, C, H, W)
    current = {}
    model.neurons["conv1"].register_forward_pre_hook(lambda m, args: current.setdefault("I", args[0]))
    model.train()
    model(x)
    conv = model.synapses["conv1"](x.flatten(0, 1)).unflatten(0, (4, 3))  # (B, T, C, H, W)
    expected = reference(conv.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(current["I"], expected.transpose(0, 1), atol=1e-5)
    assert torch.allclose(model.norms["conv1"].running_var, reference.running_var, atol=1e-6)


def test_mlp_matches_the_frozen_export_path():
    torch.manual_seed(1)
    arch = mlp_architecture(64, [48], 10, 4, NEURON)
    model = build_model(arch)
    x = torch.rand(300, 64)
    model.train()
    model(x)  # moves the running thresholds away from 1
    model.eval()
    with torch.no_grad():
        out = model(x).numpy()
    readout, spikes, _ = run_frozen(freeze({"arch": arch, "state_dict": model.state_dict(), "meta": {}}), x.numpy())
    torch_spikes = model.traces()["fc1"].spikes.transpose(0, 1).numpy().astype(bool)
    assert (torch_spikes == spikes["fc1"]).mean() > 0.999
    assert np.abs(readout - out).max() < 1e-3


def test_input_shape_errors():
    model = build_model(vggsnn_architecture((2, 16, 16), 10, 3, NEURON, width=1 / 16))
    with pytest.raises(ValueError, match="'sequence' encoding expects"):
        model(torch.rand(2, 4, 2, 16, 16))
    with pytest.raises(ValueError, match="expected"):
        build_model(mlp_architecture(64, [8], 10, 2, NEURON))(torch.rand(2, 63))


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_ablations_run_on_conv_nets(ablation):
    neuron = NeuronConfig(**ABLATIONS[ablation])._asdict()
    model = build_model(convnet_architecture((1, 8, 8), 10, 2, neuron, channels=(4, "pool"), hidden=()))
    assert np.isfinite(_train_steps(model, torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]), steps=1))


def test_checkpoint_round_trip_keeps_thresholds_and_tdbn_statistics(tmp_path):
    torch.manual_seed(0)
    arch = resnet19_architecture((3, 16, 16), 10, 2, NEURON, width=1 / 32)
    model = build_model(arch)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    _train_steps(model, x, y, steps=2)
    state = model.state_dict()
    assert not torch.all(state["neurons.fc1.running_threshold"] == 1.0)
    assert int(state["norms.stem.num_batches_tracked"]) == 2
    path = tmp_path / "model.pt"
    save_checkpoint(path, arch, state, {"epoch": 1})
    loaded = load_checkpoint(path)  # torch.load(weights_only=True) inside
    assert loaded["arch"] == arch
    clone = build_model(loaded["arch"])
    clone.load_state_dict(loaded["state_dict"])
    for key, value in state.items():
        assert torch.equal(value, clone.state_dict()[key]), key
    model.eval()
    clone.eval()
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("name", ["mlp", "convnet", "vggsnn", "resnet19"])
def test_the_core_states_the_state_dict_the_model_builds(name):
    """Checkpoint validation (core) checks shapes from the architecture alone; they must be the model's."""
    from dsatgo_deploy.architecture import state_dict_shapes
    from dsatgo_deploy.train import zoo

    neuron = {"decay_mode": "plif"}
    builders = {"mlp": lambda: zoo.mlp_architecture(64, [32, 16], 10, 4, neuron),
                "convnet": lambda: zoo.convnet_architecture((1, 8, 8), 10, 4, {"decay_mode": "fixed"}),
                "vggsnn": lambda: zoo.vggsnn_architecture(width=0.125),
                "resnet19": lambda: zoo.resnet19_architecture(width=0.0625)}
    arch = builders[name]()
    with torch.device("meta"):
        model = build_model(arch)
    built = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert state_dict_shapes(arch) == built
