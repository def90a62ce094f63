"""The Loihi 2 system model's figures for docs/pilotnet.md (a few seconds, no training).

    .venv/bin/python bench/loihi2_system.py

1. PilotNet LIF (lava-dl's netx file and stored ground truths) predicted beside Intel's
   measurement on one Loihi 2 chip, with the fitted loihi2 profile and with Loihi 1's
   unfitted per-operation constants; predicted / measured ratios.
2. Cores of the project's own networks (untrained weights: the upper bound counts non-zero
   weights, so it is at its largest): the system model beside the old upper bound.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from dsatgo_deploy.train.zoo import convnet_architecture, mlp_architecture
from dsatgo_deploy.checkpoint import save_checkpoint
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.exporter import REPORT_FILE, export_checkpoint
from dsatgo_deploy.hardware_sim.loihi2_report import PILOTNET_MEASURED, pilotnet_anchor
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.neuron import NeuronConfig

PILOTNET = Path(sys.prefix) / "share" / "lava-dl-0.6.0-netx" / "gts" / "pilotnet_lif"


def pilotnet() -> None:
    measured = PILOTNET_MEASURED
    fitted, unfitted = pilotnet_anchor(PILOTNET, "loihi2"), pilotnet_anchor(PILOTNET, "loihi1")
    print("| layer | measured cores | predicted | neurons per core | limited by |")
    print("|---|---:|---:|---:|---|")
    for item in fitted["layers"]:
        print(f"| {item['name']} | {measured['cores'][item['name']]} | {item['cores']} | {item['neurons_per_core']} | "
              f"{item['limited_by']} |")
    print(f"| total | {measured['total_cores']} | {fitted['total_cores']} | | |\n")
    print("| figure | measured | loihi2 (fitted) | ratio | Loihi 1 constants (unfitted) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("inferences/s", measured["inferences_per_s"], lambda r: r["inferences_per_s"]),
            ("time per step (us)", 1e6 / (16 * measured["inferences_per_s"]), lambda r: r["step_us"]),
            ("energy per inference, total (mJ)", measured["energy_mj"]["total"], lambda r: r["energy_mj"]["total"]),
            ("energy per inference, dynamic (mJ)", measured["energy_mj"]["dynamic"], lambda r: r["energy_mj"]["dynamic"]),
            ("energy per inference, static (mJ)", measured["energy_mj"]["total"] - measured["energy_mj"]["dynamic"],
             lambda r: r["energy_mj"]["static"])]
    for label, value, get in rows:
        print(f"| {label} | {value:.4g} | {get(fitted):.4g} | {get(fitted) / value:.3f} | {get(unfitted):.4g} | "
              f"{get(unfitted) / value:.3f} |")
    print(f"\nslowest core: {fitted['slowest_layer']}; work per step: "
          + ", ".join(f"{k} {w['synops']:.0f} synops / {w['spikes']:.0f} spikes" for k, w in fitted["work_per_step"].items()))


def own_networks() -> None:
    neuron = NeuronConfig()._asdict()
    nets = {
        "digits MLP 64-64-10 (tests/conftest.py), T=4": mlp_architecture(64, [64], 10, 4, neuron),
        "conv net 8x8 digits (32, pool, 64, pool, 128), T=4": convnet_architecture((1, 8, 8), 10, 4, neuron),
        "conv net 32x32 CIFAR (32, pool, 64, pool, 128), T=4": convnet_architecture((3, 32, 32), 10, 4, neuron),
    }
    print("\n| network | layer | neurons | upper bound (old) | system model | limited by |")
    print("|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for title, arch in nets.items():
            path = Path(tmp) / "model.pt"
            torch.manual_seed(0)  # the upper bound counts non-zero weights
            save_checkpoint(path, arch, build_model(arch).state_dict(), {"epoch": 0})
            out = Path(tmp) / "out"
            try:
                export_checkpoint(path, out, overwrite=True)
            except UserError as exc:  # the whole system too small: say so, then take the smallest that fits
                print(f"| {title} | refused on one chip: {exc} | | | | |")
                export_checkpoint(path, out, overwrite=True, chips=2)
            resources = json.loads((out / REPORT_FILE).read_text())["resources"]
            for item in resources["layers"]:
                print(f"| {title} | {item['name']} | {item['neurons']} | {item['upper_bound_cores']} | {item['cores']} | "
                      f"{item['limited_by']} |")
            print(f"| {title} | total | {resources['total_neurons']} | {resources['upper_bound_total_cores']} | "
                  f"{resources['total_cores']} ({resources['chips']} chip{'s' if resources['chips'] > 1 else ''}) | |")


if __name__ == "__main__":
    pilotnet()
    own_networks()
