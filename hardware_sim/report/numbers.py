"""How the reports write numbers: energies, times, counts, shares, and plain-text tables."""

from __future__ import annotations

from typing import Sequence

import numpy as np

_ENERGY_UNITS = ((1e6, "uJ"), (1e3, "nJ"))
_TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "us"))


def energy_unit(peak_pj: float) -> tuple[float, str]:
    """The unit (scale in pJ, name) that writes ``peak_pj`` with at most three integer digits."""
    for scale, unit in _ENERGY_UNITS:
        if abs(peak_pj) >= scale:
            return scale, unit
    return 1.0, "pJ"


def energy_text(pj: float | None) -> str:
    """An energy in pJ, in the unit that suits it (3 significant digits); '-' for None."""
    if pj is None:
        return "-"
    scale, unit = energy_unit(pj)
    return f"{pj / scale:.3g} {unit}"


def time_text(ns: float | None) -> str:
    """A time in ns, in the unit that suits it (3 significant digits); '-' for None."""
    if ns is None:
        return "-"
    for scale, unit in _TIME_UNITS:
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def count_text(value: float | None, digits: int = 4) -> str:
    """A count or rate: integers with thousands separators, large values to one decimal, else ``digits``."""
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)) or (float(value).is_integer() and abs(value) < 1e12):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def exact_text(value: float | None, decimals: int = 2) -> str:
    """All the digits a reader needs to redo a product: integers as such, else ``decimals`` places."""
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{decimals}f}"


def percent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def short_text(value: float) -> str:
    """A count for a narrow terminal column."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain-text table: first column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                         for i, (cell, width) in enumerate(zip(row, widths)))

    return [line(header), "  ".join("-" * width for width in widths)] + [line(row) for row in rows]
