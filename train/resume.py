"""Resuming a training run: the learning-rate schedule in closed form, and what a checkpoint lets a run change.

The cosine rate of an epoch is computed from (epoch, total epochs), not stepped from
the previous rate, so ``--resume --epochs N`` with a larger N continues the cosine over
the new total instead of running past the old end at rate 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.errors import UserError

if TYPE_CHECKING:
    from .loop import TrainConfig

RESUME_FIXED = ("optimizer", "dataset", "loss")  # settings a resumed run cannot change (its state depends on them)


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """The rate 0-based ``epoch`` of ``epochs`` trains with: base_lr (1 + cos(pi epoch / epochs)) / 2. A closed
    form, so that a resumed run with more epochs continues the cosine over the new total."""
    return base_lr * (1.0 + math.cos(math.pi * epoch / max(epochs, 1))) / 2.0


def resume(config: "TrainConfig", out: Path, arch: dict, model: nn.Module,
            optimizer: torch.optim.Optimizer) -> tuple[int, list[dict]]:
    """Load the checkpoint at ``out`` into model and optimizer; the epochs done and the history so far.
    UserError (one line) for a checkpoint this configuration cannot continue."""
    previous = load_checkpoint(out)
    if previous["arch"] != arch:
        raise UserError(f"{out}: the checkpoint was trained with another architecture than this configuration "
                        "builds; drop --resume or choose another --out")
    before = json.loads(previous["meta"].get("config") or "{}")
    for name in RESUME_FIXED:
        if name in before and before[name] != getattr(config, name):
            raise UserError(f"{out}: cannot resume with {name} {getattr(config, name)!r}: the checkpoint was "
                            f"trained with {before[name]!r}; drop --resume or choose another --out")
    done = int(previous["meta"]["epoch"])
    if config.epochs < done:
        raise UserError(f"{out}: the checkpoint has {done} epochs already; --epochs {config.epochs} cannot "
                        "continue it (pass the new total, more than that)")
    model.load_state_dict(previous["state_dict"])
    state = previous.get("training_state", {})
    history: list[dict] = []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        history = json.loads(state["history"])
    for group in optimizer.param_groups:  # this run's flags, not the saved ones
        group["weight_decay"] = config.weight_decay
        if config.optimizer == "sgd":
            group["momentum"] = config.momentum
    return done, history
