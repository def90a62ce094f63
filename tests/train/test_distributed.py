"""DDP with synchronised statistics: 2 CPU processes (gloo) on halves of a batch compute what one
process computes on the whole batch (thresholds, widths, tdBN running statistics, gradients)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from dsatgo_deploy.train.zoo import resnet19_architecture
from dsatgo_deploy.train.distributed import SynchronisedBatchNorm, synchronise_statistics
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import NeuronConfig

GLOBAL_BATCH = 8
STEPS = 2  # the second step starts from updated running statistics and weights


def _model() -> nn.Module:
    torch.manual_seed(0)
    arch = resnet19_architecture((3, 8, 8), 5, 2, NeuronConfig()._asdict(), width=1 / 16)
    # float64: no spike may flip on the last-digit differences between the two summation orders
    return build_model(arch).double()


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.rand(GLOBAL_BATCH, 3, 8, 8, generator=generator, dtype=torch.float64) * 2.0,
             torch.randint(0, 5, (GLOBAL_BATCH,), generator=generator)) for _ in range(STEPS)]


def _run(model: nn.Module, trained: nn.Module, batches, rank: int, world: int) -> dict[str, torch.Tensor]:
    """Train STEPS SGD steps on this process's share of each batch; record what must agree."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    record: dict[str, torch.Tensor] = {}
    share = GLOBAL_BATCH // world
    for step, (x, y) in enumerate(batches):
        xb, yb = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        loss = F.cross_entropy(trained(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        for name, trace in model.traces().items():
            record[f"step{step}.threshold.{name}"] = trace.thresholds.clone()
            record[f"step{step}.width.{name}"] = trace.widths.clone()
        for name, parameter in model.named_parameters():
            record[f"step{step}.grad.{name}"] = parameter.grad.clone()
        optimizer.step()
    for name, buffer in model.state_dict().items():
        record[f"state.{name}"] = buffer.clone()
    return record


def _worker(rank: int, world: int, port: int, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = synchronise_statistics(_model())
        trained = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
        record = _run(model, trained, _batches(), rank, world)
        torch.save(record, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp") / "record")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    model = _model()
    single = _run(model, model, _batches(), 0, 1)
    return single, [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]


def test_two_processes_equal_one_process_on_the_global_batch(runs):
    single, processes = runs
    assert set(processes[0]) == set(single)
    kinds = {key.split(".")[1] for key in single if key.startswith("step")}
    assert kinds == {"threshold", "width", "grad"}
    assert any(key.endswith("running_var") for key in single)
    assert any(key.endswith("running_threshold") for key in single)
    for record in processes:
        for key, value in single.items():
            torch.testing.assert_close(record[key], value, rtol=1e-9, atol=1e-12, msg=key)
    # the running statistics moved away from their initial values, so the comparison means something
    assert not torch.all(single["state.neurons.stem.running_threshold"] == 1.0)
    assert not torch.all(single["state.norms.stem.running_var"] == 1.0)


def test_synchronised_batch_norm_is_torch_batch_norm_in_one_process():
    torch.manual_seed(2)
    plain = nn.BatchNorm2d(3, momentum=0.1)
    synced = SynchronisedBatchNorm(3, momentum=0.1)
    x = torch.randn(6, 3, 4, 4)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced.running_var, plain.running_var)
    with pytest.raises(ValueError, match="2-D or 4-D"):
        synced(torch.randn(2, 3, 4))
