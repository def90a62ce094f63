"""Export targets, one module per target (loihi: netx; onnx; nir), each registered once (registry.py)."""

from __future__ import annotations

from .registry import ExportInput, Target, TargetOutput, get_target, register_target, target_names
from . import loihi, onnx  # noqa: F401  (registers the built-in targets, in this order)
from . import nir  # noqa: F401,E402

__all__ = ["ExportInput", "Target", "TargetOutput", "get_target", "register_target", "target_names"]
