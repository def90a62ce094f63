"""The non-spiking readout: a CUBA LIF that can never fire (vth = 2**17 > any v), read as its v after T steps.

No threshold schedule (empty). On Lava a stock LIFReset (reset once per sample); in the ONNX graph v'
is passed through. Energy counts its synaptic events and updates, no spikes.
"""

from __future__ import annotations

from typing import Any

from dsatgo_deploy import loihi

from .cuba_lif import CubaLIF, cuba_onnx_state
from .registry import FieldChecks, register_neuron


class Readout(CubaLIF):
    name = "readout"
    spiking = False
    schedule = False
    energy_events = ("synops", "neuron_updates")

    def thresholds(self, layer: Any, steps: int) -> list[int]:
        return [loihi.NEVER_FIRES_VTH] * steps

    def validate_thresholds(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        if layer.threshold_schedule.size:
            check.fail("threshold_schedule", "a readout (non-spiking) layer has no thresholds")

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        # float v does not saturate: only an infinite threshold is never reached
        return lava.LIFReset(vth=float("inf") if floating else loihi.NEVER_FIRES_VTH, reset_interval=steps, **common)

    def onnx_step(self, builder: Any, layer: Any, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        v, outputs = cuba_onnx_state(builder, layer, a, state, bias)
        builder.op("Identity", [v], output=outputs["v_next"])  # v <= 2**23 - 1 < NEVER_FIRES_VTH << 6
        return outputs


register_neuron(Readout())
