"""The delta input encoder (netx's SDNN input neuron) of an identity layer; rules in sigma_delta.py's doc."""

from __future__ import annotations

from typing import Any

import torch

from dsatgo_deploy import loihi_sdn

from .registry import FieldChecks, register_neuron
from .sigma_delta import SigmaDeltaBase


class Delta(SigmaDeltaBase):
    name = "delta"
    onnx_state = ("act", "residue")

    def validate(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        if layer.kind != "identity":
            check.fail("neuron", f"a delta (input encoder) neuron receives its source one to one: its layer kind "
                                 f"is 'identity', not {layer.kind!r}")
        if layer.bias_mant.any():
            check.fail("bias_mant", "a delta (input encoder) neuron has no bias: all must be 0")
        super().validate(layer, timesteps, check)

    def states(self, layer: Any, a: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
        return {"s": loihi_sdn.delta_input_sequence(a, int(layer.threshold_schedule[0]), spike_exp=layer.bias_exp,
                                                    state_exp=self.state_exp)}

    def onnx_step(self, builder: Any, layer: Any, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        act = builder.wrap(builder.shift(a, layer.bias_exp + self.state_exp), 32)  # a << (spike_exp + state_exp)
        return self.onnx_delta(builder, layer, act, state)

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        if floating:
            raise self._missing("floating_pt Lava model (netx runs SDNN in fixed point)")
        return lava.ResetDelta(vth=int(layer.threshold_schedule[0]), spike_exp=layer.bias_exp,
                               state_exp=self.state_exp, **self.lava_common(layer, steps, common))


register_neuron(Delta())
