"""The Loihi resource estimate: layers and the relay populations residual sums need."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.resources import CHIPS, Limit, check_resources, estimate
from tests.hardware_sim.test_lava_backend import RESIDUAL_CONV_NET, RESIDUAL_DENSE_NET, random_graph


def test_residual_relays_are_counted_as_populations_with_one_to_one_synapses():
    net = random_graph(2, (2, 6, 5), RESIDUAL_CONV_NET, 2, thresholds=2000, weight_low=-96)
    items = {item.name: item for item in estimate(net, CHIPS["loihi2"])}
    stem = net.layer("stem").num_neurons  # 4 x 6 x 5 = 120
    assert stem == 120
    assert [name for name in items if "relays" in name] == ["stem relays x3", "b relays x1"]
    relay = items["stem relays x3"]
    assert (relay.neurons, relay.synapses, relay.synaptic_memory_bytes, relay.fan_in, relay.cores) == \
        (3 * stem, 3 * stem, 3 * stem, 1, 3)  # three populations of 120 neurons, one core each
    assert items["b relays x1"].neurons == net.layer("b").num_neurons and items["b relays x1"].cores == 1
    report = check_resources(net, "loihi")
    assert report["total_cores"] == sum(item.cores for item in items.values()) == len(net.layers) + 4
    assert report["total_neurons"] == sum(layer.num_neurons for layer in net.layers) + 4 * stem
    assert "residual relays" in report["model"]


def test_a_chain_without_skips_has_no_relays():
    net = random_graph(6, (12,), [("a", ["input"], 10), ("b", ["a"], 10), ("readout", ["b"], 3)], 2)
    assert net.relay_delays() == {}
    assert [item.name for item in estimate(net, CHIPS["loihi2"])] == ["a", "b", "readout"]


def test_large_relay_populations_take_several_cores_each():
    net = random_graph(6, (12,), RESIDUAL_DENSE_NET, 3, thresholds=1500, weight_low=-112)
    assert net.relay_delays() == {"d0": 3, "d1": 1}
    small = dataclasses.replace(CHIPS["loihi2"], neurons_per_core=Limit(4, "a test chip", "test"))
    relay = {item.name: item for item in estimate(net, small)}["d0 relays x3"]
    assert relay.cores == 3 * math.ceil(10 / 4)


# A conv layer of 64 x 32 x 512 neurons: one 2048-neuron column (64 x 32) per core, 512 cores
WIDE_CONV_NET = [("c", ["input"], dict(channels=64, padding=(1, 1))), ("readout", ["c"], 2)]


@pytest.fixture(scope="module")
def wide_conv_net():
    return random_graph(3, (1, 32, 512), WIDE_CONV_NET, 2)


def test_loihi2_cores_come_from_the_system_model_beside_the_old_upper_bound(wide_conv_net):
    items = {item.name: item for item in estimate(wide_conv_net, CHIPS["loihi2"])}
    conv = items["c"]
    assert conv.neurons == 64 * 32 * 512 and conv.cores == 512 and conv.limited_by == "neurons"
    # the old upper bound: 8192 neurons per core (more than its 128 KB of unshared kernels need)
    assert conv.upper_bound_cores == 1048576 // 8192 == 128 > math.ceil(conv.synapses / (128 * 1024))
    readout = items["readout"]  # fan-in of 1 M axons: over Loihi 2's assumed limits, one neuron per core
    assert readout.cores == 2 and readout.limited_by.startswith("OVER LIMIT: fan-in 1048576")


def test_too_large_for_one_chip_names_the_layer_and_the_smallest_system(wide_conv_net):
    with pytest.raises(UserError, match=r"layer 'c': the network needs 514 Loihi 2 cores \(5 chips\) and one Loihi 2 "
                                        r"chip has 128.*Kapoho Point \(8 chips\) \(--system kapoho-point\), or --chips 5"):
        check_resources(wide_conv_net, "loihi")
    report = check_resources(wide_conv_net, "loihi", system="kapoho-point")
    assert (report["system"], report["system_chips"], report["chips"], report["total_cores"]) == \
        ("Kapoho Point (8 chips)", 8, 5, 514)
    assert report["upper_bound_total_cores"] == 128 + math.ceil(items_synapses(report, "readout") / (128 * 1024))
    with pytest.raises(UserError, match=r"layer 'readout': .* 4 Loihi 2 chips has 512"):
        check_resources(wide_conv_net, "loihi", chips=4)  # c's 512 cores fill four chips exactly
    assert check_resources(wide_conv_net, "loihi", chips=1152)["system"] == "Hala Point (1152 chips)"
    with pytest.raises(UserError, match="multi-chip systems are modelled for Loihi 2 only"):
        check_resources(random_graph(6, (12,), [("a", ["input"], 10), ("readout", ["a"], 3)], 2), "loihi1", chips=2)


def items_synapses(report: dict, name: str) -> int:
    return next(item["synapses"] for item in report["layers"] if item["name"] == name)


def test_loihi2_limits_carry_source_and_status():
    for field in ("cores", "neurons_per_core", "synaptic_memory_bytes_per_core", "fan_in_per_core"):
        limit = getattr(CHIPS["loihi2"], field)
        assert limit.source and limit.status in ("published", "derived", "fitted", "assumed")
    assert CHIPS["loihi2"].cores.status == "published" and CHIPS["loihi2"].neurons_per_core.status == "fitted"


def _resnet19_checkpoint(path, width: float):
    import torch

    from dsatgo_deploy.checkpoint import save_checkpoint
    from dsatgo_deploy.train.models import build_model
    from dsatgo_deploy.train.neuron import NeuronConfig
    from dsatgo_deploy.train.zoo import resnet19_architecture

    arch = resnet19_architecture((3, 32, 32), 10, 2, NeuronConfig()._asdict(), width=width)
    torch.manual_seed(0)
    save_checkpoint(path, arch, build_model(arch).state_dict(), {"epoch": 0})
    return path


def test_the_architecture_check_allocates_what_the_quantized_network_gets(tmp_path):
    """check_system_fits reads shapes only: its allocation is the quantized network's, relays included."""
    from dsatgo_deploy import loihi2_system as l2
    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.export.quantize import quantize
    from dsatgo_deploy.export.resources import core_limits, wiring_network

    frozen = freeze(load_checkpoint(_resnet19_checkpoint(tmp_path / "r19.pt", 1 / 16)))
    net, _ = quantize(frozen)
    limits = core_limits(CHIPS["loihi2"])
    quantized = [dataclasses.asdict(a) for a in l2.allocate_network(net, limits)]
    assert [dataclasses.asdict(a) for a in l2.allocate_network(wiring_network(frozen), limits)] == quantized
    assert any("relays" in a["name"] for a in quantized) and len(quantized) > 20
    # what the CLI's refusal reads: the header and architecture, no tensor (weights=False)
    shapes_only = freeze(load_checkpoint(tmp_path / "r19.pt", contents=False), weights=False)
    assert [dataclasses.asdict(a) for a in l2.allocate_network(wiring_network(shapes_only), limits)] == quantized


def test_shapes_only_freeze_folds_pooling_into_convs_as_freeze_does(tmp_path):
    """VGGSNN's average pools fold into the next conv (kernel spread, stride and padding scaled) and into the
    readout: freeze(weights=False) gives every layer the shape and geometry freeze gives it."""
    import torch

    from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.train.models import build_model
    from dsatgo_deploy.train.neuron import NeuronConfig
    from dsatgo_deploy.train.zoo import vggsnn_architecture

    arch = vggsnn_architecture((2, 48, 48), 10, 2, NeuronConfig()._asdict(), width=1 / 16)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "vgg.pt", arch, build_model(arch).state_dict(), {"epoch": 0})
    full = freeze(load_checkpoint(tmp_path / "vgg.pt"))
    shapes = freeze(load_checkpoint(tmp_path / "vgg.pt", contents=False), weights=False)
    assert any(layer.conv is not None and layer.conv.stride != (1, 1) for layer in full.layers)  # a folded pool
    for ours, theirs in zip(shapes.layers, full.layers, strict=True):
        assert (ours.name, ours.sources, ours.weight.shape, ours.bias.shape, ours.conv, ours.spiking) == \
               (theirs.name, theirs.sources, theirs.weight.shape, theirs.bias.shape, theirs.conv, theirs.spiking)


def test_full_width_resnet19_is_refused_before_calibration(tmp_path, monkeypatch):
    """Full-width ResNet-19 does not fit one Loihi 2 chip: export says so without calibrating (the
    calibration would run the 12-million-weight float network on the data)."""
    from dsatgo_deploy.export import exporter

    def calibrating(*args, **kwargs):
        raise AssertionError("export calibrated before refusing")

    monkeypatch.setattr(exporter, "calibrate", calibrating)
    checkpoint = _resnet19_checkpoint(tmp_path / "r19.pt", 1.0)
    with pytest.raises(UserError, match=r"layer 'stem': the network needs \d+ Loihi 2 cores.*--system hala-point"):
        exporter.export_checkpoint(checkpoint, tmp_path / "out", calibration_x=np.zeros((4, 3, 32, 32)))
    assert not (tmp_path / "out").exists()
