"""Threshold policies: DS-ATGO's per-timestep schedule, or one threshold per layer.

``schedule`` keeps the T frozen running thresholds of every spiking layer (run
on Loihi by our ScheduledLIF). ``per-layer`` gives each layer one threshold, for
stock LIF neurons and netx files; it is chosen by calibration so that the
layer's spike count on the calibration data stays as close as possible to the
count under the schedule:

    theta_l = argmin_theta | N_l(theta; theta_1..l-1 already fixed) - N_l(schedule) |

layer by layer in order (each layer sees its predecessors' per-layer spikes).
N_l is monotone non-increasing in theta, so a bisection finds it; the layer's
input currents do not depend on its own threshold, so they are computed once
per layer and each bisection step only reruns the layer's neurons. Without
calibration data the mean of the schedule is used.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from .freeze import FrozenNetwork, lif_spikes, run_frozen

POLICIES = ("schedule", "per-layer")
BISECTION_STEPS = 30


def one_threshold_per_layer(schedule: np.ndarray) -> float:
    """The one threshold that stands for a layer's schedule where no calibration chose one (the
    per-layer policy without data, netx, NIR): the schedule's mean, its value when constant."""
    return float(np.mean(np.asarray(schedule, dtype=np.float64)))


def calibrate_per_layer(frozen: FrozenNetwork, calibration_x: np.ndarray | None) -> FrozenNetwork:
    """A copy of ``frozen`` whose spiking layers each have one constant threshold."""
    result = copy.deepcopy(frozen)
    if calibration_x is None or not len(calibration_x):
        for layer in result.layers:
            if layer.spiking:
                layer.threshold_schedule = np.full_like(layer.threshold_schedule,
                                                        one_threshold_per_layer(layer.threshold_schedule))
        return result
    _, target_spikes, _ = run_frozen(frozen, calibration_x)
    for layer in result.layers:
        if not layer.spiking:
            continue
        target = int(target_spikes[layer.name].sum())
        # This layer's currents, with its predecessors' per-layer thresholds already fixed.
        _, _, currents = run_frozen(result, calibration_x, until=layer.name)
        current = torch.from_numpy(currents[layer.name])
        schedule = np.asarray(layer.threshold_schedule, dtype=np.float64)
        low, high = float(schedule.min()) * 0.25 - 1e-6, float(schedule.max()) * 4.0 + 1e-6
        if low > high:
            low, high = high, low
        best_theta, best_error = one_threshold_per_layer(schedule), None
        for _ in range(BISECTION_STEPS):
            theta = 0.5 * (low + high)
            count = int(lif_spikes(current, layer.tau, np.full_like(schedule, theta)).sum())
            error = abs(count - target)
            if best_error is None or error < best_error:
                best_theta, best_error = theta, error
            if count == target:
                break
            if count > target:
                low = theta  # too many spikes: raise the threshold
            else:
                high = theta
        layer.threshold_schedule = np.full_like(schedule, best_theta)
    return result


def compare_policies(schedule: FrozenNetwork, per_layer: FrozenNetwork, x: np.ndarray,
                     y: np.ndarray | None = None) -> dict[str, Any]:
    """Spikes per inference per layer and accuracy of both policies on the same samples (float)."""
    report: dict[str, Any] = {"samples": int(len(x)), "layers": {}, "accuracy": {}}
    runs = {}
    for name, net in (("schedule", schedule), ("per-layer", per_layer)):
        readout, spikes, _ = run_frozen(net, x)
        runs[name] = (readout, spikes)
        if y is not None:
            report["accuracy"][name] = float((readout.argmax(1) == y).mean())
    for layer in schedule.layers:
        if layer.spiking:
            counts = {name: float(runs[name][1][layer.name].sum()) / max(len(x), 1) for name in runs}
            per_layer_layer = next(l for l in per_layer.layers if l.name == layer.name)
            report["layers"][layer.name] = {
                "spikes_per_inference": counts,
                "schedule": [float(v) for v in layer.threshold_schedule],
                "per_layer_threshold": float(per_layer_layer.threshold_schedule[0]),
            }
    report["class_agreement"] = float((runs["schedule"][0].argmax(1) == runs["per-layer"][0].argmax(1)).mean())
    return report
