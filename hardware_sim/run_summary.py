"""A run reduced to what ``dsatgo sim`` and the reports read, block by block of samples.

A :class:`~dsatgo_deploy.runs.RunRecord` holds every spike: (B, T, n) per layer, which for a paper-scale
network on a whole test set does not fit in memory. A :class:`RunSummary` keeps the predicted class of
each sample (one integer per sample), the spikes per timestep of every counted layer summed over samples
and neurons, and, when a report needs them, the operation counts (counts.py: (T,) sums over samples).
Summaries of disjoint blocks of samples merge (:func:`merge_summaries`) into the summary of their union,
exactly: every figure is a sum of integers divided once, at the end, by the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.runs import RunRecord

from .counts import OperationCounts, count_operations, mean_spikes, merge_counts, spike_counts


@dataclass
class RunSummary:
    """``name``: the engine; ``predictions``: (B,) int64 in sample order; ``spikes``: per counted layer its
    spikes per timestep (T,) int64 summed over the samples and neurons; ``counts``: the operation counts, when
    they were asked for (:func:`summarize`)."""

    name: str
    predictions: np.ndarray
    spikes: dict[str, np.ndarray]
    counts: OperationCounts | None = None

    @property
    def samples(self) -> int:
        return len(self.predictions)

    def spikes_per_inference(self) -> dict[str, float]:
        """As counts.spikes_per_inference on the whole run."""
        return mean_spikes(self.spikes, self.samples)

    def accuracy(self, labels: np.ndarray | None) -> float | None:
        """The share of predictions equal to ``labels`` (None without labels)."""
        return None if labels is None else float((self.predictions == np.asarray(labels).reshape(-1)).mean())


def summarize(net: DeployableNetwork, record: RunRecord, x: np.ndarray | None = None, *,
              payloads: np.ndarray | None = None) -> RunSummary:
    """The summary of ``record``, a run of ``net``; with the samples ``x`` of the run (or their input
    ``payloads``, DeployableNetwork.encode_input), also the operation counts (the payloads count the input
    layer's synaptic operations)."""
    if payloads is None and x is not None:
        payloads = net.encode_input(np.asarray(x))
    counts = None if payloads is None else count_operations(net, record.spikes, payloads)
    return RunSummary(record.name, np.asarray(record.predictions, dtype=np.int64), spike_counts(net, record.spikes),
                      counts)


def merge_summaries(parts: Sequence[RunSummary]) -> RunSummary:
    """The summary of the union of disjoint blocks of samples, ``parts`` in sample order (at least one)."""
    first = parts[0]
    counts = None if any(p.counts is None for p in parts) else merge_counts([p.counts for p in parts])
    return RunSummary(first.name, np.concatenate([p.predictions for p in parts]),
                      {name: sum(p.spikes[name] for p in parts) for name in first.spikes}, counts)
