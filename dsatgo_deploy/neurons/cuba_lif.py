"""CUBA LIF with one threshold per layer: Loihi's stock neuron (dsatgo_deploy.loihi states every rule).

    u(t) = wrap24( decay(u(t-1), 4095 - du) + (a(t) << 6) )
    v(t) = sat24( decay(v(t-1), 4096 - dv) + u(t) + (bias_mant << bias_exp) )
    s(t) = v(t) > vth << 6 ;  v(t) = 0 where s(t)

Float semantics (the frozen model): U(t) = tau U(t-1) (1 - S(t-1)) + I(t), S(t) = U(t) >= theta.
The other LIF kinds (a threshold schedule, the non-spiking readout) differ only in their
thresholds per timestep and derive from this entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dsatgo_deploy import loihi

from .registry import FieldChecks, NeuronKind, register_neuron


class CubaLIF(NeuronKind):
    name = "cuba_lif"
    #: whether the layer may hold T thresholds (one per sample timestep) rather than one
    schedule = False

    def thresholds(self, layer: Any, steps: int) -> list[int]:
        """vth mantissa at each sample timestep 0..T-1."""
        return [int(layer.threshold_schedule[0])] * steps

    def validate(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        check.in_range("bias_exp", layer.bias_exp, *loihi.BIAS_EXP_RANGE)
        check.in_range("bias_mant", layer.bias_mant, *loihi.BIAS_MANT_RANGE)
        check.in_range("current_decay", layer.current_decay, *loihi.CURRENT_DECAY_RANGE)
        check.in_range("voltage_decay", layer.voltage_decay, *loihi.VOLTAGE_DECAY_RANGE)
        self.validate_thresholds(layer, timesteps, check)

    def validate_thresholds(self, layer: Any, timesteps: int, check: FieldChecks) -> None:
        size = layer.threshold_schedule.size
        if size not in (1, timesteps):
            check.fail("threshold_schedule", f"has {size} values; expected 1 or T = {timesteps}")
        if size != 1 and not self.schedule:
            check.fail("threshold_schedule", f"has {size} values; a {self.name} neuron has one threshold "
                                             "(a schedule of T is a scheduled_lif)")
        check.in_range("threshold_schedule", layer.threshold_schedule, *loihi.THRESHOLD_RANGE)

    @torch.no_grad()
    def float_spikes(self, current: torch.Tensor, tau: float, thresholds: np.ndarray) -> torch.Tensor:
        # tau U (1 - S) + I in place: a reset written as 0 instead of multiplied by 0 differs only in the
        # sign of a zero, which no threshold comparison sees.
        out = torch.empty_like(current)
        potential, fired = None, None
        for t in range(current.shape[1]):
            if potential is None:
                potential = current[:, t].clone()
            else:
                potential.mul_(tau).masked_fill_(fired, 0.0).add_(current[:, t])
            fired = potential >= float(thresholds[t])
            out[:, t] = fired
        return out

    def reference(self, layer: Any, bias: torch.Tensor, a: torch.Tensor, steps: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return loihi.lif_sequence(layer.current_decay, layer.voltage_decay, bias, self.thresholds(layer, steps), a,
                                  record_voltage=not self.spiking)

    def run_reference(self, layer: Any, bias: torch.Tensor, a: torch.Tensor, steps: int,
                      record: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        if "u" not in record:  # lif_sequence's fast path keeps v when asked
            spikes, voltage = loihi.lif_sequence(layer.current_decay, layer.voltage_decay, bias,
                                                 self.thresholds(layer, steps), a,
                                                 record_voltage="v" in record or not self.spiking)
            states = {"s": spikes} | ({"v": voltage} if voltage is not None else {})
            self.check_record(record, states)
            return states
        # u asked for: step by step (lif_sequence keeps only v), on integer sums
        a = a.to(torch.int64) if a.is_floating_point() else a
        states = {name: torch.empty(a.shape, dtype=torch.int64, device=a.device) for name in ("u", "v")}
        spikes = torch.empty(a.shape, dtype=torch.bool, device=a.device)
        state = loihi.lif_initial_state(a[:, 0].shape, a.device)
        for t, vth in enumerate(self.thresholds(layer, steps)):
            state, spikes[:, t] = loihi.lif_step(loihi.LIFParameters(layer.current_decay, layer.voltage_decay, bias,
                                                                     vth), state, a[:, t])
            states["u"][:, t], states["v"][:, t] = state.u, state.v
        states["s"] = spikes
        self.check_record(record, states)
        return states

    def lava_process(self, lava: Any, layer: Any, steps: int, common: dict, floating: bool) -> Any:
        # ScheduledLIF (hardware_sim/lava_procs) adds the per-sample reset the streaming graph needs.
        schedule = np.array(self.thresholds(layer, steps), dtype=np.float64 if floating else np.int32)
        return lava.ScheduledLIF(vth_schedule=schedule, **common)

    def onnx_step(self, builder: Any, layer: Any, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        v, outputs = cuba_onnx_state(builder, layer, a, state, bias)
        from dsatgo_deploy.onnx_metadata import output_name

        table = builder.const(np.asarray(self.thresholds(layer, timesteps), np.int64) << loihi.THRESHOLD_SHIFT,
                              np.int64, f"{layer.name}.threshold_table")
        threshold = builder.op("Gather", [table, "t"], axis=0)
        spikes = builder.op("Greater", [v, threshold], output=output_name(layer.name, "spikes"))
        builder.op("Where", [spikes, builder.i64(0), v], output=outputs["v_next"])
        return {"spikes": spikes, **outputs}


def cuba_onnx_state(b: Any, layer: Any, a: str, state: dict[str, str], bias: str | None = None
                    ) -> tuple[str, dict[str, str]]:
    """u' and v' (before the spike test) of a CUBA population in the ONNX integer graph; returns (v', names
    of the outputs u_next (written) and v_next (left for the kind to write)). ``bias``: a graph tensor of
    effective biases per sample (bias input) in place of the layer's own."""
    from dsatgo_deploy.onnx_metadata import output_name

    # u' = wrap24(wrap32(decay(u) + wrap32(a << 6))) with Lava's single +-2**24 correction
    a_shifted = b.wrap(b.shift(a, loihi.ACTIVATION_SHIFT), 32)
    summed = b.wrap(b.add(b.decay(state["u"], loihi.current_decay_factor(layer.current_decay)), a_shifted), 32)
    half = loihi.STATE_HALF
    u = b.op("Where", [b.op("Greater", [summed, b.i64(half)]), b.op("Sub", [summed, b.i64(2 * half)]), summed])
    u_out = output_name(layer.name, "u_next")
    b.op("Where", [b.op("LessOrEqual", [summed, b.i64(-half)]), b.add(summed, b.i64(2 * half)), u], output=u_out)
    # v' = clip(wrap32(decay(v) + u' + bias), +-(2**23 - 1))
    if bias is None:
        values = loihi.effective_bias(torch.as_tensor(layer.bias_per_neuron, dtype=torch.int64), layer.bias_exp)
        bias = b.stored(values.numpy(), np.int64, f"{layer.name}.bias", layer.output_shape[:1], (1, layer.num_neurons))
    v_sum = b.add(b.add(b.decay(state["v"], loihi.voltage_decay_factor(layer.voltage_decay)), u_out), bias)
    v = b.op("Clip", [b.wrap(v_sum, 32), b.i64(-loihi.VOLTAGE_LIMIT), b.i64(loihi.VOLTAGE_LIMIT)])
    return v, {"u_next": u_out, "v_next": output_name(layer.name, "v_next")}


register_neuron(CubaLIF())
