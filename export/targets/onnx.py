"""Target onnx: the one-timestep integer-exact ONNX graph and its float twin (export/onnx_writer.py)."""

from __future__ import annotations

from pathlib import Path

from .registry import ExportInput, Target, TargetOutput, register_target

ONNX_FILE = "network.onnx"
ONNX_FLOAT_FILE = "network_float.onnx"


def write(export: ExportInput, staging: Path) -> TargetOutput:
    from dsatgo_deploy.errors import UserError

    from ..onnx_writer import write_float_onnx, write_onnx

    info = {"file": ONNX_FILE, **write_onnx(export.network, staging / ONNX_FILE),
            "integer_exact": "bit-exact to the reference simulator (hardware_sim/onnx_runner.py "
                             "run_onnx loops it over T with onnxruntime)"}
    try:
        info |= {"float_file": ONNX_FLOAT_FILE, "float": write_float_onnx(export.frozen, staging / ONNX_FLOAT_FILE)}
    except UserError as exc:  # an imported NIR layer the float graph lacks: the integer graph alone
        info |= {"float_file": None, "float_reason": str(exc)}
        return TargetOutput([ONNX_FILE], {"onnx": info})
    return TargetOutput([ONNX_FILE, ONNX_FLOAT_FILE], {"onnx": info})


register_target(Target("onnx", write, help="one timestep as an ONNX graph, integer-exact, plus a float one"))
