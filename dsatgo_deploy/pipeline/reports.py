"""Reports that commands write: a deployable network's report, with the accuracy ladder when the
trained model is at hand (the ladder runs train/ and export/ as well as the simulators).

The rest of the report API (loading, rendering, the terminal table) is hardware_sim.report's;
it is imported here so that a command needs one module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dsatgo_deploy.hardware_sim.loihi2_report import choose_system
from dsatgo_deploy.hardware_sim.run_summary import RunSummary
from dsatgo_deploy.hardware_sim.report import (DEFAULT_PROFILES, REPORT_JSON, build_report, check_report_output,
                                               format_terminal,
                                               load_report, render, write_report)
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.profiles import Profile
from dsatgo_deploy.runs import RunRecord

from .ladder import compute_ladder
from .sides import run_reference

__all__ = ["REPORT_JSON", "check_report_output", "format_terminal", "load_report", "render", "write_export_report", "write_network_report"]


def write_network_report(net: DeployableNetwork, x: np.ndarray, y: np.ndarray | None, folder: str | os.PathLike, *,
                         profiles: Sequence[str | Profile] = DEFAULT_PROFILES, record: RunRecord | None = None,
                         checkpoint: dict | None = None, calibration_x: np.ndarray | None = None, lava: bool = False,
                         fmt: str = "md", source: str | None = None, device: str = "cpu",
                         json_name: str = REPORT_JSON, system: str | None = None,
                         chips: int | None = None, summary: RunSummary | None = None,
                         chunk: int | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Report of ``net`` on (x, y) written to ``folder`` (report.json, report.md|html, PNGs).

    ``record``: an engine's run on x to count (default: the reference simulator); or ``summary``: that run
    reduced chunk by chunk with its counts (pipeline/streaming.py). ``chunk``: run the ladder's rungs that many
    samples at a time (pipeline/ladder.py; None: whole records).
    ``checkpoint``: the trained model ``net`` was exported from; adds the accuracy
    ladder (needs y), with Lava as its last rung when ``lava`` (or when ``record``
    is a Lava run, which is then reused). ``system`` / ``chips``: the Loihi 2 system of the
    report's system model (default: the smallest that holds ``net``), checked before any run.
    Returns (report, paths written)."""
    choose_system(net, system, chips)  # UserError now, not after the run, when the system is too small
    if record is None and summary is None:
        record = run_reference(net, x, device)
    ladder = None
    if checkpoint is not None and y is not None:
        ladder = compute_ladder(checkpoint, net, x, y, calibration_x=calibration_x, profiles=profiles,
                                lava=lava, runs={run.name: run for run in (record, summary) if run is not None},
                                device=device, chunk=chunk)
    report = build_report(net, x, y, profiles=profiles, record=record, ladder=ladder, source=source,
                          system=system, chips=chips, summary=summary)
    return report, write_report(report, folder, fmt, json_name)


def write_export_report(result: Any, checkpoint: dict, x: np.ndarray, y: np.ndarray, *,
                        calibration_x: np.ndarray | None = None, fmt: str = "md", lava: bool = False,
                        profiles: Sequence[str | Profile] = DEFAULT_PROFILES, system: str | None = None,
                        chips: int | None = None) -> tuple[dict[str, Any], list[Path]]:
    """``dsatgo export --report``: the report of a just-exported network, with its accuracy ladder,
    written to ``<export folder>/report/`` (outside the files the manifest hashes).

    result: export.exporter.ExportResult; checkpoint: the loaded checkpoint it came from;
    (x, y): test samples; calibration_x: the samples export calibrated with; system / chips: the
    Loihi 2 system export placed the network on."""
    return write_network_report(result.network, x, y, Path(result.out_dir) / "report", profiles=profiles,
                                checkpoint=checkpoint, calibration_x=calibration_x, lava=lava, fmt=fmt,
                                source=str(result.out_dir), system=system, chips=chips)
