"""Importers of foreign network files, one module per format (netx; NIR next), each registered once
(registry.py)."""

from __future__ import annotations

from .registry import Importer, find_importer, importers, register_importer
from . import netx  # noqa: F401  (registers the built-in importers)

__all__ = ["Importer", "find_importer", "importers", "register_importer"]
