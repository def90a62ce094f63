"""Throughput of the reference simulator against Lava fixed_pt, on the same network and samples.

Prints timesteps x samples per second for the reference at batch 1, 100 and 1000
and for Lava (end to end as a user waits: graph build, compile, run, read-back),
and their ratios, all measured in this one run. Also the share of this
machine's float32 matmul peak that the reference's synaptic matmuls reach.

    python bench/reference_vs_lava.py [--hidden 256] [--timesteps 4] [--lava-samples 100]

Goals (issue 5): reference >= 150x Lava at batch 100 and >= 300x at batch 1000.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from dsatgo_deploy.export.freeze import FrozenLayer, FrozenNetwork
from dsatgo_deploy.export.quantize import quantize
from dsatgo_deploy.hardware_sim.lava_backend import run_lava
from dsatgo_deploy.hardware_sim.reference import simulate


def make_network(inputs: int, hidden: int, classes: int, timesteps: int, seed: int = 0):
    """A random 2-layer DS-ATGO-like network quantized the way export does it."""
    rng = np.random.default_rng(seed)
    layers = [
        FrozenLayer("fc1", ["input"], rng.normal(0, 1 / np.sqrt(inputs), (hidden, inputs)), rng.normal(0, 0.05, hidden),
                    0.2, np.linspace(0.25, 0.35, timesteps)),
        FrozenLayer("readout", ["fc1"], rng.normal(0, 1 / np.sqrt(hidden), (classes, hidden)), np.zeros(classes),
                    None, None),
    ]
    frozen = FrozenNetwork(timesteps, (inputs,), layers, 1.0 / 255)
    x = rng.uniform(0, 1, (1000, inputs)).astype(np.float32)
    net, _ = quantize(frozen, x[:200])
    return net, x


def timed(fn, repeat: int = 7) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call (what a user running it again waits)."""
    fn()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def matmul_peak_gflops(n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = min(timed(lambda: a @ b, repeat=5) for _ in range(3))  # the peak: the best of three medians
    return 2 * n**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--lava-samples", type=int, nargs="+", default=[100, 1000],
                        help="Lava runs (each compiled once for all its samples)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    net, x = make_network(args.inputs, args.hidden, args.classes, args.timesteps)
    steps = args.timesteps
    print(f"network {args.inputs}-{args.hidden}-{args.classes}, T = {steps}, torch threads {torch.get_num_threads()}")

    rates = {}
    for batch in (1, 100, 1000):
        samples = x[:batch]
        seconds = timed(lambda: simulate(net, samples))
        rates[batch] = batch * steps / seconds
        print(f"reference batch {batch:>5}: {seconds * 1000:9.2f} ms  {rates[batch]:12.0f} sample-steps/s")

    lava_rates = {}
    for count in args.lava_samples:
        samples = x[:count]
        start = time.perf_counter()
        lava = run_lava(net, samples, timeout_s=3600)
        lava_seconds = time.perf_counter() - start
        lava_rates[count] = count * steps / lava_seconds
        reference = simulate(net, samples)
        exact = all(np.array_equal(lava.spikes[k], reference.spikes[k]) for k in reference.spikes) and \
            np.array_equal(lava.readout_trace, reference.readout_trace)
        print(f"lava fixed_pt {count:>5} samples (build + compile + run + read-back): {lava_seconds:7.2f} s  "
              f"{lava_rates[count]:8.0f} sample-steps/s; bit-exact with the reference: {exact}")
    for batch in (1, 100, 1000):
        lava_count = min(lava_rates, key=lambda count: abs(count - batch))
        print(f"ratio reference(batch {batch:>4}) / lava({lava_count} samples): "
              f"{rates[batch] / lava_rates[lava_count]:8.1f}x")

    peak = matmul_peak_gflops()
    # The FLOPs the reference performs: a layer fed by the static input computes its synapse once
    # per sample (the same payload every step), the others once per sample and step.
    flops_per_sample = sum(2 * layer.weight.size * (1 if layer.sources == ["input"] else steps) for layer in net.layers)
    achieved = rates[1000] / steps * flops_per_sample / 1e9
    print(f"float32 matmul peak here: {peak:.1f} GFLOP/s; reference at batch 1000 does "
          f"{achieved:.2f} GFLOP/s of synaptic matmul ({achieved / peak:.1%} of peak); the rest of its time "
          f"is the LIF recurrence, elementwise and bound by memory traffic")


if __name__ == "__main__":
    main()
