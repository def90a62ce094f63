"""CUBA LIF whose threshold follows the sample timestep: DS-ATGO's frozen per-timestep thresholds.

The same recurrence as cuba_lif with ``vth = threshold_schedule[t]`` (T mantissas; one value
repeats). On Lava: our ScheduledLIF process (hardware_sim/lava_procs/scheduled_lif.py), as a
Loihi 2 programmable neuron would run it.
"""

from __future__ import annotations

from typing import Any

from .cuba_lif import CubaLIF
from .registry import register_neuron


class ScheduledLIF(CubaLIF):
    name = "scheduled_lif"
    schedule = True

    def thresholds(self, layer: Any, steps: int) -> list[int]:
        return [layer.threshold_at(t) for t in range(steps)]


register_neuron(ScheduledLIF())
