"""The DS-ATGO training loop: cosine LR, label smoothing, per-epoch checkpoints with
resume, per-layer monitoring, CPU or GPU, several GPUs through torchrun (DDP).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dsatgo_deploy import __version__
from dsatgo_deploy.architecture import mlp_architecture
from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint
from dsatgo_deploy.fileio import write_json

from .data import DataSplit, load_dataset
from .models import SpikingNetwork, build_model
from .neuron import ABLATIONS, NeuronConfig


@dataclass
class TrainConfig:
    """Everything a training run depends on (flags or a JSON config file)."""

    dataset: str = "digits"
    model: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [128])
    timesteps: int = 4
    ablation: str = "ds-atgo"
    decay_mode: str = "plif"
    tau_init: float = 0.2
    f_c: float = 1.0
    kappa0: float = 1.0
    surrogate_variant: str = "paper"  # "paper": kappa from dVth; "code": from sigma
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    seed: int = 0
    device: str = "auto"
    out: str = "runs/digits/model.pt"
    resume: bool = False
    progress: bool = True

    def neuron_config(self) -> dict:
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, got {self.ablation!r}")
        modes = dict(ABLATIONS[self.ablation])
        if modes["surrogate_mode"] == "tgo" and self.surrogate_variant == "code":
            modes["surrogate_mode"] = "tgo_sigma"
        config = NeuronConfig(decay_mode=self.decay_mode, tau_init=self.tau_init, f_c=self.f_c,
                              kappa0=self.kappa0, **modes)
        return config._asdict()


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_architecture(config: TrainConfig, data: DataSplit) -> dict:
    if config.model != "mlp":
        raise ValueError(f"unknown model {config.model!r} (known: mlp)")
    return mlp_architecture(int(np.prod(data.input_shape)), list(config.hidden), data.num_classes,
                            config.timesteps, config.neuron_config())


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int = 256) -> float:
    """Top-1 accuracy of the model in eval mode (running thresholds)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start:start + batch_size]).to(device)
        yb = torch.from_numpy(y[start:start + batch_size]).to(device)
        correct += int((model(xb).argmax(dim=1) == yb).sum())
    return correct / max(len(x), 1)


def layer_statistics(model: SpikingNetwork) -> dict[str, dict[str, list[float]]]:
    """Per spiking layer, per timestep: firing rate, threshold, surrogate width, window share."""
    stats = {}
    for name, trace in model.traces().items():
        stats[name] = {
            "firing_rate": trace.spikes.float().flatten(1).mean(dim=1).tolist(),
            "threshold": trace.thresholds.tolist(),
            "width": trace.widths.tolist(),
            "window_share": trace.window_share.tolist(),
        }
    return stats


def _distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun, (0, 1) otherwise; initialises the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def train(config: TrainConfig, data: DataSplit | None = None) -> dict[str, Any]:
    """Train, checkpoint every epoch to ``config.out``, return a summary dict."""
    rank, world = _distributed()
    set_seed(config.seed)
    data = data or load_dataset(config.dataset)
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    arch = build_architecture(config, data)
    model = build_model(arch).to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        raise ValueError(f"optimizer must be sgd or adam, got {config.optimizer!r}")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    out = Path(config.out)
    history: list[dict] = []
    start_epoch = 0
    if config.resume and out.exists():
        previous = load_checkpoint(out)
        model.load_state_dict(previous["state_dict"])
        state = previous.get("training_state", {})
        if state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history = json.loads(state["history"])
        start_epoch = int(previous["meta"]["epoch"])
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(x_train) / (config.batch_size * world))
    show = config.progress and rank == 0
    from tqdm import tqdm

    for epoch in range(start_epoch, config.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        order = order[rank::world]  # each rank its own shard, same permutation everywhere
        total_loss = total_correct = seen = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not show,
                   leave=False, dynamic_ncols=True)
        for step in bar:
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            if len(index) == 0:
                continue
            xb, yb = x_train[index].to(device), y_train[index].to(device)
            logits = trained(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss) * len(index)
            total_correct += float((logits.argmax(1) == yb).sum())
            seen += len(index)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}")
        scheduler.step()
        train_stats = layer_statistics(model)
        test_accuracy = evaluate(model, data.x_test, data.y_test, device)
        record = {"epoch": epoch + 1, "loss": total_loss / max(seen, 1), "train_accuracy": total_correct / max(seen, 1),
                  "test_accuracy": test_accuracy, "lr": scheduler.get_last_lr()[0], "layers": train_stats}
        history.append(record)
        if rank == 0:
            if show:
                tqdm.write(f"epoch {epoch + 1}/{config.epochs}  loss {record['loss']:.4f}  "
                           f"train {record['train_accuracy']:.4f}  test {test_accuracy:.4f}")
            meta = {"epoch": epoch + 1, "dataset": config.dataset, "input_quantum": data.input_quantum,
                    "test_accuracy": test_accuracy, "tool_version": __version__,
                    "config": json.dumps(dataclasses.asdict(config))}
            training_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "history": json.dumps(history)}
            save_checkpoint(out, arch, model.state_dict(), meta, training_state)
            write_json(out.with_name(out.stem + "_metrics.json"), history)
    final_accuracy = history[-1]["test_accuracy"] if history else evaluate(model, data.x_test, data.y_test, device)
    if world > 1:
        torch.distributed.destroy_process_group()
    return {"checkpoint": str(out), "test_accuracy": final_accuracy, "epochs": config.epochs, "history": history}
