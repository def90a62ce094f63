"""A ScheduledLIF whose bias mantissa is set per sample: the bias-input neuron of the deployable format.

lava-dl drives netx's LIF input neuron by its bias (``in_layer.neuron.bias_mant`` set to the image,
anew before each sample). :class:`BiasInputLIF` holds every sample's bias mantissas (``bias_table``,
(S, *shape), what the host would write before each sample) and, at Lava's 1-based time step t, uses
``bias_table[(t - 1) // P]`` (0 after the last sample): the population reads the network input at
depth 0, so sample s holds steps s P + 1 .. (s + 1) P, and resets at their first (reset_offset 1).
Everything else is ScheduledLIF's fixed point model (hardware_sim/lava_procs/scheduled_lif.py).
"""

from __future__ import annotations

import numpy as np

from dsatgo_deploy import lava_compat

lava_compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from dsatgo_deploy.hardware_sim.lava_procs.scheduled_lif import PyScheduledLifModelBitAcc, ScheduledLIF  # noqa: E402

__all__ = ["BiasInputLIF", "PyBiasInputLifModelBitAcc"]


class BiasInputLIF(ScheduledLIF):
    """ScheduledLIF with one bias mantissa array per sample (``bias_table``, (S, *shape), int)."""

    def __init__(self, *, bias_table: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        table = np.asarray(bias_table)
        if table.shape[1:] != tuple(self.proc_params["shape"]) or not len(table):
            raise ValueError(f"bias_table must be (samples, *{self.proc_params['shape']}), got {table.shape}")
        self.bias_table = Var(shape=table.shape, init=table)


@implements(proc=BiasInputLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyBiasInputLifModelBitAcc(PyScheduledLifModelBitAcc):
    """ScheduledLIF's bit-accurate model with this step's sample's bias mantissa."""

    implements_process = None  # inherited from ScheduledLIF's model: replaced by the decorator
    bias_table: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)

    def run_spk(self) -> None:
        sample = (self.time_step - 1) // self.reset_interval
        self.bias_mant = self.bias_table[sample] if sample < len(self.bias_table) else np.zeros_like(self.bias_mant)
        super().run_spk()
