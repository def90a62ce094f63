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
(energy.count_operations with the network's weights and input payloads), so
differences of synaptic operations and energy between rungs come from the
spikes alone, not from weights that quantization rounded to zero.

Like sides.run_torch, this module drives a trained model: hardware_sim imports
dsatgo_deploy.train (build_model) and dsatgo_deploy.export (freeze,
calibrate_per_layer, run_frozen) here and nowhere else in its reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from dsatgo_deploy.network import DeployableNetwork

from . import energy
from .parity import RunRecord
from .sides import record_model

LADDER_FORMAT = "dsatgo-accuracy-ladder"
RUNGS = ("float_adaptive", "float_schedule", "float_per_layer", "quantized_reference", "lava")
TITLES = {
    "float_adaptive": "float, adaptive thresholds",
    "float_schedule": "float, frozen schedule",
    "float_per_layer": "float, one threshold per layer",
    "quantized_reference": "quantized, reference simulator",
    "lava": "quantized, Lava",
}
DEFAULT_PROFILES = ("loihi1", "loihi2", "cmos45nm")
DEFAULT_BATCH_SIZE = 32  # TrainConfig's default, when the checkpoint does not say


@dataclass
class Rung:
    """One rung: what ran, and its record (None when skipped, with the reason)."""

    name: str
    description: str
    record: RunRecord | None = None
    skipped: str | None = None


def training_batch_size(checkpoint: dict) -> int:
    """The batch size the model was trained with (checkpoint meta), else the training default."""
    try:
        return int(json.loads(checkpoint["meta"]["config"])["batch_size"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_BATCH_SIZE


def _model(checkpoint: dict, device: str):
    from dsatgo_deploy.train.models import build_model

    model = build_model(checkpoint["arch"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


@torch.no_grad()
def run_adaptive(checkpoint: dict, x: np.ndarray, batch_size: int | None = None, device: str = "cpu") -> RunRecord:
    """The torch model with thresholds from each test batch's membrane statistics (rung 1).

    The network stays in eval mode (tdBN: running statistics); only its neurons
    are switched to training mode, which makes them compute the batch threshold.
    The running thresholds they would fold it into are restored after each batch."""
    model = _model(checkpoint, device)
    batch_size = batch_size or training_batch_size(checkpoint)
    neurons = dict(model.neurons.items())
    saved = {name: module.running_threshold.clone() for name, module in neurons.items()}

    def restore() -> None:
        for name, module in neurons.items():
            module.running_threshold.copy_(saved[name])

    try:
        for module in neurons.values():
            module.train()
        return record_model(model, x, "float_adaptive", batch_size, device, after_batch=restore)
    finally:
        restore()
        for module in neurons.values():
            module.eval()


def run_per_layer(checkpoint: dict, x: np.ndarray, calibration_x: np.ndarray | None) -> RunRecord:
    """The frozen float network with one calibrated threshold per layer (rung 3)."""
    from dsatgo_deploy.export.freeze import freeze, run_frozen
    from dsatgo_deploy.export.thresholds import calibrate_per_layer

    per_layer = calibrate_per_layer(freeze(checkpoint), calibration_x)
    readout, spikes, _ = run_frozen(per_layer, x)
    return RunRecord("float_per_layer", spikes, readout.argmax(axis=1))


def ladder_runs(checkpoint: dict, net: DeployableNetwork, x: np.ndarray, *,
                calibration_x: np.ndarray | None = None, batch_size: int | None = None, lava: bool = False,
                runs: dict[str, RunRecord] | None = None, device: str = "cpu") -> list[Rung]:
    """Run every rung on samples x. ``runs`` supplies records already made (keys: rung names,
    or 'torch' / 'reference' as sides.run_side names them), which are then not run again."""
    from .sides import run_lava, run_reference, run_torch

    given = dict(runs or {})
    given.setdefault("float_schedule", given.get("torch"))
    given.setdefault("quantized_reference", given.get("reference"))
    mode = checkpoint["arch"].get("neuron", {}).get("threshold_mode", "adaptive")
    batch = batch_size or training_batch_size(checkpoint)
    policy = net.quantization.get("threshold_policy", "schedule")
    descriptions = {
        "float_adaptive": (f"torch model; thresholds f_c (mean + std) of each batch of {batch} test samples' "
                           "membrane potentials, as in training; nothing updated"
                           + ("" if mode == "adaptive" else f" (this model's threshold mode is '{mode}': "
                                                            "no batch dependence)")),
        "float_schedule": "torch model in eval mode: running thresholds, one per layer and timestep",
        "float_per_layer": (f"frozen float network, one threshold per layer calibrated on "
                            f"{0 if calibration_x is None else len(calibration_x)} training samples "
                            "to keep each layer's spike count"),
        "quantized_reference": f"deployable network (threshold policy '{policy}') in the bit-exact reference simulator",
        "lava": f"deployable network (threshold policy '{policy}') in Lava, Loihi2SimCfg fixed_pt",
    }
    makers = {
        "float_adaptive": lambda: run_adaptive(checkpoint, x, batch, device),
        "float_schedule": lambda: run_torch(checkpoint, x, device),
        "float_per_layer": lambda: run_per_layer(checkpoint, x, calibration_x),
        "quantized_reference": lambda: run_reference(net, x, device),
        "lava": lambda: run_lava(net, x),
    }
    rungs = []
    for name in RUNGS:
        record = given.get(name)
        if record is None and (name != "lava" or lava):
            record = makers[name]()
        if record is not None and len(record.predictions) != len(x):
            raise ValueError(f"ladder: the '{name}' record has {len(record.predictions)} samples, expected {len(x)}")
        skipped = None if record is not None else "not run (Lava skipped)"
        rungs.append(Rung(name, descriptions[name], record, skipped))
    return rungs


def summarize_ladder(rungs: Sequence[Rung], net: DeployableNetwork, x: np.ndarray, y: np.ndarray,
                     profiles: Sequence[str | energy.Profile] = DEFAULT_PROFILES,
                     **context: Any) -> dict[str, Any]:
    """JSON-able ladder: per rung accuracy, agreement with the previous rung, spikes, synops, energy."""
    loaded = [p if isinstance(p, energy.Profile) else energy.load_profile(p) for p in profiles]
    payloads = net.encode_input(np.asarray(x))
    y = np.asarray(y)
    items = []
    previous: RunRecord | None = None
    for rung in rungs:
        item: dict[str, Any] = {"name": rung.name, "title": TITLES.get(rung.name, rung.name),
                                "description": rung.description, "available": rung.record is not None,
                                "skipped": rung.skipped}
        if rung.record is not None:
            record = rung.record
            counts = energy.count_operations(net, record.spikes, payloads)
            estimates = [energy.estimate_energy(counts, p) for p in loaded]
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


def compute_ladder(checkpoint: dict, net: DeployableNetwork, x: np.ndarray, y: np.ndarray, *,
                   calibration_x: np.ndarray | None = None, profiles: Sequence[str | energy.Profile] = DEFAULT_PROFILES,
                   batch_size: int | None = None, lava: bool = False, runs: dict[str, RunRecord] | None = None,
                   device: str = "cpu") -> dict[str, Any]:
    """The whole ladder (module doc) of ``checkpoint`` deployed as ``net``, on samples (x, y)."""
    rungs = ladder_runs(checkpoint, net, x, calibration_x=calibration_x, batch_size=batch_size, lava=lava,
                        runs=runs, device=device)
    return summarize_ladder(rungs, net, x, y, profiles, batch_size=batch_size or training_batch_size(checkpoint),
                            calibration_samples=0 if calibration_x is None else int(len(calibration_x)))


def format_ladder(ladder: dict[str, Any], profile: str | None = None) -> str:
    """Compact terminal table of a ladder (energy of one profile: the first by default)."""
    rungs = ladder["rungs"]
    names = [p for r in rungs if r["available"] for p in r["energy_pj"]]
    profile = profile or (names[0] if names else None)
    header = ["rung", "accuracy", "agree prev", "spikes/inf", "synops/inf", f"energy {profile}" if profile else "energy"]
    rows = []
    for r in rungs:
        if not r["available"]:
            rows.append([r["title"], "-", "-", "-", "-", r["skipped"] or "-"])
            continue
        agree = r["class_agreement_with_previous"]
        rows.append([r["title"], f"{r['accuracy']:.2%}", "-" if agree is None else f"{agree:.2%}",
                     f"{r['spikes_per_inference']:,.1f}", f"{r['synops_per_inference']:,.1f}",
                     energy._si(r["energy_pj"].get(profile)) if profile else "-"])
    return "\n".join([f"Accuracy ladder ({ladder['samples']} test samples)"] + energy._table(header, rows))
