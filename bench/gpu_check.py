"""GPU check (run on a CUDA machine, not in CI): training on CUDA, the reference simulator on CUDA
bit-exact with CPU, throughput/step-time figures, and the paper's full-width settings, measured in
one run and printed as JSON (nothing is asserted; a failed part is reported as such).

    python bench/gpu_check.py [--epochs 3] [--gpus N]   # on a CUDA machine
    python bench/gpu_check.py --tiny                    # smoke run on CPU: width 1/16, a few samples

Paper settings (SEW ResNet-19, CIFAR shapes, T = 2; untrained weights, seed 0, noise images: the
times depend on the shapes only):

1. one training step at the paper's batch of 100 (SGD, momentum 0.9);
2. export on Hala Point with 64 calibration images, then the reference simulator on the GPU against
   the CPU (bit for bit, a few samples) and against the float model's eval at batch 100 (ratio);
3. ``torchrun --nproc_per_node=N -m dsatgo_deploy.cli parity --sides torch,reference`` (NCCL, one
   GPU per process) against the same command in one process: the reports must be equal.

``--tiny`` runs every part on the CPU at width 1/16 with small batches and 2 gloo processes, to
check the script itself runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHAPE, TIMESTEPS = (3, 32, 32), 2


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def digits_checks(args: argparse.Namespace, device: str) -> dict:
    """The digits conv net trained on the device, exported, and the reference simulator there."""
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.hardware_sim.reference import simulate
    from dsatgo_deploy.train.data import load_digits
    from dsatgo_deploy.train.loop import TrainConfig, train

    result: dict = {}
    data = load_digits()
    started = time.time()
    summary = train(TrainConfig(model="convnet", epochs=args.epochs, device=device, out=f"{args.out}/model.pt",
                                progress=False), None)
    result["convnet_digits"] = {"device": device, "epochs": args.epochs, "test_accuracy": summary["test_accuracy"],
                                "seconds": round(time.time() - started, 1)}
    exported = export_checkpoint(f"{args.out}/model.pt", f"{args.out}/loihi", calibration_x=data.x_train[:256],
                                 overwrite=True)
    net = exported.network
    x = np.tile(data.x_test, (28, 1))[:10000 if not args.tiny else 200]
    cpu = simulate(net, x[:1000], device="cpu")
    other = simulate(net, x[:1000], device=device)
    result["reference_device_equals_cpu"] = bool(
        all(np.array_equal(cpu.spikes[k], other.spikes[k]) for k in cpu.spikes)
        and np.array_equal(cpu.readout_trace, other.readout_trace))
    for batch in (1000, 10000) if not args.tiny else (200,):
        simulate(net, x[:batch], device=device, batch_size=batch)
        _sync(device)
        start = time.perf_counter()
        simulate(net, x[:batch], device=device, batch_size=batch)
        _sync(device)
        seconds = time.perf_counter() - start
        result[f"reference_batch_{batch}_sample_steps_per_s"] = round(batch * net.timesteps / seconds)
    return result


def train_step_ms(arch: dict, device: str, batch: int, steps: int) -> float:
    """Median ms of a training step (forward, cross-entropy, backward, SGD) after warm-up steps."""
    from dsatgo_deploy.train.models import build_model

    model = build_model(arch).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xb = torch.rand(batch, *SHAPE, device=device)
    yb = torch.randint(0, 10, (batch,), device=device)
    times = []
    for step in range(steps + 3):
        _sync(device)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _sync(device)
        if step >= 3:
            times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def reference_against_float(checkpoint: Path, out: Path, device: str, batch: int, calibrate: int) -> dict:
    """Export on Hala Point; the reference on the device equals the CPU's; reference / float eval time."""
    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.hardware_sim.reference import simulate
    from dsatgo_deploy.pipeline.sides import load_model

    rng = np.random.default_rng(1)
    started = time.perf_counter()
    exported = export_checkpoint(checkpoint, out, target="loihi", system="hala-point", overwrite=True,
                                 calibration_x=rng.random((calibrate, *SHAPE), dtype=np.float32))
    result = {"export_hala_point_seconds": round(time.perf_counter() - started, 1), "calibration_images": calibrate}
    net, x = exported.network, rng.random((batch, *SHAPE), dtype=np.float32)
    few = min(batch, 4)
    cpu, other = simulate(net, x[:few], device="cpu"), simulate(net, x[:few], device=device)
    result["reference_device_equals_cpu"] = bool(
        all(np.array_equal(cpu.spikes[k], other.spikes[k]) for k in cpu.spikes)
        and np.array_equal(cpu.readout_trace, other.readout_trace))
    model = load_model(load_checkpoint(checkpoint)).to(device)
    with torch.no_grad():
        model(torch.as_tensor(x[:2], device=device))
        _sync(device)
        start = time.perf_counter()
        model(torch.as_tensor(x, device=device))
        _sync(device)
        float_seconds = time.perf_counter() - start
    simulate(net, x[:2], device=device)
    _sync(device)
    start = time.perf_counter()
    simulate(net, x, device=device, batch_size=batch)
    _sync(device)
    reference_seconds = time.perf_counter() - start
    result |= {"batch": batch, "float_eval_s": round(float_seconds, 3), "reference_s": round(reference_seconds, 3),
               "reference_over_float": round(reference_seconds / float_seconds, 2)}
    return result


def noise_cifar10(root: Path, samples: int) -> Path:
    """A CIFAR-10 binary-version folder of uniform noise images (label byte + 3072 pixel bytes per record),
    so that parity reads CIFAR shapes through the real loader without the data set."""
    rng = np.random.default_rng(3)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in [(f"data_batch_{i}.bin", 10) for i in range(1, 6)] + [("test_batch.bin", samples)]:
        records = np.concatenate([rng.integers(0, 10, (count, 1)), rng.integers(0, 256, (count, 3072))], axis=1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    return root


def sharded_parity(checkpoint: Path, network: Path, device: str, processes: int, samples: int) -> dict:
    """torchrun parity (torch, reference) over ``processes`` against one process: equal reports?"""
    data_root = noise_cifar10(network.parent / "noise_cifar10", samples)
    args = ["parity", "--model", str(checkpoint), "--network", str(network), "--sides", "torch,reference",
            "--samples", str(samples), "--dataset", "cifar10", "--data-root", str(data_root), "--device", device,
            "--json",
            "--min-class-agreement", "0", "--min-spike-agreement", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    timings, reports = {}, {}
    for name, prefix in (("one_process", [sys.executable, "-m", "dsatgo_deploy.cli"]),
                         ("torchrun", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                       f"--nproc_per_node={processes}", "-m", "dsatgo_deploy.cli"])):
        started = time.perf_counter()
        done = subprocess.run(prefix + args, capture_output=True, text=True, env=env)
        timings[f"{name}_s"] = round(time.perf_counter() - started, 1)
        if done.returncode != 0:
            return {"failed": name, "exit": done.returncode, "stderr": done.stderr.strip()[-1500:]} | timings
        reports[name] = json.loads(done.stdout)
    return {"processes": processes, "samples": samples, "equal": reports["torchrun"] == reports["one_process"],
            "class_agreement": reports["one_process"].get("class_agreement")} | timings


def paper_checks(args: argparse.Namespace, device: str) -> dict:
    from dsatgo_deploy.checkpoint import save_checkpoint
    from dsatgo_deploy.train.models import build_model
    from dsatgo_deploy.train.neuron import NeuronConfig
    from dsatgo_deploy.train.zoo import resnet19_architecture

    width = 1 / 16 if args.tiny else 1.0
    arch = resnet19_architecture(SHAPE, 10, TIMESTEPS, NeuronConfig()._asdict(), width=width)
    result: dict = {"width": width}
    result["train_step_ms"] = {"batch": 4 if args.tiny else 100,
                               "ms": train_step_ms(arch, device, 4 if args.tiny else 100, 2 if args.tiny else 5)}
    folder = Path(args.out)
    checkpoint = folder / "resnet19.pt"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, arch, build_model(arch).state_dict(), {"epoch": 0})
    result["reference"] = reference_against_float(checkpoint, folder / "resnet19_loihi", device,
                                                  batch=4 if args.tiny else 100, calibrate=8 if args.tiny else 64)
    processes = 2 if args.tiny else max(1, min(args.gpus or torch.cuda.device_count(), 8))
    result["sharded_parity"] = sharded_parity(checkpoint, folder / "resnet19_loihi", device, processes,
                                              samples=5 if args.tiny else 200)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--gpus", type=int, help="processes for the sharded parity (default: every GPU, at most 8)")
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: width 1/16, small batches, 2 processes")
    args = parser.parse_args()
    if args.tiny:
        args.epochs = 1
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (use --tiny for a CPU smoke run)")
    device = "cpu" if args.tiny else "cuda"
    with tempfile.TemporaryDirectory() as scratch:
        args.out = args.out or scratch
        Path(args.out).mkdir(parents=True, exist_ok=True)
        result = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (--tiny)",
                  "torch": torch.__version__, "numpy": np.__version__}
        result |= digits_checks(args, device)
        result["paper_resnet19_cifar_T2"] = paper_checks(args, device)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
