"""What one engine did on a batch of samples: the run record every stage after export shares.

The reference simulator, Lava, onnxruntime, the torch model, the float per-layer
network and a spike recording all produce a :class:`RunRecord`; parity compares
two of them, the operation counts and the reports read one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunRecord:
    """``name``: the engine; ``spikes``: per spiking layer (B, T, n) bool, in layer order;
    ``predictions``: the predicted class per sample (B,); ``readout_trace``: the integer
    readout potential after each step (B, T, n_out) where the engine has one, else None (a sigma output's
    trace is its sigma). A graded layer's spikes are its non-zero messages; ``messages`` keeps their values
    (B, T, n) int64 per graded layer, ``states`` the neuron states an engine was asked to record
    ({layer: {"u" | "v" | "sigma": (B, T, n)}})."""

    name: str
    spikes: dict[str, np.ndarray]
    predictions: np.ndarray
    readout_trace: np.ndarray | None = None
    messages: dict[str, np.ndarray] = field(default_factory=dict)
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spikes = {k: np.asarray(v).astype(bool) for k, v in self.spikes.items()}
        self.predictions = np.asarray(self.predictions).reshape(-1)
        for layer, array in self.spikes.items():
            if array.ndim != 3 or array.shape[0] != len(self.predictions):
                raise ValueError(f"run '{self.name}': layer '{layer}': spikes must be (B, T, n) with "
                                 f"B = {len(self.predictions)}, got {array.shape}")

    @classmethod
    def from_readout(cls, name: str, spikes: dict[str, np.ndarray], readout_trace: np.ndarray | None) -> RunRecord:
        """A simulator's run: predictions are the argmax of the readout's final v; without a
        readout (the last layer spikes), the argmax of the last layer's spike counts over T
        (the last entry of ``spikes``; ties go to the lowest neuron index)."""
        if readout_trace is None:
            predictions = np.asarray(list(spikes.values())[-1]).sum(axis=1).argmax(axis=1)
        else:
            predictions = readout_trace[:, -1].argmax(axis=1)
        return cls(name, spikes, predictions, readout_trace)

    @property
    def readout(self) -> np.ndarray | None:
        """The readout's v after the last timestep: the network's output (B, n_out); None without a readout."""
        return None if self.readout_trace is None else self.readout_trace[:, -1]
