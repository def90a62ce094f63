"""Paper scale (issue #14): the full-width ResNet-19 (CIFAR-10 shape, T = 2) through export, the reference
simulator and Lava, timed in one run. A bench: it prints measured figures and ratios, asserts nothing.

    .venv/bin/python bench/paper_scale.py [--calibrate 64] [--targets loihi,onnx,nir] [--lava-budget 600]

The weights are an untrained model's (seed 0) and the images uniform noise: the times depend on the
shapes, not on what the network learnt. Printed, in order:

1. refusal: ``dsatgo-export --target loihi`` on one Loihi 2 chip, wall time of the whole command
   (Python start included), which must refuse in seconds, before any calibration;
2. the reference simulator against the float torch model's eval at batch 16 (the goal: <= 1.5x),
   with the peak resident memory after each;
3. export time per target (loihi on Hala Point, onnx, nir) with ``--calibrate`` noise images, and
   the size written;
4. Lava (Loihi2SimCfg fixed_pt) seconds per sample by width 1/16, 1/8, 1/4, 1, each width in its
   own process, for as long as ``--lava-budget`` seconds allow (the width running when it runs out
   is stopped and reported so).
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

import numpy as np
import torch

from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import NeuronConfig
from dsatgo_deploy.train.zoo import resnet19_architecture

SHAPE = (3, 32, 32)
TIMESTEPS = 2
BATCH = 16
WIDTHS = (1 / 16, 1 / 8, 1 / 4, 1.0)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _images(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *SHAPE), dtype=np.float32)


def write_checkpoint(path: Path, width: float) -> Path:
    arch = resnet19_architecture(SHAPE, 10, TIMESTEPS, NeuronConfig()._asdict(), width=width)
    torch.manual_seed(0)
    save_checkpoint(path, arch, build_model(arch).state_dict(), {"epoch": 0})
    return path


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def refusal(checkpoint: Path, tmp: Path) -> None:
    command = [sys.executable, "-m", "dsatgo_deploy.cli", "export", str(checkpoint), "--target", "loihi",
               "--calibrate", "0", "--out", str(tmp / "refused")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(f"refusal, full-width ResNet-19 on one Loihi 2 chip: exit {done.returncode} in {seconds:.2f} s "
          f"(whole command; goal < 5 s)\n  {done.stderr.strip()}")


def exports(checkpoint: Path, tmp: Path, targets: list[str], calibrate: int) -> None:
    from dsatgo_deploy.export.exporter import export_checkpoint

    calibration = _images(calibrate) if calibrate else None
    for target in targets:
        out = tmp / f"export_{target}"
        system = "hala-point" if target == "loihi" else None
        started = time.perf_counter()
        export_checkpoint(checkpoint, out, target=target, calibration_x=calibration, system=system, overwrite=True)
        print(f"export --target {target}{' --system hala-point' if system else ''}, {calibrate} calibration images: "
              f"{time.perf_counter() - started:.1f} s, {_folder_mb(out):.1f} MB written; peak RSS {_peak_mib():.0f} MiB")


def reference_against_float(checkpoint: Path, calibrate: int) -> None:
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.export.quantize import quantize
    from dsatgo_deploy.hardware_sim.reference import simulate
    from dsatgo_deploy.pipeline.sides import load_model

    loaded = load_checkpoint(checkpoint)
    net, _ = quantize(freeze(loaded), _images(calibrate) if calibrate else None)
    x = _images(BATCH, seed=2)
    model = load_model(loaded)
    with torch.no_grad():
        model(torch.as_tensor(x[:2]))  # first-call setup out of the timing
        started = time.perf_counter()
        model(torch.as_tensor(x))
        float_seconds = time.perf_counter() - started
    float_peak = _peak_mib()
    simulate(net, x[:2])
    started = time.perf_counter()
    simulate(net, x)
    reference_seconds = time.perf_counter() - started
    print(f"batch {BATCH}, T = {TIMESTEPS}, {torch.get_num_threads()} torch threads: float eval {float_seconds:.2f} s "
          f"(peak RSS {float_peak:.0f} MiB), reference {reference_seconds:.2f} s (peak RSS {_peak_mib():.0f} MiB): "
          f"reference / float = {reference_seconds / float_seconds:.2f}x (goal <= 1.5x)")


def lava_seconds_per_sample(width: float, samples: int) -> float:
    """One width in Lava; run in its own process (see main)."""
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.export.quantize import quantize
    from dsatgo_deploy.pipeline.sides import run_lava

    with tempfile.TemporaryDirectory() as tmp:
        net, _ = quantize(freeze(load_checkpoint(write_checkpoint(Path(tmp) / "model.pt", width))), _images(8))
    started = time.perf_counter()
    run_lava(net, _images(samples, seed=2))
    return (time.perf_counter() - started) / samples


def lava_widths(budget: float, samples: int) -> None:
    deadline = time.perf_counter() + budget
    for width in WIDTHS:
        left = deadline - time.perf_counter()
        if left <= 1:
            print(f"Lava, width {width:g}: not run ({budget:.0f} s budget spent)")
            continue
        command = [sys.executable, __file__, "--lava-worker", str(width), "--lava-samples", str(samples)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            print(f"Lava, width {width:g}: stopped after {time.perf_counter() - started:.0f} s (budget spent)")
            continue
        if done.returncode != 0:
            print(f"Lava, width {width:g}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        print(f"Lava, width {width:g}: {float(done.stdout.split()[-1]):.2f} s per sample "
              f"({samples} samples, compile included; {time.perf_counter() - started:.0f} s with setup)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", type=int, default=64, help="noise images export calibrates with")
    parser.add_argument("--targets", default="loihi,onnx,nir", help="export targets to time ('' for none)")
    parser.add_argument("--lava-budget", type=float, default=600.0, help="seconds for all Lava widths together")
    parser.add_argument("--lava-samples", type=int, default=2)
    parser.add_argument("--lava-worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lava_worker is not None:
        print(lava_seconds_per_sample(args.lava_worker, args.lava_samples))
        return
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        checkpoint = write_checkpoint(tmp / "resnet19.pt", 1.0)
        refusal(checkpoint, tmp)
        reference_against_float(checkpoint, args.calibrate)
        exports(checkpoint, tmp, [t for t in args.targets.split(",") if t], args.calibrate)
    if args.lava_budget > 0:
        lava_widths(args.lava_budget, args.lava_samples)


if __name__ == "__main__":
    main()
