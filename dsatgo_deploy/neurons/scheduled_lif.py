"""CUBA LIF whose threshold follows the sample timestep: DS-ATGO's frozen per-timestep thresholds.

The same recurrence as cuba_lif with ``vth = threshold_schedule[t]`` (T mantissas; one value
repeats). On Lava: our ScheduledLIF process (hardware_sim/lava_procs/scheduled_lif.py), as a
Loihi 2 programmable neuron would run it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .cuba_lif import CubaLIF
from .registry import register_neuron


class ScheduledLIF(CubaLIF):
    name = "scheduled_lif"
    schedule = True

    def thresholds(self, layer: Any, steps: int) -> list[int]:
        return [layer.threshold_at(t) for t in range(steps)]

    def frozen_schedule(self, neuron_config: dict, tau: float, running_threshold: Callable[[], np.ndarray],
                        timesteps: int) -> np.ndarray:
        """The float thresholds per timestep a trained DS-ATGO layer uses in eval mode (train/neuron.py, with its
        NeuronConfig defaults): "adaptive" its running thresholds (read only then), "estimated"
        f_c sqrt(1 + tau^2) v_th0, "fixed" v_th0."""
        from dsatgo_deploy.architecture import NeuronConfig

        config = NeuronConfig(**{k: v for k, v in neuron_config.items() if k in NeuronConfig._fields})
        if config.threshold_mode == "adaptive":
            return running_threshold()
        if config.threshold_mode == "estimated":
            return np.full(timesteps, config.f_c * math.sqrt(1.0 + tau * tau) * config.v_th0)
        return np.full(timesteps, float(config.v_th0))


register_neuron(ScheduledLIF())
