"""Samples shared across processes under torchrun: each process runs a side on one contiguous block
of the samples and reduces it chunk by chunk (pipeline/streaming.py: parity tallies, run summaries);
rank 0 gathers the blocks' small summaries, merges them and alone prints and writes. Only ``dsatgo sim
--save-spikes`` gathers whole RunRecords, which hold every spike.

``torchrun --nproc_per_node=N -m dsatgo_deploy.cli sim|parity|report ...`` sets RANK, WORLD_SIZE and
LOCAL_RANK; each process then uses the CPU (gloo) or, with ``--device cuda``, the GPU cuda:LOCAL_RANK
(nccl). A Lava side runs one Lava per process. Every engine treats samples independently, so
the gathered record is the one a single process makes on all samples. Without torchrun (WORLD_SIZE
unset or 1) nothing is initialised and a side runs on all samples, as before.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from dsatgo_deploy.hardware_sim.parity import ParityTally, merge_tallies
from dsatgo_deploy.hardware_sim.run_summary import RunSummary, merge_summaries
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.runs import RunRecord

from .nir_sides import NirSource
from .sides import run_side
from .streaming import DEFAULT_CHUNK, summarize_side, tally_sides

__all__ = ["Shard", "block", "join", "merge_records"]


def block(num_samples: int, rank: int, world: int) -> slice:
    """Process ``rank``'s contiguous block of ``num_samples`` samples: the first ``num_samples % world``
    processes take one sample more, so the blocks in rank order are the samples in order."""
    base, extra = divmod(num_samples, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def merge_records(records: list[RunRecord | None]) -> RunRecord:
    """The blocks' records (None for an empty block), in rank order, as one record: spikes, predictions,
    readout trace, graded layers' message values and recorded states where every block has them."""
    present = [r for r in records if r is not None]
    first = present[0]
    readouts = [r.readout_trace for r in present]
    merged = RunRecord(
        first.name,
        {layer: np.concatenate([r.spikes[layer] for r in present]) for layer in first.spikes},
        np.concatenate([r.predictions for r in present]),
        None if any(t is None for t in readouts) else np.concatenate(readouts))
    merged.messages = {layer: np.concatenate([r.messages[layer] for r in present]) for layer in first.messages
                       if all(layer in r.messages for r in present)}
    merged.states = {layer: {key: np.concatenate([r.states[layer][key] for r in present]) for key in states}
                     for layer, states in first.states.items()
                     if all(key in r.states.get(layer, {}) for r in present for key in states)}
    return merged


@dataclass(frozen=True)
class Shard:
    """This process's place among the torchrun processes: ``rank`` of ``world``; ``device``: the
    torch device its engines use (cuda:LOCAL_RANK under torchrun with a GPU)."""

    rank: int
    world: int
    device: str

    @property
    def main(self) -> bool:
        """Whether this process gathers, prints and writes (rank 0)."""
        return self.rank == 0

    def run(self, side: str, *, net: DeployableNetwork | None, checkpoint: dict | None, x: np.ndarray,
            progress: bool = False, recording: str | None = None, nir: NirSource | None = None) -> RunRecord | None:
        """Run ``side`` (pipeline/sides.py) on this process's block of x; on rank 0 the record of all
        of x, on the other ranks None. A recording already holds every sample: rank 0 reads it whole."""
        if self.world == 1 or side == "recorded":
            if not self.main:
                return None
            return run_side(side, net=net, checkpoint=checkpoint, x=x, device=self.device,
                            progress=progress, recording=recording, nir=nir)
        mine = x[block(len(x), self.rank, self.world)]
        record = None
        if len(mine):
            record = run_side(side, net=net, checkpoint=checkpoint, x=mine, device=self.device,
                              progress=progress and self.main, recording=recording, nir=nir)
        gathered: list[RunRecord | None] | None = [None] * self.world if self.main else None
        # Records travel between the processes of this one run only (never from a file).
        dist.gather_object(record, gathered, dst=0)
        return merge_records(gathered) if self.main else None

    def _gather(self, part: object) -> list | None:
        """Every process's ``part`` in rank order on rank 0 (None elsewhere); small summaries only."""
        gathered: list | None = [None] * self.world if self.main else None
        # Summaries travel between the processes of this one run only (never from a file).
        dist.gather_object(part, gathered, dst=0)
        return gathered

    def summarize(self, side: str, *, net: DeployableNetwork, x: np.ndarray, chunk: int = DEFAULT_CHUNK,
                  counts: bool = False, progress: bool = False) -> RunSummary | None:
        """``side`` on this process's block of x, reduced chunk by chunk (pipeline/streaming.py); on rank 0
        the merged summary of all of x, on the other ranks None."""
        if self.world == 1:
            return summarize_side(side, x, chunk, net=net, counts=counts, device=self.device, progress=progress)
        mine = x[block(len(x), self.rank, self.world)]
        part = None if not len(mine) else summarize_side(side, mine, chunk, net=net, counts=counts,
                                                         device=self.device, progress=progress and self.main)
        gathered = self._gather(part)
        return merge_summaries([p for p in gathered if p is not None]) if self.main else None

    def tally(self, sides: list[str], *, net: DeployableNetwork | None, checkpoint: dict | None, x: np.ndarray,
              y: np.ndarray | None, chunk: int = DEFAULT_CHUNK, progress: bool = False, recording: str | None = None,
              nir: NirSource | None = None, teacher_forced: bool = False
              ) -> tuple[dict[str, ParityTally], dict[str, str]] | None:
        """Parity of ``sides`` on this process's block of x (streaming.tally_sides); on rank 0 the tallies
        merged over all of x and the sides that could not run (on any process), on the other ranks None."""
        where = block(len(x), self.rank, self.world)
        local: tuple[dict[str, ParityTally], dict[str, str]] = ({}, {})
        if where.stop > where.start:
            local = tally_sides(sides, x[where], None if y is None else y[where], chunk, net=net,
                                checkpoint=checkpoint, device=self.device, progress=progress and self.main,
                                recording=recording, nir=nir, offset=where.start, total=len(x),
                                teacher_forced=teacher_forced)
        if self.world == 1:
            return local
        gathered = self._gather(local)
        if not self.main:
            return None
        unavailable = {side: why for _, missing in gathered for side, why in missing.items()}
        tallies = {side: merge_tallies(found) for side in sides
                   if (found := [t[side] for t, _ in gathered if side in t]) and side not in unavailable}
        return tallies, unavailable


def join(device: str = "cpu") -> Shard:
    """This process's shard, from the variables torchrun sets; the process group is initialised
    (gloo on CPU, nccl with one GPU per process) and destroyed at exit."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard(0, 1, device)
    if torch.device(device).type == "cuda":
        local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(local)
        device = str(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_leave)
    return Shard(dist.get_rank(), dist.get_world_size(), device)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
