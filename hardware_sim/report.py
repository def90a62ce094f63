"""Deployment reports: report.json -> Markdown (or self-contained HTML) with tables and PNG plots.

A report is the JSON of :func:`build_report` (energy.report_dict of one run
plus ``accuracy``, ``engine``, ``network`` and, optionally, the accuracy
``ladder`` of hardware_sim.ladder), or the summary ``dsatgo demo`` writes (the
same report under ``energy_report``, the ladder under ``ladder``).
:func:`render` turns either into

    report.md | report.html             summary, ladder, operations per layer, firing rate per
                                        layer and timestep, energy per layer term by term
                                        (count x named constant = pJ), latency, the constants
                                        with their sources, definitions, assumptions
    report_firing_rate.png              firing rate per spiking layer and timestep (heat map)
    report_energy_per_layer.png         energy per layer and term, one panel per profile
    report_ladder.png                   accuracy, spikes and energy per rung of the ladder

HTML embeds the PNGs (base64), so the one file is the whole report. Plots need
matplotlib (the "plot" or "lava" extra); without it the report says so and
keeps its tables. :func:`format_terminal` is the compact table for a terminal.

For commands that produce a report directly, :func:`write_network_report`
runs (or takes) a run of a deployable network, counts, estimates, optionally
adds the ladder, and writes report.json with its rendering into one folder;
:func:`write_export_report` does it for a fresh export (``<export>/report/``).
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import (atomic_directory, atomic_file, check_files_replaceable, check_output_folder,
                                  folder_manifest, record_written, write_json)
from dsatgo_deploy.network import DeployableNetwork

from . import energy
from .parity import RunRecord

DEFAULT_PROFILES = ("loihi1", "loihi2", "cmos45nm")
FORMATS = ("md", "html")
REPORT_JSON = "report.json"
PLOT_FILES = {"firing_rate": "report_firing_rate.png", "energy": "report_energy_per_layer.png",
              "ladder": "report_ladder.png"}
ENGINE_NAMES = {"reference": "bit-exact reference simulator", "lava": "Lava (Loihi2SimCfg fixed_pt)",
                "torch": "torch float model (eval mode)"}
TERM_NAMES = {"synops": "synaptic ops", "neuron_updates_active": "active neuron updates",
              "neuron_updates_inactive": "inactive neuron updates", "spikes": "spikes (within-tile delivery)",
              "ann_macs": "equivalent ANN MACs"}


# --------------------------------------------------------------------------- building


def build_report(net: DeployableNetwork, x: np.ndarray, y: np.ndarray | None = None, *,
                 profiles: Sequence[str | energy.Profile] = DEFAULT_PROFILES, record: RunRecord | None = None,
                 ladder: dict[str, Any] | None = None, source: str | None = None,
                 dataset: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """report.json of ``net`` on samples x: counts from ``record`` (any engine's run on x)
    or, when None, from the reference simulator; energy per profile; accuracy when y is given."""
    if record is None:
        from .sides import run_reference

        record = run_reference(net, x, device)
    loaded = [p if isinstance(p, energy.Profile) else energy.load_profile(p) for p in profiles]
    counts = energy.count_operations(net, record.spikes, net.encode_input(np.asarray(x)))
    report = energy.report_dict(counts, [energy.estimate_energy(counts, p) for p in loaded])
    report["engine"] = record.name
    report["accuracy"] = None if y is None else float((record.predictions == np.asarray(y)).mean())
    training = net.provenance.get("training", {}) if isinstance(net.provenance, dict) else {}
    report["network"] = {
        "source": source, "checkpoint": net.provenance.get("source_checkpoint"),
        "checkpoint_sha256": net.provenance.get("source_sha256"),
        "dataset": dataset or training.get("dataset"), "timesteps": net.timesteps,
        "input_shape": list(net.input_shape), "input_bits": net.input_encoding.bits,
        "threshold_policy": net.quantization.get("threshold_policy"),
        "layers": [{"name": l.name, "kind": l.kind, "output_shape": list(l.output_shape)} for l in net.layers],
    }
    if ladder is not None:
        report["ladder"] = ladder
    return report


def energy_report(report: dict[str, Any]) -> dict[str, Any]:
    """The energy.report_dict part of a report (a bare report or the demo's summary)."""
    if isinstance(report, dict) and report.get("format") == energy.REPORT_FORMAT:
        return report
    inner = report.get("energy_report") if isinstance(report, dict) else None
    if isinstance(inner, dict) and inner.get("format") == energy.REPORT_FORMAT:
        return inner
    raise UserError("not a dsatgo report: no energy report (format "
                    f"'{energy.REPORT_FORMAT}') at the top or under 'energy_report'")


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """A report.json (bare or the demo's summary), checked; UserError naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read report ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        inner = energy_report(data)
        for key in ("layers", "totals", "energy", "samples", "timesteps"):
            if key not in inner:
                raise UserError(f"field '{key}' is missing")
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return data


# --------------------------------------------------------------------------- document model


@dataclass
class _Block:
    kind: str  # h1 h2 h3 p table img ul code
    text: str = ""
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    right: Sequence[bool] = ()
    items: Sequence[str] = ()


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)) or (float(value).is_integer() and abs(value) < 1e12):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def _exact(value: float | None, decimals: int = 2) -> str:
    """All the digits a reader needs to redo a product: integers as such, else ``decimals`` places."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{decimals}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _pj(value: float | None) -> str:
    return energy._si(value)


def _profile_file(origin: str) -> str:
    """A built-in profile's path inside the repository; a user's file as given."""
    normalized = origin.replace(os.sep, "/")
    marker = "dsatgo_deploy/profiles/"
    return marker + normalized.split(marker, 1)[1] if marker in normalized else origin


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> _Block:
    return _Block("table", header=list(header), rows=[list(r) for r in rows],
                  right=[i >= right_from for i in range(len(header))])


def _accuracy(report: dict[str, Any]) -> float | None:
    """Accuracy of the counted run: the energy report's, else the demo summary's reference accuracy."""
    value = energy_report(report).get("accuracy")
    if value is None:
        value = report.get("accuracy")
        if isinstance(value, dict):  # the demo's summary: accuracy per engine
            value = value.get("quantized_reference")
    return value


def _document(report: dict[str, Any], plots: dict[str, str | None], plot_note: str | None) -> list[_Block]:
    er = energy_report(report)
    ladder = report.get("ladder") or er.get("ladder")
    network = er.get("network") or report.get("network") or {}
    accuracy = _accuracy(report)
    engine = er.get("engine") or report.get("engine") or "reference"
    blocks: list[_Block] = [_Block("h1", "DS-ATGO deployment report")]
    what = [f"{er['samples']} test samples, T = {er['timesteps']} timesteps; spikes from the "
            f"{ENGINE_NAMES.get(engine, engine)}."]
    if network:
        kinds = ", ".join(f"{l['name']} ({l['kind']} {'x'.join(map(str, l['output_shape']))})" for l in network["layers"])
        what.insert(0, f"Network: {kinds}; input {'x'.join(map(str, network['input_shape']))} as "
                       f"{network['input_bits']}-bit graded spikes; threshold policy "
                       f"'{network.get('threshold_policy') or 'schedule'}'.")
        if network.get("checkpoint"):
            what.append(f"Trained checkpoint `{network['checkpoint']}`"
                        + (f" (SHA-256 `{network['checkpoint_sha256'][:16]}...`)" if network.get("checkpoint_sha256") else "")
                        + (f", data set {network['dataset']}." if network.get("dataset") else "."))
    blocks.append(_Block("p", " ".join(what)))

    # ---- summary
    totals = er["totals"]
    spiking = [l for l in er["layers"] if l["spiking"]]
    neuron_steps = sum(l["neurons"] for l in spiking) * er["timesteps"]
    rows = []
    if accuracy is not None:
        rows.append(["accuracy", _pct(accuracy)])
    rows += [["spikes per inference", _num(totals["spikes"])],
             ["mean firing rate (spiking layers)", _num(totals["spikes"] / neuron_steps if neuron_steps else None)],
             ["synaptic operations per inference", _num(totals["synops"])],
             ["neuron updates per inference (active)", f"{_num(totals['neuron_updates'])} ({_num(totals['active_neuron_updates'])})"],
             ["equivalent ANN MACs per inference", _num(totals["ann_macs"])]]
    latency = er.get("latency")
    if latency:
        rows.append(["latency", f"{latency['timesteps']} timesteps; {latency['wall_steps']} wall steps on Loihi "
                                f"(+{latency['depth']}: one per synapse)"])
    for e in er["energy"]:
        t = e["totals"]
        if e["kind"] == "digital":
            value = f"SNN {_pj(t['snn_total_pj'])}, equivalent ANN {_pj(t['ann_pj'])}"
            if t.get("ann_over_snn"):
                value += f" (ANN / SNN {t['ann_over_snn']:.3g}x)"
        else:
            value = (f"{_pj(t['snn_total_pj'])} (dynamic only; static not modelled)" if t["static_pj"] is None else
                     f"{_pj(t['snn_total_pj'])} = dynamic {_pj(t['snn_dynamic_pj'])} + static {_pj(t['static_pj'])}")
        rows.append([f"energy per inference, {e['profile']}", value])
        lat = e.get("latency") or {}
        if lat.get("serial_ns") is not None:
            rows.append([f"latency in time, {e['profile']}",
                         f"{energy._seconds(lat['layer_parallel_ns'])} (one core per layer) to "
                         f"{energy._seconds(lat['serial_ns'])} (one core)"])
    blocks += [_Block("h2", "Summary"), _table(["quantity", "value"], rows)]
    blocks.append(_Block("p", "Energies are order-of-magnitude estimates: the counts are exact, the per-operation "
                              "energies are not (see Assumptions and uncertainty)."))

    # ---- ladder
    if ladder:
        profiles = list(dict.fromkeys(p for r in ladder["rungs"] if r["available"] for p in r["energy_pj"]))
        header = ["#", "rung", "accuracy", "same class as previous", "spikes / inference", "firing rate",
                  "synops / inference"] + [f"energy {p}" for p in profiles]
        rows = []
        for index, r in enumerate(ladder["rungs"], 1):
            if not r["available"]:
                rows.append([str(index), r["title"], r.get("skipped") or "not run"] + ["-"] * (len(header) - 3))
                continue
            rows.append([str(index), r["title"], _pct(r["accuracy"]), _pct(r["class_agreement_with_previous"]),
                         _num(r["spikes_per_inference"]), _num(r["firing_rate"]), _num(r["synops_per_inference"])]
                        + [_pj(r["energy_pj"].get(p)) for p in profiles])
        blocks += [_Block("h2", "Accuracy ladder"),
                   _Block("p", f"One model through deployment on the same {ladder['samples']} test samples. Every "
                               f"rung's spikes are counted on {ladder.get('counted_on', 'the deployed network')}, so "
                               "differences of operations and energy come from the spikes alone."),
                   _table(header, rows, right_from=2),
                   _Block("ul", items=[f"{r['title']}: {r['description']}" for r in ladder["rungs"]])]
        if plots.get("ladder"):
            blocks.append(_Block("img", plots["ladder"], items=["accuracy, spikes and energy per rung"]))

    # ---- operations
    rows = []
    for l in er["layers"]:
        p = l["per_inference"]
        rows.append([l["name"], l.get("kind", "dense"), ", ".join(l.get("sources", [l["source"]])), _num(l["neurons"]),
                     _num(l.get("connections")), _num(l.get("synapses", l["nonzero_weights"])), _num(p["spikes"]),
                     _num(p["firing_rate"]), _num(p["synops"]), _num(p["neuron_updates"]),
                     _num(p["active_neuron_updates"]), _num(p["ann_macs"])])
    p = totals
    rows.append(["total", "", "", _num(sum(l["neurons"] for l in er["layers"])),
                 _num(sum(l.get("connections") or 0 for l in er["layers"])),
                 _num(sum(l.get("synapses", l["nonzero_weights"]) or 0 for l in er["layers"])), _num(p["spikes"]), "",
                 _num(p["synops"]), _num(p["neuron_updates"]), _num(p["active_neuron_updates"]), _num(p["ann_macs"])])
    blocks += [_Block("h2", "Operations per inference, per layer"),
               _Block("p", f"Mean over {er['samples']} samples of the sum over T = {er['timesteps']} timesteps. "
                           "Connections and synapses are per network (synapses: connections with a non-zero weight)."),
               _table(["layer", "kind", "sources", "neurons", "connections", "synapses", "spikes", "firing rate",
                       "synops", "neuron updates", "active updates", "ANN MACs"], rows, right_from=3)]

    # ---- firing rate per timestep
    if spiking:
        header = ["layer"] + [f"t = {t + 1}" for t in range(er["timesteps"])] + ["mean"]
        rows = [[l["name"]] + [f"{v:.4f}" for v in l["per_timestep"]["firing_rate"]]
                + [f"{l['per_inference']['firing_rate']:.4f}"] for l in spiking]
        blocks += [_Block("h2", "Firing rate per layer and timestep"),
                   _Block("p", "Spikes per neuron at each timestep, mean over samples."), _table(header, rows)]
        if plots.get("firing_rate"):
            blocks.append(_Block("img", plots["firing_rate"], items=["firing rate per layer and timestep"]))

    # ---- energy per layer
    blocks.append(_Block("h2", "Energy per inference, per layer"))
    blocks.append(_Block("p", "Each row is a count per inference times one constant of the profile (named, with its "
                              "value; its source is under Constants and their sources)."))
    for e in er["energy"]:
        constants = e["constants_used"]
        blocks.append(_Block("h3", f"{e['profile']} ({e['kind']}): {e['description']}"))
        rows = []
        for le in e["layers"]:
            for term in le["terms"]:
                name = term["constants"][0]
                value = constants.get(name, {}).get("value")
                side = "ANN" if term["term"] == "ann_macs" else "SNN"
                rows.append([le["name"], side, TERM_NAMES.get(term["term"], term["term"]), _exact(term["count"], 4),
                             f"`{name}` = {_num(value)} pJ", _exact(term["energy_pj"])])
            rows.append([f"**{le['name']}**", "SNN", "layer total", "", "", f"**{_exact(le['snn_pj'])}**"])
            if le.get("ann_pj") is not None:
                rows.append([f"**{le['name']}**", "ANN", "layer total", "", "", f"**{_exact(le['ann_pj'])}**"])
        t = e["totals"]
        if t["static_pj"] is not None:
            value = constants.get("static_per_timestep", {}).get("value")
            rows.append(["(network)", "SNN", "static", _exact(er["timesteps"]), f"`static_per_timestep` = {_num(value)} pJ",
                         _exact(t["static_pj"])])
        rows.append(["**total**", "SNN", "dynamic" + (" + static" if t["static_pj"] is not None else ""), "", "",
                     f"**{_exact(t['snn_total_pj'])}** ({_pj(t['snn_total_pj'])})"])
        if t["ann_pj"] is not None:
            rows.append(["**total**", "ANN", "", "", "", f"**{_exact(t['ann_pj'])}** ({_pj(t['ann_pj'])})"])
        blocks.append(_table(["layer", "model", "term", "count / inference", "constant", "energy (pJ)"], rows,
                             right_from=3))
        if t["static_pj"] is None:
            blocks.append(_Block("p", "Static (leakage) energy: not modelled by this profile; the total is dynamic energy only."))
    if plots.get("energy"):
        blocks.append(_Block("img", plots["energy"], items=["energy per layer and term, per profile"]))

    # ---- latency
    rows = []
    notes = []
    for e in er["energy"]:
        lat = e.get("latency")
        if not lat:
            continue
        rows.append([e["profile"], str(lat["timesteps"]), str(lat["wall_steps"]),
                     energy._seconds(lat.get("layer_parallel_ns")), energy._seconds(lat.get("serial_ns")),
                     ", ".join(f"`{c}`" for c in lat.get("constants", [])) or "(no time constants)"])
        notes.append(lat["note"])
    if rows:
        blocks += [_Block("h2", "Latency per inference"),
                   _Block("table", header=["profile", "timesteps", "wall steps", "one core per layer", "one core",
                                           "constants"], rows=rows, right=[False, True, True, True, True, False]),
                   _Block("p", notes[0].split(" Seconds")[0] + " " + next(
                       (n[n.index("Seconds"):] for n in notes if "Seconds" in n), "No profile gives times."))]

    # ---- constants
    blocks.append(_Block("h2", "Constants and their sources"))
    for e in er["energy"]:
        blocks.append(_Block("h3", f"{e['profile']}: `{_profile_file(e['origin'])}`"))
        if e.get("note"):
            blocks.append(_Block("p", e["note"]))
        rows = [[f"`{name}`", _num(c["value"]), c["unit"], c["status"], c["source"], c.get("note", "")]
                for name, c in e["constants_used"].items()]
        blocks.append(_table(["constant", "value", "unit", "status", "source", "note"], rows, right_from=1))
        blocks[-1].right = [False, True, False, False, False, False]

    # ---- definitions, assumptions
    blocks += [_Block("h2", "How the numbers are computed"),
               _Block("ul", items=[f"**{k}**: {v}" for k, v in er.get("definitions", {}).items()]),
               _Block("code", "neuromorphic: E_L = synops_L x synaptic_op (graded input: graded_synaptic_op if given)\n"
                              "                  + active_L x neuron_update_active + inactive_L x neuron_update_inactive\n"
                              "                  + spikes_L x spike_within_tile\n"
                              "digital:      E_L(SNN) = synops_L x ac (graded input: x mac);  E_L(ANN) = ANN MACs_L x mac\n"
                              "static:       static_per_timestep x T, where the profile gives it")]
    blocks.append(_Block("h2", "Assumptions and uncertainty"))
    items = []
    for e in er["energy"]:
        items += [f"{e['profile']}: {a}" for a in dict.fromkeys(e["assumptions"])]
        items.append(f"{e['profile']}: {e['uncertainty']}")
    if not er.get("input_payloads_known", True):
        items.append("Input payloads were not known: input synops are an upper bound.")
    if plot_note:
        items.append(plot_note)
    blocks.append(_Block("ul", items=items))
    return blocks


# --------------------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: list[_Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---:" if r else "---" for r in b.right) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif b.kind == "img":
            out += [f"![{b.items[0] if b.items else ''}]({b.text})", ""]
        elif b.kind == "ul":
            out += [f"- {item}" for item in b.items] + [""]
        elif b.kind == "code":
            out += ["```", b.text, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _inline_html(text: str) -> str:
    """Escape, then the two inline marks the document uses: **bold** and `code`."""
    parts = html.escape(str(text)).split("`")
    for i in range(len(parts)):
        if i % 2:
            parts[i] = f"<code>{parts[i]}</code>"
        else:
            bold = parts[i].split("**")
            parts[i] = "".join(f"<b>{s}</b>" if j % 2 else s for j, s in enumerate(bold))
    return "".join(parts)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;vertical-align:top}th{background:#f2f2f2}"
        "td.r{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}"
        "pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}code{font-size:0.95em}")


def _to_html(blocks: list[_Block], folder: Path) -> str:
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           f"<title>{html.escape(blocks[0].text if blocks else 'report')}</title>",
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{_inline_html(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in b.header) + "</tr>")
            for row in b.rows:
                out.append("<tr>" + "".join(f"<td{' class=r' if r else ''}>{_inline_html(c)}</td>"
                                            for c, r in zip(row, b.right)) + "</tr>")
            out.append("</table>")
        elif b.kind == "img":
            data = base64.b64encode((folder / b.text).read_bytes()).decode("ascii")
            out.append(f"<p><img alt='{html.escape(b.items[0] if b.items else '')}' src='data:image/png;base64,{data}'></p>")
        elif b.kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "code":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> None:
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")


def _energy_unit(values: Sequence[float]) -> tuple[float, str]:
    peak = max((abs(v) for v in values), default=0.0)
    for scale, unit in ((1e6, "uJ"), (1e3, "nJ")):
        if peak >= scale:
            return scale, unit
    return 1.0, "pJ"


def plot_firing_rate(er: dict[str, Any], path: Path) -> Path | None:
    """Heat map: spiking layers x timesteps, each cell the firing rate (annotated when few)."""
    spiking = [l for l in er["layers"] if l["spiking"]]
    if not spiking:
        return None
    steps = er["timesteps"]
    rates = np.array([l["per_timestep"]["firing_rate"] for l in spiking])
    fig = _figure(max(5.0, 2.6 + 0.9 * steps), max(2.4, 1.3 + 0.42 * len(spiking)))
    ax = fig.add_subplot()
    image = ax.imshow(rates, aspect="auto", cmap="viridis", vmin=0.0, vmax=max(float(rates.max()), 1e-6))
    ax.set_xticks(range(steps), [str(t + 1) for t in range(steps)])
    ax.set_yticks(range(len(spiking)), [l["name"] for l in spiking])
    ax.set_xlabel("timestep")
    ax.set_title(f"Firing rate per layer and timestep ({er['samples']} samples)")
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


def plot_energy(er: dict[str, Any], path: Path) -> Path | None:
    """One panel per profile: per layer, horizontal bars stacked by term (SNN), and the ANN bar for digital."""
    profiles = er["energy"]
    if not profiles:
        return None
    names = [l["name"] for l in er["layers"]]
    fig = _figure(max(6.0, 4.2 * len(profiles)), max(2.8, 1.6 + 0.5 * len(names)))
    axes = fig.subplots(1, len(profiles), sharey=True, squeeze=False)[0]
    for ax, e in zip(axes, profiles):
        values = [le["snn_pj"] for le in e["layers"]] + [le["ann_pj"] or 0.0 for le in e["layers"]]
        scale, unit = _energy_unit(values)
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
        ax.set_title(f"{e['profile']}: SNN {_pj(total['snn_total_pj'])}"
                     + (f", ANN {_pj(total['ann_pj'])}" if total["ann_pj"] is not None else ""), fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Energy per inference, per layer and term")
    _save(fig, path)
    return path


def plot_ladder(ladder: dict[str, Any], path: Path) -> Path | None:
    """Three panels sharing the rungs (rows): accuracy, spikes per inference, energy per profile."""
    rungs = ladder["rungs"]
    if not rungs:
        return None
    y = np.arange(len(rungs))
    available = [r for r in rungs if r["available"]]
    profiles = list(dict.fromkeys(p for r in available for p in r["energy_pj"]))
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
    ax = axes[2]
    scale, unit = _energy_unit([v for r in available for v in r["energy_pj"].values()])
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
    axes[0].set_ylim(-0.6, len(rungs) - 0.4)
    axes[0].set_yticks(y, [f"{i + 1}. {r['title']}" for i, r in enumerate(rungs)])
    axes[0].invert_yaxis()
    for a in axes:
        a.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Accuracy ladder ({ladder['samples']} test samples): float model to Loihi fixed point")
    _save(fig, path)
    return path


def _plots(report: dict[str, Any], folder: Path) -> tuple[dict[str, str | None], str | None]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}, "Plots were not drawn: matplotlib is not installed (pip install 'dsatgo-deploy[plot]')."
    er = energy_report(report)
    made = {"firing_rate": plot_firing_rate(er, folder / PLOT_FILES["firing_rate"]),
            "energy": plot_energy(er, folder / PLOT_FILES["energy"]),
            "ladder": None}
    ladder = report.get("ladder") or er.get("ladder")
    if ladder:
        made["ladder"] = plot_ladder(ladder, folder / PLOT_FILES["ladder"])
    return {k: None if v is None else v.name for k, v in made.items()}, None


def render(report: dict[str, Any], folder: str | os.PathLike, fmt: str = "md", stem: str = "report") -> list[Path]:
    """Write ``<stem>.md`` (or ``.html``, images embedded) and the PNG plots into ``folder``; return the paths."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots, note = _plots(report, folder)
    blocks = _document(report, plots, note)
    document = folder / f"{stem}.{fmt}"
    text = _to_markdown(blocks) if fmt == "md" else _to_html(blocks, folder)
    with atomic_file(document, "w") as handle:
        handle.write(text)
    return [document] + [folder / name for name in plots.values() if name]


# --------------------------------------------------------------------------- terminal


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_terminal(report: dict[str, Any]) -> str:
    """Compact table: per layer spikes, rate, synops and energy per profile; latency; the ladder."""
    er = energy_report(report)
    profiles = er["energy"]
    header = ["layer", "spikes", "rate", "synops", "ANN MACs"] + [
        f"{e['profile']}" + (" SNN/ANN" if e["kind"] == "digital" else "") for e in profiles]
    rows = []
    by_profile = [{le["name"]: le for le in e["layers"]} for e in profiles]
    for l in er["layers"] + [None]:
        if l is None:
            p, name, rate = er["totals"], "total", "-"
        else:
            p, name = l["per_inference"], l["name"]
            rate = "-" if p["firing_rate"] is None else f"{p['firing_rate']:.3f}"
        row = [name, _short(p["spikes"]), rate, _short(p["synops"]), _short(p["ann_macs"])]
        for e, layers in zip(profiles, by_profile):
            if l is None:
                snn, ann = e["totals"]["snn_total_pj"], e["totals"]["ann_pj"]
            else:
                snn, ann = layers[name]["snn_pj"], layers[name]["ann_pj"]
            row.append(_pj(snn) + ("" if ann is None else f" / {_pj(ann)}"))
        rows.append(row)
    accuracy = _accuracy(report)
    head = (f"Energy per inference and operations per layer (mean of {er['samples']} samples, T = {er['timesteps']}, "
            f"{er.get('engine') or report.get('engine') or 'reference'})" + ("" if accuracy is None else f"; accuracy {accuracy:.2%}"))
    lines = [head] + energy._table(header, rows)
    latency = er.get("latency")
    if latency:
        line = f"latency: {latency['timesteps']} timesteps, {latency['wall_steps']} wall steps on Loihi"
        for e in profiles:
            lat = e.get("latency") or {}
            if lat.get("serial_ns") is not None:
                line += (f"; {e['profile']} {energy._seconds(lat['layer_parallel_ns'])} (one core per layer) "
                         f"to {energy._seconds(lat['serial_ns'])} (one core)")
        lines.append(line)
    static = [e["profile"] for e in profiles if e["totals"]["static_pj"] is None]
    if static:
        lines.append(f"static energy not modelled by: {', '.join(static)} (dynamic only)")
    ladder = report.get("ladder") or er.get("ladder")
    if ladder:
        from .ladder import format_ladder

        lines += ["", format_ladder(ladder)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- one call for commands


def report_file_names(fmt: str = "md", json_name: str = REPORT_JSON) -> list[str]:
    """Every file a report may write into its folder."""
    return [json_name, f"report.{fmt}", *PLOT_FILES.values()]


def check_report_output(folder: str | os.PathLike, fmt: str = "md", json_name: str = REPORT_JSON) -> None:
    """Before any work: UserError when the report cannot go into ``folder`` (a new folder, or an existing
    one where it replaces only report files this tool wrote)."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        check_files_replaceable(folder, report_file_names(fmt, json_name))
    else:
        check_output_folder(folder)


def write_report(report: dict[str, Any], folder: str | os.PathLike, fmt: str = "md",
                 json_name: str = REPORT_JSON) -> list[Path]:
    """Write report.json and its rendering into ``folder``; return every path written. A new folder
    is built under a temporary name (with its manifest.json); in an existing one only report files
    this tool wrote are replaced, and the folder's manifest records them."""
    folder = Path(folder)
    check_report_output(folder, fmt, json_name)
    if folder.is_dir() and any(folder.iterdir()):
        write_json(folder / json_name, report)
        paths = [folder / json_name] + render(report, folder, fmt)
        record_written(folder, [p.name for p in paths])
        return paths
    with atomic_directory(folder) as staging:
        write_json(staging / json_name, report)
        names = [json_name] + [p.name for p in render(report, staging, fmt)]
        folder_manifest(staging, names, kind="report")
    return [folder / name for name in names]


def write_network_report(net: DeployableNetwork, x: np.ndarray, y: np.ndarray | None, folder: str | os.PathLike, *,
                         profiles: Sequence[str | energy.Profile] = DEFAULT_PROFILES, record: RunRecord | None = None,
                         checkpoint: dict | None = None, calibration_x: np.ndarray | None = None, lava: bool = False,
                         fmt: str = "md", source: str | None = None, device: str = "cpu",
                         json_name: str = REPORT_JSON) -> tuple[dict[str, Any], list[Path]]:
    """Report of ``net`` on (x, y) written to ``folder`` (report.json, report.md|html, PNGs).

    ``record``: an engine's run on x to count (default: the reference simulator).
    ``checkpoint``: the trained model ``net`` was exported from; adds the accuracy
    ladder (needs y), with Lava as its last rung when ``lava`` (or when ``record``
    is a Lava run, which is then reused). Returns (report, paths written)."""
    if record is None:
        from .sides import run_reference

        record = run_reference(net, x, device)
    ladder = None
    if checkpoint is not None and y is not None:
        from .ladder import compute_ladder

        ladder = compute_ladder(checkpoint, net, x, y, calibration_x=calibration_x, profiles=profiles,
                                lava=lava, runs={record.name: record}, device=device)
    report = build_report(net, x, y, profiles=profiles, record=record, ladder=ladder, source=source)
    return report, write_report(report, folder, fmt, json_name)


def write_export_report(result: Any, checkpoint: dict, x: np.ndarray, y: np.ndarray, *,
                        calibration_x: np.ndarray | None = None, fmt: str = "md", lava: bool = False,
                        profiles: Sequence[str | energy.Profile] = DEFAULT_PROFILES
                        ) -> tuple[dict[str, Any], list[Path]]:
    """``dsatgo export --report``: the report of a just-exported network, with its accuracy ladder,
    written to ``<export folder>/report/`` (outside the files the manifest hashes).

    result: export.exporter.ExportResult; checkpoint: the loaded checkpoint it came from;
    (x, y): test samples; calibration_x: the samples export calibrated with."""
    return write_network_report(result.network, x, y, Path(result.out_dir) / "report", profiles=profiles,
                                checkpoint=checkpoint, calibration_x=calibration_x, lava=lava, fmt=fmt,
                                source=str(result.out_dir))
