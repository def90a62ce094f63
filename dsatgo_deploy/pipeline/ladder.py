"""Run the accuracy ladder's rungs (hardware_sim/ladder.py says what each is) and summarize them.

This drives three stages: the trained torch model (train/), export's frozen
float network and per-layer calibration (export/), and the simulators
(hardware_sim/), which is why it sits above them.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

import numpy as np
import torch

from dsatgo_deploy.export.freeze import freeze, run_frozen
from dsatgo_deploy.export.thresholds import calibrate_per_layer
from dsatgo_deploy.hardware_sim.ladder import RUNGS, Rung, summarize_ladder
from dsatgo_deploy.hardware_sim.run_summary import RunSummary, merge_summaries, summarize
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import BUILTIN_PROFILES, Profile
from dsatgo_deploy.runs import RunRecord

from .sides import load_model, record_model, run_lava, run_reference

DEFAULT_BATCH_SIZE = 32  # TrainConfig's default, when the checkpoint does not say


def training_batch_size(checkpoint: dict) -> int:
    """The batch size the model was trained with (checkpoint meta), else the training default."""
    try:
        return int(json.loads(checkpoint["meta"]["config"])["batch_size"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_BATCH_SIZE


@torch.no_grad()
def run_adaptive(checkpoint: dict, x: np.ndarray, batch_size: int | None = None, device: str = "cpu") -> RunRecord:
    """The torch model with thresholds from each test batch's membrane statistics (rung 1).

    The network stays in eval mode (tdBN: running statistics); only its neurons
    are switched to training mode, which makes them compute the batch threshold.
    The running thresholds they would fold it into are restored after each batch."""
    model = load_model(checkpoint, device)
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
    return per_layer_runner(checkpoint, calibration_x)(x)


def per_layer_runner(checkpoint: dict, calibration_x: np.ndarray | None) -> Callable[[np.ndarray], RunRecord]:
    """Rung 3 calibrated once, to run on any samples."""
    per_layer = calibrate_per_layer(freeze(checkpoint), calibration_x)

    def run(x: np.ndarray) -> RunRecord:
        readout, spikes, _ = run_frozen(per_layer, x)
        return RunRecord("float_per_layer", spikes, readout.argmax(axis=1))

    return run


def _chunked(run: Callable[[np.ndarray], RunRecord], net: DeployableNetwork, x: np.ndarray,
             chunk: int) -> RunSummary:
    """``run`` on x chunk by chunk, each chunk's record reduced with its counts and dropped (streaming.py)."""
    return merge_summaries([summarize(net, run(x[start:start + chunk]), x[start:start + chunk])
                            for start in range(0, len(x), chunk)])


def ladder_runs(checkpoint: dict, net: DeployableNetwork, x: np.ndarray, *,
                calibration_x: np.ndarray | None = None, batch_size: int | None = None, lava: bool = False,
                runs: dict[str, RunRecord | RunSummary] | None = None, device: str = "cpu",
                chunk: int | None = None) -> list[Rung]:
    """Run every rung on samples x. ``runs`` supplies records (or summaries) already made (keys: rung names,
    or 'torch' / 'reference' as run_side names them), which are then not run again. ``chunk``: run the
    rungs ``chunk`` samples at a time, each chunk reduced at once (bounded memory; the adaptive rung's chunk
    rounded up to whole batches, so that its batch thresholds are the same); None: whole records."""
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
    def schedule() -> Callable[[np.ndarray], RunRecord]:
        model = load_model(checkpoint, device)  # once, for every chunk
        return lambda xs: record_model(model, xs, "torch", device=device)

    makers: dict[str, Callable[[], Callable[[np.ndarray], RunRecord]]] = {  # each prepares a rung's run
        "float_adaptive": lambda: lambda xs: run_adaptive(checkpoint, xs, batch, device),
        "float_schedule": schedule,
        "float_per_layer": lambda: per_layer_runner(checkpoint, calibration_x),
        "quantized_reference": lambda: lambda xs: run_reference(net, xs, device),
    }
    rungs = []
    for name in RUNGS:
        record = given.get(name)
        if record is None and name == "lava" and lava:  # one Lava graph for all samples
            record = run_lava(net, x) if chunk is None else summarize(net, run_lava(net, x), x)
        elif record is None and name != "lava":
            run = makers[name]()
            steps = None if chunk is None else -(-chunk // batch) * batch if name == "float_adaptive" else chunk
            record = run(x) if steps is None else _chunked(run, net, x, steps)
        if record is not None and len(record.predictions) != len(x):
            raise ValueError(f"ladder: the '{name}' record has {len(record.predictions)} samples, expected {len(x)}")
        skipped = None if record is not None else "not run (Lava skipped)"
        rungs.append(Rung(name, descriptions[name], record, skipped))
    return rungs


def compute_ladder(checkpoint: dict, net: DeployableNetwork, x: np.ndarray, y: np.ndarray, *,
                   calibration_x: np.ndarray | None = None, profiles: Sequence[str | Profile] = BUILTIN_PROFILES,
                   batch_size: int | None = None, lava: bool = False,
                   runs: dict[str, RunRecord | RunSummary] | None = None, device: str = "cpu",
                   chunk: int | None = None) -> dict[str, Any]:
    """The whole ladder (module doc) of ``checkpoint`` deployed as ``net``, on samples (x, y); ``chunk``: as
    :func:`ladder_runs`."""
    rungs = ladder_runs(checkpoint, net, x, calibration_x=calibration_x, batch_size=batch_size, lava=lava,
                        runs=runs, device=device, chunk=chunk)
    return summarize_ladder(rungs, net, x, y, profiles, batch_size=batch_size or training_batch_size(checkpoint),
                            calibration_samples=0 if calibration_x is None else int(len(calibration_x)))
