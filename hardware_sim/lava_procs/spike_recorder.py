"""Lava process of dsatgo-deploy: a spike sink that writes straight into a memory-mapped .npy file.

Why not lava's ``RingBuffer`` sink: reading its ``data`` Var back
(``Var.get()``) moves every element as a separate float64 message between
processes (``PyLoihiProcessModel._get_var`` iterates with ``np.nditer``, "FIXME:
send a whole vector"), about 30 us each: 1.8 million spikes (a 16x16x8 conv
net, 5 layers, 200 steps) took 53 s to read against 4 s to simulate.

:class:`SpikeRecorder` instead receives its 0/1 messages every step and stores
``a_in != 0`` in row ``t - 1`` (``t`` = Lava's 1-based ``time_step``) of a
boolean ``.npy`` file of shape ``(num_steps, *shape)`` that the host created
(``numpy.lib.format.open_memmap``). The model maps the file shared, so the host
reads the rows as soon as the run has finished; steps beyond ``num_steps`` are
dropped. The file must exist before the run and stay until it is read.

Like every module of this package it must import cleanly and cheaply (Lava's
compiler executes each file of the folder when it searches process models).
"""

from __future__ import annotations

import typing as ty

import numpy as np

from dsatgo_deploy import lava_compat

lava_compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess, LogConfig  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

__all__ = ["SpikeRecorder", "PySpikeRecorderModel"]


class SpikeRecorder(AbstractProcess):
    """Records ``a_in != 0`` at every step into ``path`` (a (num_steps, *shape) bool .npy file).

    Parameters
    ----------
    shape : tuple(int)
        Shape of the recorded port.
    path : str
        Existing .npy file of dtype bool and shape ``(num_steps, *shape)``.
    num_steps : int
        Rows of the file; step t (1-based) goes to row t - 1, later steps are dropped.
    """

    def __init__(
        self,
        *,
        shape: ty.Tuple[int, ...],
        path: str,
        num_steps: int,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        super().__init__(shape=tuple(shape), path=str(path), num_steps=int(num_steps), name=name,
                         log_config=log_config)
        self.a_in = InPort(shape=tuple(shape))


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PySpikeRecorderModel(PyLoihiProcessModel):
    """Writes each step's ``a_in != 0`` into the shared memory map of the file."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._path = proc_params["path"]
        self._num_steps = proc_params["num_steps"]
        self._rows = None  # mapped on the first step, inside the actor process

    def run_spk(self) -> None:
        data = self.a_in.recv()
        if self._rows is None:
            self._rows = np.load(self._path, mmap_mode="r+")
        row = self.time_step - 1
        if row < self._num_steps:
            # a bool file records which messages are non-zero, an integer one their graded values
            self._rows[row] = (data != 0) if self._rows.dtype == bool else data
