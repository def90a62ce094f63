"""Will it fit? A Loihi resource check of a deployable network, before anything is written.

Loihi 2 (``--target loihi``): the Loihi 2 system model (dsatgo_deploy/loihi2_system.py)
allocates every layer from Loihi 2's per-core limits (neurons, synaptic memory, axons in
and out, shared convolution kernels), each limit with its source and status, and places the
cores on a system: one chip, Kapoho Point (8 chips), Hala Point (1152 chips) or N chips. It
fails only when the whole system is too small, naming the first layer that does not fit and
the smallest system that does, or when one neuron cannot fit a core (fan-in).

Both targets also report the old conservative upper bound, not Intel's compiler:

    synapses_l  = (non-zero weights of one full connection) x (number of sources)
                  conv: every output neuron stores its own non-zero kernel entries
                  (no weight sharing: Loihi 1 has none)
    memory_l    = synapses_l x 1 byte (8-bit weights; index and routing tables ignored)
    cores_l     = max(ceil(neurons_l / neurons_per_core), ceil(memory_l / memory_per_core))
    relays_S    = k populations of size(S), one-to-one synapses, when a layer sums sources
                  of different depths (a residual skip waits k steps for the longer path;
                  DeployableNetwork.relay_delays): the Lava graph the export writes runs them,
                  so they take cores too (one per population at least)
    cores       = sum over layers and relay populations (none share a core)

Loihi 1 (``--target loihi1``) is checked with that upper bound on one chip: it fails,
naming the layer, the limit and the value, when a neuron's fan-in exceeds what one core can
receive, when the network needs more cores than a chip has, or when it needs a feature the
chip lacks (no graded spikes, no per-timestep threshold schedule).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from dsatgo_deploy import loihi2_system as l2
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork, Layer

if TYPE_CHECKING:
    from .freeze import FrozenNetwork


@dataclass(frozen=True)
class Limit:
    value: int
    source: str
    status: str  # "published", "derived", "fitted", "assumed", "unverified"


@dataclass(frozen=True)
class Chip:
    name: str
    cores: Limit
    neurons_per_core: Limit
    synaptic_memory_bytes_per_core: Limit
    fan_in_per_core: Limit | None
    graded_spikes: bool
    threshold_schedules: bool
    system_model: bool = False  # Loihi 2: allocate with dsatgo_deploy.loihi2_system


def _limit(fact: l2.Fact) -> Limit:
    return Limit(int(fact.value), fact.source, fact.status)


_DAVIES = "Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', IEEE Micro 38(1), 2018"
_LOIHI2_BRIEF = "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief, 2021"

CHIPS = {
    "loihi2": Chip(
        name="Loihi 2",
        cores=_limit(l2.CORES_PER_CHIP),
        neurons_per_core=_limit(l2.NEURONS_PER_CORE),
        synaptic_memory_bytes_per_core=_limit(l2.SYNAPTIC_MEMORY),
        fan_in_per_core=_limit(l2.AXONS_IN_PER_CORE),
        graded_spikes=True,
        threshold_schedules=True,  # programmable (microcode) neurons
        system_model=True,
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
    upper_bound_cores: int = 0  # the conservative estimate (module doc), for comparison
    limited_by: str = "neurons"


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


def _upper_bound(net: DeployableNetwork, chip: Chip) -> list[LayerResources]:
    if chip.system_model:  # the bound as it always was: all of a core's SRAM for synapses, 8192 neurons
        chip = replace(chip, neurons_per_core=_limit(l2.NEURONS_PER_CORE_MAX),
                       synaptic_memory_bytes_per_core=_limit(l2.SRAM_PER_CORE))
    result = []
    for layer in net.layers:
        synapses = _synapses(layer)
        memory = synapses  # one byte per 8-bit weight
        cores = _cores(layer.num_neurons, memory, chip)
        result.append(LayerResources(layer.name, layer.num_neurons, synapses, memory,
                                     layer.fan_in * len(layer.sources), cores, cores))
    for node, steps in net.relay_delays().items():
        size = net.node_size(node)  # each relay population: size neurons, size one-to-one synapses
        cores = steps * _cores(size, size, chip)
        result.append(LayerResources(f"{node} relays x{steps}", steps * size, steps * size, steps * size, 1, cores, cores))
    return result


def core_limits(chip: Chip) -> l2.CoreLimits:
    return l2.CoreLimits(neurons=chip.neurons_per_core.value, synaptic_bytes=chip.synaptic_memory_bytes_per_core.value,
                         axons_in=chip.fan_in_per_core.value if chip.fan_in_per_core else l2.CoreLimits.axons_in)


def estimate(net: DeployableNetwork, chip: Chip) -> list[LayerResources]:
    """One entry per layer, then one per relay chain (named '<node> relays x<k>').

    ``cores``: the Loihi 2 system model where the chip has one, else the upper bound."""
    result = _upper_bound(net, chip)
    if chip.system_model:
        for item, alloc in zip(result, l2.allocate_network(net, core_limits(chip))):
            item.cores, item.limited_by = alloc.cores, alloc.limited_by
    return result


def check_resources(net: DeployableNetwork, target: str, system: str | None = None, chips: int | None = None) -> dict:
    """Estimate resources for ``target`` ('loihi' = Loihi 2, 'loihi1'); UserError if it does not fit.

    Loihi 2: on ``system`` ('loihi2' one chip (default), 'kapoho-point', 'hala-point') or ``chips`` chips."""
    chip = CHIPS[TARGET_CHIPS[target]]
    if not chip.system_model and (system is not None or chips is not None):
        raise UserError(f"--system/--chips: multi-chip systems are modelled for Loihi 2 only (--target loihi), "
                        f"not {chip.name}")
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
    total = sum(item.cores for item in layers)
    result = {
        "chip": chip.name,
        "limits": {k: v for k, v in asdict(chip).items() if k not in ("name", "system_model")},
        "layers": [asdict(item) for item in layers],
        "total_cores": total,
        "upper_bound_total_cores": sum(item.upper_bound_cores for item in layers),
        "total_neurons": sum(item.neurons for item in layers),
        "total_synapses": sum(item.synapses for item in layers),
    }
    if chip.system_model:
        title, count = l2.resolve_system(system, chips)
        allocs = l2.allocate_network(net, core_limits(chip))
        used = l2.place(allocs, count, title)
        return result | {"system": title, "system_chips": count, "chips": used,
                         "model": "Loihi 2 system model (dsatgo_deploy/loihi2_system.py): per-core limits, shared "
                                  "conv kernels, layers and residual relays on separate cores"}
    for item in layers:
        if chip.fan_in_per_core is not None and item.fan_in > chip.fan_in_per_core.value:
            raise UserError(f"layer '{item.name}': fan-in {item.fan_in} exceeds {chip.name}'s "
                            f"{chip.fan_in_per_core.value} inputs per core")
        if item.cores > chip.cores.value:
            raise UserError(f"layer '{item.name}': needs {item.cores} cores ({item.neurons} neurons, "
                            f"{item.synaptic_memory_bytes} bytes of synapses), more than {chip.name}'s "
                            f"{chip.cores.value} cores per chip")
    if total > chip.cores.value:
        biggest = max(layers, key=lambda item: item.cores)
        raise UserError(f"network: needs {total} cores, more than {chip.name}'s {chip.cores.value} cores per chip "
                        f"(largest: layer '{biggest.name}', {biggest.cores} cores); multi-chip partitioning is "
                        "modelled for Loihi 2 only")
    return result | {"chips": 1, "model": "conservative estimate: no weight sharing for conv, 1 byte per synapse, "
                                          "layers and residual relays on separate cores"}


def wiring_network(frozen: FrozenNetwork) -> DeployableNetwork:
    """The frozen network's layers with their shapes and wiring only (zero weights, zero thresholds):
    all the Loihi 2 system model reads, made in milliseconds before calibration and quantization."""
    from dsatgo_deploy.network import ConvGeometry, InputEncoding

    layers = []
    for layer in frozen.layers:
        conv = None if layer.conv is None else ConvGeometry(layer.conv.input_shape, layer.conv.stride,
                                                            layer.conv.padding)
        spiking = layer.threshold_schedule is not None
        layers.append(Layer(layer.name, list(layer.sources), np.broadcast_to(np.int64(0), layer.weight.shape), 0,
                            np.zeros(len(layer.bias), np.int64), 0,
                            np.zeros(frozen.timesteps if spiking else 0, np.int64), 0, 0, spiking=spiking,
                            kind=layer.kind, conv=conv))
    return DeployableNetwork(frozen.timesteps, frozen.input_shape, InputEncoding(), layers)


def check_system_fits(frozen: FrozenNetwork, target: str, system: str | None = None,
                      chips: int | None = None) -> None:
    """UserError when a system-modelled chip (Loihi 2) cannot hold the network, from its architecture
    alone: export refuses in seconds, before it calibrates. check_resources repeats the same
    allocation on the quantized network (the model reads shapes only) and reports it."""
    chip = CHIPS[TARGET_CHIPS[target]]
    if chip.system_model:
        title, count = l2.resolve_system(system, chips)
        l2.place(l2.allocate_network(wiring_network(frozen), core_limits(chip)), count, title)
