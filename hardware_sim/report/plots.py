"""The report's PNG plots: firing rate per layer and timestep, energy per layer and term, the ladder,
Loihi 2 cores and time per layer.

They need matplotlib (the "plot" or "lava" extra); without it the report says so
and keeps its tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.fileio import atomic_file

from .document import TERM_NAMES, ladder_profiles, spiking_layers
from .numbers import energy_text, energy_unit

PLOT_FILES = {"firing_rate": "report_firing_rate.png", "energy": "report_energy_per_layer.png",
              "ladder": "report_ladder.png", "loihi2_system": "report_loihi2_system.png"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> None:
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")


def _unit_of(values: Sequence[float]) -> tuple[float, str]:
    return energy_unit(max((abs(v) for v in values), default=0.0))


def plot_firing_rate(report: dict[str, Any], path: Path) -> Path | None:
    """Heat map: spiking layers x timesteps, each cell the firing rate (annotated when few)."""
    spiking = spiking_layers(report)
    if not spiking:
        return None
    steps = report["timesteps"]
    rates = np.array([l["per_timestep"]["firing_rate"] for l in spiking])
    fig = _figure(max(5.0, 2.6 + 0.9 * steps), max(2.4, 1.3 + 0.42 * len(spiking)))
    ax = fig.add_subplot()
    image = ax.imshow(rates, aspect="auto", cmap="viridis", vmin=0.0, vmax=max(float(rates.max()), 1e-6))
    ax.set_xticks(range(steps), [str(t + 1) for t in range(steps)])
    ax.set_yticks(range(len(spiking)), [l["name"] for l in spiking])
    ax.set_xlabel("timestep")
    ax.set_title(f"Firing rate per layer and timestep ({report['samples']} samples)")
    if rates.size <= 300:
        threshold = 0.6 * float(rates.max())
        for (i, t), value in np.ndenumerate(rates):
            ax.text(t, i, f"{value:.3f}", ha="center", va="center", fontsize=9 if rates.size <= 40 else 7,
                    color="black" if value > threshold else "white")
    fig.colorbar(image, ax=ax, label="spikes per neuron per timestep")
    _save(fig, path)
    return path


TERM_COLOURS = {"synops": "#4477aa", "neuron_updates_active": "#ee6677", "neuron_updates_inactive": "#ccbb44",
                "spikes": "#228833", "ann_macs": "#999999"}


def plot_energy(report: dict[str, Any], path: Path) -> Path | None:
    """One panel per profile: per layer, horizontal bars stacked by term (SNN), and the ANN bar for digital."""
    profiles = report["energy"]
    if not profiles:
        return None
    names = [l["name"] for l in report["layers"]]
    fig = _figure(max(6.0, 4.2 * len(profiles)), max(2.8, 1.6 + 0.5 * len(names)))
    axes = fig.subplots(1, len(profiles), sharey=True, squeeze=False)[0]
    for ax, e in zip(axes, profiles):
        values = [le["snn_pj"] for le in e["layers"]] + [le["ann_pj"] or 0.0 for le in e["layers"]]
        scale, unit = _unit_of(values)
        digital = e["kind"] == "digital"
        height = 0.38 if digital else 0.7
        y = np.arange(len(names))
        seen: set[str] = set()
        for i, le in enumerate(e["layers"]):
            left = 0.0
            for term in le["terms"]:
                if term["term"] == "ann_macs":
                    continue
                width = term["energy_pj"] / scale
                ax.barh(y[i] - (height / 2 if digital else 0), width, height, left=left,
                        color=TERM_COLOURS.get(term["term"], "#777777"),
                        label=None if term["term"] in seen else TERM_NAMES.get(term["term"], term["term"]))
                seen.add(term["term"])
                left += width
            if digital and le["ann_pj"] is not None:
                ax.barh(y[i] + height / 2, le["ann_pj"] / scale, height, color=TERM_COLOURS["ann_macs"],
                        label=None if "ann_macs" in seen else "equivalent ANN (MACs)")
                seen.add("ann_macs")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel(f"energy per inference ({unit})")
        total = e["totals"]
        ax.set_title(f"{e['profile']}: SNN {energy_text(total['snn_total_pj'])}"
                     + (f", ANN {energy_text(total['ann_pj'])}" if total["ann_pj"] is not None else ""), fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Energy per inference, per layer and term")
    _save(fig, path)
    return path


def _ladder_energy_panel(ax, rungs: list[dict[str, Any]], profiles: list[str]) -> None:
    """Energy per rung, one bar per profile; a dashed line per profile's equivalent ANN."""
    available = [r for r in rungs if r["available"]]
    scale, unit = _unit_of([v for r in available for v in r["energy_pj"].values()])
    height = 0.8 / max(1, len(profiles))
    colours = ["#4477aa", "#66ccee", "#ee6677", "#ccbb44", "#aa3377"]
    peak = 0.0
    for k, profile in enumerate(profiles):
        for i, r in enumerate(rungs):
            if not r["available"] or profile not in r["energy_pj"]:
                continue
            value = r["energy_pj"][profile] / scale
            peak = max(peak, value)
            ax.barh(i - 0.4 + height * (k + 0.5), value, height, color=colours[k % len(colours)],
                    label=f"{profile} (SNN)" if i == next(j for j, q in enumerate(rungs) if q["available"]) else None)
            ax.text(value, i - 0.4 + height * (k + 0.5), f" {value:.3g}", ha="left", va="center", fontsize=7)
    for i, r in enumerate(rungs):
        if not r["available"]:
            ax.text(0, i, "  not run", ha="left", va="center", fontsize=8, color="#777777")
    ann = {p: v for r in available for p, v in r.get("ann_energy_pj", {}).items() if v is not None}
    for k, (profile, value) in enumerate(ann.items()):
        ax.axvline(value / scale, color="#555555", linestyle="--", linewidth=1,
                   label=f"equivalent ANN, {profile}")
        peak = max(peak, value / scale)
    ax.set_xlim(0, peak * 1.3 or 1.0)
    ax.set_xlabel(f"energy per inference ({unit})")
    ax.set_title("Energy")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)


def plot_ladder(ladder: dict[str, Any], path: Path) -> Path | None:
    """Three panels sharing the rungs (rows): accuracy, spikes per inference, energy per profile."""
    rungs = ladder["rungs"]
    if not rungs:
        return None
    y = np.arange(len(rungs))
    available = [r for r in rungs if r["available"]]
    fig = _figure(13.0, 1.9 + 0.55 * len(rungs))
    axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.3]})

    def bars(ax, values, fmt, colour, origin=0.0):
        for i, (r, v) in enumerate(zip(rungs, values)):
            if not r["available"]:
                ax.text(origin, i, "  not run", ha="left", va="center", fontsize=8, color="#777777")
                continue
            ax.barh(i, v - origin, 0.65, left=origin, color=colour)
            ax.text(v, i, " " + fmt(v), ha="left", va="center", fontsize=8)

    shown = [100 * r["accuracy"] for r in available]
    low = max(0.0, np.floor(min(shown, default=0.0) - 5.0))
    bars(axes[0], [100 * (r.get("accuracy") or 0.0) for r in rungs], lambda v: f"{v:.2f}%", "#4477aa", low)
    axes[0].set_xlim(low, 100.0 + (100.0 - low) * 0.25)
    axes[0].set_xticks([t for t in axes[0].get_xticks() if low <= t <= 100.0])
    axes[0].set_xlabel("test accuracy (%)")
    axes[0].set_title("Accuracy")
    spikes = [r.get("spikes_per_inference") or 0.0 for r in rungs]
    bars(axes[1], spikes, lambda v: f"{v:.1f}", "#228833")
    axes[1].set_xlim(0, max(spikes, default=1.0) * 1.25 or 1.0)
    axes[1].set_xlabel("spikes per inference")
    axes[1].set_title("Spikes")
    _ladder_energy_panel(axes[2], rungs, ladder_profiles(ladder))
    axes[0].set_ylim(-0.6, len(rungs) - 0.4)
    axes[0].set_yticks(y, [f"{i + 1}. {r['title']}" for i, r in enumerate(rungs)])
    axes[0].invert_yaxis()
    for a in axes:
        a.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Accuracy ladder ({ladder['samples']} test samples): float model to Loihi fixed point")
    _save(fig, path)
    return path


def plot_loihi2_system(system: dict[str, Any], path: Path) -> Path | None:
    """Two panels sharing the layers (rows): Loihi 2 cores per layer, and the time of each layer's
    busiest core per timestep (the slowest, which sets the step, in red)."""
    layers = system["layers"]
    names = [layer["name"] for layer in layers]
    y = np.arange(len(names))
    fig = _figure(11.0, max(2.6, 1.5 + 0.42 * len(names)))
    axes = fig.subplots(1, 2, sharey=True)
    cores = [layer["cores"] for layer in layers]
    axes[0].barh(y, cores, 0.65, color="#4477aa")
    for i, value in enumerate(cores):
        axes[0].text(value, i, f" {value:,}", ha="left", va="center", fontsize=8)
    axes[0].set_xlim(0, max(cores) * 1.25)
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_xlabel("cores")
    axes[0].set_title(f"Cores per layer: {system['total_cores']:,} on {system['chips']} chip(s)", fontsize=10)
    times = [system["layer_step_us"].get(name) for name in names]
    for i, (name, value) in enumerate(zip(names, times)):
        if value is None:  # relay populations: their work is not counted
            axes[1].text(0, i, "  not counted", ha="left", va="center", fontsize=8, color="#777777")
            continue
        axes[1].barh(i, value, 0.65, color="#ee6677" if name == system["slowest_layer"] else "#66ccee")
        axes[1].text(value, i, f" {value:.3g}", ha="left", va="center", fontsize=8)
    axes[1].set_xlim(0, system["step_us"] * 1.25 or 1.0)
    axes[1].set_xlabel("time of the layer's busiest core per timestep (us)")
    axes[1].set_title(f"Time per timestep: {system['step_us']:.3g} us, set by {system['slowest_layer']}", fontsize=10)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Loihi 2 system model: {system['system']}, {system['inferences_per_s']:,.0f} inferences/s")
    _save(fig, path)
    return path


def draw_plots(report: dict[str, Any], folder: Path) -> tuple[dict[str, str | None], str | None]:
    """Draw every plot the report has data for into ``folder``.

    Returns the file name of each plot by kind (None: nothing to draw) and a note when none could be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}, "Plots were not drawn: matplotlib is not installed (pip install 'dsatgo-deploy[plot]')."
    made = {"firing_rate": plot_firing_rate(report, folder / PLOT_FILES["firing_rate"]),
            "energy": plot_energy(report, folder / PLOT_FILES["energy"]),
            "ladder": plot_ladder(report["ladder"], folder / PLOT_FILES["ladder"]) if report.get("ladder") else None,
            "loihi2_system": (plot_loihi2_system(report["loihi2_system"], folder / PLOT_FILES["loihi2_system"])
                              if report.get("loihi2_system") else None)}
    return {kind: None if path is None else path.name for kind, path in made.items()}, None
