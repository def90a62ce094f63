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

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        if floating:
            raise self._missing("floating_pt Lava model (netx runs SDNN in fixed point)")
        return lava.ResetSigma(**self.lava_common(layer, steps, common))


register_neuron(Sigma())
