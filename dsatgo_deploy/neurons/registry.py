"""The neuron-kind registry: what every engine needs to know about one kind of neuron.

A layer names its kind (``Layer.neuron``); the engines (validation, the reference
simulator, the Lava backend, the ONNX writer, freeze's float run, energy counts)
look the kind up here and call its entry, as Lava picks a process model by tag.
A kind is one :class:`NeuronKind` subclass, registered once with
:func:`register_neuron`; a kind from outside the package registers the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.plugins import Registry

if TYPE_CHECKING:  # the network format imports this registry
    from dsatgo_deploy.network import Layer


class FieldChecks(Protocol):
    """What validation hands a kind: raise NetworkFormatError naming file, layer and field."""

    def fail(self, field: str, message: str) -> None: ...

    def in_range(self, field: str, values: np.ndarray | int, lo: int, hi: int) -> None: ...


class NeuronKind:
    """One kind of neuron: its integer fields and ranges, float semantics, reference step,
    Lava process, ONNX step and what energy counts for it. Subclass and override."""

    #: the name ``Layer.neuron`` holds and network.npz stores
    name: str = ""
    #: whether the kind fires (its layer's spikes feed later layers); else a readout, whose v is the output
    spiking: bool = True
    #: what the energy estimate counts per layer of this kind: "synops", "neuron_updates", "spikes"
    energy_events: tuple[str, ...] = ("synops", "neuron_updates", "spikes")
    #: whether its messages carry values (graded, ``Layer.message_bits`` bits) rather than 0/1 spikes
    graded: bool = False
    #: the Lava Var a non-spiking kind's output is read from (its readout trace)
    readout_var: str = "v"
    #: whether netx's block of this kind honours netx's reset_interval (a LIFReset); netx ignores it for SDNN
    netx_reset: bool = True
    #: the state its ONNX step takes in and gives out (``<layer>.<name>``, ``<layer>.<name>_next``), zeros at t = 0
    onnx_state: tuple[str, ...] = ("u", "v")

    def __eq__(self, other: object) -> bool:  # one kind per class: a re-imported module registers again
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def _missing(self, what: str) -> UserError:
        return UserError(f"neuron kind {self.name!r} has no {what}: this engine cannot run its layers")

    def validate(self, layer: Layer, timesteps: int, check: FieldChecks) -> None:
        """Check the layer's neuron fields (the synapse's are checked by the format)."""
        raise self._missing("validation")

    def float_spikes(self, current: torch.Tensor, tau: float, thresholds: np.ndarray) -> torch.Tensor:
        """The frozen float model over T on input currents (B, T, n): spikes (B, T, n)."""
        raise self._missing("float model (freeze)")

    def reference(self, layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The integer recurrence over T from rest on synaptic input a (B, T, n) (dsatgo_deploy.loihi):
        (spikes (B, T, n) bool, v after each step (B, T, n) for a readout, else None)."""
        raise self._missing("reference step")

    def run_reference(self, layer: Layer, bias: torch.Tensor, a: torch.Tensor, steps: int,
                      record: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        """:meth:`reference` with its states: {"s": messages (B, T, n) (bool spikes, int64 when graded),
        and each state named in ``record`` ("u", "v", "sigma": after each step, (B, T, n) int64)}."""
        spikes, voltage = self.reference(layer, bias, a, steps)
        states = {"s": spikes} | ({"v": voltage} if voltage is not None else {})
        self.check_record(record, states)
        return states

    def check_record(self, record: tuple[str, ...], states: dict[str, torch.Tensor]) -> None:
        missing = [name for name in record if name not in states]
        if missing:
            raise UserError(f"neuron kind {self.name!r} does not record {', '.join(missing)} "
                            f"(it has {', '.join(sorted(states))})")

    def lava_process(self, lava: Any, layer: Layer, steps: int, common: dict, floating: bool) -> Any:
        """The layer's Lava neuron process. ``lava``: the backend's namespace of Lava classes; ``common``:
        shape, reset_offset, name, du, dv, bias_mant, bias_exp already in Lava's layout (floating: mapped
        to Lava's float models)."""
        raise self._missing("Lava process")

    def onnx_step(self, builder: Any, layer: Layer, a: str, state: dict[str, str], timesteps: int,
                  bias: str | None = None) -> dict[str, str]:
        """One timestep in the ONNX integer graph (export/onnx_writer.py's builder): from synaptic input
        ``a`` and the state inputs {name: graph input} of :attr:`onnx_state` add nodes; return the outputs by field
        name ("<name>_next" for each state, and for a spiking kind "spikes" (bool) or, graded, "messages"
        (int64)), named with ``output_name``. ``bias``: a graph tensor (batch, neurons) of effective biases that
        replaces the layer's own (bias input), else None."""
        raise self._missing("ONNX step")


_KINDS: Registry[NeuronKind] = Registry("neuron kind")


def register_neuron(kind: NeuronKind) -> NeuronKind:
    """Register ``kind`` under ``kind.name`` (once; a second kind of the same name is refused)."""
    return _KINDS.register(kind.name, kind)


def neuron_kind(name: str) -> NeuronKind:
    """The registered kind of that name; KeyError for an unknown one."""
    return _KINDS.get(name)


def neuron_kinds() -> tuple[str, ...]:
    """Names of every registered kind, in registration order."""
    return _KINDS.names()
