"""Sharding under torchrun: 2 CPU processes (gloo), each running its block of the samples, gather
exactly what one process computes on all of them (pipeline/sharding.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.pipeline.sharding import block, merge_records
from dsatgo_deploy.runs import RunRecord

SAMPLES = 61  # odd: the two blocks differ in size


def _torchrun(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m dsatgo_deploy.cli ARGS``, one thread per process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "dsatgo_deploy.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _recording(path) -> dict[str, np.ndarray]:
    with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays.files}


@pytest.mark.parametrize("samples, world", [(10, 3), (2, 4), (9, 1)])
def test_blocks_are_contiguous_and_cover_the_samples_in_order(samples, world):
    blocks = [block(samples, rank, world) for rank in range(world)]
    covered = np.concatenate([np.arange(samples)[b] for b in blocks])
    assert covered.tolist() == list(range(samples))
    sizes = [b.stop - b.start for b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_merge_keeps_sample_order_and_skips_empty_blocks():
    rng = np.random.default_rng(0)
    spikes = rng.random((5, 3, 4)) > 0.5
    trace = rng.integers(-50, 50, (5, 3, 2))
    whole = RunRecord.from_readout("reference", {"fc1": spikes}, trace)
    parts = [RunRecord.from_readout("reference", {"fc1": spikes[s]}, trace[s]) for s in (slice(0, 2), slice(2, 5))]
    messages = rng.integers(-9, 10, (5, 3, 4)) * spikes  # a graded layer's values where it sent
    voltages = rng.integers(-99, 99, (5, 3, 4))
    for part, s in zip(parts, (slice(0, 2), slice(2, 5))):
        part.messages, part.states = {"fc1": messages[s]}, {"fc1": {"v": voltages[s]}}
    merged = merge_records([parts[0], None, parts[1]])
    assert np.array_equal(merged.spikes["fc1"], whole.spikes["fc1"])
    assert np.array_equal(merged.messages["fc1"], messages) and np.array_equal(merged.states["fc1"]["v"], voltages)
    assert np.array_equal(merged.predictions, whole.predictions)
    assert np.array_equal(merged.readout_trace, whole.readout_trace)


def test_sharded_sim_equals_one_process(exported, tmp_path, capsys):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    assert main(["sim", str(exported.out_dir), "--samples", str(SAMPLES), "--json", "--save-spikes", str(one)]) == 0
    single = json.loads(capsys.readouterr().out)
    done = _torchrun(["sim", str(exported.out_dir), "--samples", str(SAMPLES), "--json", "--save-spikes", str(two)],
                     tmp_path)
    sharded = json.loads(done.stdout)  # rank 0 alone prints: one JSON document
    for key in ("samples", "accuracy", "spikes_per_inference"):
        assert sharded[key] == single[key], key
    expected, got = _recording(one), _recording(two)
    assert sorted(got) == sorted(expected) and len(expected) >= 2  # spikes of each layer and predictions
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name
    assert got[next(n for n in got if "pred" in n)].shape == (SAMPLES,)


def test_sharded_parity_equals_one_process(exported, trained_checkpoint, tmp_path, capsys):
    args = ["parity", "--model", str(trained_checkpoint), "--network", str(exported.out_dir),
            "--sides", "torch,reference", "--samples", str(SAMPLES), "--json"]
    assert main(args) == 0
    single = json.loads(capsys.readouterr().out)
    sharded = json.loads(_torchrun(args, tmp_path).stdout)
    assert sharded == single
    assert sharded["layers"] and 0.0 < sharded["class_agreement"] <= 1.0


def test_sharded_chunked_sim_equals_one_process(exported, tmp_path, capsys):
    """Without --save-spikes each process reduces its block chunk by chunk; only the summaries travel."""
    assert main(["sim", str(exported.out_dir), "--samples", str(SAMPLES), "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    done = _torchrun(["sim", str(exported.out_dir), "--samples", str(SAMPLES), "--json", "--chunk", "7"], tmp_path)
    sharded = json.loads(done.stdout)
    for key in ("samples", "accuracy", "spikes_per_inference"):
        assert sharded[key] == single[key], key
    assert sharded["accuracy"] > 0.5 and all(v > 0 for v in sharded["spikes_per_inference"].values())


def test_sharded_report_equals_one_process(exported, trained_checkpoint, tmp_path, capsys):
    """The backend's counts sharded and chunked; the ladder's rungs chunked on rank 0."""
    one, two = tmp_path / "one" / "report.json", tmp_path / "two" / "report.json"
    for path in (one, two):
        path.parent.mkdir()
    args = ["report", str(exported.out_dir), "--samples", str(SAMPLES), "--json", "--model", str(trained_checkpoint),
            "--calibrate", "64"]
    assert main([*args, "--out", str(one)]) == 0
    capsys.readouterr()
    _torchrun([*args, "--out", str(two), "--chunk", "7"], tmp_path)
    single, sharded = json.loads(one.read_text()), json.loads(two.read_text())
    assert sharded == single  # every count, rate and energy figure
    assert sharded["samples"] == SAMPLES and sharded["totals"]["synops"] > 0 and len(sharded["ladder"]["rungs"]) == 5


def test_sharded_parity_of_three_sides_in_chunks_equals_one_process(exported, trained_checkpoint, tmp_path, capsys):
    args = ["parity", "--model", str(trained_checkpoint), "--network", str(exported.out_dir),
            "--sides", "torch,reference,onnx", "--samples", str(SAMPLES), "--json"]
    assert main(args) in (0, 1)
    single = json.loads(capsys.readouterr().out)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "dsatgo_deploy.cli", *args, "--chunk", "7"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == (0 if single["passed"] else 1), done.stderr[-3000:]
    sharded = json.loads(done.stdout)
    assert sharded == single
    assert [pair["sides"] for pair in sharded["pairs"]] == [["torch", "reference"], ["torch", "onnx"]]
