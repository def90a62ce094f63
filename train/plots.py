"""Plots of a training run's monitoring (``<out stem>_metrics.json``), as PNG files.

* ``<stem>_firing_rate.png``: firing rate per spiking layer, one line per
  timestep, training (epoch average, batch thresholds) and test (running
  thresholds) of the chosen epoch: the paper's Figs. 8 and 10 ("stable spike
  proportions", ~15.9 % with the adaptive threshold).
* ``<stem>_window_share.png``: share of neurons inside the surrogate-gradient
  window per layer (mean over T): the paper's Fig. 11 ("more gradient in deep
  layers").
* ``<stem>_training.png``: loss and accuracies per epoch.

matplotlib (the "plot" extra) is imported here only, with the Agg backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dsatgo_deploy.errors import UserError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'dsatgo-deploy[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_metrics(path: str | os.PathLike) -> list[dict]:
    """The per-epoch records of a metrics file; UserError when missing or malformed."""
    path = Path(path)
    try:
        history = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such metrics file (written by `dsatgo train` beside the checkpoint)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and "layers" in r for r in history):
        raise UserError(f"{path}: expected a non-empty list of epoch records with 'layers'")
    return history


def plot_metrics(history: list[dict] | str | os.PathLike, out_prefix: str | os.PathLike,
                 epoch: int | None = None) -> list[Path]:
    """Draw the PNGs of a run's monitoring; returns their paths.

    ``history``: the records (or the metrics file); ``out_prefix``: path prefix
    of the files (``runs/x/model`` -> ``runs/x/model_firing_rate.png`` ...);
    ``epoch``: which epoch's layer statistics to draw (default: the last).
    """
    if not isinstance(history, list):
        history = load_metrics(history)
    plt = _pyplot()
    record = history[-1] if epoch is None else next((r for r in history if r["epoch"] == epoch), None)
    if record is None:
        raise UserError(f"no epoch {epoch} in the metrics (epochs {history[0]['epoch']}..{history[-1]['epoch']})")
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return [_save(plt, _firing_rate_figure(plt, record), prefix, "_firing_rate.png"),
            _save(plt, _window_share_figure(plt, record), prefix, "_window_share.png"),
            _save(plt, _training_figure(plt, history), prefix, "_training.png")]


def _save(plt, fig, prefix: Path, suffix: str) -> Path:
    fig.tight_layout()
    path = prefix.with_name(prefix.name + suffix)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _firing_rate_figure(plt, record: dict):
    """Firing rate per layer, one line per timestep."""
    layers = record["layers"]
    names = list(layers)
    positions = list(range(len(names)))
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 0.45 * len(names) + 4), 4), sharey=True, squeeze=False)
    for ax, key, title in ((axes[0][0], "firing_rate", "training (batch thresholds)"),
                           (axes[0][1], "test_firing_rate", "test (running thresholds)")):
        rows = [layers[n].get(key) for n in names]
        if names and all(rows):
            steps = len(rows[0])
            for t in range(steps):
                ax.plot(positions, [100.0 * r[t] for r in rows], marker="o", label=f"t = {t + 1}")
            ax.axhline(15.87, color="grey", linestyle="--", linewidth=1, label="1 - Phi(1) = 15.87 %")
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{title}, epoch {record['epoch']}", fontsize=9)
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("firing rate (%)")
    return fig


def _window_share_figure(plt, record: dict):
    """Share of neurons inside the surrogate window per layer (mean over T, spread over T as error bars)."""
    layers = record["layers"]
    names = list(layers)
    positions = list(range(len(names)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 3), 4))
    shares = [layers[n].get("window_share") or [0.0] for n in names]
    means = [100.0 * sum(s) / len(s) for s in shares]
    spread = [[m - 100.0 * min(s) for m, s in zip(means, shares)], [100.0 * max(s) - m for m, s in zip(means, shares)]]
    ax.bar(positions, means, yerr=spread if names else None, capsize=2, color="tab:blue")
    ax.set_xticks(positions)
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("inside surrogate window (%)")
    ax.set_title(f"neurons receiving surrogate gradient, epoch {record['epoch']} (mean over T, range)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return fig


def _training_figure(plt, history: list[dict]):
    """Training curves: loss, train and test accuracy per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [r["epoch"] for r in history]
    left.plot(epochs, [r["loss"] for r in history], marker=".")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    right.plot(epochs, [100 * r["train_accuracy"] for r in history], marker=".", label="train")
    right.plot(epochs, [100 * r["test_accuracy"] for r in history], marker=".", label="test")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy (%)")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig
