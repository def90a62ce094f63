"""Tables of the digits ablation (bench/ablation_digits.sh) from the runs' metrics files.

    python docs/ablation/summarize.py runs/ablation_digits

Reads ``<runs>/<setting>_s<seed>/model_metrics.json`` (written per epoch by
``dsatgo train``) and uses the LAST epoch of each run: test accuracy (eval mode,
running thresholds), and per spiking layer, averaged over the epoch's training
samples and then over the T timesteps: firing rate, threshold in use and the
share of neurons inside the surrogate-gradient window; plus the eval-mode
firing rate on the test set. Across layers: the mean, the (population) std
and the max - min of the per-layer rates. Across seeds: mean +- sample std.
Prints Markdown and writes ``<runs>/summary.md`` and ``<runs>/summary.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

SETTINGS = ("vanilla", "at", "tgo", "ds-atgo")
LABELS = {"vanilla": "vanilla", "at": "AT only", "tgo": "TGO only", "ds-atgo": "DS-ATGO (AT+TGO)"}


def load_runs(root: Path) -> dict[str, dict[int, list[dict]]]:
    runs: dict[str, dict[int, list[dict]]] = {}
    for path in sorted(root.glob("*_s*/model_metrics.json")):
        match = re.fullmatch(r"(.+)_s(\d+)", path.parent.name)
        if match and match.group(1) in SETTINGS:
            runs.setdefault(match.group(1), {})[int(match.group(2))] = json.loads(path.read_text())
    return runs


def run_stats(history: list[dict]) -> dict:
    last = history[-1]
    layers = last["layers"]
    names = list(layers)
    per_layer = {key: np.array([np.mean(layers[n][key]) for n in names])
                 for key in ("firing_rate", "test_firing_rate", "window_share", "threshold", "width")}
    rate_t = np.array([layers[n]["firing_rate"] for n in names])  # (layers, T)
    return {
        "layers": names,
        "epochs": last["epoch"],
        "test_accuracy": last["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in history),
        "train_accuracy": last["train_accuracy"],
        "loss": last["loss"],
        "per_layer": {k: v.tolist() for k, v in per_layer.items()},
        "rate_across_layers": {"mean": float(per_layer["firing_rate"].mean()),
                               "std": float(per_layer["firing_rate"].std()),
                               "max_minus_min": float(np.ptp(per_layer["firing_rate"]))},
        "test_rate_across_layers": {"mean": float(per_layer["test_firing_rate"].mean()),
                                    "std": float(per_layer["test_firing_rate"].std()),
                                    "max_minus_min": float(np.ptp(per_layer["test_firing_rate"]))},
        "rate_over_timesteps_max_minus_min": float(np.ptp(rate_t, axis=1).max()),
        "window_share_min_layer": float(per_layer["window_share"].min()),
    }


def ms(values, scale: float = 100.0, digits: int = 1) -> str:
    """mean +- sample std (just the value for one seed), times ``scale``."""
    values = np.asarray(values, dtype=float) * scale
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "runs/ablation_digits")
    runs = load_runs(root)
    if not runs:
        print(f"no runs under {root}", file=sys.stderr)
        return 1
    stats = {s: {seed: run_stats(h) for seed, h in sorted(runs[s].items())} for s in SETTINGS if s in runs}
    any_run = next(iter(next(iter(stats.values())).values()))
    names = any_run["layers"]
    seeds = sorted({seed for per in stats.values() for seed in per})
    lines = [f"Runs under `{root}`, seeds {seeds}, last epoch ({any_run['epochs']}) of each run; "
             "values in %, mean ± std over seeds.", ""]

    lines += ["### Test accuracy", "",
              "| setting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std | best epoch, mean | train acc |",
              "|---|" + "---|" * len(seeds) + "---|---|---|"]
    for s, per in stats.items():
        cells = [f"{100 * per[seed]['test_accuracy']:.2f}" if seed in per else "-" for seed in seeds]
        lines.append(f"| {LABELS[s]} | " + " | ".join(cells) + f" | {ms([r['test_accuracy'] for r in per.values()], digits=2)}"
                     f" | {ms([r['best_test_accuracy'] for r in per.values()], digits=2)}"
                     f" | {ms([r['train_accuracy'] for r in per.values()], digits=2)} |")

    def layer_table(title: str, key: str, across: str | None, scale: float = 100.0, digits: int = 1) -> None:
        nonlocal lines
        header = "| setting | " + " | ".join(names)
        rule = "|---|" + "---|" * len(names)
        if across:
            header += " | mean over layers | std across layers | max - min across layers"
            rule += "---|---|---|"
        lines += ["", f"### {title}", "", header + " |", rule]
        for s, per in stats.items():
            cells = [ms([r["per_layer"][key][i] for r in per.values()], scale, digits) for i in range(len(names))]
            if across:
                cells += [ms([r[across][k] for r in per.values()]) for k in ("mean", "std", "max_minus_min")]
            lines.append(f"| {LABELS[s]} | " + " | ".join(cells) + " |")

    layer_table("Firing rate per layer, training (batch thresholds), mean over T", "firing_rate",
                "rate_across_layers")
    layer_table("Firing rate per layer, test set in eval mode (running thresholds), mean over T",
                "test_firing_rate", "test_rate_across_layers")
    layer_table("Share of neurons inside the surrogate window, training, mean over T", "window_share", None)
    layer_table("Threshold in use, training, mean over T (absolute value)", "threshold", None, 1.0, 3)
    layer_table("Surrogate width kappa, training, mean over T (absolute value)", "width", None, 1.0, 3)
    lines += ["", "### Per-timestep spread", "",
              "| setting | largest max - min over t of a layer's training firing rate |", "|---|---|"]
    for s, per in stats.items():
        lines.append(f"| {LABELS[s]} | {ms([r['rate_over_timesteps_max_minus_min'] for r in per.values()])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (root / "summary.md").write_text(text)
    (root / "summary.json").write_text(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
