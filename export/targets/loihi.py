"""Targets loihi (Loihi 2) and loihi1: network.npz plus a lava-dl netx file when netx can express the
network (chains of dense/conv layers, one threshold per layer; export/netx_writer.py)."""

from __future__ import annotations

from pathlib import Path

from dsatgo_deploy.errors import UserError

from ..netx_writer import check_netx_expressible, write_netx
from ..quantize import one_threshold_mantissas
from .registry import ExportInput, Target, TargetOutput, register_target

NETX_FILE = "network_netx.h5"


def write(export: ExportInput, staging: Path) -> TargetOutput:
    from ..exporter import NETWORK_FILE

    net = export.network
    try:
        check_netx_expressible(net)
    except UserError as exc:
        # Not an error: the deployable network and our Lava process graph cover it.
        return TargetOutput([], {"netx": {"file": None, "reason": f"netx cannot express this network: {exc}"}})
    thresholds = write_netx(net, staging / NETX_FILE, one_threshold_mantissas(net, export.per_layer),
                            source_sha256=export.source_sha256)
    info = {"file": NETX_FILE, "input_message_bits": net.input_encoding.bits,
            "per_layer_thresholds": thresholds,
            "note": "netx holds one threshold per layer (calibrated to keep each layer's spike "
                    "count closest to the schedule's); the threshold schedules are in "
                    f"{NETWORK_FILE} and run by dsatgo's own Lava process graph"}
    return TargetOutput([NETX_FILE], {"netx": info})


register_target(Target("loihi", write, chip="loihi", help="Loihi 2: network.npz and a lava-dl netx file"))
register_target(Target("loihi1", write, chip="loihi1", help="Loihi 1's limits (no graded spikes, no schedules)"))
