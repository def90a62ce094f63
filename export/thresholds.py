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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .freeze import CALIBRATION_DTYPE, FloatStatistics, FrozenNetwork, FrozenRun, float_statistics, record_statistics

POLICIES = ("schedule", "per-layer")
BISECTION_STEPS = 30


def one_threshold_per_layer(schedule: np.ndarray) -> float:
    """The one threshold that stands for a layer's schedule where no calibration chose one (the
    per-layer policy without data, netx, NIR): the schedule's mean, its value when constant."""
    return float(np.mean(np.asarray(schedule, dtype=np.float64)))


def spike_count(current: torch.Tensor, tau: float, theta: float) -> int:
    """Total spikes of lif_spikes(current, tau, [theta] * T) without its spike tensor: the same potentials
    (a reset written as 0 rather than multiplied by 0 differs only in the sign of a zero, which no
    comparison sees), in place, so a bisection step costs a few passes over the currents."""
    potential = current[:, 0].clone()
    fired = potential >= theta
    count = int(torch.count_nonzero(fired))
    for t in range(1, current.shape[1]):
        potential.mul_(tau).masked_fill_(fired, 0.0).add_(current[:, t])
        fired = potential >= theta
        count += int(torch.count_nonzero(fired))
    return count


def _bisect_threshold(current: torch.Tensor, tau: float, schedule: np.ndarray, target: int) -> float:
    """The one threshold whose spike count on these currents is closest to ``target`` (module doc)."""
    low, high = float(schedule.min()) * 0.25 - 1e-6, float(schedule.max()) * 4.0 + 1e-6
    if low > high:
        low, high = high, low
    best_theta, best_error = one_threshold_per_layer(schedule), None
    for _ in range(BISECTION_STEPS):
        theta = 0.5 * (low + high)
        count = spike_count(current, tau, theta)
        error = abs(count - target)
        if best_error is None or error < best_error:
            best_theta, best_error = theta, error
        if count == target:
            break
        if count > target:
            low = theta  # too many spikes: raise the threshold
        else:
            high = theta
    return best_theta


@dataclass
class Calibration:
    """The per-layer policy's network and what the float runs on the calibration samples gave under each
    policy (None without calibration data): quantize reads the max currents, compare_statistics the rest."""

    per_layer: FrozenNetwork
    schedule_run: FloatStatistics | None = None
    per_layer_run: FloatStatistics | None = None


def _thresholds_copy(frozen: FrozenNetwork) -> FrozenNetwork:
    """A copy whose layers can take new thresholds; the weights are shared, never written."""
    result = copy.copy(frozen)
    result.layers = [copy.copy(layer) for layer in frozen.layers]
    return result


@torch.inference_mode()
def calibrate(frozen: FrozenNetwork, calibration_x: np.ndarray | None) -> Calibration:
    """One threshold per spiking layer (module doc), in two float passes over the calibration samples: the
    schedule's, then one where each layer's threshold is chosen before its spikes feed the next layers."""
    result = _thresholds_copy(frozen)
    if calibration_x is None or not len(calibration_x):
        for layer in result.layers:
            if layer.spiking:
                layer.threshold_schedule = np.full_like(layer.threshold_schedule,
                                                        one_threshold_per_layer(layer.threshold_schedule))
        return Calibration(result)
    schedule_run = float_statistics(frozen, calibration_x)
    run, stats = FrozenRun(result, calibration_x, CALIBRATION_DTYPE), FloatStatistics(None, {}, {})
    for layer in result.layers:
        current = run.current(layer)  # its predecessors' per-layer thresholds already fixed
        spikes = None
        if layer.spiking:
            schedule = np.asarray(layer.threshold_schedule, dtype=np.float64)
            theta = _bisect_threshold(current, layer.tau, schedule, schedule_run.spike_counts[layer.name])
            layer.threshold_schedule = np.full_like(schedule, theta)
            spikes = run.fire(layer, current, layer.threshold_schedule)
        record_statistics(stats, layer, current, spikes)
    return Calibration(result, schedule_run, stats)


def calibrate_per_layer(frozen: FrozenNetwork, calibration_x: np.ndarray | None) -> FrozenNetwork:
    """A copy of ``frozen`` whose spiking layers each have one constant threshold."""
    return calibrate(frozen, calibration_x).per_layer


def compare_policies(schedule: FrozenNetwork, per_layer: FrozenNetwork, x: np.ndarray,
                     y: np.ndarray | None = None) -> dict[str, Any]:
    """Spikes per inference per layer and accuracy of both policies on the same samples (float)."""
    return compare_statistics(schedule, per_layer, float_statistics(schedule, x), float_statistics(per_layer, x),
                              len(x), y)


def compare_statistics(schedule: FrozenNetwork, per_layer: FrozenNetwork, schedule_run: FloatStatistics,
                       per_layer_run: FloatStatistics, samples: int, y: np.ndarray | None = None) -> dict[str, Any]:
    """compare_policies from the two policies' float runs on the same ``samples`` samples."""
    report: dict[str, Any] = {"samples": int(samples), "layers": {}, "accuracy": {}}
    runs = {"schedule": schedule_run, "per-layer": per_layer_run}
    if y is not None:
        for name, run in runs.items():
            report["accuracy"][name] = float((run.readout.argmax(1) == y).mean())
    for layer in schedule.layers:
        if layer.spiking:
            counts = {name: float(runs[name].spike_counts[layer.name]) / max(samples, 1) for name in runs}
            per_layer_layer = next(l for l in per_layer.layers if l.name == layer.name)
            report["layers"][layer.name] = {
                "spikes_per_inference": counts,
                "schedule": [float(v) for v in layer.threshold_schedule],
                "per_layer_threshold": float(per_layer_layer.threshold_schedule[0]),
            }
    report["class_agreement"] = float((schedule_run.readout.argmax(1) == per_layer_run.readout.argmax(1)).mean())
    return report
