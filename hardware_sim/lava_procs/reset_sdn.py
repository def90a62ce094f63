"""Lava's sigma-delta processes with a per-sample reset, so that samples stream back to back.

Lava's ``Sigma``, ``Delta`` and ``SigmaDelta`` (lava.proc.sdn) have no reset and netx ignores
``reset_interval`` for them. :class:`ResetSigma`, :class:`ResetDelta` and :class:`ResetSigmaDelta`
are those processes with ``reset_interval`` P and ``reset_offset`` r (as LIFReset and our
ScheduledLIF take them); their fixed_pt models are Lava's own (``PySigmaModelFixed``,
``PyDeltaModelFixed``, ``PySigmaDeltaModelFixed``) with one addition before each step::

    if t % P == r % P:  sigma = act = residue = error = 0     # t: Lava's 1-based time_step

so a population of depth d (reset offset 1 + d) starts every sample from rest exactly when the
sample reaches it, as the deployable format requires. A graph compiled once runs all samples; one
run per sample would still let a layer's bias act during the steps before its first input arrives.

Only fixed point: netx runs SDNN networks in fixed point. Lava's compiler imports every module of this
package to find models, so this module imports cleanly and cheaply (see scheduled_lif.py).
"""

from __future__ import annotations

import typing as ty

from dsatgo_deploy import lava_compat

lava_compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.sdn.models import PyDeltaModelFixed, PySigmaDeltaModelFixed, PySigmaModelFixed  # noqa: E402
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta  # noqa: E402

__all__ = ["ResetDelta", "ResetSigma", "ResetSigmaDelta", "PyResetDeltaModelFixed", "PyResetSigmaModelFixed",
           "PyResetSigmaDeltaModelFixed"]

_STATE = ("sigma", "act", "residue", "error")


def _add_reset(process, reset_interval: int, reset_offset: int, name: str | None) -> None:
    if not isinstance(reset_interval, int) or reset_interval < 1:
        raise ValueError(f"reset_interval must be a positive integer, got {reset_interval!r}")
    if not isinstance(reset_offset, int) or reset_offset < 0:
        raise ValueError(f"reset_offset must be an integer >= 0, got {reset_offset!r}")
    process.proc_params["reset_interval"] = reset_interval
    process.proc_params["reset_offset"] = reset_offset % reset_interval
    if name:
        process.name = name


class ResetSigmaDelta(SigmaDelta):
    """Lava's SigmaDelta, its state zeroed at steps t with ``t % reset_interval == reset_offset % reset_interval``."""

    def __init__(self, *, reset_interval: int, reset_offset: int = 0, name: ty.Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        _add_reset(self, reset_interval, reset_offset, name)


class ResetDelta(Delta):
    """Lava's Delta encoder with the same reset."""

    def __init__(self, *, reset_interval: int, reset_offset: int = 0, name: ty.Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        _add_reset(self, reset_interval, reset_offset, name)


class ResetSigma(Sigma):
    """Lava's Sigma decoder with the same reset."""

    def __init__(self, *, shape: tuple[int, ...], reset_interval: int, reset_offset: int = 0,
                 name: ty.Optional[str] = None) -> None:
        super().__init__(shape=shape)
        _add_reset(self, reset_interval, reset_offset, name)


class _Reset:
    """The reset step every model below runs before Lava's own run_spk."""

    def reset_if_due(self) -> None:
        params = self.proc_params
        if self.time_step % params["reset_interval"] == params["reset_offset"]:
            for name in _STATE:
                if hasattr(self, name):
                    getattr(self, name)[...] = 0


@implements(proc=ResetSigmaDelta, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyResetSigmaDeltaModelFixed(_Reset, PySigmaDeltaModelFixed):
    implements_process = None  # inherited from Lava's model: replaced by the decorator

    def run_spk(self) -> None:
        self.reset_if_due()
        super().run_spk()


@implements(proc=ResetDelta, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyResetDeltaModelFixed(_Reset, PyDeltaModelFixed):
    implements_process = None

    def run_spk(self) -> None:
        self.reset_if_due()
        super().run_spk()


@implements(proc=ResetSigma, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyResetSigmaModelFixed(_Reset, PySigmaModelFixed):
    implements_process = None

    def run_spk(self) -> None:
        self.reset_if_due()
        super().run_spk()
