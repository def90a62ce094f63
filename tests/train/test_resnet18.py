"""SEW ResNet-18 (the paper's ImageNet net): layout, size against torchvision's ResNet-18, a training step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dsatgo_deploy.architecture import layer_shapes
from dsatgo_deploy.train.zoo import resnet18_architecture
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import NeuronConfig

#: torchvision's resnet18() has 11,689,512 parameters (its model card); ours adds one PLIF decay per spiking layer.
TORCHVISION_RESNET18_PARAMETERS = 11_689_512


def test_imagenet_layout_and_parameter_count():
    arch = resnet18_architecture()
    shapes = layer_shapes(arch)
    assert shapes["stem"] == (64, 112, 112) and shapes["stem_pool"] == (64, 56, 56)
    assert [shapes[f"s{s}b2_add"] for s in (1, 2, 3, 4)] == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    spiking = [layer["name"] for layer in arch["layers"] if layer["neuron"] == "lif"]
    assert len(spiking) == 20 and arch["timesteps"] == 4 and arch["num_classes"] == 1000
    model = build_model(arch)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_RESNET18_PARAMETERS + len(spiking)


def test_small_resnet18_trains_one_step():
    torch.manual_seed(0)
    model = build_model(resnet18_architecture((3, 32, 32), 5, 2, NeuronConfig()._asdict(), width=1 / 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    before = model.synapses["stem"].weight.detach().clone()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.synapses["stem"].weight)
    assert set(model.traces()) == {n for n in model.neurons}
