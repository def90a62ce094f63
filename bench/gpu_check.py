"""GPU check (run on a CUDA machine): training on CUDA, the reference simulator on CUDA
bit-exact with CPU, and throughput/step-time figures measured in one run.

    python bench/gpu_check.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="/tmp/gpu_check")
    args = parser.parse_args()
    assert torch.cuda.is_available(), "no CUDA device"
    from dsatgo_deploy.train.zoo import resnet19_architecture
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.hardware_sim.reference import simulate
    from dsatgo_deploy.train.data import load_digits
    from dsatgo_deploy.train.loop import TrainConfig, train
    from dsatgo_deploy.train.models import build_model
    from dsatgo_deploy.train.neuron import NeuronConfig

    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "numpy": np.__version__}
    data = load_digits()
    started = time.time()
    summary = train(TrainConfig(model="convnet", epochs=args.epochs, device="cuda", out=f"{args.out}/model.pt",
                                progress=False), None)
    result["convnet_digits_cuda"] = {"epochs": args.epochs, "test_accuracy": summary["test_accuracy"],
                                     "seconds": round(time.time() - started, 1)}
    exported = export_checkpoint(f"{args.out}/model.pt", f"{args.out}/loihi", calibration_x=data.x_train[:256],
                                 overwrite=True)
    net = exported.network
    x = np.tile(data.x_test, (28, 1))[:10000]
    cpu = simulate(net, x[:1000], device="cpu")
    gpu = simulate(net, x[:1000], device="cuda")
    result["reference_cuda_equals_cpu"] = bool(
        all(np.array_equal(cpu.spikes[k], gpu.spikes[k]) for k in cpu.spikes)
        and np.array_equal(cpu.readout_trace, gpu.readout_trace))
    for batch in (1000, 10000):
        simulate(net, x[:batch], device="cuda", batch_size=batch)
        torch.cuda.synchronize()
        start = time.perf_counter()
        simulate(net, x[:batch], device="cuda", batch_size=batch)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        result[f"reference_cuda_batch_{batch}_sample_steps_per_s"] = round(batch * net.timesteps / seconds)
    # Full-width SEW ResNet-19, CIFAR shapes, T = 2: one training step (the paper's batch 100)
    arch = resnet19_architecture((3, 32, 32), 10, 2, NeuronConfig()._asdict())
    model = build_model(arch).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xb = torch.rand(100, 3, 32, 32, device="cuda")
    yb = torch.randint(0, 10, (100,), device="cuda")
    times = []
    for step in range(8):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - start)
    result["resnet19_train_step_batch100_T2_ms"] = round(1000 * float(np.median(times)), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
