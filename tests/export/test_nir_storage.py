"""How the nir target stores its arrays (export/nir_writer.py SYNAPSE_DTYPE): the synapses' weights and biases
in float32, gzip-compressed as every array; the neurons' parameters in float64. snnTorch, Norse and Sinabs run
the float32 file exactly as they ran the float64 one (every spike and the readout equal): they cast on load."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

import nir

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.export import nir_writer
from dsatgo_deploy.export.exporter import NIR_FILE, export_checkpoint
from dsatgo_deploy.export.freeze import freeze
from dsatgo_deploy.export.thresholds import calibrate_per_layer
from dsatgo_deploy.hardware_sim.nir_frameworks import FRAMEWORKS, run_framework
from dsatgo_deploy.importers.nir import graph_timing

SAMPLES = 24


def _datasets(path) -> dict[str, tuple]:
    """(dtype, compression, size) of every array dataset of an HDF5 file, by path."""
    found: dict[str, tuple] = {}

    def visit(name: str, item) -> None:  # a returned value would stop h5py's walk
        if isinstance(item, h5py.Dataset) and item.shape:
            found[name] = (item.dtype, item.compression, item.size)

    with h5py.File(path) as handle:
        handle.visititems(visit)
    return found


def test_exported_file_holds_float32_synapses_and_compresses_every_array(digits_conv_checkpoint, digits, tmp_path):
    images = digits.x_train[:32].reshape(-1, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the schedule's collapse
        export_checkpoint(digits_conv_checkpoint, tmp_path / "out", target="nir", calibration_x=images)
    datasets = _datasets(tmp_path / "out" / NIR_FILE)
    synapses = {name: d for name, d in datasets.items() if name.endswith(("synapse/weight", "synapse/bias"))}
    assert len(synapses) == 8  # conv1, conv2, fc1, readout
    assert all(dtype == np.float32 for dtype, _, _ in synapses.values())
    lifs = {name: d for name, d in datasets.items() if name.endswith(("lif/tau", "lif/r", "lif/v_threshold"))}
    assert len(lifs) == 9 and all(dtype == np.float64 for dtype, _, _ in lifs.values())
    numbers = [d for d in datasets.values() if d[0].kind == "f" and d[2] > 16]
    assert numbers and all(compression == "gzip" for _, compression, _ in numbers)


@pytest.fixture(scope="module")
def conv_net(digits_conv_checkpoint, digits):
    frozen = freeze(load_checkpoint(digits_conv_checkpoint))
    return calibrate_per_layer(frozen, digits.x_train[:32].reshape(-1, 1, 8, 8)), \
        digits.x_test[:SAMPLES].reshape(-1, 1, 8, 8)


def _written(per_layer, nir_for: str, path) -> nir.NIRGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(str(path), nir_writer.build_nir(per_layer, nir_for=nir_for)[0])
    return nir.read(str(path))


@pytest.mark.parametrize("consumer", FRAMEWORKS)
def test_consumers_run_the_float32_file_as_the_float64_one(consumer, conv_net, tmp_path, monkeypatch):
    per_layer, x = conv_net
    narrow = _written(per_layer, consumer, tmp_path / "float32.nir")
    monkeypatch.setattr(nir_writer, "SYNAPSE_DTYPE", np.float64)  # the file as it was written before
    wide = _written(per_layer, consumer, tmp_path / "float64.nir")
    assert narrow.nodes["conv2.synapse"].weight.dtype == np.float32
    assert wide.nodes["conv2.synapse"].weight.dtype == np.float64
    assert not np.array_equal(wide.nodes["conv2.synapse"].weight,
                              wide.nodes["conv2.synapse"].weight.astype(np.float32))  # float32 does round them
    runs = [run_framework(consumer, graph, x, *graph_timing(graph, consumer)) for graph in (narrow, wide)]
    assert runs[0].spikes.keys() == runs[1].spikes.keys()
    assert all(spikes.sum() > 0 for spikes in runs[1].spikes.values())
    for key, spikes in runs[1].spikes.items():
        np.testing.assert_array_equal(runs[0].spikes[key], spikes, err_msg=f"{consumer}: {key}")
    np.testing.assert_array_equal(runs[0].readout_trace, runs[1].readout_trace)
