"""hardware_sim/nir_frameworks.py: batched input in each consumer (measured on the digits conv net, whose
nir.Flatten snnTorch and Norse would apply to the batch too), the timing a graph states, frameworks that
cannot run, and parity's tolerance and N-side report for nir sides."""

from __future__ import annotations

import json
import sys
import warnings

import nir
import numpy as np
import pytest
import torch

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.freeze import freeze
from dsatgo_deploy.export.nir_writer import build_nir
from dsatgo_deploy.export.thresholds import calibrate_per_layer
from dsatgo_deploy.export.nir_import import import_nir
from dsatgo_deploy.hardware_sim.nir_frameworks import (FRAMEWORKS, FrameworkUnavailable, batch_safe_flatten,
                                                      run_framework, unavailable_reason)
from dsatgo_deploy.hardware_sim.parity import (FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT, compare_many,
                                               default_tolerance, format_many)
from dsatgo_deploy.importers.nir import graph_timing
from dsatgo_deploy.pipeline.nir_sides import NirSource
from dsatgo_deploy.pipeline.sides import run_side
from dsatgo_deploy.runs import RunRecord

BATCH = 8


@pytest.fixture(scope="module")
def conv_graphs(digits_conv_checkpoint, digits, tmp_path_factory):
    """The digits conv net's NIR file per consumer, written and read back, and 8 test images."""
    images = digits.x_train.reshape(-1, 1, 8, 8)
    per_layer = calibrate_per_layer(freeze(load_checkpoint(digits_conv_checkpoint)), images[:32])
    folder = tmp_path_factory.mktemp("nir_graphs")
    graphs = {}
    for framework in FRAMEWORKS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nir.write(str(folder / f"{framework}.nir"), build_nir(per_layer, nir_for=framework)[0])
        graphs[framework] = str(folder / f"{framework}.nir")
    return graphs, digits.x_test[:BATCH].reshape(-1, 1, 8, 8)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_batch_gives_what_one_sample_at_a_time_gives(framework, conv_graphs):
    paths, x = conv_graphs
    runs = [run_framework(framework, nir.read(paths[framework]), x, *graph_timing(nir.read(paths[framework]),
                                                                                   framework), batch_size=size)
            for size in (1, 5, BATCH)]  # 5: batches of 5 and 3 (Sinabs imports once per batch size)
    assert set(runs[0].spikes) == {"conv1.lif", "conv2.lif", "fc1.lif"}
    for run in runs[1:]:
        np.testing.assert_array_equal(run.predictions, runs[0].predictions)
        np.testing.assert_allclose(run.readout_trace, runs[0].readout_trace, rtol=1e-5, atol=1e-5)
        for layer, spikes in runs[0].spikes.items():
            assert spikes.shape == (BATCH, 3, spikes.shape[-1]) and spikes.any()
            np.testing.assert_array_equal(run.spikes[layer], spikes)


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_without_the_flatten_fix_a_batch_fails_in_snntorch_and_norse(framework, conv_graphs):
    """The consumers' own fault (docs/interop.md), which batch_safe_flatten works around."""
    paths, x = conv_graphs
    graph = nir.read(paths[framework])
    if framework == "snntorch":
        from snntorch.import_nir import import_from_nir as load
    else:
        from norse.torch import from_nir as load
    module = load(graph)
    with pytest.raises(RuntimeError, match="cannot be multiplied"), torch.no_grad():
        module(torch.from_numpy(np.asarray(x[:5], dtype=np.float32)))
    assert batch_safe_flatten(module, graph) == 1  # fc1's Flatten: moved one axis on


def test_timing_comes_from_the_caller_and_else_from_the_metadata(conv_graphs):
    paths, _ = conv_graphs
    graph = nir.read(paths["norse"])
    assert graph_timing(graph, "f.nir") == (3, pytest.approx(1e-4))  # the file's own
    assert graph_timing(graph, "f.nir", timesteps=9, dt=0.5) == (9, 0.5)  # the caller's first
    assert graph_timing(graph, "f.nir", dt=0.5) == (3, 0.5)  # each field on its own
    graph.metadata = {}
    assert graph_timing(graph, "f.nir", timesteps=9, dt=0.5) == (9, 0.5)
    with pytest.raises(UserError, match="f.nir: the NIR file holds no timestep count .no 'timesteps' in its metadata"):
        graph_timing(graph, "f.nir", dt=0.5)
    with pytest.raises(UserError, match="f.nir: the NIR file holds no time step .no 'dt' in its metadata.*--dt"):
        graph_timing(graph, "f.nir", timesteps=9)  # no default: tau / dt sets every decay
    graph.metadata = {"timesteps": 2.5, "dt": 0.0}
    with pytest.raises(UserError, match="f.nir: field 'timesteps' must be an integer"):
        graph_timing(graph, "f.nir")
    with pytest.raises(UserError, match="f.nir: the time step dt must be a positive number of seconds, got 0.0"):
        graph_timing(graph, "f.nir", timesteps=2)


def test_flags_that_differ_from_the_metadata_reach_the_reference_and_the_nir_side_alike(conv_graphs):
    """The file says T = 3, dt = 1e-4; --timesteps 5 --dt 5e-5 say otherwise: the imported network (the reference
    side's) and the nir:norse side both run 5 steps of 5e-5 s, the side exactly as Norse runs them."""
    paths, x = conv_graphs
    net = import_nir(paths["norse"], timesteps=5, dt=5e-5)[0]
    assert (net.timesteps, net.provenance["timesteps"], net.provenance["dt"]) == (5, 5, 5e-5)
    reference = run_side("reference", net=net, checkpoint=None, x=x)
    side = run_side("nir:norse", net=None, checkpoint=None, x=x, nir=NirSource((paths["norse"],), 5, 5e-5))
    assert {s.shape[:2] for s in [*reference.spikes.values(), *side.spikes.values()]} == {(BATCH, 5)}
    as_flagged, at_metadata_dt = (run_framework("norse", nir.read(paths["norse"]), x, 5, dt) for dt in (5e-5, 1e-4))
    for key, spikes in as_flagged.spikes.items():
        np.testing.assert_array_equal(side.spikes[key.removesuffix(".lif")], spikes)
    assert sum(s.sum() for s in at_metadata_dt.spikes.values()) > 2 * sum(s.sum() for s in side.spikes.values())


def test_parity_of_an_imported_nir_file_against_its_framework_runs_the_flags_timing(conv_graphs, capsys):
    """`dsatgo parity --network FILE.nir --timesteps 5 --sides reference,nir:norse` (the file says T = 3): both
    sides run 5 steps, and meet layer by layer under the node keys the import names our file's layers by."""
    paths, x = conv_graphs
    code = main(["parity", "--network", paths["norse"], "--timesteps", "5", "--sides", "reference,nir:norse",
                 "--dataset", "digits", "--samples", str(BATCH), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and report["sides"] == ["reference", "nir:norse"]
    reference = run_side("reference", net=import_nir(paths["norse"], timesteps=5)[0], checkpoint=None, x=x)
    norse = run_framework("norse", nir.read(paths["norse"]), x, 5, 1e-4)
    assert [(layer["layer"], layer["spikes"]) for layer in report["layers"]] == [
        (key, [int(reference.spikes[key].sum()), int(spikes.sum())]) for key, spikes in norse.spikes.items()]


def test_frameworks_that_cannot_run_say_why(conv_graphs, monkeypatch):
    paths, x = conv_graphs
    assert "tau_mem" in unavailable_reason("rockpool") and "numpy >= 2" in unavailable_reason("spyx")
    monkeypatch.setitem(sys.modules, "norse.torch", None)  # as if Norse were not installed
    assert unavailable_reason("norse").startswith("not installed")
    with pytest.raises(FrameworkUnavailable, match="not installed"):
        run_framework("norse", nir.read(paths["norse"]), x, 3, 1e-4)
    delay = nir.NIRGraph.from_list(nir.Affine(np.ones((3, 64)), np.zeros(3)), nir.Delay(np.ones(3)))
    with pytest.raises(FrameworkUnavailable, match="cannot run: snntorch's NIR importer raised ValueError: "
                                                   "Unknown node type"):  # its own refusal, reported
        run_framework("snntorch", delay, np.zeros((2, 64)), 3, 1e-4)
    with pytest.raises(UserError, match="unknown NIR framework 'brian2'"):
        run_framework("brian2", nir.read(paths["norse"]), x, 3, 1e-4)


def test_a_nir_side_is_float_and_n_sides_compare_with_the_first():
    for pair in [("reference", "nir:norse"), ("nir:snntorch", "lava"), ("nir:snntorch", "nir:sinabs")]:
        tolerance = default_tolerance(*pair)
        assert (tolerance.min_class_agreement, tolerance.min_spike_agreement) == (FLOAT_MIN_CLASS_AGREEMENT,
                                                                                  FLOAT_MIN_SPIKE_AGREEMENT)
    spikes = np.zeros((10, 2, 10), dtype=bool)
    other = spikes.copy()
    other[0, 0, :6] = True  # 94 % of (sample, neuron) counts equal: below the float default
    records = {"reference": RunRecord("reference", {"fc1": spikes}, np.arange(10)),
               "nir:norse": RunRecord("nir:norse", {"fc1": spikes}, np.arange(10)),
               "nir:sinabs": RunRecord("nir:sinabs", {"fc1": other}, np.arange(10))}
    sides = ["reference", "nir:norse", "nir:snntorch", "nir:sinabs"]
    report = compare_many(sides, records, {"nir:snntorch": "not installed (test)"})
    assert [pair.sides for pair in report.pairs] == [("reference", "nir:norse"), ("reference", "nir:sinabs")]
    assert [pair.passed for pair in report.pairs] == [True, False] and not report.passed
    text = format_many(report)
    assert "nir:snntorch: not run: not installed (test)" in text
    assert text.endswith("against reference: nir:norse: PASS, nir:sinabs: FAIL -> FAIL")
    assert compare_many(sides, records, {}, min_spike_agreement=0.9).passed
