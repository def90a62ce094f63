"""Sigma-delta kinds (SDNN), as Lava's fixed_pt ``lava.proc.sdn`` models compute them with netx's
exponents (dsatgo_deploy.loihi_sdn states every rule). Their messages are graded (``Layer.message_bits``):

* ``sigma_delta``: ``sigma += a; act = relu(sigma + bias'); delta-encode act against threshold vth'``,
  sends ``s >> state_exp`` (netx's SDNN hidden neuron, relu);
* ``delta``: the input encoder of an identity layer: its source's message x, ``act = x << (spike_exp +
  state_exp)``, delta-encoded, sent ``>> state_exp`` (netx's SDNN input neuron);
* ``sigma``: the output decoder (netx's ``sigma_output``): sends and holds the running int32 sum of a;
  a readout (it never feeds another layer), its sigma is the network's output.

with ``vth' = vth << (spike_exp + state_exp)``, ``bias' = bias_mant << (spike_exp + state_exp)``,
spike_exp = ``Layer.bias_exp`` (netx: 6) and state_exp = :data:`loihi_sdn.NETX_STATE_EXP` (6). No
current or voltage decay (both 0). State is zero at the start of every sample (on Lava: our
reset models, hardware_sim/lava_procs/reset_sdn.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsatgo_deploy import loihi, loihi_sdn

from .registry import FieldChecks, NeuronKind, register_neuron

#: vth and bias are scaled by 2**(spike_exp + state_exp) into int32 Vars: these mantissas keep them there.
SDNN_MANT_RANGE = (-(1 << 18), (1 << 18) - 1)
#: graded message bits (Loihi 2 graded spikes carry up to 24)
MESSAGE_BITS_RANGE = (1, 24)


class SigmaDeltaBase(NeuronKind):
    """What the three sigma-delta kinds share: graded messages, netx's exponents, no decays."""

    graded = True
    netx_reset = False
    state_exp = loihi_sdn.NETX_STATE_EXP
    onnx_state = ("sigma", "act", "residue")

    def validate(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        check.in_range("message_bits", layer.message_bits, *MESSAGE_BITS_RANGE)
        # spike_exp + state_exp + 19 mantissa bits <= 31: the scaled vth and bias stay int32
        check.in_range("bias_exp", layer.bias_exp, *loihi.BIAS_EXP_RANGE)
        check.in_range("current_decay", layer.current_decay, 0, 0)
        check.in_range("voltage_decay", layer.voltage_decay, 0, 0)
        check.in_range("bias_mant", layer.bias_mant, *SDNN_MANT_RANGE)
        self.validate_threshold(layer, check)

    def validate_threshold(self, layer: Any, check: FieldChecks) -> None:
        if layer.threshold_schedule.size != 1:
            check.fail("threshold_schedule", f"has {layer.threshold_schedule.size} values; a {self.name} neuron "
                                             "has one threshold (vth mantissa)")
        check.in_range("threshold_schedule", layer.threshold_schedule, 0, SDNN_MANT_RANGE[1])

    def run_reference(self, layer: Any, bias: torch.Tensor, a: torch.Tensor, steps: int,
                      record: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        states = self.states(layer, a, steps)
        self.check_record(record, states)
        return states

    def reference(self, layer: Any, bias: torch.Tensor, a: torch.Tensor, steps: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        states = self.states(layer, a, steps)
        return states["s"], states.get("sigma") if not self.spiking else None

    def states(self, layer: Any, a: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _bias(self, layer: Any, a: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(layer.bias_per_neuron, dtype=torch.int64, device=a.device)

    def onnx_delta(self, b: Any, layer: Any, act: str, state: dict[str, str]) -> dict[str, str]:
        """The delta encoding in the ONNX integer graph (export/onnx_writer.py's builder), as
        loihi_sdn._delta_encode without cum_error: from the new act and the state inputs act and residue, the
        outputs "messages" (``s >> state_exp``), "act_next" and "residue_next"."""
        from dsatgo_deploy.onnx_metadata import output_name

        threshold = int(loihi_sdn.sdnn_scaled(int(layer.threshold_schedule[0]), layer.bias_exp, self.state_exp))
        delta = b.wrap(b.add(b.op("Sub", [act, state["act"]]), state["residue"]), 32)
        sent = b.op("Where", [b.op("GreaterOrEqual", [b.op("Abs", [delta]), b.i64(threshold)]), delta, b.i64(0)])
        names = {key: output_name(layer.name, key) for key in ("messages", "act_next", "residue_next")}
        b.op("Identity", [b.shift(sent, -self.state_exp)], output=names["messages"])
        b.op("Identity", [act], output=names["act_next"])
        b.op("Identity", [b.wrap(b.op("Sub", [delta, sent]), 32)], output=names["residue_next"])
        return names

    def lava_common(self, layer: Any, steps: int, common: dict) -> dict:
        """Lava constructor arguments every reset SDN process takes."""
        return dict(shape=common["shape"], name=common["name"], reset_interval=steps,
                    reset_offset=common["reset_offset"])


class SigmaDelta(SigmaDeltaBase):
    name = "sigma_delta"

    def states(self, layer: Any, a: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
        messages, sigma = loihi_sdn.sigma_delta_reference(int(layer.threshold_schedule[0]), self._bias(layer, a), a,
                                                          steps, spike_exp=layer.bias_exp, state_exp=self.state_exp)
        return {"s": messages, "sigma": sigma}

    def onnx_step(self, builder: Any, layer: Any, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        from dsatgo_deploy.onnx_metadata import output_name

        b = builder
        sigma = b.op("Identity", [b.wrap(b.add(state["sigma"], a), 32)], output=output_name(layer.name, "sigma_next"))
        scaled = loihi_sdn.sdnn_scaled(torch.as_tensor(layer.bias_per_neuron), layer.bias_exp, self.state_exp)
        act = b.wrap(b.add(sigma, b.stored(scaled.numpy(), np.int64, f"{layer.name}.bias", layer.output_shape[:1],
                                           (1, layer.num_neurons))), 32)
        act = b.op("Where", [b.op("Greater", [act, b.i64(0)]), act, b.i64(0)])  # relu
        return {"sigma_next": sigma, **self.onnx_delta(b, layer, act, state)}

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        if floating:
            raise self._missing("floating_pt Lava model (netx runs SDNN in fixed point)")
        return lava.ResetSigmaDelta(vth=int(layer.threshold_schedule[0]), bias=common["bias_mant"],
                                    spike_exp=layer.bias_exp, state_exp=self.state_exp,
                                    **self.lava_common(layer, steps, common))


register_neuron(SigmaDelta())
