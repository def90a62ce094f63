"""Importers of foreign network files, one module per format, each registered once (registry.py): netx here;
NIR is detected here (nir.py) and registered by the export stage (export/nir_import.py), which owns the float
layers and the quantizer a NIR graph needs."""

from __future__ import annotations

from .registry import Importer, find_importer, importers, register_importer
from . import netx  # noqa: F401  (registers the built-in importers)

__all__ = ["Importer", "find_importer", "importers", "register_importer"]
