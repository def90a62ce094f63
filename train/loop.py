"""The DS-ATGO training loop: SGD or Adam with a cosine schedule, label smoothing,
CE (Eq. 8) or TET loss, data augmentation, per-epoch checkpoints with resume,
per-layer monitoring averaged over the epoch, CPU or GPU, several processes
through torchrun (DistributedDataParallel).

Distributed training (``torchrun --nproc_per_node=N -m dsatgo_deploy.cli train ...``):
each epoch every process draws the same permutation (seeded by seed and epoch),
pads it to a multiple of N by repeating its start and takes every N-th index
(what torch's DistributedSampler does), so all processes run the same number
of steps; ``batch_size`` is per process (effective batch = N x batch_size).
Gradients are averaged by DDP; the batch statistics are global
(train.distributed: threshold statistics all-reduced, tdBN synchronised), so N
processes compute what one process computes on the global batch, and every
process holds the same running statistics. Loss, accuracy and layer
monitors are summed over all processes; evaluation is sharded and reduced.
Only process 0 writes files.

Monitoring, per epoch (``<out stem>_metrics.json``, one record per epoch): per
spiking layer and timestep, averaged over all training samples of the epoch,
the firing rate, the threshold in use, the surrogate width and the share of
neurons inside the surrogate window; and the firing rate on the test set in
eval mode (running thresholds).
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
from dsatgo_deploy.architecture import check_one_of
from dsatgo_deploy.checkpoint import save_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import write_json

from .augment import autoaugment_batch
from .data import DataSplit, augment_batch, load_dataset
from .distributed import _all_reduce, shard_indices, synchronise_statistics
from .models import SpikingNetwork, build_model
from .monitor import LayerMonitor
from .resume import cosine_lr, resume
from .neuron import ABLATIONS, NeuronConfig
from .zoo import (convnet_architecture, mlp_architecture, resnet18_architecture, resnet19_architecture,
                  vggsnn_architecture)

MODELS = ("mlp", "convnet", "vggsnn", "resnet19", "resnet18")
LOSSES = ("ce", "tet")
OPTIMIZERS = ("adam", "sgd")
SURROGATE_VARIANTS = ("paper", "code")  # TGO width from dVth (paper) or sigma (authors' code)
DEFAULT_TIMESTEPS = 4


@dataclass
class TrainConfig:
    """Everything a training run depends on (flags or a JSON config file).

    The defaults are a quick CPU run on digits; the paper's settings are the
    presets of train.presets (``dsatgo train --preset cifar10`` ...).
    """

    dataset: str = "digits"
    data_root: str | None = None  # folder of a file-based data set (mnist, cifar10, ...)
    model: str = "mlp"  # mlp | convnet | vggsnn | resnet19 | resnet18
    hidden: list[int] = field(default_factory=lambda: [128])  # mlp and convnet: hidden Linear sizes
    channels: list = field(default_factory=lambda: [32, "pool", 64, "pool"])  # convnet: conv blocks and pools
    width: float = 1.0  # channel multiplier of convnet, vggsnn, resnet19
    timesteps: int | None = None  # None: 4 for static data, the frames per sample for event data
    ablation: str = "ds-atgo"
    decay_mode: str = "plif"
    tau_init: float = 0.2
    f_c: float = 1.0
    kappa0: float = 1.0
    surrogate_variant: str = "paper"  # "paper": kappa from dVth; "code": from sigma
    epochs: int = 30
    batch_size: int = 32  # per process
    eval_batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "ce"  # ce: cross-entropy of the T-averaged readout (Eq. 8); tet: TET loss
    tet_lambda: float = 1e-3  # TET's MSE regulariser weight
    label_smoothing: float = 0.1
    augment: bool = True  # the data set's augmentation policy (CIFAR: crop + flip), if it has one
    autoaugment: bool = False  # CIFAR-10 AutoAugment policy after the crop + flip (train.augment)
    seed: int = 0
    device: str = "auto"
    out: str = "runs/digits/model.pt"
    resume: bool = False
    progress: bool = True

    def neuron_config(self) -> dict:
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, got {self.ablation!r}")
        modes = dict(ABLATIONS[self.ablation])
        if self.surrogate_variant not in SURROGATE_VARIANTS:
            raise ValueError(f"surrogate_variant must be one of {', '.join(SURROGATE_VARIANTS)}, "
                             f"got {self.surrogate_variant!r}")
        if modes["surrogate_mode"] == "tgo" and self.surrogate_variant == "code":
            modes["surrogate_mode"] = "tgo_sigma"
        config = NeuronConfig(decay_mode=self.decay_mode, tau_init=self.tau_init, f_c=self.f_c,
                              kappa0=self.kappa0, **modes)
        NeuronConfig.from_dict(config._asdict())  # validates
        return config._asdict()

    def validate(self) -> None:
        """ValueError naming the field of a bad setting (before any data is loaded)."""
        self.neuron_config()
        check_one_of("model", self.model, MODELS)
        check_one_of("optimizer", self.optimizer, OPTIMIZERS)
        check_one_of("loss", self.loss, LOSSES)
        if self.timesteps is not None and self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        for name in ("lr", "momentum", "weight_decay"):  # a JSON config is not checked by the CLI's parser
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0 or (name == "lr" and self.lr == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, "
                                 f"got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_training_data(config: TrainConfig) -> DataSplit:
    """The data set of a config (image-shaped samples for the conv models)."""
    # CIFAR10-DVS recordings are integrated into as many frames as the run has timesteps
    extra = {"timesteps": config.timesteps} if config.dataset == "cifar10_dvs" and config.timesteps else {}
    return load_dataset(config.dataset, root=config.data_root, image=config.model != "mlp", **extra)


def build_architecture(config: TrainConfig, data: DataSplit) -> dict:
    """The architecture description of ``config.model`` for ``data``."""
    neuron = config.neuron_config()
    steps = config.timesteps
    if data.encoding == "sequence":
        frames = data.timesteps
        if steps is not None and steps != frames:
            raise UserError(f"the {config.dataset} data holds {frames} frames per sample but timesteps is {steps} "
                            f"(leave timesteps unset or set it to {frames})")
        steps = frames
    steps = steps or DEFAULT_TIMESTEPS
    shape = tuple(data.input_shape)
    if config.model == "mlp":
        if data.encoding == "sequence":
            raise UserError("the mlp model takes static inputs; use convnet or vggsnn for event data")
        return mlp_architecture(int(np.prod(shape)), list(config.hidden), data.num_classes, steps, neuron)
    if len(shape) != 3:
        raise UserError(f"model {config.model} needs image-shaped samples (C, H, W); the {config.dataset} "
                        f"data gives {shape}")
    common = dict(num_classes=data.num_classes, timesteps=steps, neuron=neuron, width=config.width,
                  normalize=data.normalize, encoding=data.encoding)
    try:
        if config.model == "convnet":
            channels = [int(c) if str(c).isdigit() else c for c in config.channels]
            return convnet_architecture(shape, channels=channels, hidden=list(config.hidden), **common)
        if config.model == "vggsnn":
            return vggsnn_architecture(shape, **common)
        if config.model == "resnet19":
            return resnet19_architecture(shape, **common)
        if config.model == "resnet18":
            return resnet18_architecture(shape, **common)
    except ValueError as exc:
        raise UserError(f"model {config.model} does not fit the {config.dataset} data: {exc}") from None
    raise UserError(f"unknown model {config.model!r} (known: {', '.join(MODELS)})")


# --------------------------------------------------------------------------- distributed


def _distributed(device_name: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether we initialised the process group).

    Under torchrun (WORLD_SIZE > 1) each process takes cuda:LOCAL_RANK when
    GPUs are used (NCCL), the CPU otherwise (gloo).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return 0, 1, device, False
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    started = False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        started = True
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device, started


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def _evaluate(model: SpikingNetwork, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int,
              rank: int = 0, world: int = 1) -> tuple[float, dict[str, list[float]]]:
    """(accuracy, per-layer eval firing rate per timestep) on this process's shard, reduced over processes."""
    model.eval()
    indices = np.arange(rank, len(x), world)
    correct = torch.zeros((), device=device)
    monitor = LayerMonitor(model, ("firing_rate",))
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        xb = torch.from_numpy(x[chunk]).to(device)
        yb = torch.from_numpy(y[chunk]).to(device)
        correct += (model(xb).argmax(dim=1) == yb).sum()
        monitor.add(model, len(chunk))
    count = torch.tensor(float(len(indices)), device=device)
    if world > 1:
        correct, count = _all_reduce(correct), _all_reduce(count)
    rates = {name: stats["firing_rate"] for name, stats in monitor.result(world).items()}
    return float(correct) / max(float(count), 1.0), rates


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int = 256) -> float:
    """Top-1 accuracy of the model in eval mode (running thresholds)."""
    return _evaluate(model, x, y, device, batch_size)[0]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- training


def _loss(config: TrainConfig, trained: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits averaged over T)."""
    if config.loss == "tet":
        per_step = trained(xb, per_timestep=True)  # (T, B, classes)
        steps = per_step.shape[0]
        ce = F.cross_entropy(per_step.flatten(0, 1), yb.repeat(steps), label_smoothing=config.label_smoothing)
        loss = (1.0 - config.tet_lambda) * ce
        if config.tet_lambda:
            loss = loss + config.tet_lambda * F.mse_loss(per_step, torch.ones_like(per_step))
        return loss, per_step.mean(dim=0)
    logits = trained(xb)
    return F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing), logits


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be sgd or adam, got {config.optimizer!r}")


def train(config: TrainConfig, data: DataSplit | None = None) -> dict[str, Any]:
    """Train, checkpoint every epoch to ``config.out``, return a summary dict."""
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(f"bad training configuration: {exc}") from None
    rank, world, device, started_group = _distributed(config.device)
    try:
        return _train(config, data, rank, world, device)
    finally:
        if started_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(config: TrainConfig, data: DataSplit | None, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    set_seed(config.seed)
    data = data if data is not None else load_training_data(config)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    arch = build_architecture(config, data)
    model = build_model(arch).to(device)
    optimizer = _make_optimizer(config, model)
    out = Path(config.out)
    history: list[dict] = []
    start_epoch = 0
    if config.resume and out.exists():
        start_epoch, history = resume(config, out, arch, model, optimizer)
    if world > 1:
        synchronise_statistics(model)  # the buffers then agree on every process: nothing to broadcast
        trained: nn.Module = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    else:
        trained = model

    # an array-like that decodes on indexing (ImageNet) stays as it is
    x_train = torch.from_numpy(data.x_train) if isinstance(data.x_train, np.ndarray) else data.x_train
    y_train = torch.from_numpy(data.y_train)
    policy = data.augment if config.augment else None
    augment_generator = torch.Generator().manual_seed(config.seed * 1_000_003 + rank)
    show = config.progress and rank == 0
    from tqdm import tqdm

    for epoch in range(start_epoch, config.epochs):
        if policy is not None:
            augment_generator.manual_seed(config.seed * 1_000_003 + epoch * 1009 + rank)
        model.train()
        epoch_lr = cosine_lr(config.lr, epoch, config.epochs)  # the rate this epoch trains with
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr
        shard = shard_indices(len(x_train), epoch, config.seed, rank, world)
        loss_sum, correct, monitor = _train_epoch(config, model, trained, optimizer, x_train, y_train, shard, device,
                                                  policy, augment_generator, epoch, show)
        seen = torch.tensor(float(monitor.samples), device=device)
        if world > 1:
            loss_sum, correct, seen = _all_reduce(loss_sum), _all_reduce(correct), _all_reduce(seen)
        train_stats = monitor.result(world)
        if world > 1:
            # Synchronised statistics keep the buffers equal; this makes them bit-identical
            # (process 0's) whatever the reduction order, before evaluating and saving.
            for buffer in model.buffers():
                if buffer.numel():
                    torch.distributed.broadcast(buffer, 0)
        test_accuracy, test_rates = _evaluate(model, data.x_test, data.y_test, device, config.eval_batch_size,
                                              rank, world)
        for name, rates in test_rates.items():
            train_stats.setdefault(name, {})["test_firing_rate"] = rates
        record = {"epoch": epoch + 1, "loss": float(loss_sum) / max(float(seen), 1.0),
                  "train_accuracy": float(correct) / max(float(seen), 1.0), "test_accuracy": test_accuracy,
                  "lr": epoch_lr, "samples_seen": int(seen), "layers": train_stats}
        history.append(record)
        if rank == 0:
            if show:
                tqdm.write(f"epoch {epoch + 1}/{config.epochs}  loss {record['loss']:.4f}  "
                           f"train {record['train_accuracy']:.4f}  test {test_accuracy:.4f}")
            _save_epoch(config, data, out, arch, model, optimizer, history, world)
    if history:
        final_accuracy = history[-1]["test_accuracy"]
    else:
        final_accuracy = _evaluate(model, data.x_test, data.y_test, device, config.eval_batch_size, rank, world)[0]
    if world > 1:
        torch.distributed.barrier()  # process 0 has written everything before anyone returns
    return {"checkpoint": str(out), "metrics": str(metrics_path(out)), "test_accuracy": final_accuracy,
            "epochs": config.epochs, "world_size": world, "history": history}


def _train_epoch(config: TrainConfig, model: SpikingNetwork, trained: nn.Module, optimizer: torch.optim.Optimizer,
                 x_train: Any, y_train: torch.Tensor, shard: torch.Tensor, device: torch.device, policy: Any,
                 augment_generator: torch.Generator, epoch: int,
                 show: bool) -> tuple[torch.Tensor, torch.Tensor, LayerMonitor]:
    """One pass over this process's ``shard`` of the training set: (loss sum, correct predictions, monitor)."""
    from tqdm import tqdm

    steps = math.ceil(len(shard) / config.batch_size)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    monitor = LayerMonitor(model)
    # disable=None: a bar only on a terminal, not in logs
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=None if show else True,
               leave=False, dynamic_ncols=True)
    for step in bar:
        index = shard[step * config.batch_size:(step + 1) * config.batch_size]
        xb = x_train[index]
        xb = (torch.from_numpy(xb) if isinstance(xb, np.ndarray) else xb).to(device, non_blocking=True)
        yb = y_train[index].to(device, non_blocking=True)
        xb = augment_batch(xb, policy, augment_generator)
        if config.autoaugment and policy is not None:
            xb = autoaugment_batch(xb, augment_generator)
        loss, logits = _loss(config, trained, xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(index)
            correct += (logits.argmax(1) == yb).sum()
        monitor.add(model, len(index))
        if show and (step % 10 == 9 or step == steps - 1):
            seen_here = monitor.samples
            bar.set_postfix(loss=f"{float(loss_sum) / seen_here:.3f}", acc=f"{float(correct) / seen_here:.3f}")
    return loss_sum, correct, monitor


def _save_epoch(config: TrainConfig, data: DataSplit, out: Path, arch: dict, model: nn.Module,
                optimizer: torch.optim.Optimizer, history: list[dict], world: int) -> None:
    """The checkpoint (with the optimizer's state, for resume) and the metrics after an epoch (process 0)."""
    test_accuracy = history[-1]["test_accuracy"]
    meta = {"epoch": history[-1]["epoch"], "dataset": config.dataset, "data_root": config.data_root,
            "input_quantum": data.input_quantum, "test_accuracy": test_accuracy,
            "tool_version": __version__, "world_size": world,
            "config": json.dumps(dataclasses.asdict(config))}
    training_state = {"optimizer": optimizer.state_dict(), "history": json.dumps(history)}
    save_checkpoint(out, arch, model.state_dict(), meta, training_state)
    write_json(metrics_path(out), history)


def metrics_path(out: str | os.PathLike) -> Path:
    """Where the per-epoch metrics of a run writing checkpoint ``out`` go."""
    out = Path(out)
    return out.with_name(out.stem + "_metrics.json")
