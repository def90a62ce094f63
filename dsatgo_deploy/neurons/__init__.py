"""Neuron kinds, one module per kind, each registered once (see registry.py).

Built in: ``cuba_lif`` (one threshold per layer), ``scheduled_lif`` (a threshold per
timestep), ``readout`` (non-spiking; its v is the output), and the sigma-delta kinds with graded
messages: ``sigma_delta``, ``delta`` (input encoder), ``sigma`` (output decoder). A layer's kind is
``Layer.neuron``; :func:`infer_neuron` names the kind of a layer that does not say
(files written before the kind was stored).
"""

from __future__ import annotations

from .registry import FieldChecks, NeuronKind, neuron_kind, neuron_kinds, register_neuron
from . import cuba_lif, delta, readout, scheduled_lif, sigma, sigma_delta  # noqa: F401  (registers the built-in kinds)

__all__ = ["FieldChecks", "NeuronKind", "infer_neuron", "neuron_kind", "neuron_kinds", "register_neuron"]


def infer_neuron(spiking: bool, thresholds: int) -> str:
    """The kind of a layer that does not name one: ``readout`` if it does not spike, ``scheduled_lif``
    with more than one threshold, else ``cuba_lif``."""
    if not spiking:
        return readout.Readout.name
    return scheduled_lif.ScheduledLIF.name if thresholds > 1 else cuba_lif.CubaLIF.name
