"""Deployment reports: build report.json from a run, render it as Markdown or HTML with PNG plots,
or print it for a terminal.

    build.py      report.json in one versioned shape (report.schema.json is its JSON Schema)
    document.py   the report as a document: one function per section
    render.py     Markdown / self-contained HTML, and writing report.json with its rendering
    plots.py      firing rate, energy per layer and term, the accuracy ladder, Loihi 2 cores and
                  time per layer (matplotlib)
    terminal.py   compact tables for a terminal
    numbers.py    how numbers are written (units, separators, plain-text tables)

    report.md | report.html             summary, ladder, operations per layer, firing rate per
                                        layer and timestep, energy per layer term by term
                                        (count x named constant = pJ), latency, the Loihi 2
                                        system model (cores per layer, chips, time per step and
                                        per inference, energy), the constants with their sources,
                                        definitions, assumptions
    report_firing_rate.png              firing rate per spiking layer and timestep (heat map)
    report_energy_per_layer.png         energy per layer and term, one panel per profile
    report_ladder.png                   accuracy, spikes and energy per rung of the ladder
    report_loihi2_system.png            Loihi 2 cores and busiest-core time per step, per layer
"""

from .build import DEFAULT_PROFILES, REPORT_FORMAT, SCHEMA_FILE, SCHEMA_VERSION, build_report, load_report
from .plots import PLOT_FILES
from .render import FORMATS, REPORT_JSON, check_report_output, render, write_report
from .terminal import format_ladder, format_terminal

__all__ = ["DEFAULT_PROFILES", "FORMATS", "PLOT_FILES", "REPORT_FORMAT", "REPORT_JSON", "SCHEMA_FILE", "SCHEMA_VERSION",
           "build_report", "check_report_output", "format_ladder", "format_terminal", "load_report", "render", "write_report"]
