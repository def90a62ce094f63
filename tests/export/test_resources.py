"""The Loihi resource estimate: layers and the relay populations residual sums need."""

from __future__ import annotations

import dataclasses
import math

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
