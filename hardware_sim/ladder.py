"""The accuracy ladder: one trained model through deployment, with spikes and energy at each rung.

Rungs, in deployment order (each on the same test samples):

1. ``float_adaptive``: the trained torch model with DS-ATGO's adaptive
   thresholds as in training: each layer's threshold at each timestep is
   f_c (mean + std) of the membrane potentials of the current test batch
   (batches of the training batch size). Nothing is updated: tdBN uses its
   running statistics and the running thresholds are restored after every
   batch. (Models trained with a fixed or estimated threshold have no batch
   dependence: this rung then equals the next.)
2. ``float_schedule``: the same model in eval mode: the frozen schedule of
   running thresholds, one per layer and timestep (what export freezes).
3. ``float_per_layer``: the frozen float network with one threshold per layer,
   calibrated to keep each layer's spike count (export.thresholds), as netx
   files and stock LIF neurons need it.
4. ``quantized_reference``: the deployable network (Loihi fixed point, its own
   threshold policy, usually the schedule) in the bit-exact reference simulator.
5. ``lava``: the same network in Lava (Loihi2SimCfg fixed_pt), when run.

Every rung's spikes are counted on the deployed network's connectivity
(counts.count_operations with the network's weights and input payloads), so
differences of synaptic operations and energy between rungs come from the
spikes alone, not from weights that quantization rounded to zero.

The rungs are run by dsatgo_deploy/pipeline/ladder.py (they need the trained
model and export's freezing); this module turns their records into the ladder
of a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import BUILTIN_PROFILES, Profile, load_profiles
from dsatgo_deploy.runs import RunRecord

from .run_summary import RunSummary, summarize
from .energy import estimate_energy

LADDER_FORMAT = "dsatgo-accuracy-ladder"
RUNGS = ("float_adaptive", "float_schedule", "float_per_layer", "quantized_reference", "lava")
TITLES = {
    "float_adaptive": "float, adaptive thresholds",
    "float_schedule": "float, frozen schedule",
    "float_per_layer": "float, one threshold per layer",
    "quantized_reference": "quantized, reference simulator",
    "lava": "quantized, Lava",
}


@dataclass
class Rung:
    """One rung: what ran, and its record, or that record reduced chunk by chunk with its operation counts
    (run_summary.py; None when skipped, with the reason)."""

    name: str
    description: str
    record: RunRecord | RunSummary | None = None
    skipped: str | None = None


def summarize_ladder(rungs: Sequence[Rung], net: DeployableNetwork, x: np.ndarray, y: np.ndarray,
                     profiles: Sequence[str | Profile] = BUILTIN_PROFILES,
                     **context: Any) -> dict[str, Any]:
    """JSON-able ladder: per rung accuracy, agreement with the previous rung, spikes, synops, energy."""
    loaded = load_profiles(profiles)
    records = [rung.record for rung in rungs if isinstance(rung.record, RunRecord)]
    payloads = net.encode_input(np.asarray(x)) if records else None  # summaries carry their counts
    y = np.asarray(y)
    items = []
    previous: RunSummary | None = None
    for rung in rungs:
        item: dict[str, Any] = {"name": rung.name, "title": TITLES.get(rung.name, rung.name),
                                "description": rung.description, "available": rung.record is not None,
                                "skipped": rung.skipped}
        if rung.record is not None:
            record = (rung.record if isinstance(rung.record, RunSummary) else
                      summarize(net, rung.record, payloads=payloads))
            counts = record.counts
            estimates = [estimate_energy(counts, p) for p in loaded]
            spiking = [lc for lc in counts.layers if lc.spiking]
            neurons_steps = sum(lc.neurons for lc in spiking) * counts.timesteps
            spikes = sum(lc.per_inference("spikes") for lc in spiking)
            item.update({
                "accuracy": float((record.predictions == y).mean()),
                "class_agreement_with_previous": (None if previous is None else
                                                  float((record.predictions == previous.predictions).mean())),
                "spikes_per_inference": spikes,
                "firing_rate": spikes / neurons_steps if neurons_steps else None,
                "synops_per_inference": sum(lc.per_inference("synops") for lc in counts.layers),
                "layers": {lc.name: {"spikes": lc.per_inference("spikes"),
                                     "firing_rate": lc.per_inference("spikes") / (lc.neurons * lc.timesteps),
                                     "firing_rate_per_timestep": [s / lc.neurons for s in lc.per_timestep("spikes")]}
                           for lc in spiking},
                "energy_pj": {e.profile.name: e.snn_total_pj for e in estimates},
                "ann_energy_pj": {e.profile.name: e.ann_pj for e in estimates if e.ann_pj is not None},
            })
            previous = record
        items.append(item)
    return {"format": LADDER_FORMAT, "format_version": 1, "samples": int(len(x)), "timesteps": net.timesteps,
            "threshold_policy": net.quantization.get("threshold_policy", "schedule"),
            "counted_on": "the deployed network's connectivity and input payloads",
            **context, "rungs": items}
