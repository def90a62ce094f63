"""Parity: does the deployed network do what the trained one did, and where not?

Any two runs of the same network on the same samples (the torch float model,
the reference simulator, Lava) are compared layer by layer:

* spike trains: the share of (sample, timestep, neuron) entries that agree (graded layers: their
  message values, where both runs kept them);
* spike counts per neuron (summed over T): the share of (sample, neuron) pairs
  with equal counts, and the totals of each side;
* the first divergence in (sample, layer, timestep, neuron) order, with both values;
* predicted classes: agreement, and the accuracy of each side against labels.

A run is a :class:`RunRecord`; the checker never needs to know which engine made it.

Tolerances (:func:`default_tolerance`) depend on the pair. The integer engines
(reference, lava, onnx, recorded) compute the same integers, so two of them must
agree exactly: every prediction and every spike count. A float side (torch, the
trained model; lava-float, Lava's float models) cannot match the quantized
integers spike for spike: 8-bit weights and integer decays move membrane
potentials by a fraction of a threshold, and a neuron near its threshold fires
one step earlier or later. Measured on digits MLPs (64 or 128 hidden, T = 4,
3 to 40 epochs, 100 and 360 test images; the demo's model: 100 % and 99.8 %),
torch and the integers agree on at least 98 % of predictions and 99.6 % of the
per-neuron spike counts of each layer; the defaults (95 % and 95 %) leave a
margin for other seeds and sizes while still catching a
broken export (a wrong scale or threshold drops both far below). A NIR file run in another
framework (``nir:<framework>``, hardware_sim/nir_frameworks.py) is float too: it gets the float
defaults against any side.

More than two runs (:func:`compare_many`): each is compared with the first, pair by pair; a side
that could not run (a framework not installed) is listed with its reason and fails nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.runs import RunRecord

from .nir_frameworks import SIDE_PREFIX as NIR_SIDE_PREFIX

INTEGER_SIDES = ("reference", "lava", "onnx", "recorded")  # the same integer arithmetic: bit-exact
FLOAT_SIDES = ("torch", "lava-float")  # float arithmetic: close to the integers, not equal; so is every nir: side
FLOAT_MIN_CLASS_AGREEMENT = 0.95  # measured >= 0.98 on digits MLPs (module doc)
FLOAT_MIN_SPIKE_AGREEMENT = 0.95  # measured >= 0.996 on digits MLPs


@dataclass
class Tolerance:
    """The agreement a pair must reach, and why those numbers."""

    min_class_agreement: float
    min_spike_agreement: float
    reason: str


def is_float_side(side: str) -> bool:
    """Whether a side computes in floats (torch, lava-float, a NIR framework ``nir:<framework>``)."""
    return side in FLOAT_SIDES or side.startswith(NIR_SIDE_PREFIX)


def default_tolerance(side_a: str, side_b: str) -> Tolerance:
    """Equality between two integer sides; the measured float defaults (module doc) when either side is float."""
    floats = [s for s in (side_a, side_b) if is_float_side(s)]
    if not floats:
        return Tolerance(1.0, 1.0, f"{side_a} and {side_b} compute the same integers: equality required")
    return Tolerance(FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT,
                     f"{' and '.join(floats)} {'is' if len(floats) == 1 else 'are'} float: near-threshold neurons "
                     "fire a step apart from the integers; defaults measured on digits with margin")


@dataclass
class Divergence:
    sample: int
    layer: str
    timestep: int
    neuron: int
    values: tuple[int, int]


@dataclass
class LayerParity:
    layer: str
    spikes: tuple[int, int]
    spike_train_agreement: float
    spike_count_agreement: float
    mismatched_entries: int


@dataclass
class ParityReport:
    sides: tuple[str, str]
    samples: int
    layers: list[LayerParity]
    class_agreement: float
    accuracy: tuple[float | None, float | None]
    first_divergence: Divergence | None
    bit_exact: bool
    passed: bool = True
    failures: list[str] = field(default_factory=list)
    tolerance: Tolerance | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerTally:
    """One layer's integers behind its :class:`LayerParity`: non-zero entries of each side, mismatched and
    all (sample, timestep, neuron) entries, equal-count and all (sample, neuron) pairs."""

    layer: str
    spikes: tuple[int, int]
    mismatched: int
    entries: int
    equal_counts: int
    count_pairs: int


@dataclass
class ParityTally:
    """The integers behind a :class:`ParityReport`, for a block of samples; tallies of disjoint blocks merge
    (:func:`merge_tallies`) into the tally of their union, whose :meth:`report` equals :func:`compare` on the
    whole runs field for field (the fractions are computed once, from the merged integers).
    ``first_key``: (global sample, layer position, timestep, neuron) of ``first``; ``correct``: each side's
    correct predictions, None without labels."""

    sides: tuple[str, str]
    samples: int
    layers: list[LayerTally]
    class_agreements: int
    correct: tuple[int, int] | None
    first: Divergence | None = None
    first_key: tuple[int, int, int, int] | None = None

    def report(self) -> ParityReport:
        """The parity report of these integers (tolerances not applied)."""
        layers = [LayerParity(
            layer=t.layer, spikes=t.spikes,
            spike_train_agreement=1.0 - t.mismatched / t.entries if t.entries else 1.0,
            spike_count_agreement=t.equal_counts / t.count_pairs if t.count_pairs else 1.0,
            mismatched_entries=t.mismatched) for t in self.layers]
        n = self.samples
        accuracy: tuple[float | None, float | None] = (None, None)
        if self.correct is not None:  # no samples: NaN, as the mean of nothing
            accuracy = (self.correct[0] / n, self.correct[1] / n) if n else (float("nan"), float("nan"))
        bit_exact = self.first is None and self.class_agreements == n
        return ParityReport(self.sides, n, layers, self.class_agreements / n if n else 1.0, accuracy, self.first,
                            bit_exact)


def tally(a: RunRecord, b: RunRecord, labels: np.ndarray | None = None, offset: int = 0) -> ParityTally:
    """The parity integers of two runs of the same samples (layers in a's order; both must have the same
    layers); ``offset``: the global index of their first sample (for the first divergence)."""
    if set(a.spikes) != set(b.spikes):
        raise ValueError(f"runs '{a.name}' and '{b.name}' record different layers: {sorted(a.spikes)} vs {sorted(b.spikes)}")
    if len(a.predictions) != len(b.predictions):
        raise ValueError(f"runs '{a.name}' and '{b.name}' cover {len(a.predictions)} and {len(b.predictions)} samples")
    layers: list[LayerTally] = []
    first: Divergence | None = None
    first_key: tuple[int, int, int, int] | None = None
    for rank, layer in enumerate(a.spikes):
        # graded layers compare their message values where both runs kept them (RunRecord.messages)
        both_graded = layer in a.messages and layer in b.messages
        sa, sb = (a.messages[layer], b.messages[layer]) if both_graded else (a.spikes[layer], b.spikes[layer])
        if sa.shape != sb.shape:
            raise ValueError(f"layer '{layer}': spike shapes differ: {sa.shape} ({a.name}) vs {sb.shape} ({b.name})")
        mismatch = sa != sb
        counts_a, counts_b = sa.sum(axis=1), sb.sum(axis=1)
        mismatched = int(np.count_nonzero(mismatch))
        layers.append(LayerTally(layer, (int(np.count_nonzero(sa)), int(np.count_nonzero(sb))), mismatched,
                                 int(mismatch.size), int(np.count_nonzero(counts_a == counts_b)), int(counts_a.size)))
        if mismatched:
            # the first in (sample, t, neuron) order within a layer; across layers the earliest sample wins,
            # then the earlier layer
            sample, t, neuron = np.unravel_index(int(np.argmax(mismatch.reshape(-1))), mismatch.shape)
            key = (offset + int(sample), rank, int(t), int(neuron))
            if first_key is None or key < first_key:
                first_key = key
                first = Divergence(key[0], layer, int(t), int(neuron),
                                   (int(sa[sample, t, neuron]), int(sb[sample, t, neuron])))
    correct = None
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        correct = (int(np.count_nonzero(a.predictions == labels)), int(np.count_nonzero(b.predictions == labels)))
    return ParityTally((a.name, b.name), len(a.predictions), layers,
                       int(np.count_nonzero(a.predictions == b.predictions)), correct, first, first_key)


def merge_tallies(parts: Sequence[ParityTally]) -> ParityTally:
    """The tally of the union of disjoint blocks of samples (at least one part; the same sides and layers)."""
    merged = parts[0]
    for part in parts[1:]:
        if part.sides != merged.sides or [t.layer for t in part.layers] != [t.layer for t in merged.layers]:
            raise ValueError(f"cannot merge the tallies of {part.sides} and {merged.sides}: different sides or layers")
        layers = [LayerTally(m.layer, (m.spikes[0] + p.spikes[0], m.spikes[1] + p.spikes[1]),
                             m.mismatched + p.mismatched, m.entries + p.entries, m.equal_counts + p.equal_counts,
                             m.count_pairs + p.count_pairs) for m, p in zip(merged.layers, part.layers)]
        correct = (None if merged.correct is None or part.correct is None else
                   (merged.correct[0] + part.correct[0], merged.correct[1] + part.correct[1]))
        earliest = min((m for m in (merged, part) if m.first_key is not None), key=lambda m: m.first_key,
                       default=merged)
        merged = ParityTally(merged.sides, merged.samples + part.samples, layers,
                             merged.class_agreements + part.class_agreements, correct, earliest.first,
                             earliest.first_key)
    return merged


def compare(a: RunRecord, b: RunRecord, labels: np.ndarray | None = None) -> ParityReport:
    """Compare two runs layer by layer (layers in a's order; both must have the same layers)."""
    return tally(a, b, labels).report()


def apply_tolerance(report: ParityReport, min_class_agreement: float | None = None,
                    min_spike_agreement: float | None = None) -> ParityReport:
    """Mark the report failed where agreement falls below the tolerances (fractions in [0, 1]); a tolerance
    left None takes the pair's default (:func:`default_tolerance`). The report records which applied and why."""
    default = default_tolerance(*report.sides)
    given = [name for name, value in (("class", min_class_agreement), ("spike", min_spike_agreement))
             if value is not None]
    min_class_agreement = default.min_class_agreement if min_class_agreement is None else min_class_agreement
    min_spike_agreement = default.min_spike_agreement if min_spike_agreement is None else min_spike_agreement
    for name, value in (("min_class_agreement", min_class_agreement), ("min_spike_agreement", min_spike_agreement)):
        if not 0.0 <= value <= 1.0:  # also False for NaN
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
    reason = (default.reason if not given else
              f"{' and '.join(given)} tolerance given by the caller" + ("" if len(given) == 2 else
                                                                       f"; otherwise {default.reason}"))
    report.tolerance = Tolerance(float(min_class_agreement), float(min_spike_agreement), reason)
    failures = []
    if report.class_agreement < min_class_agreement:
        failures.append(f"class agreement {report.class_agreement:.4f} < {min_class_agreement:.4f}")
    for layer in report.layers:
        if layer.spike_count_agreement < min_spike_agreement:
            failures.append(f"layer '{layer.layer}': spike-count agreement {layer.spike_count_agreement:.4f} "
                            f"< {min_spike_agreement:.4f}")
    report.failures = failures
    report.passed = not failures
    return report


def format_report(report: ParityReport) -> str:
    """A readable table of a parity report."""
    a, b = report.sides
    lines = [f"parity {a} vs {b} on {report.samples} samples: "
             + ("bit-exact" if report.bit_exact else "differs"),
             f"{'layer':<14}{'spikes ' + a:>20}{'spikes ' + b:>20}{'train agree':>13}{'count agree':>13}"]
    for layer in report.layers:
        lines.append(f"{layer.layer:<14}{layer.spikes[0]:>20}{layer.spikes[1]:>20}"
                     f"{layer.spike_train_agreement:>13.4%}{layer.spike_count_agreement:>13.4%}")
    lines.append(f"predicted-class agreement: {report.class_agreement:.2%}")
    if report.accuracy[0] is not None:
        lines.append(f"accuracy: {a} {report.accuracy[0]:.2%}, {b} {report.accuracy[1]:.2%}")
    if report.first_divergence is not None:
        d = report.first_divergence
        lines.append(f"first divergence: sample {d.sample}, layer '{d.layer}', timestep {d.timestep}, "
                     f"neuron {d.neuron}: {a}={d.values[0]} {b}={d.values[1]}")
    if report.tolerance is not None:
        t = report.tolerance
        lines.append(f"tolerance: class agreement >= {t.min_class_agreement:.2%}, spike-count agreement >= "
                     f"{t.min_spike_agreement:.2%} per layer ({t.reason})")
    lines.append("PASS" if report.passed else "FAIL: " + "; ".join(report.failures))
    return "\n".join(lines)


@dataclass
class MultiParityReport:
    """Several sides on the same samples: each side that ran against the first that ran (``pairs``, in the
    order given); ``unavailable``: side -> why it could not run (not a failure); ``passed``: every pair passed."""

    sides: list[str]
    samples: int
    pairs: list[ParityReport]
    unavailable: dict[str, str]
    passed: bool = True
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_many(sides: list[str], records: dict[str, RunRecord], unavailable: dict[str, str],
                 labels: np.ndarray | None = None, min_class_agreement: float | None = None,
                 min_spike_agreement: float | None = None) -> MultiParityReport:
    """Compare each run of ``records`` with the first run in ``sides`` order; tolerances as
    :func:`apply_tolerance` (None: the pair's default)."""
    ran = [side for side in sides if side in records]
    tallies = {side: tally(records[ran[0]], records[side], labels) for side in ran[1:]}
    samples = len(records[ran[0]].predictions) if ran else 0
    return many_from_tallies(sides, tallies, unavailable, samples, min_class_agreement, min_spike_agreement)


def many_from_tallies(sides: list[str], tallies: dict[str, ParityTally], unavailable: dict[str, str], samples: int,
                      min_class_agreement: float | None = None,
                      min_spike_agreement: float | None = None) -> MultiParityReport:
    """:func:`compare_many`'s report from ``tallies``: each side that ran after the first that ran, its
    tally against that first side (merged over every block of the samples)."""
    pairs = [apply_tolerance(tallies[side].report(), min_class_agreement, min_spike_agreement)
             for side in sides if side in tallies]
    return MultiParityReport(list(sides), samples, pairs, dict(unavailable), all(p.passed for p in pairs))


def format_note(side: str, note: dict[str, Any]) -> str:
    """One line on what a side ran: a nir side's file, and for whom it was written."""
    line = f"{side} runs {note['file']} (written for {note['nir_for'] or 'another tool'})"
    return line + ("" if note.get("as_written", True) else
                   f": not the file for {side}, whose reading of it differs (docs/interop.md)")


def format_many(report: MultiParityReport) -> str:
    """Each pair's table (:func:`format_report`), the sides that could not run, and the verdict."""
    blocks = [format_report(pair) for pair in report.pairs]
    if report.notes:
        blocks.insert(0, "\n".join(format_note(side, note) for side, note in report.notes.items()))
    for side, reason in report.unavailable.items():
        blocks.append(f"{side}: not run: {reason}")
    if not report.pairs:
        blocks.append("no pair compared: fewer than two sides ran")
    verdict = [f"{pair.sides[1]}: {'PASS' if pair.passed else 'FAIL'}" for pair in report.pairs]
    blocks.append(f"parity of {len(report.sides)} sides against {report.pairs[0].sides[0] if report.pairs else '-'}: "
                  + (", ".join(verdict) or "nothing compared") + (" -> PASS" if report.passed else " -> FAIL"))
    return "\n\n".join(blocks)
