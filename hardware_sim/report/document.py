"""A report.json as a document: a list of blocks (headings, paragraphs, tables, images, lists, code)
that render.py writes as Markdown or HTML. One function per section, in reading order."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from .numbers import count_text, energy_text, exact_text, percent_text, time_text

ENGINE_NAMES = {"reference": "bit-exact reference simulator", "lava": "Lava (Loihi2SimCfg fixed_pt)",
                "torch": "torch float model (eval mode)"}
TERM_NAMES = {"synops": "synaptic ops", "neuron_updates_active": "active neuron updates",
              "neuron_updates_inactive": "inactive neuron updates", "spikes": "spikes (within-tile delivery)",
              "ann_macs": "equivalent ANN MACs"}
ENERGY_EQUATIONS = (
    "neuromorphic: E_L = synops_L x synaptic_op (graded input: graded_synaptic_op if given)\n"
    "                  + active_L x neuron_update_active + inactive_L x neuron_update_inactive\n"
    "                  + spikes_L x spike_within_tile\n"
    "digital:      E_L(SNN) = synops_L x ac (graded input: x mac);  E_L(ANN) = ANN MACs_L x mac\n"
    "static:       static_per_timestep x T, where the profile gives it")

SYSTEM_MODEL_LIMITS = (
    "inter-chip spikes are counted, not priced (no per-hop or chip-crossing cost is published for Loihi 2)",
    "placement within a chip, barrier synchronisation and I/O are not modelled apart: on PilotNet they sit "
    "inside the two fitted factors of the loihi2 profile",
    "three per-core limits are fitted to one network's allocation (PilotNet LIF); a layer over an assumed "
    "limit is marked OVER LIMIT, not refused",
    "work is shared evenly by a layer's cores; the threshold schedule is priced as a plain LIF update")


@dataclass
class Block:
    kind: str  # h1 h2 h3 p table img ul code
    text: str = ""
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    right: Sequence[bool] = ()
    items: Sequence[str] = ()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> Block:
    """A table whose columns from ``right_from`` on are right-aligned (numbers)."""
    return Block("table", header=list(header), rows=[list(r) for r in rows],
                 right=[i >= right_from for i in range(len(header))])


def profile_file(origin: str) -> str:
    """A built-in profile's path inside the repository; a user's file as given."""
    normalized = origin.replace(os.sep, "/")
    marker = "dsatgo_deploy/profiles/"
    return marker + normalized.split(marker, 1)[1] if marker in normalized else origin


def spiking_layers(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [layer for layer in report["layers"] if layer["spiking"]]


def _introduction(report: dict[str, Any]) -> list[Block]:
    engine = report["engine"]
    what = [f"{report['samples']} test samples, T = {report['timesteps']} timesteps; spikes from the "
            f"{ENGINE_NAMES.get(engine, engine)}."]
    network = report.get("network")
    if network:
        kinds = ", ".join(f"{l['name']} ({l['kind']} {'x'.join(map(str, l['output_shape']))})"
                          for l in network["layers"])
        what.insert(0, f"Network: {kinds}; input {'x'.join(map(str, network['input_shape']))} as "
                       f"{network['input_bits']}-bit graded spikes; threshold policy "
                       f"'{network.get('threshold_policy') or 'schedule'}'.")
        if network.get("checkpoint"):
            sha = network.get("checkpoint_sha256")
            what.append(f"Trained checkpoint `{network['checkpoint']}`"
                        + (f" (SHA-256 `{sha[:16]}...`)" if sha else "")
                        + (f", data set {network['dataset']}." if network.get("dataset") else "."))
    return [Block("h1", "DS-ATGO deployment report"), Block("p", " ".join(what))]


def _energy_summary(profile: dict[str, Any]) -> str:
    totals = profile["totals"]
    if profile["kind"] == "digital":
        text = f"SNN {energy_text(totals['snn_total_pj'])}, equivalent ANN {energy_text(totals['ann_pj'])}"
        if totals.get("ann_over_snn"):
            text += f" (ANN / SNN {totals['ann_over_snn']:.3g}x)"
        return text
    if totals["static_pj"] is None:
        return f"{energy_text(totals['snn_total_pj'])} (dynamic only; static not modelled)"
    return (f"{energy_text(totals['snn_total_pj'])} = dynamic {energy_text(totals['snn_dynamic_pj'])} "
            f"+ static {energy_text(totals['static_pj'])}")


def _summary(report: dict[str, Any]) -> list[Block]:
    totals = report["totals"]
    neuron_steps = sum(layer["neurons"] for layer in spiking_layers(report)) * report["timesteps"]
    rows = [] if report.get("accuracy") is None else [["accuracy", percent_text(report["accuracy"])]]
    rows += [["spikes per inference", count_text(totals["spikes"])],
             ["mean firing rate (spiking layers)",
              count_text(totals["spikes"] / neuron_steps if neuron_steps else None)],
             ["synaptic operations per inference", count_text(totals["synops"])],
             ["neuron updates per inference (active)",
              f"{count_text(totals['neuron_updates'])} ({count_text(totals['active_neuron_updates'])})"],
             ["equivalent ANN MACs per inference", count_text(totals["ann_macs"])]]
    latency = report.get("latency")
    if latency:
        rows.append(["latency", f"{latency['timesteps']} timesteps; {latency['wall_steps']} wall steps on Loihi "
                                f"(+{latency['depth']}: one per synapse)"])
    if report.get("loihi2_system"):
        rows.append(["Loihi 2 system model", system_headline(report["loihi2_system"])])
    for profile in report["energy"]:
        rows.append([f"energy per inference, {profile['profile']}", _energy_summary(profile)])
        timed = profile.get("latency") or {}
        if timed.get("serial_ns") is not None:
            rows.append([f"latency in time, {profile['profile']}",
                         f"{time_text(timed['layer_parallel_ns'])} (one core per layer) to "
                         f"{time_text(timed['serial_ns'])} (one core)"])
    return [Block("h2", "Summary"), table(["quantity", "value"], rows),
            Block("p", "Energies are order-of-magnitude estimates: the counts are exact, the per-operation "
                       "energies are not (see Assumptions and uncertainty).")]


def ladder_profiles(ladder: dict[str, Any]) -> list[str]:
    """The profiles the ladder's rungs were priced with, in order of first appearance."""
    return list(dict.fromkeys(p for rung in ladder["rungs"] if rung["available"] for p in rung["energy_pj"]))


def _ladder(ladder: dict[str, Any], plot: str | None) -> list[Block]:
    profiles = ladder_profiles(ladder)
    header = ["#", "rung", "accuracy", "same class as previous", "spikes / inference", "firing rate",
              "synops / inference"] + [f"energy {p}" for p in profiles]
    rows = []
    for index, rung in enumerate(ladder["rungs"], 1):
        if not rung["available"]:
            rows.append([str(index), rung["title"], rung.get("skipped") or "not run"] + ["-"] * (len(header) - 3))
            continue
        rows.append([str(index), rung["title"], percent_text(rung["accuracy"]),
                     percent_text(rung["class_agreement_with_previous"]), count_text(rung["spikes_per_inference"]),
                     count_text(rung["firing_rate"]), count_text(rung["synops_per_inference"])]
                    + [energy_text(rung["energy_pj"].get(p)) for p in profiles])
    blocks = [Block("h2", "Accuracy ladder"),
              Block("p", f"One model through deployment on the same {ladder['samples']} test samples. Every "
                         f"rung's spikes are counted on {ladder.get('counted_on', 'the deployed network')}, so "
                         "differences of operations and energy come from the spikes alone."),
              table(header, rows, right_from=2),
              Block("ul", items=[f"{rung['title']}: {rung['description']}" for rung in ladder["rungs"]])]
    if plot:
        blocks.append(Block("img", plot, items=["accuracy, spikes and energy per rung"]))
    return blocks


def _operations(report: dict[str, Any]) -> list[Block]:
    rows = []
    for layer in report["layers"]:
        p = layer["per_inference"]
        rows.append([layer["name"], layer["kind"], ", ".join(layer["sources"]), count_text(layer["neurons"]),
                     count_text(layer["connections"]), count_text(layer["synapses"]), count_text(p["spikes"]),
                     count_text(p["firing_rate"]), count_text(p["synops"]), count_text(p["neuron_updates"]),
                     count_text(p["active_neuron_updates"]), count_text(p["ann_macs"])])
    t = report["totals"]
    rows.append(["total", "", "", count_text(sum(layer["neurons"] for layer in report["layers"])),
                 count_text(sum(layer["connections"] for layer in report["layers"])),
                 count_text(sum(layer["synapses"] for layer in report["layers"])), count_text(t["spikes"]), "",
                 count_text(t["synops"]), count_text(t["neuron_updates"]), count_text(t["active_neuron_updates"]),
                 count_text(t["ann_macs"])])
    return [Block("h2", "Operations per inference, per layer"),
            Block("p", f"Mean over {report['samples']} samples of the sum over T = {report['timesteps']} timesteps. "
                       "Connections and synapses are per network (synapses: connections with a non-zero weight)."),
            table(["layer", "kind", "sources", "neurons", "connections", "synapses", "spikes", "firing rate",
                   "synops", "neuron updates", "active updates", "ANN MACs"], rows, right_from=3)]


def _firing_rate(report: dict[str, Any], plot: str | None) -> list[Block]:
    spiking = spiking_layers(report)
    if not spiking:
        return []
    header = ["layer"] + [f"t = {t + 1}" for t in range(report["timesteps"])] + ["mean"]
    rows = [[layer["name"]] + [f"{v:.4f}" for v in layer["per_timestep"]["firing_rate"]]
            + [f"{layer['per_inference']['firing_rate']:.4f}"] for layer in spiking]
    blocks = [Block("h2", "Firing rate per layer and timestep"),
              Block("p", "Spikes per neuron at each timestep, mean over samples."), table(header, rows)]
    if plot:
        blocks.append(Block("img", plot, items=["firing rate per layer and timestep"]))
    return blocks


def _energy_rows(profile: dict[str, Any], timesteps: int) -> list[list[str]]:
    """One profile's energy table: each term of each layer, the layer totals, static and the totals."""
    constants = profile["constants_used"]
    rows = []
    for layer in profile["layers"]:
        for term in layer["terms"]:
            name = term["constants"][0]
            side = "ANN" if term["term"] == "ann_macs" else "SNN"
            rows.append([layer["name"], side, TERM_NAMES.get(term["term"], term["term"]),
                         exact_text(term["count"], 4), f"`{name}` = {count_text(constants[name]['value'])} pJ",
                         exact_text(term["energy_pj"])])
        rows.append([f"**{layer['name']}**", "SNN", "layer total", "", "", f"**{exact_text(layer['snn_pj'])}**"])
        if layer["ann_pj"] is not None:
            rows.append([f"**{layer['name']}**", "ANN", "layer total", "", "", f"**{exact_text(layer['ann_pj'])}**"])
    t = profile["totals"]
    if t["static_pj"] is not None:
        value = constants["static_per_timestep"]["value"]
        rows.append(["(network)", "SNN", "static", exact_text(timesteps),
                     f"`static_per_timestep` = {count_text(value)} pJ", exact_text(t["static_pj"])])
    rows.append(["**total**", "SNN", "dynamic" + (" + static" if t["static_pj"] is not None else ""), "", "",
                 f"**{exact_text(t['snn_total_pj'])}** ({energy_text(t['snn_total_pj'])})"])
    if t["ann_pj"] is not None:
        rows.append(["**total**", "ANN", "", "", "", f"**{exact_text(t['ann_pj'])}** ({energy_text(t['ann_pj'])})"])
    return rows


def _energy(report: dict[str, Any], plot: str | None) -> list[Block]:
    blocks = [Block("h2", "Energy per inference, per layer"),
              Block("p", "Each row is a count per inference times one constant of the profile (named, with its "
                         "value; its source is under Constants and their sources).")]
    for profile in report["energy"]:
        blocks += [Block("h3", f"{profile['profile']} ({profile['kind']}): {profile['description']}"),
                   table(["layer", "model", "term", "count / inference", "constant", "energy (pJ)"],
                         _energy_rows(profile, report["timesteps"]), right_from=3)]
        if profile["totals"]["static_pj"] is None:
            blocks.append(Block("p", "Static (leakage) energy: not modelled by this profile; the total is "
                                     "dynamic energy only."))
    if plot:
        blocks.append(Block("img", plot, items=["energy per layer and term, per profile"]))
    return blocks


def _latency(report: dict[str, Any]) -> list[Block]:
    rows, notes = [], []
    for profile in report["energy"]:
        timed = profile.get("latency")
        if not timed:
            continue
        rows.append([profile["profile"], str(timed["timesteps"]), str(timed["wall_steps"]),
                     time_text(timed.get("layer_parallel_ns")), time_text(timed.get("serial_ns")),
                     ", ".join(f"`{c}`" for c in timed.get("constants", [])) or "(no time constants)"])
        notes.append(timed["note"])
    if not rows:
        return []
    steps = notes[0].split(" Seconds")[0]
    seconds = next((n[n.index("Seconds"):] for n in notes if "Seconds" in n), "No profile gives times.")
    return [Block("h2", "Latency per inference"),
            Block("table", header=["profile", "timesteps", "wall steps", "one core per layer", "one core",
                                   "constants"], rows=rows, right=[False, True, True, True, True, False]),
            Block("p", steps + " " + seconds)]


def rate_text(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.3g}"


def system_headline(system: dict[str, Any]) -> str:
    """One line of the Loihi 2 system model's figures (summary row, terminal)."""
    energy = {k: v * 1e9 for k, v in system["energy_mj"].items()}  # mJ -> pJ
    return (f"{system['total_cores']} cores on {system['chips']} chip(s) of {system['system']}; "
            f"{time_text(system['step_us'] * 1e3)} per step (busiest core: {system['slowest_layer']}), "
            f"{time_text(system['inference_ms'] * 1e6)} per inference, {rate_text(system['inferences_per_s'])} "
            f"inferences/s; {energy_text(energy['total'])} per inference = dynamic {energy_text(energy['dynamic'])} "
            f"+ static {energy_text(energy['static'])}")


def _system_layer_rows(system: dict[str, Any]) -> list[list[str]]:
    per_chip = int(system["facts"]["cores_per_chip"]["value"])
    rows = []
    for layer in system["layers"]:
        first, last = layer["first_core"] // per_chip + 1, (layer["first_core"] + layer["cores"] - 1) // per_chip + 1
        step_us = system["layer_step_us"].get(layer["name"])
        rows.append([layer["name"], count_text(layer["neurons"]), count_text(layer["cores"]),
                     count_text(layer["neurons_per_core"]), str(first) if first == last else f"{first}-{last}",
                     layer["limited_by"], "-" if step_us is None else time_text(step_us * 1e3),
                     "-" if step_us is None else percent_text(step_us / system["step_us"])])
    rows.append(["**total**", count_text(sum(l["neurons"] for l in system["layers"])),
                 f"**{count_text(system['total_cores'])}**", "", str(system["chips"]), "",
                 time_text(system["step_us"] * 1e3), ""])
    return rows


def _loihi2_system(report: dict[str, Any], plot: str | None) -> list[Block]:
    system = report.get("loihi2_system")
    if not system:
        return []
    energy = {k: v * 1e9 for k, v in system["energy_mj"].items()}  # mJ -> pJ
    per_chip = int(system["facts"]["cores_per_chip"]["value"])
    rows = [["system", f"{system['system']}: {system['system_chips']} chip(s), {count_text(system['system_chips'] * per_chip)} "
                       f"cores ({system['selection']})"],
            ["cores used (chips used)", f"{count_text(system['total_cores'])} ({system['chips']})"],
            ["time per timestep", f"{time_text(system['step_us'] * 1e3)} (busiest core: {system['slowest_layer']})"],
            ["time per inference", f"{time_text(system['inference_ms'] * 1e6)} (T = {system['timesteps']} steps)"],
            ["inferences per second", rate_text(system["inferences_per_s"])],
            ["energy per inference", f"{energy_text(energy['total'])} = dynamic {energy_text(energy['dynamic'])} "
                                     f"+ static {energy_text(energy['static'])}"],
            ["inter-chip spikes per inference", count_text(system["interchip_spikes_per_inference"])]]
    facts = [[f"`{name}`", count_text(f["value"]), f["unit"], f["status"], f["source"]]
             for name, f in system["facts"].items()]
    facts += [[f"`{name}` ({system['profile']} profile)", count_text(c["value"]), c["unit"], c["status"], c["source"]]
              for name, c in system["constants"].items()]
    blocks = [Block("h2", "Loihi 2 system model"),
              Block("p", "The network placed on Loihi 2 cores by the system model (`dsatgo_deploy/loihi2_system.py`, "
                         "docs/pilotnet.md): layers never share a core, a layer's work is shared evenly by its "
                         "cores, a timestep lasts as long as the busiest core, one inference every T steps. Times "
                         f"and energies use the `{system['profile']}` profile; static energy is the static power of "
                         "the chips used over the time of one inference."),
              table(["quantity", "value"], rows),
              Block("table", header=["layer", "neurons", "cores", "neurons / core", "chip", "limited by",
                                     "busiest core / step", "share of step"], rows=_system_layer_rows(system),
                    right=[False, True, True, True, True, False, True, True]),
              Block("p", "Device facts and constants of the model, with their status (published, derived, "
                         "fitted to Intel's PilotNet LIF measurement, or assumed) and source:"),
              Block("table", header=["fact", "value", "unit", "status", "source"], rows=facts,
                    right=[False, True, False, False, False])]
    if plot:
        blocks.append(Block("img", plot, items=["Loihi 2 cores and time per timestep, per layer"]))
    return blocks


def _constants(report: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "Constants and their sources")]
    for profile in report["energy"]:
        blocks.append(Block("h3", f"{profile['profile']}: `{profile_file(profile['origin'])}`"))
        if profile.get("note"):
            blocks.append(Block("p", profile["note"]))
        rows = [[f"`{name}`", count_text(c["value"]), c["unit"], c["status"], c["source"], c.get("note", "")]
                for name, c in profile["constants_used"].items()]
        blocks.append(Block("table", header=["constant", "value", "unit", "status", "source", "note"], rows=rows,
                            right=[False, True, False, False, False, False]))
    return blocks


def _method_and_limits(report: dict[str, Any], plot_note: str | None) -> list[Block]:
    items = []
    for profile in report["energy"]:
        items += [f"{profile['profile']}: {a}" for a in dict.fromkeys(profile["assumptions"])]
        items.append(f"{profile['profile']}: {profile['uncertainty']}")
    if not report.get("input_payloads_known", True):
        items.append("Input payloads were not known: input synops are an upper bound.")
    if report.get("loihi2_system"):
        items += [f"Loihi 2 system model: {item}" for item in SYSTEM_MODEL_LIMITS]
    if plot_note:
        items.append(plot_note)
    return [Block("h2", "How the numbers are computed"),
            Block("ul", items=[f"**{k}**: {v}" for k, v in report.get("definitions", {}).items()]),
            Block("code", ENERGY_EQUATIONS),
            Block("h2", "Assumptions and uncertainty"), Block("ul", items=items)]


def document(report: dict[str, Any], plots: dict[str, str | None], plot_note: str | None) -> list[Block]:
    """The whole report in reading order; ``plots``: file names of the drawn plots by kind."""
    blocks = _introduction(report) + _summary(report)
    if report.get("ladder"):
        blocks += _ladder(report["ladder"], plots.get("ladder"))
    return (blocks + _operations(report) + _firing_rate(report, plots.get("firing_rate"))
            + _energy(report, plots.get("energy")) + _latency(report)
            + _loihi2_system(report, plots.get("loihi2_system")) + _constants(report)
            + _method_and_limits(report, plot_note))
