"""Per-layer monitoring during training: firing rate, threshold, surrogate width and window share per
spiking layer and timestep, summed over an epoch's batches and averaged over its samples (of all
processes under torchrun)."""

from __future__ import annotations

import torch

from .distributed import _all_reduce
from .models import SpikingNetwork


class LayerMonitor:
    """Sums of per-layer, per-timestep statistics over many batches, weighted by batch size.

    One (layers, fields, T) tensor on the model's device (no host
    synchronisation per step); :meth:`result` sums it over processes and
    divides by the number of samples.
    """

    FIELDS = ("firing_rate", "threshold", "width", "window_share")

    def __init__(self, model: SpikingNetwork, fields: tuple[str, ...] = FIELDS) -> None:
        self.fields = fields
        self.names = list(model.neurons.keys())
        device = next((b.device for b in model.buffers()), torch.device("cpu"))
        self.sums = torch.zeros(len(self.names), len(fields), model.timesteps, device=device)
        self.samples = 0

    @torch.no_grad()
    def add(self, model: SpikingNetwork, batch: int) -> None:
        """Fold in the traces of the model's last forward pass (a batch of ``batch`` samples)."""
        traces = model.traces()
        for i, name in enumerate(self.names):
            trace = traces.get(name)
            if trace is None:
                continue
            values = {
                "firing_rate": lambda: trace.spikes.detach().float().flatten(2).mean(dim=2).sum(dim=1),
                "threshold": lambda: trace.thresholds.float() * batch,
                "width": lambda: trace.widths.float() * batch,
                "window_share": lambda: trace.window_share.float() * batch,
            }
            for j, key in enumerate(self.fields):
                self.sums[i, j] += values[key]().to(self.sums.device)
        self.samples += batch

    def result(self, world: int = 1) -> dict[str, dict[str, list[float]]]:
        """Averages per layer and field over all samples (of all processes when world > 1;
        every process must call it then)."""
        sums = self.sums
        samples = torch.tensor(float(self.samples), device=sums.device)
        if world > 1:
            sums, samples = _all_reduce(sums), _all_reduce(samples)
        averages = (sums / samples.clamp(min=1.0)).cpu()
        return {n: {k: averages[i, j].tolist() for j, k in enumerate(self.fields)} for i, n in enumerate(self.names)}
