"""A whole test set in bounded memory: sides run chunk by chunk of samples, each chunk reduced at once.

A run's spikes grow with the samples: the paper's full-width ResNet-19 (1.5 million spiking neurons, T = 2)
makes about 3 MB of spikes per sample and side, 60 GB for two sides over the 10,000 CIFAR-10 test images. ``dsatgo sim``, ``parity``
and ``report`` need only integers from them: each chunk's records are reduced (parity:
hardware_sim/parity.py :class:`ParityTally`; sim and report: hardware_sim/run_summary.py
:class:`RunSummary`) and dropped before the next chunk runs, so memory holds one chunk of spikes per side,
whatever the number of samples. The sides of a parity run in lockstep, chunk after chunk, on the same samples.

:data:`DEFAULT_CHUNK` = 64 samples. A chunk costs the engines' working memory for it more than the spikes
kept: at full width about 23 MiB per sample of the chunk (the torch model's float32 spike traces, the
simulator's int64 tensors). Measured with bench/stream_memory.py (parity reference vs torch, noise images;
0.9 GiB before the run), the peak RSS is 1.2 GiB in chunks of 16, 2.5 GiB in chunks of 64 and 6.8 GiB in
chunks of 256, the same for 256 and 1,024 images; CPU time per image 0.39 s, 0.44 s and 0.61 s (larger
chunks run slower on the CPU: their tensors leave the caches). 64 keeps several processes within a 23 GB
machine under torchrun at nearly the speed of the smallest chunks; on a GPU a larger ``--chunk`` gives
larger batches; a smaller network's chunk is far smaller.

Lava compiles and starts one graph per run, seconds each: a Lava side runs its whole block at once, as
before (hardware_sim/lava_backend.py already streams the samples through one graph); its record is then
reduced chunk by chunk like the others. A ``recorded`` side reads its file whole.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim.nir_frameworks import FrameworkUnavailable
from dsatgo_deploy.hardware_sim.parity import ParityTally, merge_tallies, tally
from dsatgo_deploy.hardware_sim.run_summary import RunSummary, merge_summaries, summarize
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.runs import RunRecord

from .nir_sides import NirSource
from .sides import NETWORK_SIDES, load_model, note_bias_input, record_model, run_reference, run_side

DEFAULT_CHUNK = 64  # samples per chunk (module doc)
WHOLE_SIDES = ("lava", "lava-float", "recorded")  # run (or read) once per block, then reduced chunk by chunk

__all__ = ["DEFAULT_CHUNK", "WHOLE_SIDES", "slice_record", "stream", "summarize_side", "tally_sides"]

#: A side ready to run: (first sample of the chunk within the block, the chunk's samples) -> its record.
Runner = Callable[[int, np.ndarray], RunRecord]


def slice_record(record: RunRecord, part: slice) -> RunRecord:
    """The samples ``part`` of a record (spikes, predictions, readout trace, messages, states)."""
    sliced = RunRecord(record.name, {k: v[part] for k, v in record.spikes.items()}, record.predictions[part],
                       None if record.readout_trace is None else record.readout_trace[part])
    sliced.messages = {k: v[part] for k, v in record.messages.items()}
    sliced.states = {layer: {k: v[part] for k, v in states.items()} for layer, states in record.states.items()}
    return sliced


def _runner(side: str, *, net: DeployableNetwork | None, checkpoint: dict | None, block: np.ndarray, device: str,
            progress: bool, recording: str | None, nir: NirSource | None, offset: int, total: int) -> Runner:
    """``side`` prepared once for a block of samples (the block's first sample is sample ``offset`` of
    ``total``): the torch model loaded and the ONNX graph built once; a whole side (:data:`WHOLE_SIDES`)
    run on the whole block at its first chunk and sliced."""
    if side == "torch" and checkpoint is not None:
        model = load_model(checkpoint, device)
        return lambda start, xs: record_model(model, xs, "torch", device=device)
    if side == "onnx" and net is not None:
        from dsatgo_deploy.export.onnx_writer import build_onnx
        from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx

        graph = build_onnx(net)
        return lambda start, xs: run_onnx(graph, xs)
    if side not in WHOLE_SIDES:
        return lambda start, xs: run_side(side, net=net, checkpoint=checkpoint, x=xs, device=device, nir=nir)
    whole: list[RunRecord] = []

    def sliced(start: int, xs: np.ndarray) -> RunRecord:
        if not whole:
            if side == "recorded":  # every process checks the whole file: an error is raised on all of them
                if recording is None or net is None:
                    raise ValueError("the recorded side needs the network and the recording file (--recorded)")
                from dsatgo_deploy.hardware_sim.recording import load_recording

                record = load_recording(recording, net, samples=total)
                whole.append(slice_record(record, slice(offset, offset + len(block))))
            else:
                whole.append(run_side(side, net=net, checkpoint=checkpoint, x=block, device=device,
                                      progress=progress))
        return slice_record(whole[0], slice(start, start + len(xs)))

    return sliced


def stream(sides: list[str], x: np.ndarray, chunk: int, unavailable: dict[str, str], *,
           net: DeployableNetwork | None, checkpoint: dict | None, device: str = "cpu", progress: bool = False,
           recording: str | None = None, nir: NirSource | None = None, offset: int = 0,
           total: int | None = None, teacher: str | None = None) -> Iterator[tuple[slice, dict[str, RunRecord]]]:
    """Run ``sides`` in lockstep on the block x, ``chunk`` samples at a time: (the chunk's samples within x,
    each side's record of them). The block's first sample is sample ``offset`` of ``total`` (default: x is
    all of them). A side whose framework cannot run here (FrameworkUnavailable, raised at its first chunk)
    is left out and entered in ``unavailable`` with the reason. ``teacher``: a side listed before
    "reference" whose record of each chunk teacher-forces the reference side (pipeline/sides.py run_reference)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
    total = len(x) if total is None else total
    if net is not None and any(side in NETWORK_SIDES for side in sides):
        note_bias_input(net, x)  # on the whole block: the onnx and teacher-forced runners bypass run_side
    runners = {side: _runner(side, net=net, checkpoint=checkpoint, block=x, device=device, progress=progress,
                             recording=recording, nir=nir, offset=offset, total=total) for side in sides}
    if teacher is not None:
        if teacher not in sides or "reference" not in sides[sides.index(teacher) + 1:] or net is None:
            raise ValueError(f"teacher forcing needs the side '{teacher}' listed before the reference side")

        def forced(start: int, xs: np.ndarray) -> RunRecord:  # ``records``: this chunk's, filled in sides order
            if teacher not in records:
                raise UserError(f"teacher forcing: the side '{teacher}' could not run ({unavailable.get(teacher)})")
            return run_reference(net, xs, device, teacher=records[teacher])

        runners["reference"] = forced
    for start in range(0, len(x), chunk):
        part = slice(start, min(start + chunk, len(x)))
        records = {}
        for side, run in list(runners.items()):
            try:
                records[side] = run(start, x[part])
            except FrameworkUnavailable as reason:  # a framework missing here is reported, not a failure
                if start:
                    raise
                unavailable[side] = str(reason)
                del runners[side]
        yield part, records


def summarize_side(side: str, x: np.ndarray, chunk: int = DEFAULT_CHUNK, *, net: DeployableNetwork,
                   counts: bool = False, device: str = "cpu", progress: bool = False) -> RunSummary:
    """``side`` of ``net`` on the samples x reduced chunk by chunk (hardware_sim/run_summary.py), with the
    operation counts when ``counts`` (a report needs them)."""
    parts = []
    for part, records in stream([side], x, chunk, {}, net=net, checkpoint=None, device=device, progress=progress):
        parts.append(summarize(net, records[side], x[part] if counts else None))
        del records  # before the next chunk runs: memory holds one chunk's spikes, not two
    return merge_summaries(parts)


def tally_sides(sides: list[str], x: np.ndarray, labels: np.ndarray | None, chunk: int = DEFAULT_CHUNK, *,
                net: DeployableNetwork | None, checkpoint: dict | None, device: str = "cpu", progress: bool = False,
                recording: str | None = None, nir: NirSource | None = None, offset: int = 0,
                total: int | None = None, teacher_forced: bool = False
                ) -> tuple[dict[str, ParityTally], dict[str, str]]:
    """Parity of ``sides`` on the block x (labels: its labels or None), chunk by chunk: each side that ran
    after the first that ran, its tally against that first side; and the sides that could not run, with
    why. ``offset`` / ``total``: the block's place among all samples (:func:`stream`). ``teacher_forced``:
    the reference side is fed the first side's messages of each layer's sources (:func:`stream` teacher)."""
    unavailable: dict[str, str] = {}
    parts: dict[str, list[ParityTally]] = {}
    for part, records in stream(sides, x, chunk, unavailable, net=net, checkpoint=checkpoint, device=device,
                                progress=progress, recording=recording, nir=nir, offset=offset, total=total,
                                teacher=sides[0] if teacher_forced else None):
        ran = [side for side in sides if side in records]
        chunk_labels = None if labels is None else np.asarray(labels)[part]
        for side in ran[1:]:
            parts.setdefault(side, []).append(tally(records[ran[0]], records[side], chunk_labels,
                                                    offset=offset + part.start))
        del records  # before the next chunk runs: memory holds one chunk's spikes, not two
    return {side: merge_tallies(found) for side, found in parts.items()}, unavailable
