"""A Loihi 2 system model: cores per layer, chips, time per timestep and energy per inference.

Device facts live here (export's resource check and hardware_sim's reports both
import them); each carries its source and status: 'published' (Intel says so),
'derived' (arithmetic on published figures or on a compiled network), 'fitted'
(chosen so that Intel's compiled PilotNet LIF comes out as measured), 'assumed'.

Allocation of one layer (neurons laid out as Lava's (X, Y, C): X = our W axis):

    conv    the shared kernel (C_out x C_in x KH x KW x sources bytes, 8-bit weights, zeros
            included) is stored once per core; if it exceeds KERNEL_MEMORY the output
            channels split into g groups. Each group is cut into blocks of whole X columns,
            the block width a power of two, the widest with <= NEURONS_PER_CORE neurons.
            cores = g x ceil(W / block)
    dense   a core holds whole weight rows: rows <= min(NEURONS_PER_CORE,
            SYNAPTIC_MEMORY // fan_in); a fan-in over AXONS_IN_PER_CORE or SYNAPTIC_MEMORY is
            flagged 'OVER LIMIT' (one neuron per core), not refused: those limits are not published
            A layer with synaptic delays stores DELAY_BITS more per synapse:
            row bytes = ceil(fan_in x (8 + DELAY_BITS) / 8). A recurrent layer (weight_rec) reads its
            own spikes too: fan_in + n axons in, and it feeds itself. The delay slots of the dendritic
            accumulator (max delay + 1 per neuron) are not modelled: no figure for them is published.
    neurons one-to-one (an input layer fed by bias, a relay): blocks of NEURONS_PER_CORE
    axon-out  each neuron needs one output-axon entry per destination core; a layer takes
            more cores when a core's entries exceed AXONS_OUT_PER_CORE

Layers never share a core. A system is chips x CORES_PER_CHIP cores; layers are placed in
order, core by core, so a layer may straddle two chips. Inter-chip traffic: each spike is
sent once to every other chip that holds a core of a layer it feeds.

Time of one timestep: the work of a layer (synaptic ops, neuron updates, spikes out) is
shared evenly by its cores; the step lasts as long as the busiest core (a barrier closes
each step). Energy: dynamic per-operation costs + static power x chips x time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import NEUROMORPHIC_ENERGY, TIME_CONSTANTS


@dataclass(frozen=True)
class Fact:
    value: float
    unit: str
    source: str
    status: str  # published / derived / fitted / assumed


_BRIEF = "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief, 2021"
_PILOTNET = ("Intel's PilotNet LIF benchmark on one Loihi 2 chip (lava-dl tutorial "
             "tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb): compiler allocation and power")
_DAVIES = "Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', IEEE Micro 38(1), 2018"

CORES_PER_CHIP = Fact(128, "cores", _BRIEF + ": 128 neuromorphic cores per chip", "published")
SRAM_PER_CORE = Fact(128 * 1024, "bytes", _BRIEF + ": 128 KB SRAM per core, flexibly partitioned between "
                     "neuron state, synapses and routing tables", "published")
NEURONS_PER_CHIP = Fact(1 << 20, "neurons", _BRIEF + ": up to 1 M neurons per chip", "published")
NEURONS_PER_CORE_MAX = Fact(8192, "neurons", "1 M neurons per chip / 128 cores (simplest neurons); not reached "
                            "by LIF", "derived")
NEURONS_PER_CORE = Fact(3168, "neurons", _PILOTNET + ": the largest block the compiler put on one core (input "
                        "layer, 16 columns x 66 x 3); it split conv4 into 2048-neuron blocks rather than one "
                        "4096-neuron block, so the LIF limit lies in [3168, 4095]", "fitted")
SYNAPTIC_MEMORY = Fact(9 * 2560, "bytes", _PILOTNET + ": fc1 (100 neurons, 2560 axons in) took 12 cores, so a core "
                       "holds 9 dense rows of 2560 8-bit weights (8 rows would need 13 cores; Intel's '8 neurons "
                       "per core' is 100/12 rounded down)", "fitted")
AXONS_IN_PER_CORE = Fact(4096, "axons", "Loihi 1's 4,096 input axons per core (" + _DAVIES + "); no Loihi 2 figure "
                         "is published; fc1's 2560 fit", "assumed")
AXONS_OUT_PER_CORE = Fact(24576, "entries", _PILOTNET + ": conv5's 2048-neuron cores each feed fc1's 12 cores, so a "
                          "core holds at least 2048 x 12 output-axon entries; conv5 (2560 neurons) was split over 2 "
                          "cores, which its 2560 x 12 = 30720 entries explain if the limit is below that. The value "
                          "is the lower bound", "fitted")
KERNEL_MEMORY = Fact(128 * 1024, "bytes", "the published 128 KB SRAM per core, assumed usable by one shared conv "
                     "kernel; PilotNet shows at least 36864 bytes fit (conv5's 64 x 64 x 3 x 3 kernel on one core, "
                     "more than SYNAPTIC_MEMORY: dense rows evidently cost more per weight than shared kernels)",
                     "assumed")
DELAY_BITS = Fact(6, "bits", _DAVIES + ": a synapse holds a delay of up to 6 bits beside its weight in synaptic "
                  "memory (Loihi 1); assumed unchanged on Loihi 2, whose Lava DelayDense takes delays up to 63", "assumed")
STATIC_POWER_PER_CHIP = Fact(0.232, "W", _PILOTNET + ": static 0.232 W of 0.679 W total", "published")

#: Named systems: chips.
SYSTEMS = {"loihi2": 1, "kapoho-point": 8, "hala-point": 1152}
SYSTEM_TITLES = {"loihi2": "one Loihi 2 chip", "kapoho-point": "Kapoho Point (8 chips)",
                 "hala-point": "Hala Point (1152 chips)"}
FACTS = {"cores_per_chip": CORES_PER_CHIP, "sram_per_core": SRAM_PER_CORE, "neurons_per_chip": NEURONS_PER_CHIP,
         "neurons_per_core_max": NEURONS_PER_CORE_MAX, "neurons_per_core": NEURONS_PER_CORE,
         "synaptic_memory_per_core": SYNAPTIC_MEMORY, "axons_in_per_core": AXONS_IN_PER_CORE,
         "axons_out_per_core": AXONS_OUT_PER_CORE, "kernel_memory_per_core": KERNEL_MEMORY, "static_power_per_chip": STATIC_POWER_PER_CHIP,
         "delay_bits_per_synapse": DELAY_BITS}


@dataclass(frozen=True)
class CoreLimits:
    neurons: int = int(NEURONS_PER_CORE.value)
    synaptic_bytes: int = int(SYNAPTIC_MEMORY.value)
    axons_in: int = int(AXONS_IN_PER_CORE.value)
    axons_out: int = int(AXONS_OUT_PER_CORE.value)
    kernel_bytes: int = int(KERNEL_MEMORY.value)


@dataclass(frozen=True)
class LayerSpec:
    """What allocation needs of a layer. kind: 'dense', 'conv' or 'neurons' (one-to-one, no weights).

    shape: (C, H, W) for conv/neurons maps, (n,) otherwise; fan_in: axons one neuron reads (all sources);
    kernel: conv (C_out, C_in, KH, KW); feeds: the layers that read this one's spikes."""

    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    sources: tuple[str, ...] = ()
    kernel: tuple[int, ...] = ()
    feeds: tuple[str, ...] = ()
    delay_bits: int = 0  # bits of synaptic delay stored with each weight (dense layers with delays)

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)


@dataclass
class LayerAllocation:
    name: str
    neurons: int
    cores: int
    neurons_per_core: int  # the largest block
    synaptic_bytes_per_core: int
    axons_in_per_core: int
    axons_out_per_core: int = 0
    channel_groups: int = 1
    limited_by: str = "neurons"
    first_core: int = 0

    def chips(self, cores_per_chip: int) -> range:
        return range(self.first_core // cores_per_chip, (self.first_core + self.cores - 1) // cores_per_chip + 1)


def _column_blocks(channels: int, height: int, width: int, limit: int) -> tuple[int, int]:
    """(cores, neurons per core) of a (channels, height, width) map cut into power-of-two column blocks."""
    column = channels * height
    if column > limit:  # one column does not fit: plain blocks of `limit` neurons
        return math.ceil(column * width / limit), limit
    block = 1
    while block * 2 <= width and block * 2 * column <= limit:
        block *= 2
    if block * 2 > width and width * column <= limit:
        block = width  # the whole map fits one core
    return math.ceil(width / block), block * column


def allocate_layer(spec: LayerSpec, limits: CoreLimits) -> LayerAllocation:
    """Cores of one layer from the per-core limits (module doc)."""
    if spec.kind == "conv":
        c_out = spec.kernel[0]
        kernel_bytes = math.prod(spec.kernel) * max(1, len(spec.sources))
        groups = min(c_out, math.ceil(kernel_bytes / limits.kernel_bytes))
        per_group = math.ceil(c_out / groups)
        tiles, block = _column_blocks(per_group, spec.shape[1], spec.shape[2], limits.neurons)
        limited = ("synaptic memory (kernel) and neurons" if groups > 1 else
                   "fits one core" if tiles == 1 else "neurons")
        c_in, kh, kw = spec.kernel[1:]
        columns = max(1, block // (per_group * spec.shape[1]))
        axons_in = c_in * (spec.shape[1] + kh - 1) * (columns + kw - 1)  # reported only: stride 1 approximation
        return LayerAllocation(spec.name, spec.neurons, groups * tiles, min(block, spec.neurons),
                               math.ceil(kernel_bytes / groups), axons_in, channel_groups=groups, limited_by=limited)
    if spec.kind == "dense":
        row_bytes = math.ceil(spec.fan_in * (8 + spec.delay_bits) / 8)
        by_memory = limits.synaptic_bytes // max(1, row_bytes)
        rows = max(1, min(limits.neurons, by_memory, spec.neurons))
        limited = ("fits one core" if rows == spec.neurons else
                   "synaptic memory" if by_memory < limits.neurons else "neurons")
        if spec.fan_in > limits.axons_in or by_memory < 1:
            # Not refused: both limits are fitted or assumed; the report says the layer exceeds them.
            limited = (f"OVER LIMIT: fan-in {spec.fan_in} > {limits.axons_in} axons in or > "
                       f"{limits.synaptic_bytes} bytes of synaptic memory per core (one neuron per core assumed)")
        return LayerAllocation(spec.name, spec.neurons, math.ceil(spec.neurons / rows), rows, rows * row_bytes,
                               spec.fan_in, limited_by=limited)
    if spec.kind == "neurons":
        cores, block = (_column_blocks(*spec.shape, limits.neurons) if len(spec.shape) == 3
                        else (math.ceil(spec.neurons / limits.neurons), limits.neurons))
        return LayerAllocation(spec.name, spec.neurons, cores, min(block, spec.neurons), 0, min(block, spec.neurons))
    raise ValueError(f"layer '{spec.name}': unknown kind {spec.kind!r}")


def network_specs(net: DeployableNetwork) -> list[LayerSpec]:
    """Allocation specs of a deployable network's layers (relay populations are not included)."""
    feeds = {layer.name: tuple(other.name for other in net.layers if layer.name in other.sources
                               or (other is layer and layer.weight_rec is not None))
             for layer in net.layers}
    specs = []
    for layer in net.layers:
        sources = tuple(layer.sources)
        if layer.kind == "conv":
            specs.append(LayerSpec(layer.name, "conv", tuple(layer.output_shape), layer.fan_in * len(sources),
                                      sources, tuple(layer.weight.shape), feeds[layer.name]))
        else:
            recurrent = layer.num_neurons if layer.weight_rec is not None else 0
            specs.append(LayerSpec(layer.name, "dense", (layer.num_neurons,), layer.fan_in * len(sources) + recurrent,
                                      sources, feeds=feeds[layer.name],
                                      delay_bits=int(DELAY_BITS.value) if layer.delay is not None else 0))
    return specs


def _destination_cores(consumer: LayerSpec, alloc: LayerAllocation) -> int:
    """Cores of `consumer` one source neuron reaches: all for dense; for conv, at most two
    column blocks per channel group (a receptive field spans a block boundary at most once)."""
    if consumer.kind == "conv":
        return min(alloc.cores, 2 * alloc.channel_groups)
    return alloc.cores


def allocate(specs: Sequence[LayerSpec], limits: CoreLimits = CoreLimits()) -> list[LayerAllocation]:
    """Every layer's allocation, with output-axon entries checked; cores numbered in layer order."""
    allocs = {spec.name: allocate_layer(spec, limits) for spec in specs}
    by_name = {spec.name: spec for spec in specs}
    for spec in reversed(specs):  # consumers first: their cores set the source's fan-out
        alloc = allocs[spec.name]
        fanout = sum(_destination_cores(by_name[c], allocs[c]) for c in spec.feeds if c in allocs)
        needed = math.ceil(spec.neurons * fanout / limits.axons_out) if fanout else 1
        if needed > alloc.cores:
            alloc.cores, alloc.limited_by = needed, "axon-out table"
            alloc.neurons_per_core = math.ceil(spec.neurons / needed)
        alloc.axons_out_per_core = min(alloc.neurons_per_core, spec.neurons) * fanout
    first = 0
    for spec in specs:
        allocs[spec.name].first_core, first = first, first + allocs[spec.name].cores
    return [allocs[spec.name] for spec in specs]


def allocate_network(net: DeployableNetwork, limits: CoreLimits = CoreLimits()) -> list[LayerAllocation]:
    """Allocations of a deployable network's layers, then of its relay chains ('<node> relays x<k>':
    k one-to-one populations, DeployableNetwork.relay_delays, which never share a core)."""
    allocs = allocate(network_specs(net), limits)
    first = sum(a.cores for a in allocs)
    for node, steps in net.relay_delays().items():
        size = net.node_size(node)
        cores = steps * math.ceil(size / limits.neurons)
        allocs.append(LayerAllocation(f"{node} relays x{steps}", steps * size, cores, min(size, limits.neurons),
                                      0, 1, 1, first_core=first))
        first += cores
    return allocs


# --------------------------------------------------------------------------- systems


def resolve_system(system: str | None = None, chips: int | None = None) -> tuple[str, int]:
    """(title, chips) of a named system ('loihi2', 'kapoho-point', 'hala-point') or of ``chips``."""
    if chips is not None:
        if chips < 1:
            raise UserError(f"--chips: must be at least 1, got {chips}")
        named = [n for n, c in SYSTEMS.items() if c == chips]
        return (SYSTEM_TITLES[named[0]] if named else f"{chips} Loihi 2 chips"), chips
    name = system or "loihi2"
    if name not in SYSTEMS:
        raise UserError(f"--system: unknown system {name!r} (known: {', '.join(SYSTEMS)}; or give --chips N)")
    return SYSTEM_TITLES[name], SYSTEMS[name]


def smallest_system(cores: int) -> str:
    chips = math.ceil(cores / CORES_PER_CHIP.value)
    for name, count in SYSTEMS.items():
        if count >= chips:
            return f"{SYSTEM_TITLES[name]} (--system {name}), or --chips {chips}"
    return f"{chips} chips (--chips {chips}), more than Hala Point's {SYSTEMS['hala-point']}"


def place(allocs: Sequence[LayerAllocation], chips: int, title: str) -> int:
    """Chips used; UserError naming the first layer that does not fit and the smallest system that does."""
    per_chip = int(CORES_PER_CHIP.value)
    total = sum(a.cores for a in allocs)
    if total > chips * per_chip:
        overflow = next(a for a in allocs if a.first_core + a.cores > chips * per_chip)
        raise UserError(f"layer '{overflow.name}': the network needs {total} Loihi 2 cores "
                        f"({math.ceil(total / per_chip)} chips) and {title} has {chips * per_chip}; "
                        f"this layer is the first that does not fit. Smallest system that fits: "
                        f"{smallest_system(total)}")
    return max(1, math.ceil(total / per_chip))


@dataclass
class LayerWork:
    """Mean work of a layer per timestep (whole layer): synaptic ops, neuron updates, spikes out."""

    name: str
    synops: float
    active_updates: float
    inactive_updates: float
    spikes: float


def interchip_spikes(specs: Sequence[LayerSpec], allocs: Sequence[LayerAllocation],
                     work: Mapping[str, LayerWork]) -> float:
    """Spike messages per timestep that cross chips (module doc); spikes spread evenly over a layer's cores."""
    per_chip = int(CORES_PER_CHIP.value)
    by_name = {a.name: a for a in allocs}
    total = 0.0
    for spec in specs:
        src = by_name[spec.name]
        if spec.name not in work or not spec.feeds:
            continue
        dest_chips = set().union(*(by_name[c].chips(per_chip) for c in spec.feeds if c in by_name))
        for core in range(src.first_core, src.first_core + src.cores):
            total += work[spec.name].spikes / src.cores * len(dest_chips - {core // per_chip})
    return total


TIME_KEYS, ENERGY_KEYS = TIME_CONSTANTS, NEUROMORPHIC_ENERGY  # count -> profile constant (profiles)


@dataclass
class Performance:
    system: str
    chips: int
    cores: int
    timesteps: int
    step_ns: float
    slowest_layer: str
    interchip_spikes_per_inference: float
    dynamic_pj: float
    static_pj: float
    per_layer_core_ns: dict[str, float] = field(default_factory=dict)

    @property
    def inference_s(self) -> float:
        return self.timesteps * self.step_ns * 1e-9

    @property
    def inferences_per_s(self) -> float:
        return 1.0 / self.inference_s

    @property
    def total_pj(self) -> float:
        return self.dynamic_pj + self.static_pj


def performance(specs: Sequence[LayerSpec], allocs: Sequence[LayerAllocation], work: Mapping[str, LayerWork],
                timesteps: int, constants: Mapping[str, float], title: str, chips: int) -> Performance:
    """Time per step (busiest core) and energy per inference (``timesteps`` steps, pipelined: one
    inference every ``timesteps`` steps). ``constants``: a profile's time_* (ns) and energies (pJ)."""
    used = place(allocs, chips, title)
    core_ns = {a.name: sum(getattr(work[a.name], f) / a.cores * constants[k] for f, k in TIME_KEYS.items())
               for a in allocs if a.name in work}
    slowest = max(core_ns, key=core_ns.get)
    dynamic = timesteps * sum(getattr(w, f) * constants[k] for w in work.values() for f, k in ENERGY_KEYS.items())
    step_ns = core_ns[slowest]
    static = STATIC_POWER_PER_CHIP.value * used * timesteps * step_ns * 1e3  # W x ns = 1e3 pJ
    return Performance(title, used, sum(a.cores for a in allocs), timesteps, step_ns, slowest,
                       timesteps * interchip_spikes(specs, allocs, work), dynamic, static, core_ns)
