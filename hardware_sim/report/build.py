"""report.json: one run of a deployable network counted, priced and described, in one versioned shape.

Every command that writes a report (``dsatgo report``, ``dsatgo sim --report``,
``dsatgo export --report``, ``dsatgo demo``) writes this shape; the JSON Schema
beside this module (report.schema.json) is its contract, and :data:`SCHEMA_VERSION`
changes whenever a field changes meaning or goes away. ``loihi2_system`` (the Loihi 2
system model) is written by every command but optional in the schema: reports of version 1
written before it still validate. The demo adds its own optional sections (``parity``,
``export``, ``demo``) to the same report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import BUILTIN_PROFILES, Profile, load_profiles
from dsatgo_deploy.runs import RunRecord

from ..counts import LayerCounts, OperationCounts
from ..energy import EnergyEstimate, estimate_energy
from ..loihi2_report import choose_system, system_figures
from ..run_summary import RunSummary, summarize

REPORT_FORMAT = "dsatgo-report"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
DEFAULT_PROFILES = BUILTIN_PROFILES
#: Fields every report has; load_report checks them before rendering.
REQUIRED_FIELDS = ("engine", "samples", "timesteps", "layers", "totals", "energy")

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
TOTAL_KEYS = ("spikes", "synops", "neuron_updates", "active_neuron_updates", "inactive_neuron_updates", "ann_macs")


def energy_section(estimate: EnergyEstimate) -> dict[str, Any]:
    """One profile's energy: per layer term by term, totals, latency, and every constant used with its source."""
    ann = estimate.ann_pj
    latency = estimate.latency
    used = set(estimate.constants_used()) | set(latency.constants if latency else ())
    return {
        "profile": estimate.profile.name, "kind": estimate.profile.kind,
        "description": estimate.profile.description, "origin": estimate.profile.origin, "note": estimate.profile.note,
        "layers": [{"name": layer.name, "snn_pj": layer.snn_pj, "ann_pj": layer.ann_pj,
                    "per_timestep_pj": layer.per_timestep_pj,
                    "terms": [{"term": t.term, "count": t.count, "constants": list(t.constants),
                               "energy_pj": t.energy_pj} for t in layer.snn_terms + layer.ann_terms]}
                   for layer in estimate.layers],
        "totals": {"snn_dynamic_pj": estimate.snn_dynamic_pj, "static_pj": estimate.static_pj,
                   "snn_total_pj": estimate.snn_total_pj, "ann_pj": ann,
                   "ann_over_snn": ann / estimate.snn_total_pj if ann is not None and estimate.snn_total_pj else None},
        "latency": None if latency is None else latency.as_dict(),
        "assumptions": estimate.assumptions, "uncertainty": estimate.uncertainty,
        "constants_used": {name: estimate.profile.constants[name].as_dict() for name in sorted(used)},
    }


def layer_section(counts: LayerCounts) -> dict[str, Any]:
    """One layer's structure and counts, per inference and per timestep."""
    spikes = counts.per_inference("spikes")
    return {
        "name": counts.name, "kind": counts.kind, "sources": list(counts.sources), "depth": counts.depth,
        "neurons": counts.neurons, "fan_in": counts.fan_in, "nonzero_weights": counts.nonzero_weights,
        "connections": counts.connections, "synapses": counts.synapses,
        "spiking": counts.spiking, "graded_input": counts.graded_input,
        "per_inference": {"spikes": spikes,
                          "firing_rate": spikes / (counts.neurons * counts.timesteps) if counts.spiking else None,
                          "synops": counts.per_inference("synops"), "neuron_updates": counts.per_inference("updates"),
                          "active_neuron_updates": counts.per_inference("active_updates"),
                          "inactive_neuron_updates": counts.per_inference("inactive_updates"),
                          "ann_macs": counts.ann_macs},
        "per_timestep": {"spikes": counts.per_timestep("spikes"),
                         "firing_rate": ([s / counts.neurons for s in counts.per_timestep("spikes")]
                                         if counts.spiking else None),
                         "synops": counts.per_timestep("synops"),
                         "active_neuron_updates": counts.per_timestep("active_updates")},
    }


def counts_report(counts: OperationCounts, estimates: Sequence[EnergyEstimate] = ()) -> dict[str, Any]:
    """The counted part of a report: counts per layer, totals, latency in steps, energy per profile."""
    layers = [layer_section(lc) for lc in counts.layers]
    return {
        "samples": counts.samples, "timesteps": counts.timesteps,
        "input_payloads_known": counts.input_payloads_known, "definitions": DEFINITIONS,
        "latency": {"timesteps": counts.timesteps, "depth": counts.depth, "wall_steps": counts.timesteps + counts.depth},
        "layers": layers,
        "totals": {key: sum(layer["per_inference"][key] for layer in layers) for key in TOTAL_KEYS},
        "energy": [energy_section(estimate) for estimate in estimates],
    }


def network_section(net: DeployableNetwork, source: str | None, dataset: str | None) -> dict[str, Any]:
    """What was deployed: where it came from, its input and its layers."""
    training = net.provenance.get("training", {}) if isinstance(net.provenance, dict) else {}
    return {
        "source": source, "checkpoint": net.provenance.get("source_checkpoint"),
        "checkpoint_sha256": net.provenance.get("source_sha256"),
        "dataset": dataset or training.get("dataset"), "timesteps": net.timesteps,
        "input_shape": list(net.input_shape), "input_bits": net.input_encoding.bits,
        "threshold_policy": net.quantization.get("threshold_policy"),
        "layers": [{"name": layer.name, "kind": layer.kind, "output_shape": list(layer.output_shape)}
                   for layer in net.layers],
    }


def system_section(net: DeployableNetwork, counts: OperationCounts, system: str | None = None,
                   chips: int | None = None) -> dict[str, Any]:
    """The Loihi 2 system model's figures (hardware_sim.loihi2_report.system_figures, always with the
    loihi2 profile: the model needs its time constants) on the system asked for, or on the smallest
    that holds the network; ``selection`` says which."""
    name, count, how = choose_system(net, system, chips)
    return system_figures(net, counts, "loihi2", name, count) | {"selection": how}


def build_report(net: DeployableNetwork, x: np.ndarray | None, y: np.ndarray | None = None, *,
                 profiles: Sequence[str | Profile] = DEFAULT_PROFILES, record: RunRecord | None = None,
                 ladder: dict[str, Any] | None = None, source: str | None = None,
                 dataset: str | None = None, device: str = "cpu", system: str | None = None,
                 chips: int | None = None, summary: RunSummary | None = None) -> dict[str, Any]:
    """report.json of ``net`` on samples x: counts from ``summary`` (run_summary.py: any engine's run
    reduced block by block, with its counts), else from ``record`` (any engine's run on x) or, when both are
    None, from the reference simulator; energy per profile; the Loihi 2 system model on ``system`` /
    ``chips`` chips (default: the smallest that holds ``net``); accuracy when y is given."""
    if summary is None or summary.counts is None:
        if record is None:
            from ..reference import simulate

            record = simulate(net, x, device=device)
        summary = summarize(net, record, x)
    counts = summary.counts
    report: dict[str, Any] = {
        "format": REPORT_FORMAT, "schema_version": SCHEMA_VERSION, "engine": summary.name,
        "accuracy": summary.accuracy(y),
        "network": network_section(net, source, dataset),
        **counts_report(counts, [estimate_energy(counts, p) for p in load_profiles(profiles)]),
        "loihi2_system": system_section(net, counts, system, chips),
    }
    if ladder is not None:
        report["ladder"] = ladder
    return report


def check_report(data: Any) -> None:
    """UserError unless ``data`` is a report of this schema version with the fields the renderer reads."""
    if isinstance(data, dict) and ("energy_report" in data or data.get("format") == "dsatgo-energy-report"):
        raise UserError("a report of an earlier version, before schema_version 1: write it again with this version")
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise UserError(f"not a dsatgo report (no \"format\": \"{REPORT_FORMAT}\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"field 'schema_version': {data.get('schema_version')!r}, this version reads "
                        f"{SCHEMA_VERSION} (write the report again with this version)")
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise UserError(f"field '{key}' is missing")


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """A report.json, checked; UserError naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read report ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        check_report(data)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return data
