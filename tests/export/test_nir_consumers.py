"""Our NIR files in the NIR consumers that install beside torch 2.13 (`make interop`): snnTorch, Norse,
Sinabs import the digits MLP and a digits conv net, run them, and agree with our frozen float model
(one threshold per layer): >= 99 % of classes, spike counts per layer within 1 %. Each consumer gets
the parameterisation written for it (export/nir_writer.py NIR_FOR; docs/interop.md says why) and runs
in hardware_sim/nir_frameworks.py, the code behind `dsatgo parity --sides nir:<consumer>`.

DSATGO_INTEROP_SAMPLES=360 runs the whole digits test set (the figures in docs/interop.md)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import nir

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.export.freeze import freeze, run_frozen
from dsatgo_deploy.export.nir_writer import NIR_FOR, build_nir
from dsatgo_deploy.export.thresholds import calibrate_per_layer
from dsatgo_deploy.hardware_sim.nir_frameworks import FRAMEWORKS, run_framework, unavailable_reason
from dsatgo_deploy.importers.nir import graph_timing
from dsatgo_deploy.hardware_sim.parity import compare
from dsatgo_deploy.pipeline.nir_sides import layer_name
from dsatgo_deploy.runs import RunRecord

SAMPLES = int(os.environ.get("DSATGO_INTEROP_SAMPLES", "60"))
MIN_AGREEMENT = 0.99
SPIKE_TOLERANCE = 0.01  # relative difference of a layer's spike count


def _graph(frozen, nir_for: str, tmp_path):
    """Our file, written and read back as a consumer would get it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = build_nir(frozen, nir_for=nir_for)[0]
    nir.write(str(tmp_path / f"{nir_for}.nir"), graph)
    return nir.read(str(tmp_path / f"{nir_for}.nir"))


def run_consumer(name: str, graph, x: np.ndarray) -> RunRecord:
    """The consumer's run (hardware_sim/nir_frameworks.py, what `dsatgo parity --sides nir:<name>` runs),
    its layers named as ours; a consumer that is missing fails the test."""
    reason = unavailable_reason(name)
    if reason is not None:
        pytest.fail(f"NIR consumer {name}: {reason}: run `make interop`")
    record = run_framework(name, graph, x, *graph_timing(graph, name))
    producer = graph.metadata["producer"]
    return RunRecord(record.name, {layer_name(key, producer): s for key, s in record.spikes.items()},
                     record.predictions, record.readout_trace)


def compare_with_frozen(per_layer, theirs: RunRecord, x: np.ndarray, label: str) -> dict:
    ours_readout, ours, _ = run_frozen(per_layer, x)
    report = compare(RunRecord("frozen", ours, ours_readout.argmax(1)), theirs)
    spikes = {layer.layer: layer.spikes for layer in report.layers}
    print(f"{label}: {len(x)} samples, class agreement {report.class_agreement:.1%}, spikes (ours, theirs) {spikes}, "
          f"spike trains equal: {report.first_divergence is None}")
    assert report.class_agreement >= MIN_AGREEMENT, f"{label}: class agreement {report.class_agreement:.1%}"
    for layer, (mine, theirs_count) in spikes.items():
        assert mine > 0, f"{label}: layer {layer} is silent: the comparison would prove nothing"
        assert abs(mine - theirs_count) <= SPIKE_TOLERANCE * mine, f"{label}: layer {layer}: ours {mine}, theirs {theirs_count}"
    return {"agreement": report.class_agreement, "spikes": spikes}


@pytest.fixture(scope="module")
def digits_mlp(trained_checkpoint, digits):
    frozen = freeze(load_checkpoint(trained_checkpoint))
    return calibrate_per_layer(frozen, digits.x_train[:128]), digits.x_test[:SAMPLES]


@pytest.fixture(scope="module")
def digits_conv(digits_conv_checkpoint, digits):
    """The digits conv net (tests/conftest.py), its per-layer thresholds calibrated on 32 images."""
    frozen = freeze(load_checkpoint(digits_conv_checkpoint))
    images = digits.x_train.reshape(-1, 1, 8, 8)
    return calibrate_per_layer(frozen, images[:32]), digits.x_test[:SAMPLES].reshape(-1, 1, 8, 8)


@pytest.mark.parametrize("consumer", FRAMEWORKS)
@pytest.mark.parametrize("model", ["digits_mlp", "digits_conv"])
def test_consumer_runs_our_nir_like_our_frozen_model(consumer, model, request, tmp_path):
    per_layer, x = request.getfixturevalue(model)
    graph = _graph(per_layer, consumer, tmp_path)
    compare_with_frozen(per_layer, run_consumer(consumer, graph, x), x, f"{consumer} / {model}")


def test_the_metadata_states_time_input_and_how_to_run(digits_mlp, tmp_path):
    per_layer, _ = digits_mlp
    for nir_for in NIR_FOR:
        meta = _graph(per_layer, nir_for, tmp_path).metadata
        assert int(meta["timesteps"]) == per_layer.timesteps and meta["input_encoding"] == "direct"
        assert meta["nir_for"] == nir_for and str(per_layer.timesteps) in meta["run"]
        assert meta["dt_unit"] == ("timestep" if nir_for == "sinabs" else "s")
        assert float(meta["duration"]) == pytest.approx(per_layer.timesteps * float(meta["dt"]))


def test_the_norse_file_is_the_spec_file_with_r_moved_into_the_synapse(digits_mlp, tmp_path):
    """Both are the same NIR graph: r multiplies the LIF's input, the synapse is linear."""
    per_layer, _ = digits_mlp
    spec, norse = _graph(per_layer, "spec", tmp_path), _graph(per_layer, "norse", tmp_path)
    r = spec.nodes["fc1.lif"].r
    np.testing.assert_array_equal(norse.nodes["fc1.lif"].r, 1.0)
    np.testing.assert_allclose(norse.nodes["fc1.synapse"].weight, spec.nodes["fc1.synapse"].weight * r[:, None])
    np.testing.assert_allclose(norse.nodes["fc1.synapse"].bias, spec.nodes["fc1.synapse"].bias * r)
    np.testing.assert_array_equal(norse.nodes["fc1.lif"].tau, spec.nodes["fc1.lif"].tau)
    np.testing.assert_array_equal(norse.nodes["readout.synapse"].weight, spec.nodes["readout.synapse"].weight)


def test_dsatgo_export_nir_for_writes_the_consumer_s_file(trained_checkpoint, tmp_path):
    from dsatgo_deploy.cli import export_main
    from dsatgo_deploy.export.exporter import NIR_FILE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for nir_for in ("norse", "sinabs"):
            assert export_main([str(trained_checkpoint), "--target", "nir", "--nir-for", nir_for,
                                "--out", str(tmp_path / nir_for), "--calibrate", "16"]) == 0
    norse, sinabs = (nir.read(str(tmp_path / name / NIR_FILE)) for name in ("norse", "sinabs"))
    assert norse.metadata["nir_for"] == "norse" and sinabs.metadata["dt_unit"] == "timestep"
    np.testing.assert_array_equal(norse.nodes["fc1.lif"].r, 1.0)
    decay = float(norse.nodes["fc1.lif"].tau[0] and 1 - float(norse.metadata["dt"]) / norse.nodes["fc1.lif"].tau[0])
    np.testing.assert_allclose(np.exp(-1.0 / sinabs.nodes["fc1.lif"].tau), decay, rtol=1e-9)
    with pytest.raises(SystemExit):
        export_main([str(trained_checkpoint), "--target", "nir", "--nir-for", "rockpool", "--out", str(tmp_path / "r")])
