"""The architecture description (dsatgo_deploy.architecture): builders, validation, state-dict keys."""

from __future__ import annotations

import copy
import json

import pytest

from dsatgo_deploy.architecture import check_architecture, layer_shapes, norm_key, state_dict_keys
from dsatgo_deploy.train.zoo import convnet_architecture, mlp_architecture, resnet19_architecture, vggsnn_architecture

NEURON = {"threshold_mode": "adaptive", "surrogate_mode": "tgo"}


def test_mlp_layout_is_explicit_and_json_able():
    arch = mlp_architecture(64, [32], 10, 4, NEURON)
    assert json.loads(json.dumps(arch)) == arch
    assert [(l["name"], l["inputs"], l["neuron"], l["bn"]) for l in arch["layers"]] == [
        ("fc1", ["input"], "lif", False), ("readout", ["fc1"], "readout", False)]
    assert state_dict_keys(arch) == ["synapses.fc1.weight", "synapses.fc1.bias", "neurons.fc1.decay_logit",
                                     "neurons.fc1.running_threshold", "synapses.readout.weight",
                                     "synapses.readout.bias"]


def test_resnet19_matches_the_papers_net():
    arch = resnet19_architecture((3, 32, 32), 10, 2, NEURON)
    layers = {l["name"]: l for l in arch["layers"]}
    assert sum(l["neuron"] == "lif" for l in arch["layers"]) == 20
    assert layers["stem"]["out_channels"] == 128 and layers["stem"]["kernel_size"] == 3
    assert not layers["stem"]["bias"] and layers["stem"]["bn"]
    # stages 128 x 3, 256 x 3, 512 x 2; downsample only where the shape changes
    assert [n for n in layers if n.endswith("_add")] == [f"s1b{i}_add" for i in (1, 2, 3)] + [
        f"s2b{i}_add" for i in (1, 2, 3)] + [f"s3b{i}_add" for i in (1, 2)]
    assert [n for n in layers if n.endswith("_down")] == ["s2b1_down", "s3b1_down"]
    assert layers["s2b1_down"]["kernel_size"] == 1 and layers["s2b1_down"]["stride"] == 2
    assert layers["s2b1_down"]["neuron"] == "lif" and layers["s2b1_down"]["bn"]
    assert layers["s1b1_add"]["inputs"] == ["s1b1_conv2", "stem"]
    assert layers["s2b1_add"]["inputs"] == ["s2b1_conv2", "s2b1_down"]
    assert layers["fc1"] == {"name": "fc1", "op": "linear", "inputs": ["pool"], "in_features": 512,
                             "out_features": 256, "bias": False, "bn": True, "neuron": "lif"}
    assert layers["readout"]["in_features"] == 256 and not layers["readout"]["bias"]
    shapes = layer_shapes(arch)
    assert shapes["s1b3_add"] == (128, 32, 32) and shapes["s2b1_add"] == (256, 16, 16)
    assert shapes["s3b2_add"] == (512, 8, 8) and shapes["pool"] == (512,)
    assert norm_key("fc1", "running_var") in state_dict_keys(arch)


def test_vggsnn_and_convnet_shapes():
    arch = vggsnn_architecture(neuron=NEURON)
    assert arch["encoding"] == "sequence" and arch["input_shape"] == [2, 48, 48]
    assert layer_shapes(arch)["flatten"] == (512 * 3 * 3,)
    assert sum(l["op"] == "conv2d" for l in arch["layers"]) == 8
    small = vggsnn_architecture((2, 32, 32), 10, 4, NEURON, width=0.125)
    assert layer_shapes(small)["flatten"] == (64 * 2 * 2,)
    for shape, flat in (((1, 8, 8), 64 * 2 * 2), ((1, 28, 28), 64 * 7 * 7), ((3, 32, 32), 64 * 8 * 8)):
        assert layer_shapes(convnet_architecture(shape, 10, 2, NEURON))["flatten"] == (flat,)


def _broken(arch, mutate):
    arch = copy.deepcopy(arch)
    mutate(arch)
    return arch


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a["layers"][1].pop("inputs"), "layer 'pool1': missing field 'inputs'"),
    (lambda a: a["layers"][0].pop("bn"), "layer 'conv1': missing field 'bn'"),
    (lambda a: a["layers"][0].update(inputs=["nowhere"]), "layer 'conv1': field 'inputs': 'nowhere'"),
    (lambda a: a["layers"][2].update(in_channels=5), "layer 'conv2': field 'in_channels' is 5"),
    (lambda a: a["layers"][0].update(op="conv3d"), "layer 'conv1': field 'op': unknown operation 'conv3d'"),
    (lambda a: a["layers"][0].update(kernel_size=2.5), "layer 'conv1': field 'kernel_size' must be an integer"),
    (lambda a: a["layers"][0].update(bn="yes"), "layer 'conv1': field 'bn' must be true or false"),
    (lambda a: a["layers"][1].update(neuron="lif"), "layer 'pool1': field 'neuron': operation 'avgpool'"),
    (lambda a: a["layers"][0].update(name="conv.1"), "field 'name' must be an identifier"),
    (lambda a: a["layers"][5].update(in_features=7), "layer 'fc1': field 'in_features' is 7"),
    (lambda a: a["layers"][5].update(inputs=["pool2"]), "layer 'fc1': field 'inputs': linear needs a 1-D input"),
    (lambda a: a["layers"][-1].update(out_features=3), "does not match num_classes"),
    (lambda a: a["layers"][-1].update(neuron="lif"), "must have neuron 'readout'"),
    (lambda a: a.update(encoding="rate"), "field 'encoding'"),
    (lambda a: a.update(normalize={"mean": [0.5, 0.5], "std": [1, 1]}), "field 'normalize.mean'"),
    (lambda a: a.update(timesteps=0), "field 'timesteps'"),
])
def test_check_architecture_names_layer_and_field(mutate, message):
    arch = convnet_architecture((1, 8, 8), 10, 2, NEURON, channels=(4, "pool", 8, "pool"), hidden=(16,))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_architecture(_broken(arch, mutate))


def test_add_needs_two_equal_shapes_and_dead_layers_are_refused():
    arch = resnet19_architecture((3, 16, 16), 10, 2, NEURON, width=1 / 16)
    with pytest.raises(ValueError, match="layer 's2b1_add': field 'inputs': add needs equal shapes"):
        check_architecture(_broken(arch, lambda a: next(l for l in a["layers"] if l["name"] == "s2b1_add")
                                   .update(inputs=["s2b1_conv2", "s1b3_add"])))
    with pytest.raises(ValueError, match="takes 2 input"):
        check_architecture(_broken(arch, lambda a: next(l for l in a["layers"] if l["name"] == "s1b1_add")
                                   .update(inputs=["s1b1_conv2"])))
    with pytest.raises(ValueError, match="layer 's1b1_conv2': its output is never used"):
        check_architecture(_broken(arch, lambda a: next(l for l in a["layers"] if l["name"] == "s1b1_add")
                                   .update(inputs=["stem", "stem"])))
    with pytest.raises(ValueError, match="layer 'pool2': field 'kernel_size': 2 does not fit the 1x1 input"):
        convnet_architecture((1, 2, 2), 10, 2, NEURON, channels=(4, "pool", 8, "pool"))
