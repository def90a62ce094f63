"""Paper scale (issue #14): the full-width ResNet-19 (CIFAR-10 shape, T = 2) through export, the reference
simulator and Lava, timed in one run. A bench: it prints measured figures and ratios, asserts nothing.

    .venv/bin/python bench/paper_scale.py [--calibrate 64] [--targets loihi,onnx,nir] [--lava-budget 600]
                                         [--lava-v-th0 0.3]

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
   is stopped and reported so), and whether Lava equals the reference simulator bit for bit there
   (every spike and the readout trace of the ``--lava-samples`` samples).

Every figure comes with its CPU time and the machine's load average: on a shared machine wall times
grow with the load.
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
ROUNDS = 3
WIDTHS = (1 / 16, 1 / 8, 1 / 4, 1.0)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load() -> str:
    """The machine's load average (1, 5, 15 min), printed beside every figure: on a shared machine the
    wall times scale with it, the CPU times much less."""
    return "load " + "/".join(f"{v:.1f}" for v in os.getloadavg())


def _images(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *SHAPE), dtype=np.float32)


def write_checkpoint(path: Path, width: float, v_th0: float | None = None) -> Path:
    """Untrained ResNet-19 (seed 0); ``v_th0``: fixed thresholds of that value instead of the running ones
    (an untrained net's deeper layers barely fire; low fixed thresholds make a spike-by-spike check bite)."""
    neuron = NeuronConfig() if v_th0 is None else NeuronConfig(threshold_mode="fixed", v_th0=v_th0)
    arch = resnet19_architecture(SHAPE, 10, TIMESTEPS, neuron._asdict(), width=width)
    torch.manual_seed(0)
    save_checkpoint(path, arch, build_model(arch).state_dict(), {"epoch": 0})
    return path


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def refusal(checkpoint: Path, tmp: Path) -> None:
    """``dsatgo-export`` (its entry point) refusing, and a bare ``import torch`` for comparison."""
    command = [sys.executable, "-c", "import sys; from dsatgo_deploy.cli import export_main; sys.exit(export_main())",
               str(checkpoint), "--target", "loihi", "--calibrate", "0", "--out", str(tmp / "refused")]
    for _ in range(2):
        cpu, started = _child_cpu_seconds(), time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - started, _child_cpu_seconds() - cpu
        print(f"refusal, full-width ResNet-19 on one Loihi 2 chip: exit {done.returncode} in {seconds:.2f} s "
              f"({cpu:.2f} s CPU; whole command; goal < 5 s; {_load()})")
    cpu, started = _child_cpu_seconds(), time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    print(f"  of which importing torch alone: {time.perf_counter() - started:.2f} s "
          f"({_child_cpu_seconds() - cpu:.2f} s CPU)\n  {done.stderr.strip()}")


def exports(checkpoint: Path, tmp: Path, targets: list[str], calibrate: int) -> None:
    from dsatgo_deploy.export.exporter import export_checkpoint

    calibration = _images(calibrate) if calibrate else None
    for target in targets:
        out = tmp / f"export_{target}"
        system = "hala-point" if target == "loihi" else None
        cpu, started = time.process_time(), time.perf_counter()
        export_checkpoint(checkpoint, out, target=target, calibration_x=calibration, system=system, overwrite=True)
        print(f"export --target {target}{' --system hala-point' if system else ''}, {calibrate} calibration images: "
              f"{time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s CPU; goal < 60 s), "
              f"{_folder_mb(out):.1f} MB written; peak RSS {_peak_mib():.0f} MiB; {_load()}")


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
    simulate(net, x[:2])
    times: dict[str, list[tuple[float, float]]] = {"float": [], "reference": []}
    for _ in range(ROUNDS):  # in turns, so that load from other jobs hits both alike
        for name, run in (("float", lambda: model(torch.as_tensor(x))), ("reference", lambda: simulate(net, x))):
            cpu, started = time.process_time(), time.perf_counter()
            with torch.no_grad():
                run()
            times[name].append((time.perf_counter() - started, time.process_time() - cpu))
    wall = {name: float(np.median([t[0] for t in runs])) for name, runs in times.items()}
    cpu = {name: float(np.median([t[1] for t in runs])) for name, runs in times.items()}
    print(f"batch {BATCH}, T = {TIMESTEPS}, {torch.get_num_threads()} torch threads, median of {ROUNDS} turns: float "
          f"eval {wall['float']:.2f} s ({cpu['float']:.2f} s CPU), reference {wall['reference']:.2f} s "
          f"({cpu['reference']:.2f} s CPU): reference / float = {wall['reference'] / wall['float']:.2f}x wall, "
          f"{cpu['reference'] / cpu['float']:.2f}x CPU (goal <= 1.5x); peak RSS {_peak_mib():.0f} MiB; {_load()}")


def lava_seconds_per_sample(width: float, samples: int, v_th0: float | None = None) -> float:
    """One width in Lava; run in its own process (see main)."""
    from dsatgo_deploy.export.freeze import freeze
    from dsatgo_deploy.export.quantize import quantize
    from dsatgo_deploy.pipeline.sides import run_lava

    from dsatgo_deploy.hardware_sim.reference import simulate

    with tempfile.TemporaryDirectory() as tmp:
        net, _ = quantize(freeze(load_checkpoint(write_checkpoint(Path(tmp) / "model.pt", width, v_th0))), _images(8))
    x = _images(samples, seed=2)
    started = time.perf_counter()
    lava = run_lava(net, x)
    seconds = (time.perf_counter() - started) / samples
    reference = simulate(net, x)
    exact = (lava.spikes.keys() == reference.spikes.keys()
             and all(np.array_equal(lava.spikes[k], reference.spikes[k]) for k in reference.spikes)
             and np.array_equal(lava.readout_trace, reference.readout_trace))
    spikes = sum(int(v.sum()) for v in reference.spikes.values())
    print(f"bit-exact with the reference on {samples} samples (every spike of {len(reference.spikes)} layers, "
          f"{spikes} spikes, and the readout trace): {exact}")
    return seconds


def lava_widths(budget: float, samples: int, v_th0: float | None = None) -> None:
    deadline = time.perf_counter() + budget
    for width in WIDTHS:
        left = deadline - time.perf_counter()
        if left <= 1:
            print(f"Lava, width {width:g}: not run ({budget:.0f} s budget spent)")
            continue
        command = [sys.executable, __file__, "--lava-worker", str(width), "--lava-samples", str(samples)]
        command += [] if v_th0 is None else ["--lava-v-th0", str(v_th0)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            print(f"Lava, width {width:g}: stopped after {time.perf_counter() - started:.0f} s (budget spent)")
            continue
        if done.returncode != 0:
            print(f"Lava, width {width:g}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        lines = done.stdout.split("\n")
        print(f"Lava, width {width:g}: {float(lines[-2].split()[-1]):.2f} s per sample "
              f"({samples} samples, compile included; {time.perf_counter() - started:.0f} s with setup; {_load()})"
              + (f"; {lines[-3]}" if len(lines) > 2 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", type=int, default=64, help="noise images export calibrates with")
    parser.add_argument("--targets", default="loihi,onnx,nir", help="export targets to time ('' for none)")
    parser.add_argument("--lava-budget", type=float, default=600.0, help="seconds for all Lava widths together")
    parser.add_argument("--lava-samples", type=int, default=2)
    parser.add_argument("--lava-v-th0", type=float,
                        help="Lava widths with fixed thresholds of this value (more spikes to compare), e.g. 0.3")
    parser.add_argument("--lava-worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lava_worker is not None:
        print(lava_seconds_per_sample(args.lava_worker, args.lava_samples, args.lava_v_th0))
        return
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        checkpoint = write_checkpoint(tmp / "resnet19.pt", 1.0)
        refusal(checkpoint, tmp)
        reference_against_float(checkpoint, args.calibrate)
        exports(checkpoint, tmp, [t for t in args.targets.split(",") if t], args.calibrate)
    if args.lava_budget > 0:
        lava_widths(args.lava_budget, args.lava_samples, args.lava_v_th0)


if __name__ == "__main__":
    main()
