"""Data-parallel DS-ATGO: N processes on a global batch compute what one process computes on it.

Two kinds of batch statistics make DS-ATGO's forward pass depend on the whole batch:

* the adaptive threshold (Eq. 5) and the TGO width (Eq. 7) of every spiking layer, per
  timestep: their (count, sum, sum of squares) are summed over processes before the mean
  and std are taken (:func:`all_reduce_sums`, installed on each neuron);
* tdBN: :class:`SynchronisedBatchNorm` takes the per-channel mean and variance over
  (B, T, H, W) of the global batch, SyncBatchNorm semantics (torch's own SyncBatchNorm runs
  on GPUs only; this one runs on any backend, gloo on CPU included). The all-reduce is
  differentiable, so the backward pass also sums the statistics' gradients over processes.

With DDP averaging the parameter gradients, the thresholds, widths, spikes, tdBN running
statistics and gradients then equal those of one process on the concatenated batch (to float
rounding), provided every process has the same local batch size.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_functional
from torch import nn

from .models import SpikingNetwork


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sums(sums: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over all processes of a statistics tensor (not differentiable)."""
    if _world_size() == 1:
        return sums
    sums = sums.clone()
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    return sums


class SynchronisedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """tdBN over the global batch of all processes: BatchNorm1d on (N, C) or BatchNorm2d on
    (N, C, H, W) (N = T x local batch), statistics per channel over every other axis.

    Same parameters, buffers and state-dict keys as nn.BatchNorm1d/2d; in eval mode, or in a
    single process, it is exactly torch's BatchNorm. The mean and then the variance are
    all-reduced in two passes (no cancellation); the running variance is unbiased over the
    global count, as torch's.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"expected a 2-D or 4-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not self.training or _world_size() == 1:
            return super().forward(input)
        axes = [0, *range(2, input.dim())]
        local_count = input.numel() // input.shape[1]
        count = all_reduce_sums(torch.tensor(float(local_count), dtype=input.dtype, device=input.device))
        mean = dist_functional.all_reduce(input.sum(dim=axes)) / count
        shape = [1, -1] + [1] * (input.dim() - 2)
        centred = input - mean.view(shape)
        variance = dist_functional.all_reduce((centred * centred).sum(dim=axes)) / count
        output = centred * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = variance.detach() * (count / (count - 1.0).clamp_min(1.0))
                self.running_mean.mul_(1.0 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1.0 - momentum).add_(momentum * unbiased)
        return output


def synchronise_statistics(model: SpikingNetwork) -> SpikingNetwork:
    """Make a model's batch statistics global over the process group (in place; returns it):
    tdBN layers become :class:`SynchronisedBatchNorm` (same state), neurons all-reduce their
    threshold statistics. Call before wrapping the model in DistributedDataParallel."""
    for name, norm in list(model.norms.items()):
        synced = SynchronisedBatchNorm(norm.num_features, eps=norm.eps, momentum=norm.momentum,
                                       affine=norm.affine, track_running_stats=norm.track_running_stats)
        reference = norm.running_mean if norm.track_running_stats else norm.weight
        synced.to(device=reference.device, dtype=reference.dtype)
        synced.load_state_dict(norm.state_dict())
        synced.train(norm.training)
        model.norms[name] = synced
    for neuron in model.neurons.values():
        neuron.reduce_sums = all_reduce_sums
    return model


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def shard_indices(num_samples: int, epoch: int, seed: int, rank: int, world: int) -> torch.Tensor:
    """This process's sample order for an epoch (DistributedSampler semantics, shuffle on)."""
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    total = math.ceil(num_samples / world) * world
    if total > num_samples:
        order = torch.cat([order, order[: total - num_samples]])
    return order[rank::world]
