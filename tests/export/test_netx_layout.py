"""Our netx file against lava-dl's own readers: with one threshold per layer (the per-layer policy, all a
netx file can hold) it alone reproduces network.npz exactly, and slayer's SequentialNetwork, lava-dl's
loader of its own exporter's files, builds the same network from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.export.exporter import export_checkpoint
from dsatgo_deploy.export.targets.loihi import NETX_FILE


@pytest.fixture(scope="module")
def per_layer_export(tmp_path_factory, trained_checkpoint, digits):
    out = tmp_path_factory.mktemp("netx_layout") / "loihi"
    return export_checkpoint(trained_checkpoint, out, calibration_x=digits.x_train[:256],
                             threshold_policy="per-layer")


def test_netx_file_alone_equals_network_npz_sample_for_sample(per_layer_export, tmp_path, capsys):
    """No --timesteps, no --input-bits: the file's run attributes say them; every prediction and spike count
    equal to network.npz's on the 360 digits test images."""
    results = {}
    for name in (NETX_FILE, "network.npz"):
        spikes = tmp_path / f"{name}.spikes.npz"
        assert main(["sim", str(per_layer_export.out_dir / name), "--json", "--save-spikes", str(spikes)]) == 0
        results[name] = json.loads(capsys.readouterr().out)
        with np.load(spikes, allow_pickle=False) as recording:
            results[name]["arrays"] = {key: recording[key] for key in recording.files}
    netx, npz = results[NETX_FILE], results["network.npz"]
    assert netx["samples"] == npz["samples"] == 360
    assert netx["accuracy"] == npz["accuracy"] > 0.85
    assert netx["arrays"].keys() == npz["arrays"].keys()
    for key in npz["arrays"]:
        np.testing.assert_array_equal(netx["arrays"][key], npz["arrays"][key], err_msg=key)


def test_slayer_sequential_network_loads_our_file(per_layer_export):
    """lava-dl's slayer.auto.SequentialNetwork reads our layout (neuron type as a string, CUBA fields) and
    builds one block per layer holding our integer weights and thresholds."""
    from dsatgo_deploy import lava_compat

    lava_compat.install()
    from lava.lib.dl.slayer.auto import SequentialNetwork

    model = SequentialNetwork(str(per_layer_export.out_dir / NETX_FILE))
    dense = [block for block in model.blocks if hasattr(block, "synapse")]
    layers = per_layer_export.network.layers
    assert len(dense) == len(layers)
    for block, layer in zip(dense, layers):
        weight = block.synapse.weight.detach().numpy().reshape(layer.weight.shape)
        np.testing.assert_array_equal(weight * 64, layer.weight, err_msg=layer.name)  # slayer's w_scale 2**6
        if layer.spiking:
            assert block.neuron.threshold == layer.threshold_schedule[0] / 64  # slayer's vThMant / 2**6
