"""Energy and latency of one inference: operation counts (hardware_sim/counts.py) priced by a profile.

Energy (pJ per inference; each term names the profile constants it used):

    neuromorphic:  E_L = synops_L * E[synaptic_op]  (graded input: E[graded_synaptic_op] if given)
                       + active_L * E[neuron_update_active] + inactive_L * E[neuron_update_inactive]
                       + spikes_L * E[spike_within_tile]
    digital:       E_L^SNN = synops_L * E[ac]  (graded input: * E[mac], a payload needs a multiply)
                   E_L^ANN = macs_L * E[mac]

Every spike is charged one within-tile delivery; no inter-tile hops (placement
is unknown) and no off-chip input I/O. Static power is charged only when the
profile gives ``static_per_timestep`` (pJ per timestep, whole network); it is
reported apart from the dynamic energy.

Latency: T sample timesteps; on Loihi every synapse adds one step, so one
inference takes T + D wall steps, D the synaptic depth of the readout
(depth(input) = 0, depth(L) = 1 + max depth of its sources), as the Lava backend
runs it. Where the profile gives the per-operation times ``time_synaptic_op``,
``time_neuron_update_active``, ``time_neuron_update_inactive`` and
``time_spike_within_tile`` (ns), the time of layer L at sample step t is

    tau_L(t) = synops_L(t) t_syn + active_L(t) t_act + inactive_L(t) t_inact + spikes_L(t) t_spike

and two bounds are given: ``serial`` (one core does every operation: sum over L
and t) and ``one core per layer`` (cores run in parallel, a wall step lasts as
long as its slowest layer: sum over wall steps w of max over L of
tau_L(w - depth(L))). Neither counts barrier synchronisation, routing or host I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# TIME_CONSTANTS: count (LayerCounts field) -> the profile's time constant (ns) it costs, for latency.
from dsatgo_deploy.profiles import TIME_CONSTANTS, Profile

from .counts import LayerCounts, OperationCounts


@dataclass
class EnergyTerm:
    """count (per inference, or per timestep) x the named constants = energy_pj."""

    term: str
    count: float
    constants: tuple[str, ...]
    energy_pj: float
    per_timestep_pj: list[float]


@dataclass
class LayerEnergy:
    name: str
    snn_terms: list[EnergyTerm]
    ann_terms: list[EnergyTerm]

    @property
    def snn_pj(self) -> float:
        return sum(t.energy_pj for t in self.snn_terms)

    @property
    def ann_pj(self) -> float | None:
        return sum(t.energy_pj for t in self.ann_terms) if self.ann_terms else None

    @property
    def per_timestep_pj(self) -> list[float]:
        return np.sum([t.per_timestep_pj for t in self.snn_terms], axis=0).tolist()


@dataclass
class Latency:
    """Latency of one inference (module doc): sample and wall timesteps; in ns where the profile has times."""

    timesteps: int
    depth: int
    serial_ns: float | None
    layer_parallel_ns: float | None
    per_layer_ns: dict[str, float]
    constants: tuple[str, ...]
    note: str

    @property
    def wall_steps(self) -> int:
        return self.timesteps + self.depth

    def as_dict(self) -> dict[str, Any]:
        return {"timesteps": self.timesteps, "wall_steps": self.wall_steps, "depth": self.depth,
                "serial_ns": self.serial_ns, "layer_parallel_ns": self.layer_parallel_ns,
                "serial_s": None if self.serial_ns is None else self.serial_ns * 1e-9,
                "layer_parallel_s": None if self.layer_parallel_ns is None else self.layer_parallel_ns * 1e-9,
                "per_layer_ns": self.per_layer_ns, "constants": list(self.constants), "note": self.note}


def estimate_latency(counts: OperationCounts, profile: Profile) -> Latency:
    """Timesteps and wall steps of one inference; seconds where ``profile`` gives the four time constants."""
    steps, depth = counts.timesteps, counts.depth
    wall = (f"{steps} sample timesteps; {steps + depth} wall steps on Loihi, where each of the {depth} "
            "synapses on the way to the readout adds one step.")
    missing = [c for c in TIME_CONSTANTS.values() if c not in profile.constants]
    if missing:
        return Latency(steps, depth, None, None, {}, (), wall + f" No time in seconds: the profile has no {', '.join(missing)}.")
    per_step = {lc.name: np.sum([np.asarray(lc.per_timestep(field)) * profile.energy(const)
                                 for field, const in TIME_CONSTANTS.items()], axis=0) for lc in counts.layers}
    serial = float(sum(v.sum() for v in per_step.values()))
    parallel = 0.0
    for w in range(steps + depth):
        busy = [per_step[lc.name][w - lc.depth] for lc in counts.layers if 0 <= w - lc.depth < steps]
        parallel += max(busy, default=0.0)
    note = (wall + " Seconds from per-operation times (mean counts per sample): 'serial' has one core do every "
            "operation; 'one core per layer' runs layers in parallel, each wall step as long as its slowest layer. "
            "Barrier synchronisation, routing and host I/O are not counted, and a layer spread over several "
            "cores runs faster.")
    return Latency(steps, depth, serial, parallel, {k: float(v.sum()) for k, v in per_step.items()},
                   tuple(TIME_CONSTANTS.values()), note)


@dataclass
class EnergyEstimate:
    profile: Profile
    layers: list[LayerEnergy]
    static_pj: float | None
    assumptions: list[str]
    uncertainty: str
    latency: Latency | None = None

    @property
    def snn_dynamic_pj(self) -> float:
        return sum(layer.snn_pj for layer in self.layers)

    @property
    def snn_total_pj(self) -> float:
        return self.snn_dynamic_pj + (self.static_pj or 0.0)

    @property
    def ann_pj(self) -> float | None:
        return sum(layer.ann_pj for layer in self.layers) if self.profile.kind == "digital" else None

    def constants_used(self) -> list[str]:
        names = {c for layer in self.layers for t in layer.snn_terms + layer.ann_terms for c in t.constants}
        if self.static_pj is not None:
            names.add("static_per_timestep")
        return sorted(names)


def _term(term: str, counts: LayerCounts, field: str, profile: Profile, constant: str) -> EnergyTerm:
    e = profile.energy(constant)
    per_step = [x * e for x in counts.per_timestep(field)]
    return EnergyTerm(term, counts.per_inference(field), (constant,), counts.per_inference(field) * e, per_step)


def estimate_energy(counts: OperationCounts, profile: Profile) -> EnergyEstimate:
    """Energy per inference, per layer and per timestep, with the equations of the module doc."""
    assumptions = (["Each spike is delivered once within one tile; inter-tile hops and off-chip input I/O are not counted."]
                   if profile.kind == "neuromorphic" else [])
    layers = []
    for lc in counts.layers:
        if profile.kind == "neuromorphic":
            synop = "graded_synaptic_op" if lc.graded_input and "graded_synaptic_op" in profile.constants else "synaptic_op"
            if lc.graded_input and synop == "synaptic_op":
                assumptions.append(f"Layer '{lc.name}' reads graded input payloads; its synops are priced as binary synaptic ops.")
            snn = [_term("synops", lc, "synops", profile, synop),
                   _term("neuron_updates_active", lc, "active_updates", profile, "neuron_update_active"),
                   _term("neuron_updates_inactive", lc, "inactive_updates", profile, "neuron_update_inactive"),
                   _term("spikes", lc, "spikes", profile, "spike_within_tile")]
            ann: list[EnergyTerm] = []
        else:
            snn = [_term("synops", lc, "synops", profile, "mac" if lc.graded_input else "ac")]
            if lc.graded_input:
                assumptions.append(f"Layer '{lc.name}' multiplies graded input payloads: its synops are priced as MACs.")
            macs = float(lc.ann_macs)
            ann = [EnergyTerm("ann_macs", macs, ("mac",), macs * profile.energy("mac"), [])]
        layers.append(LayerEnergy(lc.name, snn, ann))
    if "static_per_timestep" in profile.constants:
        static = profile.energy("static_per_timestep") * counts.timesteps
    else:
        static = None
        assumptions.append("Static (leakage) energy is not modelled: the profile gives dynamic per-operation energies only.")
    if not counts.input_payloads_known:
        assumptions.append("Input payloads were not given: every input value is assumed non-zero (upper bound on input synops).")
    if profile.kind == "digital":
        assumptions.append("Digital SNN energy counts synaptic accumulates only (no neuron-state updates, memory access or control).")
    statuses = sorted({profile.constants[c].status for c in {t.constants[0] for le in layers for t in le.snn_terms + le.ann_terms}})
    uncertainty = (f"Order-of-magnitude estimate from per-operation energies of status {', '.join(statuses)}; "
                   "counts are exact, energies are not. Real hardware adds placement-dependent routing, memory "
                   "traffic, management and static power; compare designs under one profile rather than trust "
                   "absolute joules.")
    return EnergyEstimate(profile, layers, static, assumptions, uncertainty, estimate_latency(counts, profile))
