"""DS-ATGO LIF neuron: hard-reset LIF with a forward adaptive threshold (AT) and a
backward threshold-driven surrogate width (TGO).

Dynamics (paper Eqs. 1-3), for t = 1..T:

    U(t) = tau * U(t-1) * (1 - S(t-1)) + I(t)
    S(t) = 1(U(t) >= Vth(t))

Adaptive threshold (Eq. 5), one scalar per layer per timestep, from the
membrane-potential distribution of the mini-batch (U charged, pre-reset,
detached; std unbiased as in the authors' code):

    dVth(t) = f_c * (mean(U(t)) + std(U(t)))                  threshold_mode "adaptive"
    dVth    = f_c * sqrt(1 + tau^2) * Vth                     threshold_mode "estimated"
    dVth    = Vth                                             threshold_mode "fixed"

In training the batch value is used and a running average is kept per
timestep (Eq. 6: running <- m * batch + (1 - m) * running, m = 0.1, init 1.0);
eval uses the running value. Surrogate width (Eq. 7): kappa = kappa0 * (1 +
tanh(stat - Vth)) with stat = dVth ("tgo"), sigma ("tgo_sigma", the authors'
code) or kappa = kappa0 ("fixed").

The pure function :func:`lif_sequence` does the work over explicit parameters
and state; :class:`DSATGOLIF` is a thin module holding the decay parameter and
the running thresholds (registered buffers, so checkpoints carry them).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn

# The checkpoint's neuron config (its modes, defaults and checks) is part of the core's architecture format.
from dsatgo_deploy.architecture import DECAY_MODES, SURROGATE_MODES, THRESHOLD_MODES, NeuronConfig  # noqa: F401

from .surrogate import Scalar, spike_and_window, tgo_width


#: The four ablation settings of the paper (Fig. 6).
ABLATIONS = {
    "vanilla": dict(threshold_mode="fixed", surrogate_mode="fixed"),
    "at": dict(threshold_mode="adaptive", surrogate_mode="fixed"),
    "tgo": dict(threshold_mode="fixed", surrogate_mode="tgo"),
    "ds-atgo": dict(threshold_mode="adaptive", surrogate_mode="tgo"),
}


class LayerTrace(NamedTuple):
    """What one layer did over T steps: spikes (T, B, ...), thresholds (T,),
    surrogate widths (T,), share of neurons inside the surrogate window (T,)."""

    spikes: torch.Tensor
    thresholds: torch.Tensor
    widths: torch.Tensor
    window_share: torch.Tensor


#: Length of the blocks whose float32 sums of squares are added up in float64 (see :func:`moment_sums`).
STATISTICS_BLOCK = 1024

#: A function that combines the (count, sum, sum of squares) float64 sums of all processes (DDP).
SumsReducer = Callable[[torch.Tensor], torch.Tensor]


def _sum_and_squares(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum as float32, sum of squares as float64) of a 1-D tensor, both 0-dim.

    Exact enough at full width: one float32 ``torch.dot`` over 13 M values (batch 100, first
    ResNet-19 stage) is 3e-4 off in the sum of squares (7e-5 in the std). Here the squares are
    summed per block of STATISTICS_BLOCK values (a float32 norm per block, error ~1e-7) and the
    blocks in float64; the sum is torch's float32 cascade sum (error ~1e-8). The threshold then
    matches float64 to ~1e-8; on CPU it costs about 20-40 us more per call than the single dot
    on small layers and no more on large ones (memory-bound).
    """
    rows = flat.numel() // STATISTICS_BLOCK
    norms = torch.linalg.vector_norm(flat[: rows * STATISTICS_BLOCK].view(rows, STATISTICS_BLOCK), dim=1).double()
    squares = torch.dot(norms, norms)
    if rows * STATISTICS_BLOCK < flat.numel():
        tail = flat[rows * STATISTICS_BLOCK:]
        squares = squares + torch.dot(tail, tail).double()
    return flat.sum(), squares


def moment_sums(potential: torch.Tensor) -> torch.Tensor:
    """(count, sum, sum of squares) of the whole layer tensor, detached, as a float64 (3,) tensor:
    what processes add up under DDP (see :func:`_sum_and_squares` for the precision)."""
    flat = potential.detach().reshape(-1)
    total, squares = _sum_and_squares(flat)
    return torch.stack([squares.new_tensor(float(flat.numel())), total.double(), squares])


def _mean_and_std(count: Scalar, total: Scalar, squares: Scalar, on_host: bool) -> tuple[Scalar, Scalar]:
    """Mean and unbiased std (N - 1, as torch.std) from the sums (floats or float64 0-dim tensors)."""
    mean = total / count
    variance = (squares - total * mean) / max(count - 1.0, 1.0) if on_host else \
        (squares - total * mean) / (count - 1.0).clamp_min(1.0)
    if on_host:
        return mean, math.sqrt(max(variance, 0.0))
    return mean.float(), variance.clamp_min(0.0).sqrt().float()


def statistics_from_sums(sums: torch.Tensor, on_host: bool = False) -> tuple[Scalar, Scalar]:
    """Mean and unbiased std from :func:`moment_sums` (possibly summed over processes); Python
    floats with ``on_host``, else float32 0-dim tensors."""
    return _mean_and_std(*(sums.tolist() if on_host else sums.unbind(0)), on_host)


def batch_statistics(potential: torch.Tensor, on_host: bool = False) -> tuple[Scalar, Scalar]:
    """Mean and unbiased std over the whole layer tensor (batch x channels x space), detached.

    From the sum and the sum of squares: one pass each, markedly cheaper than torch.std on
    CPU; the potentials' mean is of the order of their spread, so no cancellation to fear.
    ``on_host``: Python floats (see train.surrogate.Scalar).
    """
    flat = potential.detach().reshape(-1)
    total, squares = _sum_and_squares(flat)
    if on_host:
        return _mean_and_std(float(flat.numel()), total.item(), squares.item(), True)
    return _mean_and_std(squares.new_tensor(float(flat.numel())), total.double(), squares, False)


def _vector(values: list[Scalar], device: torch.device) -> torch.Tensor:
    """(T,) float32 tensor from per-step floats or 0-dim tensors."""
    if values and isinstance(values[0], torch.Tensor):
        return torch.stack([v.detach().reshape(()).float() for v in values])
    return torch.tensor(values, dtype=torch.float32, device=device)


def lif_sequence(
    currents: torch.Tensor,
    tau: torch.Tensor,
    config: NeuronConfig,
    running_threshold: torch.Tensor,
    training: bool,
    host_scalars: bool | None = None,
    reduce_sums: SumsReducer | None = None,
) -> tuple[torch.Tensor, torch.Tensor, LayerTrace]:
    """Run a DS-ATGO LIF layer over T steps.

    currents: (T, B, ...) input current I(t); tau: scalar decay in (0, 1);
    running_threshold: (T,) running averages (read in eval, not modified here).
    Returns (spikes (T, B, ...), batch thresholds (T,) to fold into the running
    averages, trace).

    Thresholds and widths are per-layer scalars, kept as host floats on the CPU (reading a
    CPU tensor costs no synchronisation, and float arithmetic no op dispatch) and as 0-dim
    tensors on an accelerator; ``host_scalars`` overrides the choice (tests run both).
    ``reduce_sums``: combines the statistics' sums over processes (DDP), so that every process
    takes the threshold of the global batch.
    """
    device = currents.device
    on_host = device.type == "cpu" if host_scalars is None else host_scalars

    def scalar(value: float | torch.Tensor) -> Scalar:
        if on_host:
            return float(value)
        return torch.as_tensor(value, dtype=torch.float32, device=device)

    needs_stats = training and (config.threshold_mode == "adaptive" or config.surrogate_mode != "fixed")
    not_computed = scalar(float("nan"))
    if config.threshold_mode == "estimated":
        fixed_threshold = scalar(config.f_c * torch.sqrt(1.0 + tau.detach() ** 2) * config.v_th0)
    else:
        fixed_threshold = scalar(config.v_th0)
    fixed_kappa = scalar(config.kappa0)
    running = running_threshold.tolist() if on_host else running_threshold
    spikes, thresholds, widths, shares, batch_thresholds = [], [], [], [], []
    potential = previous_spike = None
    # unbind: one backward node for all T inputs (indexing currents[t] would allocate T full-size gradients).
    for t, current in enumerate(currents.unbind(0)):
        # U(0) = I(0): the decayed, reset rest state is exactly zero, so skip four ops at t = 0.
        potential = current if t == 0 else tau * potential * (1.0 - previous_spike) + current
        if needs_stats:
            if reduce_sums is None:
                mean, std = batch_statistics(potential, on_host)
            else:
                mean, std = statistics_from_sums(reduce_sums(moment_sums(potential)), on_host)
            batch_threshold = config.f_c * (mean + std)
        else:
            std = batch_threshold = not_computed
        if config.threshold_mode == "adaptive":
            threshold = batch_threshold if training else running[t]
        else:
            threshold = fixed_threshold
        if config.surrogate_mode == "fixed" or not training:
            kappa = fixed_kappa
        else:
            kappa = tgo_width(batch_threshold if config.surrogate_mode == "tgo" else std, config.v_th0, config.kappa0)
        out, window = spike_and_window(potential, threshold, kappa)
        spikes.append(out)
        thresholds.append(threshold)
        widths.append(kappa)
        shares.append(torch.count_nonzero(window) / window.numel())
        batch_thresholds.append(batch_threshold)
        previous_spike = out
    spike_tensor = torch.stack(spikes)
    trace = LayerTrace(spike_tensor, _vector(thresholds, device), _vector(widths, device), torch.stack(shares))
    return spike_tensor, _vector(batch_thresholds, device), trace


def decay_logit_for(tau: float) -> float:
    """Inverse of sigmoid: the PLIF parameter w with sigmoid(w) = tau (0.2 -> -ln 4)."""
    return math.log(tau / (1.0 - tau))


class DSATGOLIF(nn.Module):
    """A layer of DS-ATGO LIF neurons (see the module docstring for the equations).

    Parameters/buffers (their names are part of the checkpoint format):
    ``decay_logit`` (tau = sigmoid(decay_logit); a Parameter for PLIF, a buffer
    for a fixed decay) and ``running_threshold`` (T,) initialised to 1.0.
    """

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__()
        self.config = config
        logit = torch.tensor(decay_logit_for(config.tau_init))
        if config.decay_mode == "plif":
            self.decay_logit = nn.Parameter(logit)
        else:
            self.register_buffer("decay_logit", logit)
        self.register_buffer("running_threshold", torch.ones(timesteps))
        self.last_trace: LayerTrace | None = None
        #: Set by train.distributed under DDP: sums the threshold statistics over processes.
        self.reduce_sums: SumsReducer | None = None

    @property
    def tau(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logit)

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        """currents (T, B, ...) -> spikes (T, B, ...); updates running thresholds in training."""
        spikes, batch_thresholds, trace = lif_sequence(
            currents, self.tau, self.config, self.running_threshold, self.training, reduce_sums=self.reduce_sums
        )
        if self.training and self.config.threshold_mode == "adaptive":
            with torch.no_grad():
                m = self.config.momentum
                self.running_threshold.mul_(1.0 - m).add_(m * batch_thresholds.to(self.running_threshold))
        # Detached: a trace is for monitoring and parity, and must not keep the autograd graph alive.
        self.last_trace = trace._replace(spikes=trace.spikes.detach())
        return spikes
