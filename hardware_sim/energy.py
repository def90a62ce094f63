"""Operation counts and energy estimates of a deployable network, from its spikes.

Counting is exact (integers). Layer L has weights W, sources S (spiking layers,
or the input, whose graded payloads direct encoding repeats every timestep) and
a synapse ``syn`` (dense: W (out, in); conv: W (C_out, C_in, KH, KW) with the
layer's stride, padding and dilation). A *connection* is a pair (input position
j, output neuron i) that the synapse joins: every pair for dense; for conv, a
kernel tap whose input position lies inside the image (taps over zero padding
are not connections, so border neurons have fewer). A *synapse* is a connection
whose weight is non-zero. With m_S(t) the messages of source S and
``[.]`` the 0/1 indicator, per sample and timestep t:

    events_L,i(t) = sum_S sum_j [m_S,j(t) != 0] [synapse j -> i]     = syn(|W| != 0, [m_S(t) != 0]) summed over S
    synops_L(t)   = sum_i events_L,i(t)     one op per synapse reached by a non-zero message, per source
    spikes_L(t)   = sum_i s_i(t)                                    (0 for the readout)
    updates_L(t)  = n_L                                             every neuron, every step
    active_L(t)   = #{i : s_i(t) or events_L,i(t) > 0};  inactive_L(t) = n_L - active_L(t)
    macs_L        = connections of L                                equivalent ANN, once per inference

For conv the event count is the convolution of the 0/1 message map with the 0/1
kernel indicator ``|W| != 0`` (same stride, padding, dilation), so border effects
are exact. A layer with several sources (a folded SEW residual ADD) receives each
source's spikes through its weights: Lava runs one synapse per source, and two
spikes reaching the same input position are two sets of synaptic ops. The ANN
adds its branches before the synapse, so its MACs are counted once. ANN MACs are
those of the deployed layers: pooling folded into a following synapse makes them
larger than a pool-then-multiply ANN would do. "Active" means the neuron received
at least one synaptic event (even if the events cancel) or fired at t.
Per-inference figures are sums over t, averaged over samples.

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

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, DeployableNetwork, Layer

BUILTIN_PROFILES = ("loihi1", "loihi2", "cmos45nm")
STATUSES = ("published", "pre-silicon", "derived", "assumption", "unverified")
UNITS = ("pJ", "ns")
REQUIRED = {
    "neuromorphic": ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_within_tile"),
    "digital": ("ac", "mac"),
}
ENERGY_CONSTANTS = REQUIRED["neuromorphic"] + REQUIRED["digital"] + ("graded_synaptic_op", "static_per_timestep")
REPORT_FORMAT = "dsatgo-energy-report"


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Constant:
    """One cited figure of a device profile."""

    name: str
    value: float
    unit: str
    source: str
    status: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "source": self.source, "status": self.status, "note": self.note}


@dataclass(frozen=True)
class Profile:
    """A device's energy model: ``kind`` ('neuromorphic' or 'digital') and its cited constants."""

    name: str
    description: str
    kind: str
    note: str
    constants: dict[str, Constant]
    origin: str

    def energy(self, key: str) -> float:
        return self.constants[key].value


def _profile_error(origin: str, field: str, message: str) -> UserError:
    return UserError(f"{origin}: field '{field}': {message}")


def _string(origin: str, data: dict, key: str, prefix: str = "", required: bool = True) -> str:
    field = prefix + key
    if key not in data:
        if required:
            raise _profile_error(origin, field, "missing")
        return ""
    if not isinstance(data[key], str) or (required and not data[key].strip()):
        raise _profile_error(origin, field, "must be a non-empty string" if required else "must be a string")
    return data[key]


def _parse_profile(data: Any, origin: str) -> Profile:
    if not isinstance(data, dict):
        raise UserError(f"{origin}: a profile must be a JSON object, got {type(data).__name__}")
    name = _string(origin, data, "name")
    description = _string(origin, data, "description")
    kind = _string(origin, data, "kind")
    if kind not in REQUIRED:
        raise _profile_error(origin, "kind", f"unknown kind {kind!r} (known: {', '.join(REQUIRED)})")
    note = _string(origin, data, "note", required=False)
    raw = data.get("constants")
    if not isinstance(raw, dict):
        raise _profile_error(origin, "constants", "missing" if raw is None else "must be an object")
    constants = {}
    for key, spec in raw.items():
        prefix = f"constants.{key}."
        if not isinstance(spec, dict):
            raise _profile_error(origin, f"constants.{key}", "must be an object with value, unit, source, status, note")
        value = spec.get("value")
        if "value" not in spec:
            raise _profile_error(origin, prefix + "value", "missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _profile_error(origin, prefix + "value", f"must be a non-negative number, got {value!r}")
        unit = _string(origin, spec, "unit", prefix)
        required_unit = "pJ" if key in ENERGY_CONSTANTS else "ns" if key.startswith("time_") else None
        if unit not in UNITS or (required_unit and unit != required_unit):
            allowed = required_unit or " or ".join(UNITS)
            raise _profile_error(origin, prefix + "unit", f"must be {allowed}, got {unit!r}")
        status = _string(origin, spec, "status", prefix)
        if status not in STATUSES:
            raise _profile_error(origin, prefix + "status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
        constants[key] = Constant(key, float(value), unit, _string(origin, spec, "source", prefix), status,
                                  _string(origin, spec, "note", prefix, required=False))
    for key in REQUIRED[kind]:
        if key not in constants:
            raise _profile_error(origin, f"constants.{key}", f"missing (a {kind} profile needs {', '.join(REQUIRED[kind])})")
    return Profile(name, description, kind, note, constants, origin)


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name (``BUILTIN_PROFILES``) or a user's JSON file, validated.

    Raises UserError naming the file and the offending field."""
    if str(name_or_path) in BUILTIN_PROFILES:
        resource = resources.files("dsatgo_deploy").joinpath("profiles", f"{name_or_path}.json")
        # Named by its place in the package, not this machine's install path, so reports travel.
        origin, text = f"dsatgo_deploy/profiles/{name_or_path}.json", resource.read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        origin = str(path)
        if not path.is_file():
            raise UserError(f"{origin}: no such profile file (built-in profiles: {', '.join(BUILTIN_PROFILES)})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{origin}: cannot read profile ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return _parse_profile(data, origin)


# --------------------------------------------------------------------------- counting


@dataclass
class LayerCounts:
    """One layer's counts; arrays are (T,) int64 sums over all samples (divide by ``samples``).

    ``source`` is the first of ``sources`` (kept for readers of the single-source form)."""

    name: str
    source: str
    neurons: int
    fan_in: int
    nonzero_weights: int
    spiking: bool
    graded_input: bool
    samples: int
    spikes: np.ndarray
    synops: np.ndarray
    active_updates: np.ndarray
    ann_macs: int
    sources: tuple[str, ...] = ()
    kind: str = "dense"
    connections: int = 0  # (input position, output neuron) pairs the synapse joins
    synapses: int = 0  # connections with a non-zero weight: synops of one all-ones message per source
    depth: int = 1  # synapses between the input and this layer

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = (self.source,)

    @property
    def timesteps(self) -> int:
        return int(self.synops.shape[0])

    @property
    def updates(self) -> np.ndarray:
        """Neuron updates per timestep, summed over samples: n_L * samples."""
        return np.full(self.timesteps, self.neurons * self.samples, dtype=np.int64)

    @property
    def inactive_updates(self) -> np.ndarray:
        return self.updates - self.active_updates

    def per_inference(self, field: str) -> float:
        """Mean over samples of the sum over timesteps of ``field`` (e.g. 'synops')."""
        return float(getattr(self, field).sum()) / self.samples

    def per_timestep(self, field: str) -> list[float]:
        return (getattr(self, field) / self.samples).tolist()


@dataclass
class OperationCounts:
    layers: list[LayerCounts]
    samples: int
    timesteps: int
    input_payloads_known: bool

    @property
    def depth(self) -> int:
        """Synaptic depth of the readout: the extra wall steps of one inference on Loihi."""
        return max((lc.depth for lc in self.layers), default=0)


def _events(layer: Layer, mask: torch.Tensor, messages: np.ndarray) -> np.ndarray:
    """Synaptic events per output neuron, (N, n_out) float64, of 0/1 messages (N, input_size).

    Dense: [m != 0] @ [W != 0]^T; conv: conv2d([m != 0], [W != 0]) with the layer's
    geometry, so taps over zero padding reach nothing. Exact: integers in float64."""
    flat = torch.from_numpy(np.ascontiguousarray(messages, dtype=np.float64))
    if layer.kind == "conv":
        geometry = layer.conv
        out = F.conv2d(flat.reshape(len(flat), *geometry.input_shape), mask, stride=geometry.stride,
                       padding=geometry.padding, dilation=geometry.dilation)
        return out.reshape(len(flat), -1).numpy()
    return (flat @ mask.T).numpy()


def _mask(layer: Layer, nonzero: bool = True) -> torch.Tensor:
    weight = np.asarray(layer.weight)
    return torch.from_numpy((weight != 0 if nonzero else np.ones_like(weight, dtype=bool)).astype(np.float64))


def connection_counts(layer: Layer) -> tuple[int, int]:
    """(connections, synapses) of a layer: every joined (input, output) pair, and those with W != 0."""
    ones = np.ones((1, layer.input_size))
    connections = int(np.rint(_events(layer, _mask(layer, nonzero=False), ones).sum()))
    synapses = int(np.rint(_events(layer, _mask(layer), ones).sum()))
    return connections, synapses


def _counts_spikes(layer: Layer) -> bool:
    """Whether energy counts the layer's own spikes: its neuron kind says (dsatgo_deploy.neurons)."""
    return "spikes" in layer.neuron_kind.energy_events


def count_operations(net: DeployableNetwork, spikes: dict[str, np.ndarray],
                     input_payloads: np.ndarray | None = None, chunk: int = 256) -> OperationCounts:
    """Exact operation counts (module doc) from spikes (B, T, n) of every spiking layer.

    Any engine's spikes will do (torch model, reference simulator, Lava), as long
    as they follow the network's layers and (C, H, W) neuron order.
    input_payloads: (B, *input_shape) integer payloads of the input layer; None
    assumes every payload non-zero (an upper bound on the input layer's synops)."""
    steps = net.timesteps
    samples = None
    for layer in net.layers:
        if not _counts_spikes(layer):
            continue
        if layer.name not in spikes:
            raise ValueError(f"spikes: layer '{layer.name}' is missing")
        shape = np.shape(spikes[layer.name])
        if len(shape) != 3 or shape[1:] != (steps, layer.num_neurons) or (samples is not None and shape[0] != samples):
            raise ValueError(f"spikes['{layer.name}']: shape {shape}, expected (B, {steps}, {layer.num_neurons})")
        samples = shape[0]
    if input_payloads is not None:
        payloads = np.asarray(input_payloads).reshape(len(input_payloads), -1)
        if payloads.shape[1] != net.input_size or (samples is not None and len(payloads) != samples):
            raise ValueError(f"input_payloads: shape {np.shape(input_payloads)} does not match (B, {net.input_size})")
        samples = len(payloads)
    else:
        payloads = np.ones((samples or 1, net.input_size), dtype=np.int64)
    if not samples:
        raise ValueError("count_operations needs at least one sample")
    depths = net.depths()
    layers = []
    for layer in net.layers:
        mask = _mask(layer)
        synops = np.zeros(steps, np.int64)
        active = np.zeros(steps, np.int64)
        n_out = layer.num_neurons
        # Keep each chunk's event array (b * T, n_out) below 2**24 entries.
        rows = max(1, min(chunk, (1 << 24) // max(1, steps * n_out)))
        for start in range(0, samples, rows):
            stop = min(start + rows, samples)
            own = (np.asarray(spikes[layer.name][start:stop], dtype=bool) if _counts_spikes(layer)
                   else np.zeros((stop - start, steps, n_out), bool))
            events = np.zeros((stop - start, steps, n_out))
            for source in layer.sources:
                if source == INPUT:  # the same payloads every timestep: one synapse pass
                    events += _events(layer, mask, payloads[start:stop] != 0)[:, None, :]
                else:
                    messages = np.asarray(spikes[source][start:stop], dtype=bool)
                    flat = messages.reshape((stop - start) * steps, -1)
                    events += _events(layer, mask, flat).reshape(stop - start, steps, n_out)
            synops += np.rint(events.sum(axis=(0, 2))).astype(np.int64)
            active += ((events > 0) | own).sum(axis=(0, 2))
        own_spikes = (np.asarray(spikes[layer.name], dtype=bool).sum(axis=(0, 2)).astype(np.int64)
                      if _counts_spikes(layer) else np.zeros(steps, np.int64))
        connections, synapses = connection_counts(layer)
        layers.append(LayerCounts(layer.name, layer.sources[0], n_out, layer.fan_in, int(mask.sum()),
                                  layer.spiking, layer.sources == [INPUT], samples, own_spikes, synops, active,
                                  connections, sources=tuple(layer.sources), kind=layer.kind,
                                  connections=connections, synapses=synapses, depth=depths[layer.name]))
    return OperationCounts(layers, samples, steps, input_payloads is not None)


# --------------------------------------------------------------------------- energy


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


#: Count (LayerCounts field) -> the profile's time constant (ns) it costs, for latency.
TIME_CONSTANTS = {"synops": "time_synaptic_op", "active_updates": "time_neuron_update_active",
                  "inactive_updates": "time_neuron_update_inactive", "spikes": "time_spike_within_tile"}


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


# --------------------------------------------------------------------------- reports


DEFINITIONS = {
    "per_inference": "sum over timesteps, mean over samples",
    "synops": "one op per synapse (connection with non-zero weight) reached by a non-zero message, per source; "
              "conv: the 0/1 message map convolved with the 0/1 kernel |W| != 0 (taps over padding reach nothing)",
    "neuron_updates": "every neuron of every layer at every timestep",
    "active_neuron_updates": "neuron received >= 1 synaptic event (non-zero message, non-zero weight) or fired at t",
    "firing_rate": "spikes / (neurons * timesteps); per timestep: spikes / neurons",
    "connections": "(input position, output neuron) pairs the synapse joins (conv: in-bounds kernel taps)",
    "synapses": "connections with a non-zero weight",
    "ann_macs": "connections per layer, once per inference (the ANN does not repeat over timesteps; "
                "summed sources are added before the synapse)",
    "latency": "T sample timesteps, T + depth wall steps on Loihi (one step per synapse); seconds from the "
               "profile's time_* constants where it has them",
}


def _energy_dict(est: EnergyEstimate) -> dict[str, Any]:
    ann = est.ann_pj
    return {
        "profile": est.profile.name, "kind": est.profile.kind, "description": est.profile.description,
        "origin": est.profile.origin, "note": est.profile.note,
        "layers": [{"name": le.name, "snn_pj": le.snn_pj, "ann_pj": le.ann_pj, "per_timestep_pj": le.per_timestep_pj,
                    "terms": [{"term": t.term, "count": t.count, "constants": list(t.constants), "energy_pj": t.energy_pj}
                              for t in le.snn_terms + le.ann_terms]} for le in est.layers],
        "totals": {"snn_dynamic_pj": est.snn_dynamic_pj, "static_pj": est.static_pj, "snn_total_pj": est.snn_total_pj,
                   "ann_pj": ann, "ann_over_snn": ann / est.snn_total_pj if ann is not None and est.snn_total_pj else None},
        "latency": None if est.latency is None else est.latency.as_dict(),
        "assumptions": est.assumptions, "uncertainty": est.uncertainty,
        "constants_used": {k: est.profile.constants[k].as_dict()
                           for k in sorted(set(est.constants_used()) | set(est.latency.constants if est.latency else ()))},
    }


def report_dict(counts: OperationCounts, estimates: Sequence[EnergyEstimate] = ()) -> dict[str, Any]:
    """JSON-able report: counts per layer (per inference and per timestep), totals, energy per profile."""
    layers = []
    for lc in counts.layers:
        rate = lc.per_inference("spikes") / (lc.neurons * lc.timesteps) if lc.spiking else None
        layers.append({
            "name": lc.name, "kind": lc.kind, "source": lc.source, "sources": list(lc.sources), "depth": lc.depth,
            "neurons": lc.neurons, "fan_in": lc.fan_in, "nonzero_weights": lc.nonzero_weights,
            "connections": lc.connections, "synapses": lc.synapses,
            "spiking": lc.spiking, "graded_input": lc.graded_input,
            "per_inference": {"spikes": lc.per_inference("spikes"), "firing_rate": rate,
                              "synops": lc.per_inference("synops"), "neuron_updates": lc.per_inference("updates"),
                              "active_neuron_updates": lc.per_inference("active_updates"),
                              "inactive_neuron_updates": lc.per_inference("inactive_updates"), "ann_macs": lc.ann_macs},
            "per_timestep": {"spikes": lc.per_timestep("spikes"),
                             "firing_rate": [s / lc.neurons for s in lc.per_timestep("spikes")] if lc.spiking else None,
                             "synops": lc.per_timestep("synops"), "active_neuron_updates": lc.per_timestep("active_updates")},
        })
    keys = ("spikes", "synops", "neuron_updates", "active_neuron_updates", "inactive_neuron_updates", "ann_macs")
    return {
        "format": REPORT_FORMAT, "format_version": 1, "samples": counts.samples, "timesteps": counts.timesteps,
        "input_payloads_known": counts.input_payloads_known, "definitions": DEFINITIONS,
        "latency": {"timesteps": counts.timesteps, "depth": counts.depth, "wall_steps": counts.timesteps + counts.depth},
        "layers": layers,
        "totals": {k: sum(layer["per_inference"][k] for layer in layers) for k in keys},
        "energy": [_energy_dict(est) for est in estimates],
    }


def _si(pj: float | None) -> str:
    if pj is None:
        return "-"
    for scale, unit in ((1e6, "uJ"), (1e3, "nJ")):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _seconds(ns: float | None) -> str:
    if ns is None:
        return "-"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]


def format_table(report: dict[str, Any]) -> str:
    """Compact terminal table of a ``report_dict`` (per-inference counts, then energy per profile)."""
    lines = [f"Operations per inference (mean of {report['samples']} samples, T = {report['timesteps']})"]
    rows = []
    for item in report["layers"] + [{"name": "total", "per_inference": {**report["totals"], "firing_rate": None}}]:
        p = item["per_inference"]
        rate = "-" if p["firing_rate"] is None else f"{p['firing_rate']:.3f}"
        rows.append([item["name"], f"{p['spikes']:.4g}", rate, f"{p['synops']:.4g}", f"{p['neuron_updates']:.4g}",
                     f"{p['active_neuron_updates']:.4g}", f"{p['ann_macs']:.4g}"])
    lines += _table(["layer", "spikes", "rate", "synops", "updates", "active", "ANN MACs"], rows)
    for energy in report["energy"]:
        lines += ["", f"Energy per inference: {energy['profile']} ({energy['kind']})"]
        rows = [[le["name"], _si(le["snn_pj"]), _si(le["ann_pj"])] for le in energy["layers"]]
        t = energy["totals"]
        rows.append(["total", _si(t["snn_total_pj"]), _si(t["ann_pj"])])
        lines += _table(["layer", "SNN", "ANN"], rows)
        if t["static_pj"] is None:
            lines.append("static energy: not modelled (dynamic only)")
        else:
            lines.append(f"dynamic {_si(t['snn_dynamic_pj'])} + static {_si(t['static_pj'])}")
        if t["ann_over_snn"] is not None:
            lines.append(f"ANN / SNN: {t['ann_over_snn']:.3g}x")
        latency = energy.get("latency")
        if latency:
            line = f"latency: {latency['timesteps']} timesteps ({latency['wall_steps']} wall steps on Loihi)"
            if latency.get("serial_ns") is not None:
                line += (f"; {_seconds(latency['layer_parallel_ns'])} one core per layer, "
                         f"{_seconds(latency['serial_ns'])} serial")
            lines.append(line)
    return "\n".join(lines)
