"""Runs chunk by chunk (pipeline/streaming.py): the merged tallies and summaries of chunks that do not
divide the samples equal, field for field, what the whole runs give; memory does not grow with the samples."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.hardware_sim.counts import spikes_per_inference
from dsatgo_deploy.hardware_sim.parity import compare, compare_many, many_from_tallies
from dsatgo_deploy.hardware_sim.recording import load_recording, save_recording
from dsatgo_deploy.hardware_sim.report import build_report
from dsatgo_deploy.pipeline.sides import load_model, record_model, run_reference, run_side
from dsatgo_deploy.pipeline.streaming import stream, summarize_side, tally_sides

SAMPLES = 61
CHUNKS = (7, 16)  # neither divides 61: the last chunk is short


@pytest.fixture(scope="module")
def conv_exported(tmp_path_factory, digits_conv_checkpoint):
    from dsatgo_deploy.export.exporter import export_checkpoint
    from dsatgo_deploy.train.data import load_dataset

    images = load_dataset("digits", image=True)
    out = tmp_path_factory.mktemp("conv_export") / "loihi"
    return export_checkpoint(digits_conv_checkpoint, out, calibration_x=images.x_train[:32]), images


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("labelled", [True, False])
def test_chunked_parity_of_three_sides_equals_the_whole_runs(exported, trained_checkpoint, digits, chunk, labelled):
    checkpoint = load_checkpoint(trained_checkpoint)
    x, labels = digits.x_test[:SAMPLES], (digits.y_test[:SAMPLES] if labelled else None)
    sides = ["torch", "reference", "onnx"]
    tallies, unavailable = tally_sides(sides, x, labels, chunk, net=exported.network, checkpoint=checkpoint)
    whole = {side: run_side(side, net=exported.network, checkpoint=checkpoint, x=x) for side in sides}
    expected = compare_many(sides, whole, {}, labels)
    got = many_from_tallies(sides, tallies, unavailable, SAMPLES)
    assert got.to_dict() == expected.to_dict()  # every float equal, not close
    assert [p.sides for p in got.pairs] == [("torch", "reference"), ("torch", "onnx")]
    assert (got.pairs[0].accuracy[0] is not None) == labelled and got.pairs[0].samples == SAMPLES
    assert sum(layer.spikes[0] for layer in got.pairs[0].layers) > 0


def _flip(spikes: np.ndarray, sample: int, step: int, neuron: int) -> None:
    spikes[sample, step, neuron] = ~spikes[sample, step, neuron]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_chunked_parity_finds_the_first_divergence_by_its_global_sample(exported, digits, tmp_path, chunk):
    net = exported.network
    x, y = digits.x_test[:SAMPLES], digits.y_test[:SAMPLES]
    record = run_reference(net, x)
    changed = copy.deepcopy(record)
    layer = list(record.spikes)[0]
    _flip(changed.spikes[layer], 50, 0, 0)  # a later sample at an earlier step and neuron: not the first
    _flip(changed.spikes[layer], 45, 2, 9)  # in the middle of a chunk of 7 (42..48) and of 16 (32..47)
    path = tmp_path / "changed.npz"
    save_recording(path, changed)
    tallies, _ = tally_sides(["reference", "recorded"], x, y, chunk, net=net, checkpoint=None, recording=str(path))
    report = tallies["recorded"].report()
    assert report == compare(record, load_recording(path, net, samples=SAMPLES), y)
    d = report.first_divergence
    assert (d.sample, d.layer, d.timestep, d.neuron) == (45, layer, 2, 9)
    assert d.values == (int(record.spikes[layer][45, 2, 9]), int(not record.spikes[layer][45, 2, 9]))
    assert report.layers[0].mismatched_entries == 2 and not report.bit_exact


def test_a_block_reports_its_samples_by_their_global_index(exported, digits, tmp_path):
    """Under torchrun a process tallies one block: its divergences carry the block's offset."""
    net = exported.network
    x = digits.x_test[:SAMPLES]
    changed = copy.deepcopy(run_reference(net, x))
    layer = list(changed.spikes)[0]
    _flip(changed.spikes[layer], 40, 1, 4)
    path = tmp_path / "changed.npz"
    save_recording(path, changed)
    tallies, _ = tally_sides(["reference", "recorded"], x[31:], None, 7, net=net, checkpoint=None,
                             recording=str(path), offset=31, total=SAMPLES)
    d = tallies["recorded"].report().first_divergence
    assert (d.sample, d.timestep, d.neuron) == (40, 1, 4)
    assert tallies["recorded"].samples == SAMPLES - 31


@pytest.mark.parametrize("chunk", CHUNKS)
def test_chunked_sim_summary_and_report_equal_the_whole_run(conv_exported, chunk):
    result, images = conv_exported
    net = result.network
    x, y = images.x_test[:SAMPLES], images.y_test[:SAMPLES]
    record = run_reference(net, x)
    summary = summarize_side("reference", x, chunk, net=net, counts=True)
    assert np.array_equal(summary.predictions, record.predictions)
    assert summary.spikes_per_inference() == spikes_per_inference(net, record.spikes)
    assert summary.accuracy(y) == float((record.predictions == y).mean()) > 0.5
    assert build_report(net, x, y, summary=summary) == build_report(net, x, y, record=record)
    assert summary.counts.samples == SAMPLES and sum(summary.spikes_per_inference().values()) > 0


def test_a_lava_side_runs_its_block_once(exported, digits, monkeypatch):
    """Lava compiles a graph per run: it runs the whole block at its first chunk, then is sliced."""
    import dsatgo_deploy.pipeline.streaming as streaming

    calls = []
    reference = streaming.run_side

    def counted(side, **kwargs):
        calls.append((side, len(kwargs["x"])))
        return reference("reference" if side == "lava" else side, **kwargs)

    monkeypatch.setattr(streaming, "run_side", counted)
    x = digits.x_test[:SAMPLES]
    chunks = [(part, records) for part, records in stream(["reference", "lava"], x, 16, {}, net=exported.network,
                                                          checkpoint=None)]
    assert [len(range(SAMPLES)[part]) for part, _ in chunks] == [16, 16, 16, 13]
    assert calls.count(("lava", SAMPLES)) == 1 and ("reference", 13) in calls
    for _, records in chunks:
        assert np.array_equal(records["lava"].spikes[next(iter(records["lava"].spikes))],
                              records["reference"].spikes[next(iter(records["reference"].spikes))])


#: A generated network whose spikes dwarf its input: 16 inputs -> 4096 spiking neurons -> 10, T = 8
#: (32 KiB of spikes per sample, one byte each); prints the peak of the memory Python and numpy allocate
#: (tracemalloc: deterministic, unlike the RSS, which the C allocator's reuse of freed blocks blurs) during
#: a chunked run of argv[1] samples, and the spikes counted.
MEMORY_SCRIPT = textwrap.dedent("""
    import sys, tracemalloc
    import numpy as np
    from dsatgo_deploy import network as N
    from dsatgo_deploy.pipeline.streaming import summarize_side

    rng = np.random.default_rng(0)
    steps, hidden = 8, 4096
    layers = [N.Layer(name="hidden", sources=["input"], weight=rng.integers(-60, 128, (hidden, 16)) * 2,
                      weight_exp=0, bias_mant=np.zeros(hidden), bias_exp=0, threshold_schedule=[20000] * steps,
                      current_decay=1024, voltage_decay=1024, spiking=True, input_message_bits=8),
              N.Layer(name="readout", sources=["hidden"], weight=rng.integers(-128, 128, (10, hidden)) * 2,
                      weight_exp=0, bias_mant=np.zeros(10), bias_exp=0, threshold_schedule=[],
                      current_decay=4095, voltage_decay=0, spiking=False, input_message_bits=0)]
    net = N.DeployableNetwork(timesteps=steps, input_shape=(16,),
                              input_encoding=N.InputEncoding(kind="graded", bits=8, step=1 / 255, signed=False),
                              layers=layers)
    x = rng.random((int(sys.argv[1]), 16))
    tracemalloc.start()
    spikes = sum(summarize_side("reference", x, 64, net=net).spikes["hidden"])
    print(tracemalloc.get_traced_memory()[1], spikes)
""")
SPIKE_BYTES = 8 * 4096  # per sample


def _peak_bytes(samples: int) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(samples)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    peak, spikes = done.stdout.split()
    return int(peak), int(spikes)


def test_peak_memory_does_not_grow_with_the_samples():
    small, small_spikes = _peak_bytes(64)  # one chunk
    large, large_spikes = _peak_bytes(512)  # eight
    assert large_spikes > 7 * small_spikes > 7 * 64 * 100  # the same kind of run, with spikes to hold
    assert small > 64 * SPIKE_BYTES  # the measure sees a chunk's spikes...
    assert large - small < 64 * SPIKE_BYTES // 4  # ...and 8x the samples add < 1/4 of one chunk's


def test_chunked_ladder_equals_the_whole_ladder(exported, trained_checkpoint, digits):
    """Every rung chunk by chunk (the adaptive rung's chunk rounded up to whole batches of its thresholds)."""
    from dsatgo_deploy.pipeline.ladder import compute_ladder

    checkpoint = load_checkpoint(trained_checkpoint)
    x, y = digits.x_test[:SAMPLES], digits.y_test[:SAMPLES]
    kwargs = {"calibration_x": digits.x_train[:64], "profiles": ["loihi1"], "batch_size": 10}
    whole = compute_ladder(checkpoint, exported.network, x, y, **kwargs)
    chunked = compute_ladder(checkpoint, exported.network, x, y, chunk=7, **kwargs)
    assert chunked == whole
    rungs = [rung for rung in whole["rungs"] if rung["available"]]
    assert len(rungs) == 4 and all(rung["accuracy"] > 0.5 and rung["spikes_per_inference"] > 0 for rung in rungs)


def test_teacher_forcing_feeds_each_layer_the_given_spikes_of_its_sources(conv_exported):
    """simulate(forced=...): forced by its own run, the reference is that run; with one layer's spikes flipped,
    only the layer it feeds changes (the flipped layer itself is computed from its own inputs)."""
    from dsatgo_deploy.hardware_sim.reference import simulate

    result, images = conv_exported
    net, x = result.network, images.x_test[:12]
    chain = [layer for layer in net.layers if layer.spiking]
    assert len(chain) >= 3 and all(layer.sources == [before.name] for before, layer in zip(chain, chain[1:]))
    free = simulate(net, x)
    itself = simulate(net, x, forced=free.spikes)
    assert all(np.array_equal(itself.spikes[k], v) for k, v in free.spikes.items())
    assert np.array_equal(itself.readout_trace, free.readout_trace)
    flipped = dict(free.spikes)
    flipped[chain[0].name] = free.spikes[chain[0].name] ^ (np.arange(chain[0].num_neurons) % 3 == 0)
    forced = simulate(net, x, forced=flipped)
    assert np.array_equal(forced.spikes[chain[0].name], free.spikes[chain[0].name])
    assert not np.array_equal(forced.spikes[chain[1].name], free.spikes[chain[1].name])
    assert np.array_equal(forced.spikes[chain[2].name], free.spikes[chain[2].name])  # fed chain[1] as freely run
    with pytest.raises(ValueError, match="shape"):
        simulate(net, x[:3], forced=free.spikes)


def test_parity_teacher_forced_on_the_command_line(conv_exported, digits_conv_checkpoint, tmp_path, capsys):
    """--teacher-forced: the reference side is fed torch's spikes, chunk by chunk; its spike totals are the
    library's forced run on torch's record; listing reference first is refused in one line."""
    from dsatgo_deploy.cli import main
    from dsatgo_deploy.hardware_sim.reference import simulate

    result, images = conv_exported
    x = images.x_test[:20].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["parity", "--model", str(digits_conv_checkpoint), "--network", str(result.out_dir), "--input",
            str(tmp_path / "x.npy"), "--samples", "20", "--chunk", "7", "--json"]
    assert main([*args, "--sides", "torch,reference", "--teacher-forced"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "torch's spikes" in report["teacher_forced"]
    torch_run = record_model(load_model(load_checkpoint(digits_conv_checkpoint)), x, "torch")
    expected = simulate(result.network, x, forced=torch_run.spikes)
    assert [layer["spikes"] for layer in report["layers"]] == [
        [int(torch_run.spikes[k].sum()), int(v.sum())] for k, v in expected.spikes.items()]
    free = simulate(result.network, x)
    assert any(int(v.sum()) != int(expected.spikes[k].sum()) for k, v in free.spikes.items())  # forcing bites
    assert main([*args, "--sides", "reference,torch", "--teacher-forced"]) == 2
    assert "--teacher-forced" in capsys.readouterr().err
