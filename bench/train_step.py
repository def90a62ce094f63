"""Training-step time of DS-ATGO against a vanilla LIF, SEW ResNet-19, snnTorch and SpikingJelly.

One training step = forward + cross-entropy (label smoothing 0.1) + backward +
optimizer step, on fixed random-label batches; everything below is measured in
this one run and printed as ms/step (median of N timed steps; p25-p75 beside
it) and as ratios. Nothing is asserted.

1. DS-ATGO vs vanilla LIF (fixed threshold 1, fixed surrogate width 1), the same
   model code otherwise: the digits conv net (1x8x8, conv 32-32-pool-64-64-pool,
   fc 128, T=4) at batch 64 and a CIFAR-shaped small VGG (3x32x32, conv
   64-pool-128-pool-256-pool, fc 256, T=4) at batch 8. Goal: ratio < 1.05.
2. SEW ResNet-19 at full width (resnet19_architecture((3, 32, 32), 10, 2)),
   batch 8, T=2, SGD: ms/step, DS-ATGO and vanilla. The authors' code takes
   about 1.4 s per step on a 2-core CPU (docs/dsatgo.md).
3. The same two nets with snnTorch's ``snn.Leaky`` and SpikingJelly's
   ``neuron.LIFNode`` (multi-step mode, CPU) in place of our neuron: the
   same convs/linears/tdBN/readout (our SpikingNetwork with its neuron
   modules swapped), the same T and batch; their neuron set up as ours:
   decay 0.2, hard reset to 0, threshold 1, and the same rectangular
   surrogate of width 1 and height 1 (our own autograd function for snnTorch,
   which has none; SpikingJelly's ``surrogate.Rect(alpha=1)``). With the same
   weights all three give the same spikes and outputs; SpikingJelly
   (detach_reset=False) also gives our gradients; snnTorch always detaches its
   reset, so its gradients differ (not its cost). Their neurons have a fixed
   decay, so the like-for-like row of ours is "vanilla, fixed decay"; our
   default (DS-ATGO, learnable PLIF decay) is compared too. Goal: ours not
   slower. SpikingJelly 2.x has no ``backend`` argument: on CPU a surrogate
   outside its built-in fused list (Rect is outside) runs its pure-torch
   multi-step reference, the old "torch backend"; a row with its built-in
   Sigmoid surrogate (its own CPU op) is shown for information.

    python bench/train_step.py            # ~2 min on a quiet 2-core machine (--budget caps a busy one)
    python bench/train_step.py --quick    # smoke run, ~10 s (ResNet-19 at width 0.25)

Timing: torch.set_num_threads(2) (--threads), warm-up steps per variant, then
rounds in which every variant runs a few steps in turn (so drift from other
jobs on the machine hits all variants alike); ms/step is the median over all
timed steps (min and p25-p75 beside it). Ratios: of the medians, and, as
cross-checks that resist load from other jobs on a shared machine, the median
of per-round ratios and the ratio of the minima. If those three disagree, the
machine was busy: rerun when it is quiet.

Bench-only peers (not dependencies of the project; spikingjelly declares
torchvision/torchaudio/tensorboard and torch>=2.6, which would pull a CUDA
build, so never install its declared dependencies; what its import really
needs beyond ours is loguru):

    pip install snntorch==1.0.0 loguru && pip install --no-deps spikingjelly

A peer that is missing or fails to import is reported and skipped.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dsatgo_deploy.train.zoo import convnet_architecture, resnet19_architecture
from dsatgo_deploy.train.models import SpikingNetwork, build_model
from dsatgo_deploy.train.neuron import ABLATIONS, NeuronConfig

DECAY = 0.2  # the paper's decay (PLIF initial value); peers get it as a fixed decay
THRESHOLD = 1.0


def neuron_dict(ablation: str, decay_mode: str = "plif") -> dict:
    return NeuronConfig(decay_mode=decay_mode, tau_init=DECAY, **ABLATIONS[ablation])._asdict()


# --------------------------------------------------------------------------- peers


class _RectSpike(torch.autograd.Function):
    """Heaviside(x >= 0) forward, 1(|x| <= 1/2) backward: our Eq. 4 surrogate with kappa = 1, x = U - Vth."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 0.5).to(grad.dtype)


class SnnTorchLIF(nn.Module):
    """snn.Leaky over T (its per-step API), reset to zero, fixed beta = 0.2, rectangular surrogate."""

    last_trace = None  # SpikingNetwork.traces() skips layers without a trace

    def __init__(self, snn) -> None:
        super().__init__()
        self.lif = snn.Leaky(beta=DECAY, threshold=THRESHOLD, spike_grad=_RectSpike.apply, reset_mechanism="zero")

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(currents[0])
        spikes = []
        for t in range(currents.shape[0]):
            spk, mem = self.lif(currents[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)


class SpikingJellyLIF(nn.Module):
    """neuron.LIFNode in multi-step mode: V = V - V/tau + X (decay_input=False) with tau = 1/(1-0.2),
    i.e. V <- 0.2 V + X; hard reset to 0, reset not detached; surrogate given by the caller."""

    last_trace = None

    def __init__(self, sj_neuron, surrogate_function) -> None:
        super().__init__()
        self.node = sj_neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=THRESHOLD,
                                      v_reset=0.0, surrogate_function=surrogate_function, detach_reset=False,
                                      step_mode="m")

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        self.node.reset()  # fresh state per batch (the node keeps V between calls)
        return self.node(currents)


def load_peers() -> dict[str, Callable[[], nn.Module]]:
    """Factories of peer neuron modules, by label; prints what could not be imported."""
    peers: dict[str, Callable[[], nn.Module]] = {}
    try:
        import snntorch as snn

        peers[f"snnTorch {snn.__version__} snn.Leaky"] = lambda: SnnTorchLIF(snn)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip this peer"
        print(f"snnTorch: not available ({type(exc).__name__}: {exc}); skipped. "
              "Install: pip install snntorch==1.0.0")
    try:
        import spikingjelly
        from spikingjelly.activation_based import neuron as sj_neuron, surrogate as sj_surrogate

        version = getattr(spikingjelly, "__version__", None)
        if version is None:
            from importlib.metadata import version as dist_version

            version = dist_version("spikingjelly")
        peers[f"SpikingJelly {version} LIFNode (Rect)"] = lambda: SpikingJellyLIF(sj_neuron, sj_surrogate.Rect(alpha=1.0))
        # Not the same surrogate: SpikingJelly runs a built-in surrogate (not Rect) through its own
        # registered CPU op with a hand-written backward; shown for information, not in the ratios.
        peers[f"SpikingJelly {version} LIFNode (Sigmoid, own CPU op)*"] = (
            lambda: SpikingJellyLIF(sj_neuron, sj_surrogate.Sigmoid()))
    except Exception as exc:  # noqa: BLE001
        print(f"SpikingJelly: not available ({type(exc).__name__}: {exc}); skipped. "
              "Install: pip install loguru && pip install --no-deps spikingjelly")
    return peers


def swap_neurons(model: SpikingNetwork, factory: Callable[[], nn.Module]) -> SpikingNetwork:
    for name in list(model.neurons.keys()):
        model.neurons[name] = factory()
    return model


# --------------------------------------------------------------------------- timing


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: str) -> Callable[[], None]:
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure(steps: dict[str, Callable[[], None]], warmup: int, rounds: int, per_round: int,
            budget_s: float = float("inf")) -> dict[str, list[list[float]]]:
    """ms per step of each variant, per round: warm-up, then interleaved rounds (fewer, but at
    least 3, when the rounds have taken more than ``budget_s``: a busy machine)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[list[float]]] = {name: [] for name in steps}
    started = time.perf_counter()
    for done in range(rounds):
        if done >= 3 and time.perf_counter() - started > budget_s:
            print(f"  (time budget reached: {done} of {rounds} rounds)")
            break
        for name, step in steps.items():
            this_round = []
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                this_round.append(1000.0 * (time.perf_counter() - start))
            times[name].append(this_round)
    return times


def flat(rounds: list[list[float]]) -> list[float]:
    return [t for r in rounds for t in r]


def describe(rounds: list[list[float]]) -> str:
    times = flat(rounds)
    text = f"{statistics.median(times):9.1f} ms  (min {min(times):.1f}"
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        text += f", p25-p75 {q[0]:.1f}-{q[2]:.1f}"
    return text + f", n={len(times)})"


def busy_warning(times: dict[str, list[list[float]]]) -> None:
    if any(len(flat(r)) < 4 for r in times.values()):
        return
    spread = max(q[2] / q[0] for q in (statistics.quantiles(flat(r), n=4) for r in times.values()))
    if spread > 1.5:
        print(f"  WARNING: p75/p25 up to {spread:.1f}: the machine was busy, these numbers are not reliable;"
              " rerun when it is quiet, or with --threads 1 (much less sensitive to other jobs)")


def ratio(a: list[list[float]], b: list[list[float]]) -> str:
    """a/b three ways: of the medians; median of per-round ratios (a and b ran back to back, so
    load from other jobs cancels better); of the minima."""
    of_medians = statistics.median(flat(a)) / statistics.median(flat(b))
    paired = statistics.median(statistics.median(x) / statistics.median(y) for x, y in zip(a, b))
    minima = min(flat(a)) / min(flat(b))
    return f"{of_medians:.3f}  (paired per round {paired:.3f}, of minima {minima:.3f})"


def run_net(title: str, arch_fn: Callable[[dict], dict], batch: int, input_shape: tuple[int, ...], optimizer: str,
            peers: dict[str, Callable[[], nn.Module]], args: argparse.Namespace) -> dict[str, list[list[float]]]:
    torch.manual_seed(0)
    x = torch.rand(batch, *input_shape)
    y = torch.randint(0, 10, (batch,))
    variants = {
        "ours DS-ATGO (PLIF)": build_model(arch_fn(neuron_dict("ds-atgo"))),
        "ours vanilla (PLIF)": build_model(arch_fn(neuron_dict("vanilla"))),
        "ours vanilla, fixed decay": build_model(arch_fn(neuron_dict("vanilla", "fixed"))),
    }
    for label, factory in peers.items():
        variants[label] = swap_neurons(build_model(arch_fn(neuron_dict("vanilla", "fixed"))), factory)
    steps = {name: make_step(model, x, y, optimizer) for name, model in variants.items()}
    print(f"\n== {title}")
    times = measure(steps, args.warmup, args.rounds, args.per_round, args.budget)
    for name, values in times.items():
        print(f"  {name:<48} {describe(values)}")
    busy_warning(times)
    print(f"  ratio DS-ATGO / vanilla (both PLIF)                   {ratio(times['ours DS-ATGO (PLIF)'], times['ours vanilla (PLIF)'])}"
          "   goal < 1.05")
    for label in peers:
        if label.endswith("*"):
            continue
        print(f"  ratio ours vanilla fixed decay / {label:<36} {ratio(times['ours vanilla, fixed decay'], times[label])}"
              "   goal <= 1")
        print(f"  ratio ours DS-ATGO (PLIF)      / {label:<36} {ratio(times['ours DS-ATGO (PLIF)'], times[label])}")
    if any(label.endswith("*") for label in peers):
        print("  * another surrogate than ours (SpikingJelly's fused CPU path needs a built-in one): information only")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, ResNet-19 at width 0.25")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--no-peers", action="store_true", help="skip snnTorch and SpikingJelly")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of timed rounds per net (ResNet-19: 1.5x) before stopping early, after >= 3 rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.warmup, args.rounds, args.per_round = 1, 2, 1
        res_warmup, res_rounds, res_per_round, res_width = 1, 1, 1, 0.25
    else:
        args.warmup, args.rounds, args.per_round = 3, 12, 2
        res_warmup, res_rounds, res_per_round, res_width = 2, 8, 1, 1.0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f"{'  [--quick: smoke run, numbers not meaningful]' if args.quick else ''}")
    peers = {} if args.no_peers else load_peers()
    started = time.time()

    run_net("digits conv net 1x8x8: conv 32-32-pool-64-64-pool, fc 128, T=4, batch 64, Adam",
            lambda n: convnet_architecture((1, 8, 8), 10, 4, n, channels=[32, 32, "pool", 64, 64, "pool"],
                                           hidden=[128]),
            64, (1, 8, 8), "adam", peers, args)
    run_net("CIFAR-shaped small VGG 3x32x32: conv 64-pool-128-pool-256-pool, fc 256, T=4, batch 8, Adam",
            lambda n: convnet_architecture((3, 32, 32), 10, 4, n, channels=[64, "pool", 128, "pool", 256, "pool"],
                                           hidden=[256]),
            8, (3, 32, 32), "adam", peers, args)

    # SEW ResNet-19: ours only (the authors' code is the reference point).
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    models = {"DS-ATGO": build_model(resnet19_architecture((3, 32, 32), 10, 2, neuron_dict("ds-atgo"), width=res_width)),
              "vanilla": build_model(resnet19_architecture((3, 32, 32), 10, 2, neuron_dict("vanilla"), width=res_width))}
    steps = {name: make_step(model, x, y, "sgd") for name, model in models.items()}
    params = sum(p.numel() for p in models["DS-ATGO"].parameters())
    print(f"\n== SEW ResNet-19 width {res_width} ({params / 1e6:.1f} M parameters), 3x32x32, T=2, batch 8, SGD")
    times = measure(steps, res_warmup, res_rounds, res_per_round, 1.5 * args.budget)
    for name, values in times.items():
        print(f"  ours {name:<43} {describe(values)}")
    busy_warning(times)
    print(f"  ratio DS-ATGO / vanilla                          {ratio(times['DS-ATGO'], times['vanilla'])}   goal < 1.05")
    if res_width == 1.0:
        print(f"  DS-ATGO median / authors' code (~1400 ms per step on a 2-core CPU, not measured here): "
              f"{statistics.median(flat(times['DS-ATGO'])) / 1400.0:.2f}")
    print(f"\ntotal {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
