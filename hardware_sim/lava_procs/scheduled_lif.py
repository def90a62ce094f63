"""Lava processes of dsatgo-deploy: a LIF neuron whose threshold follows the timestep.

DS-ATGO learns one threshold per layer *per timestep* of a sample.  Stock Lava
has one threshold per LIF population, so :class:`ScheduledLIF` adds a threshold
schedule that is indexed by the phase of the current timestep within a sample,
and resets its state at the start of every sample (like ``LIFReset``), so that
many samples can stream back to back through one compiled network.

Process (the interface; models below implement it)::

    P     = reset_interval = len(vth_schedule)
    t     = 1, 2, ...                        (Lava's time_step, 1-based)
    if t % P == reset_offset % P:  u = v = 0        # before the dynamics
    phase = (t - reset_offset) % P
    u[t]  = u[t-1] * (1 - du) + a_in[t]
    v[t]  = v[t-1] * (1 - dv) + u[t] + bias
    s[t]  = v[t] > vth_schedule[phase]
    v[t]  = 0 where s[t]

With ``reset_offset = r`` the reset happens at t = r, r + P, r + 2P, ... (t > 0),
and that step has phase 0; a neuron whose input arrives with latency k (k Dense
layers in front of it) should therefore use ``reset_offset = 1 + k`` when the
samples are fed from t = 1 on (as netx does for its LIFReset blocks).

Fixed point model (tags ``fixed_pt``, ``bit_accurate_loihi``) is lava's
``PyLifResetModelBitAcc`` arithmetic, with the threshold taken from the schedule:

* ``a_in``: int32 as received (declared 16 bit, not enforced), MSB-aligned by
  ``a << 6``.
* ``du``, ``dv``: 12-bit decay constants; u decays by ``(4096 - (du + 1)) / 4096``
  (``ds_offset = 1``), v by ``(4096 - dv) / 4096``; decays round toward zero
  (``sign(p) * (|p| >> 12)`` of the int64 product).
* ``u``: 24-bit, wraps once by 2**24 into (-2**23, 2**23].
* ``v``: 24-bit, saturates to [-(2**23 - 1), 2**23 - 1].
* bias: ``bias_mant << bias_exp`` (``>> -bias_exp`` when negative), recomputed
  every step (bias_mant 13-bit, bias_exp 3-bit as declared by lava).
* threshold: ``vth_schedule[phase] << 6`` (mantissa of up to 17 bits), strict
  ``>``, recomputed every step (so ``vth_schedule.set()`` between runs takes
  effect, unlike stock LIF whose ``vth << 6`` is computed once).
* ``s_out``: int32 0/1 spikes, like lava's fixed point LIF models.

Floating point model (tag ``floating_pt``) is lava's ``PyLifResetModelFloat``
with ``vth = vth_schedule[phase]`` (no shifts; ``bias_exp`` ignored); ``s_out``
carries float 0/1 spikes.

Note: to find process models, Lava's compiler imports every module of the
package holding this file (``dsatgo_deploy.hardware_sim.lava_procs``, which therefore holds nothing else) and also executes
every ``.py`` file of its folder as a stand-alone module (siblings that use
relative imports then give "UserWarning: Cannot import module ..."), on every
compile.  Modules in this package should therefore import cleanly and cheaply.
Passing ``exception_proc_model_map={proc: PyScheduledLifModelBitAcc}`` (keyed by
the process *instance*) to ``Loihi2SimCfg`` skips that search.
"""

from __future__ import annotations

import typing as ty

import numpy as np

from dsatgo_deploy import lava_compat

lava_compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.process import LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import (  # noqa: E402
    AbstractPyLifModelFixed,
    AbstractPyLifModelFloat,
)
from lava.proc.lif.process import AbstractLIF  # noqa: E402

__all__ = [
    "NEVER_FIRES_VTH",
    "ScheduledLIF",
    "PyScheduledLifModelBitAcc",
    "PyScheduledLifModelFloat",
    "schedule_phase",
]

#: A stock fixed point LIF/LIFReset with this threshold mantissa never fires:
#: v saturates at 2**23 - 1, and the spike test is v > (2**17 << 6) = 2**23.
#: Use it for a non-spiking readout layer whose v (or u) is read instead.
NEVER_FIRES_VTH = 2**17


def schedule_phase(time_step: int, reset_interval: int, reset_offset: int) -> int:
    """Index into the threshold schedule used at 1-based ``time_step``."""
    return (time_step - reset_offset) % reset_interval


class ScheduledLIF(AbstractLIF):
    """LIF neurons with a per-phase threshold schedule and periodic reset.

    See the module docstring for the equations and bit widths.

    Parameters
    ----------
    shape : tuple(int)
        Number and topology of neurons.
    vth_schedule : 1-D array of length P
        Threshold for each phase 0..P-1 of a sample (fixed point: mantissa,
        used as ``vth_schedule[phase] << 6``; floating point: the threshold).
    u, v : float, list, numpy.ndarray, optional
        Initial current and voltage (0).
    du, dv : float, optional
        Current and voltage decay (fixed point: 12-bit integers).
    bias_mant, bias_exp : float, list, numpy.ndarray, optional
        Bias mantissa and exponent (exponent ignored in floating point).
    reset_interval : int, optional
        P; defaults to ``len(vth_schedule)`` and must equal it if given.
    reset_offset : int, optional
        u and v are zeroed at every step t with ``t % P == reset_offset % P``;
        that step uses ``vth_schedule[0]``.

    ``reset_interval`` and ``reset_offset`` are fixed at construction and are
    passed to the models through ``proc_params`` (as for lava's ``LIFReset``).
    """

    def __init__(
        self,
        *,
        shape: ty.Tuple[int, ...],
        vth_schedule: ty.Union[list, tuple, np.ndarray],
        u: ty.Union[float, list, np.ndarray] = 0,
        v: ty.Union[float, list, np.ndarray] = 0,
        du: float = 0,
        dv: float = 0,
        bias_mant: ty.Union[float, list, np.ndarray] = 0,
        bias_exp: ty.Union[float, list, np.ndarray] = 0,
        reset_interval: ty.Optional[int] = None,
        reset_offset: int = 0,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
        **kwargs,
    ) -> None:
        schedule = np.asarray(vth_schedule)
        period = int(schedule.size)
        super().__init__(
            shape=shape,
            u=u,
            v=v,
            du=du,
            dv=dv,
            bias_mant=bias_mant,
            bias_exp=bias_exp,
            name=name,
            log_config=log_config,
            reset_interval=period,
            reset_offset=reset_offset,
            **kwargs,
        )
        # Validated after AbstractProcess.__init__: a Process whose __init__
        # fails earlier makes lava's __del__ raise (no _runtime attribute).
        if schedule.ndim != 1 or period == 0:
            raise ValueError(
                "vth_schedule must be a non-empty 1-D array (one threshold per "
                f"phase), got shape {schedule.shape}"
            )
        if reset_interval is not None and reset_interval != period:
            raise ValueError(
                f"reset_interval={reset_interval} must equal len(vth_schedule)={period}"
            )
        if not isinstance(reset_offset, (int, np.integer)) or reset_offset < 0:
            raise ValueError(f"reset_offset must be an integer >= 0, got {reset_offset!r}")
        self.vth_schedule = Var(shape=(period,), init=schedule)

    @property
    def reset_interval(self) -> int:
        """P, the number of timesteps per sample (= len(vth_schedule))."""
        return self.proc_params["reset_interval"]

    @property
    def reset_offset(self) -> int:
        """Steps t with t % P == reset_offset % P zero u and v first."""
        return self.proc_params["reset_offset"]


@implements(proc=ScheduledLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyScheduledLifModelBitAcc(AbstractPyLifModelFixed):
    """Bit-accurate ScheduledLIF: lava's fixed point LIF arithmetic
    (``AbstractPyLifModelFixed.subthr_dynamics``/``scale_bias``) and
    ``PyLifResetModelBitAcc``'s step order, with threshold
    ``vth_schedule[phase] << 6`` (vth mantissa unsigned 17-bit)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth_schedule: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval

    def scale_threshold(self):
        """MSB-align this step's threshold: ``vth_schedule[phase] << 6``.
        Done every step (the schedule changes with the phase)."""
        phase = schedule_phase(self.time_step, self.reset_interval, self.reset_offset)
        self.effective_vth = np.left_shift(
            np.int64(self.vth_schedule[phase]), self.vth_shift
        )

    def spiking_activation(self):
        """Spike when voltage exceeds this phase's threshold (strict)."""
        return self.v > self.effective_vth

    def run_spk(self):
        # Same order as lava's PyLifResetModelBitAcc.run_spk.
        a_in_data = self.a_in.recv()

        if (self.time_step % self.reset_interval) == self.reset_offset:
            self.u *= 0
            self.v *= 0

        self.scale_bias()
        self.scale_threshold()

        self.subthr_dynamics(activation_in=a_in_data)

        s_out = self.spiking_activation()

        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)


@implements(proc=ScheduledLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyScheduledLifModelFloat(AbstractPyLifModelFloat):
    """Floating point ScheduledLIF: lava's float LIF dynamics
    (``AbstractPyLifModelFloat.subthr_dynamics``) and ``PyLifResetModelFloat``'s
    step order, spiking when ``v > vth_schedule[phase]``."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth_schedule: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = proc_params["reset_offset"] % self.reset_interval

    def spiking_activation(self):
        """Spike when voltage exceeds this phase's threshold (strict)."""
        phase = schedule_phase(self.time_step, self.reset_interval, self.reset_offset)
        return self.v > self.vth_schedule[phase]

    def run_spk(self):
        # Same order as lava's PyLifResetModelFloat.run_spk.
        a_in_data = self.a_in.recv()

        if (self.time_step % self.reset_interval) == self.reset_offset:
            self.u *= 0
            self.v *= 0

        self.subthr_dynamics(activation_in=a_in_data)

        s_out = self.spiking_activation()

        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)
