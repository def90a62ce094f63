"""`dsatgo parity --sides reference,nir:snntorch,nir:norse,nir:sinabs`: our NIR exports of the digits MLP and
the digits conv net run in each consumer through its own importer (pipeline/nir_sides.py), compared with
the reference simulator on the integer network of the same export, and with each other.

Measured (docs/interop.md): against the reference, each consumer reaches parity's float default for
classes (>= 95 %); the MLP also its default for per-neuron spike counts (>= 95 % per layer) with spike
totals per layer within 1 %, the conv net >= 90 % (given with --min-spike-agreement: 8-bit input and
weights move more conv neurons across a threshold) with totals within 5 %. The consumers agree with
each other spike for spike. A framework that cannot run (missing, or Rockpool and spyx) is reported
with its reason and fails nothing."""

from __future__ import annotations

import json
import os
import sys
import warnings

import nir
import pytest

from dsatgo_deploy.cli import export_main, main
from dsatgo_deploy.export.targets.nir import NIR_FILE
from dsatgo_deploy.hardware_sim.parity import FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT

CONSUMERS = ("snntorch", "norse", "sinabs")
SAMPLES = os.environ.get("DSATGO_INTEROP_SAMPLES", "60")  # 360: the whole digits test set
# Per model: the per-neuron spike-count agreement asked of each consumer against the reference (None: parity's
# float default), and how far a layer's spike total may be from the reference's (relative).
MIN_SPIKE_AGREEMENT = {"mlp": None, "conv": 0.9}
SPIKE_TOTAL_TOLERANCE = {"mlp": 0.01, "conv": 0.05}


def _export(checkpoint, out, nir_for: str, calibrate: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert export_main([str(checkpoint), "--target", "nir", "--nir-for", nir_for, "--threshold-policy",
                            "per-layer", "--calibrate", str(calibrate), "--out", str(out)]) == 0


@pytest.fixture(scope="module")
def nir_exports(tmp_path_factory, trained_checkpoint, digits_conv_checkpoint):
    """Per model, the export folder written for the spec (network.npz: the reference's integer network with
    the same per-layer thresholds as the NIR file) and the Norse and Sinabs files."""
    exports = {}
    for model, checkpoint, calibrate in (("mlp", trained_checkpoint, 128), ("conv", digits_conv_checkpoint, 32)):
        root = tmp_path_factory.mktemp(f"nir_{model}")
        for nir_for in ("spec", "norse", "sinabs"):
            _export(checkpoint, root / nir_for, nir_for, calibrate)
        exports[model] = root
    return exports


def _parity(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["parity", "--samples", SAMPLES, "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _variant_args(root) -> list[str]:
    return ["--network", str(root / "spec"), "--nir", str(root / "norse" / NIR_FILE),
            "--nir", str(root / "sinabs" / NIR_FILE)]


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_every_consumer_against_the_reference_and_each_other(model, nir_exports, capsys, request):
    root = nir_exports[model]
    sides = "reference," + ",".join(f"nir:{c}" for c in CONSUMERS)
    given = MIN_SPIKE_AGREEMENT[model]
    code, report = _parity(capsys, *_variant_args(root), "--sides", sides,
                           *(["--min-spike-agreement", str(given)] if given else []))
    assert code == 0 and report["passed"] and report["unavailable"] == {}
    assert [p["sides"] for p in report["pairs"]] == [["reference", f"nir:{c}"] for c in CONSUMERS]
    for consumer in CONSUMERS:  # each side ran the file written for it
        assert report["notes"][f"nir:{consumer}"]["nir_for"] == ("spec" if consumer == "snntorch" else consumer)
    for pair in report["pairs"]:
        measured = {layer["layer"]: (layer["spikes"], round(layer["spike_count_agreement"], 4))
                    for layer in pair["layers"]}
        if request.config.getoption("capture") == "no":  # -s: the figures docs/interop.md quotes
            with capsys.disabled():
                print(f"{model}: {pair['sides'][1]} vs reference: classes {pair['class_agreement']:.1%}, "
                      f"layers (spikes reference/consumer, count agreement) {measured}")
        assert pair["tolerance"]["min_class_agreement"] == FLOAT_MIN_CLASS_AGREEMENT  # a float side's default
        assert pair["class_agreement"] >= FLOAT_MIN_CLASS_AGREEMENT
        for layer in pair["layers"]:
            reference, consumer = layer["spikes"]
            assert reference > 0, f"layer {layer['layer']} is silent: the comparison would prove nothing"
            assert abs(reference - consumer) <= SPIKE_TOTAL_TOLERANCE[model] * reference, layer
            assert layer["spike_count_agreement"] >= (given or FLOAT_MIN_SPIKE_AGREEMENT)
    # the consumers with each other: the same spikes, step by step
    code, among = _parity(capsys, *_variant_args(root), "--sides", ",".join(f"nir:{c}" for c in CONSUMERS))
    assert code == 0 and all(pair["bit_exact"] for pair in among["pairs"]), among["pairs"]
    assert {layer["layer"] for layer in among["pairs"][0]["layers"]} == set(measured)  # our layer names


def test_a_missing_framework_is_reported_not_failed(nir_exports, capsys, monkeypatch):
    for module in ("sinabs", "sinabs.nir"):  # as if Sinabs were not installed
        monkeypatch.setitem(sys.modules, module, None)
    root = nir_exports["mlp"]
    code, report = _parity(capsys, *_variant_args(root), "--sides", "reference,nir:snntorch,nir:sinabs,nir:rockpool")
    assert code == 0 and report["passed"]
    assert [p["sides"][1] for p in report["pairs"]] == ["nir:snntorch"]
    assert report["unavailable"]["nir:sinabs"].startswith("not installed")
    assert "tau_mem" in report["unavailable"]["nir:rockpool"]  # Rockpool's importer cannot read nir 1.x's LIF
    capsys.readouterr()
    assert main(["parity", "--samples", "10", *_variant_args(root), "--sides", "reference,nir:sinabs"]) == 0
    out = capsys.readouterr().out
    assert "nir:sinabs: not run: not installed" in out and "no pair compared" in out


def test_two_sides_keep_the_two_side_report(nir_exports, capsys):
    """Two sides give the one-pair report as before (its fields at the top level), plus the file a nir side ran.
    Norse given the spec file (r and dt read otherwise, docs/interop.md) fails parity, and the report says why."""
    spec = str(nir_exports["mlp"] / "spec")
    code, report = _parity(capsys, "--network", spec, "--sides", "reference,nir:snntorch")
    assert code == 0 and report["sides"] == ["reference", "nir:snntorch"] and report["class_agreement"] == 1.0
    assert report["notes"]["nir:snntorch"]["as_written"] is True
    code, report = _parity(capsys, "--network", spec, "--sides", "reference,nir:norse")
    assert code == 1 and report["class_agreement"] < 0.95 and report["first_divergence"] is not None
    assert report["notes"]["nir:norse"] == {"file": str(nir_exports["mlp"] / "spec" / NIR_FILE), "nir_for": "spec",
                                            "as_written": False}
    capsys.readouterr()
    assert main(["parity", "--samples", "20", "--network", spec, "--sides", "reference,nir:norse"]) == 1
    assert "not the file for nir:norse" in capsys.readouterr().out


def test_a_nir_file_alone_and_a_foreign_one(nir_exports, tmp_path, capsys):
    """--network FILE.nir needs no deployable network for the nir sides. A file another tool wrote keeps its
    node keys as layer names, and without 'timesteps' in its metadata it needs --timesteps."""
    spec, norse = (nir_exports["mlp"] / name / NIR_FILE for name in ("spec", "norse"))
    code, report = _parity(capsys, "--network", str(spec), "--nir", str(norse), "--sides", "nir:snntorch,nir:norse")
    assert code == 0 and report["bit_exact"] and [layer["layer"] for layer in report["layers"]] == ["fc1"]
    graph = nir.read(str(norse))  # snnTorch reads the norse file as written too (r = 1: docs/interop.md)
    foreign = tmp_path / "foreign.nir"
    nir.write(str(foreign), nir.NIRGraph(graph.nodes, graph.edges, metadata={}))
    capsys.readouterr()
    assert main(["parity", "--nir", str(foreign), "--sides", "nir:snntorch,nir:norse"]) == 2
    assert "no 'timesteps'" in capsys.readouterr().err
    code, report = _parity(capsys, "--nir", str(foreign), "--sides", "nir:snntorch,nir:norse",
                           "--timesteps", "4", "--dt", "1e-4")
    assert code == 0 and report["bit_exact"] and [layer["layer"] for layer in report["layers"]] == ["fc1.lif"]
    assert report["notes"]["nir:norse"] == {"file": str(foreign), "nir_for": None, "as_written": True}


def test_bad_nir_sides_are_refused_in_one_line(nir_exports, capsys):
    spec = str(nir_exports["mlp"] / "spec")
    assert main(["parity", "--network", spec, "--sides", "reference,nir:brian2"]) == 2
    assert "unknown NIR side 'nir:brian2'" in capsys.readouterr().err
    assert main(["parity", "--network", str(nir_exports["mlp"] / "spec" / "network.npz"),
                 "--sides", "reference,nir:norse"]) == 2
    assert "the nir sides need a NIR file" in capsys.readouterr().err
    assert main(["parity", "--network", spec, "--sides", "reference,reference"]) == 2
    assert "each once" in capsys.readouterr().err
