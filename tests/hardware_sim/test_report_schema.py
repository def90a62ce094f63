"""report.json has one versioned shape: every report (``dsatgo report``'s, the demo's, the committed
example) validates against hardware_sim/report/report.schema.json, and the schema refuses what is not one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from dsatgo_deploy.hardware_sim.parity import apply_tolerance, compare
from dsatgo_deploy.hardware_sim.report import REPORT_FORMAT, SCHEMA_FILE, SCHEMA_VERSION, build_report
from dsatgo_deploy.pipeline.demo import export_section, parity_section
from dsatgo_deploy.pipeline.sides import run_reference, run_torch

EXAMPLE_REPORT = Path(__file__).resolve().parents[2] / "docs" / "example_report" / "report.json"


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_report(data: dict) -> None:
    """Fail with every schema violation (path and message) of ``data``."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{e.json_path}: {e.message[:200]}" for e in errors)


def test_schema_names_the_version_the_code_writes():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["properties"]["format"]["const"] == REPORT_FORMAT
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_committed_example_report_is_valid():
    data = json.loads(EXAMPLE_REPORT.read_text(encoding="utf-8"))
    assert_valid_report(data)
    assert data["parity"]["reference_vs_lava"]["bit_exact"] and data["passed"]
    assert [layer["cores"] for layer in data["loihi2_system"]["layers"]] == [1, 1]  # written by the current code


@pytest.fixture(scope="module")
def demo_shaped_report(exported, trained_checkpoint, digits):
    """A report with the sections the demo adds, made by the demo's own functions from real runs."""
    from dsatgo_deploy.checkpoint import load_checkpoint

    x, y = digits.x_test[:20], digits.y_test[:20]
    torch_run = run_torch(load_checkpoint(trained_checkpoint), x)
    reference_run = run_reference(exported.network, x)
    built = json.loads(json.dumps(build_report(exported.network, x, y, record=reference_run, dataset="digits")))
    built["accuracies"] = {"float": float((torch_run.predictions == y).mean()), "quantized_reference": built["accuracy"]}
    built["parity"] = {"torch_vs_reference": parity_section(apply_tolerance(compare(torch_run, reference_run, y)))}
    built["export"] = export_section(exported, exported.out_dir)
    built.update(passed=True, seconds=1.5, lava_seconds=0.5)
    return json.loads(json.dumps(built))


def test_demo_sections_are_valid(demo_shaped_report):
    assert_valid_report(demo_shaped_report)
    # loihi2_system is optional: reports of schema_version 1 written before it still validate
    assert demo_shaped_report["loihi2_system"]["total_cores"] == 2
    assert_valid_report({k: v for k, v in demo_shaped_report.items() if k != "loihi2_system"})


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.update(schema_version=2), "$.schema_version"),
    (lambda r: r.update(energy_report={}), "$"),  # the demo's old nested shape is not a report any more
    (lambda r: r.pop("totals"), "$"),
    (lambda r: r["layers"][0]["per_inference"].pop("synops"), "$.layers[0].per_inference"),
    (lambda r: r["energy"][0]["constants_used"]["synaptic_op"].update(status="measured?"),
     "$.energy[0].constants_used.synaptic_op.status"),
    (lambda r: r["parity"]["torch_vs_reference"]["layers"][0].update(spikes=[1]),
     "$.parity.torch_vs_reference.layers[0].spikes"),
    (lambda r: r["loihi2_system"]["facts"]["neurons_per_core"].update(status="measured?"),
     "$.loihi2_system.facts.neurons_per_core.status"),
    (lambda r: r["loihi2_system"]["layers"][0].pop("cores"), "$.loihi2_system.layers[0]"),
    (lambda r: r["loihi2_system"]["energy_mj"].pop("static"), "$.loihi2_system.energy_mj"),
])
def test_schema_refuses_what_is_not_a_report(demo_shaped_report, mutate, where):
    broken = copy.deepcopy(demo_shaped_report)
    mutate(broken)
    paths = {e.json_path for e in _validator().iter_errors(broken)}
    assert where in paths, paths


def test_the_demo_writes_a_valid_report(tmp_path, capsys):
    """The demo itself, cut short (1 epoch, 30 samples, no Lava): its report.json is one of the shape."""
    from dsatgo_deploy.pipeline.demo import run_demo

    returned = run_demo(tmp_path, epochs=1, samples=30, lava=False)
    written = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert_valid_report(written)
    assert written == json.loads(json.dumps(returned))
    assert set(written["parity"]) == {"torch_vs_reference"} and written["ladder"]["rungs"][4]["available"] is False
    printed = capsys.readouterr().out
    assert f"spikes per inference                                : {written['totals']['spikes']:.1f}" in printed
