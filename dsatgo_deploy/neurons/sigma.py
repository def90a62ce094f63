"""The sigma output decoder (netx's ``sigma_output``): a graded readout; rules in sigma_delta.py's doc."""

from __future__ import annotations

from typing import Any

import torch

from dsatgo_deploy import loihi_sdn

from .registry import FieldChecks, register_neuron
from .sigma_delta import SigmaDeltaBase


class Sigma(SigmaDeltaBase):
    name = "sigma"
    spiking = False
    readout_var = "sigma"
    energy_events = ("synops", "neuron_updates")
    onnx_state = ("sigma",)

    def validate(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        if layer.bias_mant.any():
            check.fail("bias_mant", "a sigma (output decoder) neuron has no bias: all must be 0")
        super().validate(layer, timesteps, check)

    def validate_threshold(self, layer: Any, check: FieldChecks) -> None:
        if layer.threshold_schedule.size:
            check.fail("threshold_schedule", "a sigma (output decoder) neuron has no threshold")

    def states(self, layer: Any, a: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
        sigma = loihi_sdn.sigma_sequence(a)
        return {"s": sigma, "sigma": sigma}

    def onnx_step(self, builder: Any, layer: Any, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        from dsatgo_deploy.onnx_metadata import output_name

        sigma_next = output_name(layer.name, "sigma_next")
        builder.op("Identity", [builder.wrap(builder.add(state["sigma"], a), 32)], output=sigma_next)
        return {"sigma_next": sigma_next}

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        if floating:
            raise self._missing("floating_pt Lava model (netx runs SDNN in fixed point)")
        return lava.ResetSigma(**self.lava_common(layer, steps, common))


register_neuron(Sigma())
