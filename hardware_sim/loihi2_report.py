"""Figures of the Loihi 2 system model (dsatgo_deploy.loihi2_system) for a network, and its anchor.

``system_figures`` turns a deployable network and its operation counts (energy.count_operations)
into a plain dict for reports: cores per layer, chips, time per step (and per layer's busiest
core) and per inference, inferences per second, energy per inference (static and dynamic),
inter-chip spikes, the device facts and profile constants used. ``choose_system`` picks the
system a report uses: the one asked for (checked), else the smallest that holds the network.

``pilotnet_anchor`` does the same for Intel's PilotNet LIF, read straight from lava-dl's netx
file with h5py, its work counted from the stored spike ground truths, beside ``PILOTNET_MEASURED``:
Intel's own figures on one Loihi 2 chip (lava-dl tutorial
tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dsatgo_deploy import loihi2_system as l2
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import Profile, load_profile

from .counts import OperationCounts

#: Intel's measurement of PilotNet LIF on one Loihi 2 chip (16 timesteps per sample).
PILOTNET_MEASURED = {
    "cores": {"input": 13, "conv1": 25, "conv2": 13, "conv3": 3, "conv4": 3, "conv5": 2,
              "fc1": 12, "fc2": 1, "fc3": 1, "fc4": 1},
    "total_cores": 74,
    "timesteps": 16,
    "inferences_per_s": 408.91,
    "power_w": {"total": 0.679, "static": 0.232, "dynamic": 0.447},
    "energy_mj": {"total": 1.661, "dynamic": 1.094},
}
#: lava-dl's netx layer index -> (our name, its ground-truth file stem).
PILOTNET_LAYERS = {"0": ("input", "input"), "1": ("conv1", "conv-0"), "2": ("conv2", "conv-1"),
                   "3": ("conv3", "conv-2"), "4": ("conv4", "conv-3"), "5": ("conv5", "conv-4"),
                   "7": ("fc1", "fc-0"), "8": ("fc2", "fc-1"), "9": ("fc3", "fc-2"), "10": ("fc4", "fc-3-s")}


def _constants(profile: Profile) -> dict[str, float]:
    missing = [k for k in (*l2.TIME_KEYS.values(), *l2.ENERGY_KEYS.values()) if k not in profile.constants]
    if missing:
        raise ValueError(f"profile '{profile.name}' lacks {', '.join(missing)} for the Loihi 2 system model")
    return {k: c.value for k, c in profile.constants.items()}


def _summary(specs: list[l2.LayerSpec], allocs: list[l2.LayerAllocation], perf: l2.Performance) -> dict[str, Any]:
    return {
        "system": perf.system, "chips": perf.chips, "total_cores": perf.cores, "timesteps": perf.timesteps,
        "layers": [asdict(a) for a in allocs],
        "step_us": perf.step_ns * 1e-3, "slowest_layer": perf.slowest_layer,
        "layer_step_us": {name: ns * 1e-3 for name, ns in perf.per_layer_core_ns.items()},
        "inference_ms": perf.inference_s * 1e3, "inferences_per_s": perf.inferences_per_s,
        "energy_mj": {"dynamic": perf.dynamic_pj * 1e-9, "static": perf.static_pj * 1e-9,
                      "total": perf.total_pj * 1e-9},
        "interchip_spikes_per_inference": perf.interchip_spikes_per_inference,
        "facts": {k: asdict(v) for k, v in l2.FACTS.items()},
    }


def system_figures(net: DeployableNetwork, counts: OperationCounts, profile: Profile | str = "loihi2",
                   system: str | None = None, chips: int | None = None) -> dict[str, Any]:
    """The Loihi 2 system model's figures for ``net`` (plain dict; see module doc)."""
    profile = load_profile(profile) if isinstance(profile, str) else profile
    title, chip_count = l2.resolve_system(system, chips)
    specs = l2.network_specs(net)
    allocs = l2.allocate_network(net)
    work = {lc.name: l2.LayerWork(lc.name, lc.per_inference("synops") / lc.timesteps,
                                  lc.per_inference("active_updates") / lc.timesteps,
                                  lc.per_inference("inactive_updates") / lc.timesteps,
                                  lc.per_inference("spikes") / lc.timesteps) for lc in counts.layers}
    perf = l2.performance(specs, allocs, work, counts.timesteps, _constants(profile), title, chip_count)
    used = sorted({*l2.TIME_KEYS.values(), *l2.ENERGY_KEYS.values()})
    return _summary(specs, allocs, perf) | {"profile": profile.name, "system_chips": chip_count,
                                            "constants": {k: profile.constants[k].as_dict() for k in used}}


def choose_system(net: DeployableNetwork, system: str | None = None,
                  chips: int | None = None) -> tuple[str | None, int | None, str]:
    """(system, chips, how they were chosen) for ``system_figures``: the system asked for, checked
    before any run (UserError naming the first layer that does not fit); else the smallest named
    system that holds ``net``; else just enough chips."""
    allocs = l2.allocate_network(net)
    if system is not None or chips is not None:
        title, count = l2.resolve_system(system, chips)
        l2.place(allocs, count, title)
        return system, chips, "requested (" + (f"--chips {chips}" if chips is not None else f"--system {system}") + ")"
    needed = math.ceil(sum(a.cores for a in allocs) / l2.CORES_PER_CHIP.value)
    for name, count in l2.SYSTEMS.items():
        if count >= needed:
            return name, None, "the smallest named system that holds the network (no --system or --chips given)"
    return None, needed, "just enough chips: the network needs more than the largest named system"


# --------------------------------------------------------------------------- PilotNet LIF anchor


def _maps(spikes: np.ndarray, steps: int) -> torch.Tensor:
    """(X, Y, C, T) or (n, T) ground truth -> (T, C, Y, X) or (T, n) float, the first ``steps`` steps."""
    if spikes.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(spikes[:, :steps].T).astype(np.float64))
    return torch.from_numpy(np.ascontiguousarray(spikes[..., :steps].transpose(3, 2, 1, 0)).astype(np.float64))


def pilotnet_specs_and_work(folder: Path, steps: int = 16) -> tuple[list[l2.LayerSpec], dict[str, l2.LayerWork]]:
    """PilotNet LIF's layers (lava-dl's network.net) and their mean work per step over the first
    ``steps`` steps of the stored ground truths (spikes of every layer, from reset)."""
    import h5py

    specs, work = [], {}
    order = list(PILOTNET_LAYERS.values())
    with h5py.File(folder / "network.net", "r") as h5:
        previous = None
        for index, (name, stem) in PILOTNET_LAYERS.items():
            group = h5["layer"][index]
            shape = tuple(int(v) for v in group["shape"][()])  # (C, Y, X)
            kind = group["type"][0].decode()
            own = np.load(folder / f"{stem}.npy")
            spikes = float(own[..., :steps].sum()) / steps if own.dtype == bool else 0.0
            position = [n for n, _ in order].index(name)
            feeds = (order[position + 1][0],) if position + 1 < len(order) else ()
            neurons = int(np.prod(shape))
            if kind == "input":
                specs.append(l2.LayerSpec(name, "neurons", shape, 1, (), feeds=feeds))
                work[name] = l2.LayerWork(name, 0.0, spikes, neurons - spikes, spikes)
            else:
                weight = group["weight"][()]
                mask = torch.from_numpy((weight != 0).astype(np.float64))
                source = _maps(np.load(folder / f"{previous}.npy"), steps)
                if kind == "conv":
                    events = F.conv2d(source, mask, stride=tuple(int(s) for s in group["stride"][()]),
                                      padding=tuple(int(p) for p in group["padding"][()]))
                    specs.append(l2.LayerSpec(name, "conv", shape, int(np.prod(weight.shape[1:])), (previous,),
                                              tuple(weight.shape), feeds))
                else:
                    mask = mask.reshape(len(weight) if weight.ndim > 1 else 1, -1)
                    events = source.reshape(steps, -1) @ mask.T
                    specs.append(l2.LayerSpec(name, "dense", (neurons,), mask.shape[1], (previous,), feeds=feeds))
                fired = (_maps(own, steps) > 0).reshape(events.shape) if own.dtype == bool else torch.zeros_like(events, dtype=bool)
                active = float(((events > 0) | fired).sum()) / steps
                work[name] = l2.LayerWork(name, float(events.sum()) / steps, active, neurons - active, spikes)
            previous = stem
    return specs, work


def pilotnet_anchor(folder: Path, profile: Profile | str = "loihi2", steps: int = 16) -> dict[str, Any]:
    """Predicted figures of PilotNet LIF on one Loihi 2 chip, beside Intel's measurement."""
    profile = load_profile(profile) if isinstance(profile, str) else profile
    specs, work = pilotnet_specs_and_work(Path(folder), steps)
    allocs = l2.allocate(specs)
    title, chips = l2.resolve_system("loihi2")
    perf = l2.performance(specs, allocs, work, steps, _constants(profile), title, chips)
    work_dict = {name: asdict(w) for name, w in work.items()}
    return _summary(specs, allocs, perf) | {"profile": profile.name, "work_per_step": work_dict,
                                            "measured": PILOTNET_MEASURED}
