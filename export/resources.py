"""Will it fit? A Loihi resource check of a deployable network, before anything is written.

Per layer: neurons, synapses, synaptic memory, fan-in, and the cores it needs;
then the chip total. The model is a deliberately simple, conservative estimate,
not Intel's compiler:

    synapses_l  = (non-zero weights of one full connection) x (number of sources)
                  conv: every output neuron stores its own non-zero kernel entries
                  (no weight sharing assumed: an upper bound on Loihi 2)
    memory_l    = synapses_l x 1 byte (8-bit weights; index and routing tables ignored)
    cores_l     = max(ceil(neurons_l / neurons_per_core), ceil(memory_l / memory_per_core))
    relays_S    = k populations of size(S), one-to-one synapses, when a layer sums sources
                  of different depths (a residual skip waits k steps for the longer path;
                  DeployableNetwork.relay_delays): the Lava graph the export writes runs them,
                  so they take cores too (one per population at least)
    cores       = sum over layers and relay populations (none share a core)

It fails, naming the layer, the limit and the value, when a neuron's fan-in
exceeds what one core can receive, when a layer or the whole network needs more
cores than a chip has, or when the network needs a feature the chip lacks
(Loihi 1: no graded spikes, no per-timestep threshold schedule).
Each limit carries its source and how sure we are of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork, Layer


@dataclass(frozen=True)
class Limit:
    value: int
    source: str
    status: str  # "published", "derived", "unverified"


@dataclass(frozen=True)
class Chip:
    name: str
    cores: Limit
    neurons_per_core: Limit
    synaptic_memory_bytes_per_core: Limit
    fan_in_per_core: Limit | None
    graded_spikes: bool
    threshold_schedules: bool


_DAVIES = "Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', IEEE Micro 38(1), 2018"
_LOIHI2_BRIEF = "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief, 2021"

CHIPS = {
    "loihi2": Chip(
        name="Loihi 2",
        cores=Limit(128, _LOIHI2_BRIEF + ": 128 neuromorphic cores per chip", "published"),
        neurons_per_core=Limit(8192, _LOIHI2_BRIEF + ": up to 1 million neurons per chip / 128 cores", "derived"),
        synaptic_memory_bytes_per_core=Limit(
            128 * 1024, "128 KB of SRAM per core, shared flexibly between neuron state and synapses "
            "(secondary sources quoting Intel); the synaptic share is smaller in practice", "unverified"),
        fan_in_per_core=None,
        graded_spikes=True,
        threshold_schedules=True,  # programmable (microcode) neurons
    ),
    "loihi1": Chip(
        name="Loihi 1",
        cores=Limit(128, _DAVIES + ": 128 neuromorphic cores per chip", "published"),
        neurons_per_core=Limit(1024, _DAVIES + ": 1,024 neural compartments per core (131,072 per chip)", "published"),
        synaptic_memory_bytes_per_core=Limit(128 * 1024, _DAVIES + ": 128 KB synaptic memory per core", "unverified"),
        fan_in_per_core=Limit(4096, _DAVIES + ": 4,096 input axons per core", "unverified"),
        graded_spikes=False,
        threshold_schedules=False,  # fixed LIF datapath: one threshold per compartment
    ),
}
TARGET_CHIPS = {"loihi": "loihi2", "loihi2": "loihi2", "loihi1": "loihi1"}


@dataclass
class LayerResources:
    name: str
    neurons: int
    synapses: int
    synaptic_memory_bytes: int
    fan_in: int
    cores: int


def _synapses(layer: Layer) -> int:
    weight = layer.weight
    if layer.kind == "conv":
        out_positions = int(np.prod(layer.output_shape[1:]))
        per_channel = np.count_nonzero(weight.reshape(len(weight), -1), axis=1)
        # border neurons see fewer inputs; counting the full kernel keeps this an upper bound
        total = int(per_channel.sum()) * out_positions
    else:
        total = int(np.count_nonzero(weight))
    return total * len(layer.sources)


def _cores(neurons: int, memory: int, chip: Chip) -> int:
    return max(math.ceil(neurons / chip.neurons_per_core.value),
               math.ceil(memory / chip.synaptic_memory_bytes_per_core.value), 1)


def estimate(net: DeployableNetwork, chip: Chip) -> list[LayerResources]:
    """One entry per layer, then one per relay chain (named '<node> relays x<k>')."""
    result = []
    for layer in net.layers:
        synapses = _synapses(layer)
        memory = synapses  # one byte per 8-bit weight
        result.append(LayerResources(layer.name, layer.num_neurons, synapses, memory,
                                     layer.fan_in * len(layer.sources), _cores(layer.num_neurons, memory, chip)))
    for node, steps in net.relay_delays().items():
        size = net.node_size(node)  # each relay population: size neurons, size one-to-one synapses
        result.append(LayerResources(f"{node} relays x{steps}", steps * size, steps * size, steps * size, 1,
                                     steps * _cores(size, size, chip)))
    return result


def check_resources(net: DeployableNetwork, target: str) -> dict:
    """Estimate resources for ``target`` ('loihi' = Loihi 2, 'loihi1'); UserError if it does not fit."""
    chip = CHIPS[TARGET_CHIPS[target]]
    if not chip.graded_spikes and net.input_encoding.kind == "graded":
        first = next(layer.name for layer in net.layers if "input" in layer.sources)
        raise UserError(f"layer '{first}': {chip.name} has no graded spikes, but this network feeds its analog "
                        "input to this layer as graded spikes (use --target loihi for Loihi 2)")
    if not chip.threshold_schedules:
        for layer in net.layers:
            if layer.spiking and layer.threshold_schedule.size > 1:
                raise UserError(f"layer '{layer.name}': {chip.name} neurons have one threshold, but the layer has a "
                                f"schedule of {layer.threshold_schedule.size}; use --threshold-policy per-layer")
    layers = estimate(net, chip)
    for item in layers:
        if chip.fan_in_per_core is not None and item.fan_in > chip.fan_in_per_core.value:
            raise UserError(f"layer '{item.name}': fan-in {item.fan_in} exceeds {chip.name}'s "
                            f"{chip.fan_in_per_core.value} inputs per core")
        if item.cores > chip.cores.value:
            raise UserError(f"layer '{item.name}': needs {item.cores} cores ({item.neurons} neurons, "
                            f"{item.synaptic_memory_bytes} bytes of synapses), more than {chip.name}'s "
                            f"{chip.cores.value} cores per chip")
    total = sum(item.cores for item in layers)
    if total > chip.cores.value:
        biggest = max(layers, key=lambda item: item.cores)
        raise UserError(f"network: needs {total} cores, more than {chip.name}'s {chip.cores.value} cores per chip "
                        f"(largest: layer '{biggest.name}', {biggest.cores} cores); multi-chip partitioning is "
                        "not supported")
    return {
        "chip": chip.name,
        "limits": {k: v for k, v in asdict(chip).items() if k != "name"},
        "layers": [asdict(item) for item in layers],
        "total_cores": total,
        "total_neurons": sum(item.neurons for item in layers),
        "total_synapses": sum(item.synapses for item in layers),
        "model": "conservative estimate: no weight sharing for conv, 1 byte per synapse, layers and residual "
                 "relays on separate cores",
    }
