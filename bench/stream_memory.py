"""Parity in bounded memory at paper scale: the full-width ResNet-19 (CIFAR-10 shape, T = 2; bench/paper_scale.py's
untrained model, frozen and quantized as its reference_against_float does) compared reference against torch on
noise images, chunk by chunk (pipeline/streaming.py), each sample count in its own process. A bench: it prints
the peak resident memory and the time of each run, and what the whole records would hold; it asserts nothing.

    .venv/bin/python bench/stream_memory.py [--samples 64 256] [--chunk 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_scale import _images, _load, write_checkpoint  # noqa: E402  (the bench beside this one)


def child(checkpoint: str, network: str, samples: int, chunk: int) -> None:
    """One parity run of ``samples`` noise images; prints its figures."""
    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.hardware_sim.parity import format_report
    from dsatgo_deploy.network_io import load
    from dsatgo_deploy.pipeline.streaming import tally_sides

    net, loaded = load(network), load_checkpoint(checkpoint)
    x = _images(samples, seed=2)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu, started = time.process_time(), time.perf_counter()
    tallies, _ = tally_sides(["reference", "torch"], x, None, chunk, net=net, checkpoint=loaded)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    report = tallies["torch"].report()
    spikes_per_side = samples * net.timesteps * sum(layer.num_neurons for layer in net.layers if layer.spiking)
    print(f"{samples} images, chunk {chunk}: parity reference vs torch in {seconds:.0f} s ({cpu:.0f} s CPU); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (before the run "
          f"{rss_before:.0f} MiB); the whole records would hold {2 * spikes_per_side / 2**30:.2f} GiB of spikes "
          f"(one byte each); {_load()}")
    print("  " + format_report(report).splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        checkpoint, network, samples, chunk = args.child
        return child(checkpoint, network, int(samples), int(chunk))
    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.export.quantize import quantize
    from dsatgo_deploy.network_io import save

    with tempfile.TemporaryDirectory(prefix="dsatgo-stream-") as tmp:
        checkpoint = write_checkpoint(Path(tmp) / "model.pt", 1.0)
        net, _ = quantize(freeze(load_checkpoint(checkpoint)), None)
        network = Path(tmp) / "network.npz"
        save(net, network)
        print(f"full-width ResNet-19: {sum(layer.num_neurons for layer in net.layers):,} neurons, T = {net.timesteps}")
        for samples in args.samples:
            done = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), str(network), str(samples),
                                   str(args.chunk)], capture_output=True, text=True, env=os.environ)
            print(done.stdout.strip() or done.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
