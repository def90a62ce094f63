"""Training recipes of the paper's Table 1 (`dsatgo train --preset NAME`): one table, data only.

Each preset is a set of TrainConfig fields; flags and a --config file override them. The
optimiser, schedule, batch, weight decay, label smoothing, PLIF decay and augmentation are
those of the paper and of the authors' code (SGD lr 0.1, momentum 0.9, weight decay 1e-4,
cosine over the epochs, batch 100, label smoothing 0.1, random crop + flip + AutoAugment on
CIFAR). Where the paper gives no number (the epochs of CIFAR10-DVS and ImageNet) the preset
takes the common value of the work it builds on (TET: 300 epochs on CIFAR10-DVS; ImageNet
SNNs: 100 epochs) and says so in its description. The "-code" preset is the authors' code
exactly: the TGO width from sigma instead of the threshold (surrogate_variant "code").
"""

from __future__ import annotations

from typing import Any

#: The optimiser and regularisation every preset shares (paper and authors' code).
PAPER_OPTIMISER: dict[str, Any] = {
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 100,
    "label_smoothing": 0.1, "decay_mode": "plif", "tau_init": 0.2, "f_c": 1.0, "kappa0": 1.0,
    "ablation": "ds-atgo", "surrogate_variant": "paper", "augment": True,
}

#: name -> (description, TrainConfig fields on top of PAPER_OPTIMISER).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "cifar10": ("CIFAR-10, ResNet-19, T = 2 (Table 1: 96.91 %)",
                {"dataset": "cifar10", "model": "resnet19", "timesteps": 2, "epochs": 400, "loss": "ce",
                 "autoaugment": True}),
    "cifar10-code": ("CIFAR-10 as the authors' code runs it: TGO width from sigma",
                     {"dataset": "cifar10", "model": "resnet19", "timesteps": 2, "epochs": 400, "loss": "ce",
                      "autoaugment": True, "surrogate_variant": "code"}),
    "cifar100": ("CIFAR-100, ResNet-19, T = 2 (Table 1: 80.59 %)",
                 {"dataset": "cifar100", "model": "resnet19", "timesteps": 2, "epochs": 400, "loss": "ce",
                  "autoaugment": True}),
    "cifar10-dvs": ("CIFAR10-DVS, VGGSNN, T = 10 frames of 48x48, TET loss, flip + shift (Table 1: 83.70 %; "
                    "300 epochs as TET)",
                    {"dataset": "cifar10_dvs", "model": "vggsnn", "timesteps": 10, "epochs": 300, "loss": "tet",
                     "autoaugment": False}),
    "imagenet": ("ImageNet, SEW ResNet-18, T = 4, 224x224 crops (Table 1: 68.86 %; 100 epochs, the usual "
                 "ImageNet SNN schedule)",
                 {"dataset": "imagenet", "model": "resnet18", "timesteps": 4, "epochs": 100, "loss": "ce",
                  "autoaugment": False}),
}


def preset_fields(name: str) -> dict[str, Any]:
    """The TrainConfig fields of a preset (ValueError naming the known ones for an unknown name)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)}; `--preset list` shows them)")
    return {**PAPER_OPTIMISER, **PRESETS[name][1]}


def describe_presets() -> str:
    """Every preset in full, one block each (for --help and `--preset list`)."""
    lines = []
    for name, (description, _) in PRESETS.items():
        fields = preset_fields(name)
        lines.append(f"  {name}: {description}")
        lines.append("      " + " ".join(f"{key}={value}" for key, value in fields.items()))
    return "\n".join(lines)
