"""The report for a terminal: compact tables of operations and energy per layer, latency, the Loihi 2
system model, the ladder."""

from __future__ import annotations

from typing import Any

from .document import ladder_profiles, system_headline
from .numbers import count_text, energy_text, short_text, text_table, time_text


def _layer_rows(report: dict[str, Any]) -> list[list[str]]:
    """Per layer, then the total: spikes, rate, synops, ANN MACs, and energy per profile (SNN / ANN)."""
    profiles = report["energy"]
    by_profile = [{layer["name"]: layer for layer in profile["layers"]} for profile in profiles]
    rows = []
    for layer in report["layers"] + [None]:
        if layer is None:
            counts, name, rate = report["totals"], "total", "-"
        else:
            counts, name = layer["per_inference"], layer["name"]
            rate = "-" if counts["firing_rate"] is None else f"{counts['firing_rate']:.3f}"
        row = [name, short_text(counts["spikes"]), rate, short_text(counts["synops"]), short_text(counts["ann_macs"])]
        for profile, layers in zip(profiles, by_profile):
            if layer is None:
                snn, ann = profile["totals"]["snn_total_pj"], profile["totals"]["ann_pj"]
            else:
                snn, ann = layers[name]["snn_pj"], layers[name]["ann_pj"]
            row.append(energy_text(snn) + ("" if ann is None else f" / {energy_text(ann)}"))
        rows.append(row)
    return rows


def _latency_line(report: dict[str, Any]) -> str:
    latency = report["latency"]
    line = f"latency: {latency['timesteps']} timesteps, {latency['wall_steps']} wall steps on Loihi"
    for profile in report["energy"]:
        timed = profile.get("latency") or {}
        if timed.get("serial_ns") is not None:
            line += (f"; {profile['profile']} {time_text(timed['layer_parallel_ns'])} (one core per layer) "
                     f"to {time_text(timed['serial_ns'])} (one core)")
    return line


def format_terminal(report: dict[str, Any]) -> str:
    """Compact table: per layer spikes, rate, synops and energy per profile; latency; the ladder."""
    profiles = report["energy"]
    header = ["layer", "spikes", "rate", "synops", "ANN MACs"] + [
        profile["profile"] + (" SNN/ANN" if profile["kind"] == "digital" else "") for profile in profiles]
    accuracy = report.get("accuracy")
    head = (f"Energy per inference and operations per layer (mean of {report['samples']} samples, "
            f"T = {report['timesteps']}, {report['engine']})" + ("" if accuracy is None else f"; accuracy {accuracy:.2%}"))
    lines = [head] + text_table(header, _layer_rows(report))
    if report.get("latency"):
        lines.append(_latency_line(report))
    unmodelled = [profile["profile"] for profile in profiles if profile["totals"]["static_pj"] is None]
    if unmodelled:
        lines.append(f"static energy not modelled by: {', '.join(unmodelled)} (dynamic only)")
    system = report.get("loihi2_system")
    if system:
        lines.append(f"Loihi 2 system model: {system_headline(system)}; "
                     f"{count_text(system['interchip_spikes_per_inference'])} inter-chip spikes per inference")
        lines.append("cores per layer: " + ", ".join(f"{l['name']} {l['cores']}" for l in system["layers"]))
    if report.get("ladder"):
        lines += ["", format_ladder(report["ladder"])]
    return "\n".join(lines)


def format_ladder(ladder: dict[str, Any], profile: str | None = None) -> str:
    """Compact terminal table of a ladder (energy of one profile: the first by default)."""
    names = ladder_profiles(ladder)
    profile = profile or (names[0] if names else None)
    header = ["rung", "accuracy", "agree prev", "spikes/inf", "synops/inf", f"energy {profile}" if profile else "energy"]
    rows = []
    for rung in ladder["rungs"]:
        if not rung["available"]:
            rows.append([rung["title"], "-", "-", "-", "-", rung["skipped"] or "-"])
            continue
        agree = rung["class_agreement_with_previous"]
        rows.append([rung["title"], f"{rung['accuracy']:.2%}", "-" if agree is None else f"{agree:.2%}",
                     f"{rung['spikes_per_inference']:,.1f}", f"{rung['synops_per_inference']:,.1f}",
                     energy_text(rung["energy_pj"].get(profile)) if profile else "-"])
    return "\n".join([f"Accuracy ladder ({ladder['samples']} test samples)"] + text_table(header, rows))
