"""The training loop and `dsatgo train`: models, losses, monitoring, plots, resume, DDP under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.train.data import load_dataset
from dsatgo_deploy.train.loop import LayerMonitor, TrainConfig, metrics_path, shard_indices, train
from dsatgo_deploy.train.models import build_model
from dsatgo_deploy.train.zoo import mlp_architecture
from dsatgo_deploy.train.neuron import NeuronConfig

from .test_data import fake_events

SMALL_CONVNET = dict(model="convnet", channels=[4, "pool", 8, "pool"], hidden=[16], timesteps=2)


@pytest.fixture(scope="module")
def images():
    return load_dataset("synthetic", image=True, num_samples=200)


def test_shard_indices_are_distributed_sampler_shards():
    shards = [shard_indices(11, epoch=3, seed=5, rank=r, world=4) for r in range(4)]
    assert all(len(s) == 3 for s in shards)  # 11 padded to 12, every process the same number of steps
    together = torch.cat(shards)
    assert set(together.tolist()) == set(range(11)) and len(together) == 12
    assert torch.equal(shard_indices(11, 3, 5, 0, 1), shard_indices(11, 3, 5, 0, 1))
    assert not torch.equal(shard_indices(11, 3, 5, 0, 1), shard_indices(11, 4, 5, 0, 1))


def test_layer_monitor_averages_over_the_epoch():
    model = build_model(mlp_architecture(8, [6], 3, 2, NeuronConfig()._asdict()))
    monitor = LayerMonitor(model)
    expected_rate, expected_share = torch.zeros(2), torch.zeros(2)
    for batch in (5, 3):
        model(torch.rand(batch, 8) * 3)
        trace = model.traces()["fc1"]
        expected_rate += trace.spikes.flatten(2).mean(2).sum(1)
        expected_share += trace.window_share * batch
        monitor.add(model, batch)
    result = monitor.result()["fc1"]
    np.testing.assert_allclose(result["firing_rate"], (expected_rate / 8).tolist(), rtol=1e-6)
    np.testing.assert_allclose(result["window_share"], (expected_share / 8).tolist(), rtol=1e-6)


def test_convnet_training_records_epoch_averaged_monitoring(tmp_path, images):
    out = tmp_path / "model.pt"
    summary = train(TrainConfig(**SMALL_CONVNET, epochs=3, batch_size=8, lr=5e-3, out=str(out), progress=False,
                                device="cpu"), images)
    assert summary["test_accuracy"] > 0.5  # 4 classes
    history = json.loads(metrics_path(out).read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    # the cosine rate each epoch trained with: lr (1 + cos(pi e / E)) / 2 for e = 0, 1, 2
    assert [r["lr"] for r in history] == pytest.approx([5e-3, 3.75e-3, 1.25e-3])
    record = history[-1]
    assert record["samples_seen"] == len(images.x_train)
    assert list(record["layers"]) == ["conv1", "conv2", "fc1"]
    for stats in record["layers"].values():
        assert set(stats) == {"firing_rate", "threshold", "width", "window_share", "test_firing_rate"}
        assert all(len(v) == 2 for v in stats.values())
        assert all(0.0 < r < 0.5 for r in stats["firing_rate"])
        assert all(0.0 <= s <= 1.0 for s in stats["window_share"])
    checkpoint = load_checkpoint(out)
    assert checkpoint["arch"]["kind"] == "convnet" and checkpoint["meta"]["epoch"] == 3
    assert not torch.all(checkpoint["state_dict"]["neurons.conv1.running_threshold"] == 1.0)

    # resume: one more epoch from the checkpoint
    summary = train(TrainConfig(**SMALL_CONVNET, epochs=4, batch_size=8, lr=5e-3, out=str(out), progress=False,
                                device="cpu", resume=True), images)
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3, 4]
    with pytest.raises(UserError, match="another architecture"):
        train(TrainConfig(**{**SMALL_CONVNET, "hidden": [8]}, epochs=5, out=str(out), progress=False,
                          resume=True), images)


def test_vggsnn_on_event_frames_with_tet_and_sgd(tmp_path):
    fake_events(tmp_path / "dvs", n=(8, 4), steps=3, shape=(2, 16, 16))
    data = load_dataset("cifar10_dvs", root=tmp_path / "dvs")
    config = TrainConfig(dataset="cifar10_dvs", model="vggsnn", width=1 / 16, loss="tet", optimizer="sgd", lr=0.1,
                         weight_decay=1e-4, epochs=1, batch_size=4, out=str(tmp_path / "m.pt"), progress=False)
    summary = train(config, data)
    arch = load_checkpoint(tmp_path / "m.pt")["arch"]
    assert arch["timesteps"] == 3 and arch["encoding"] == "sequence" and arch["kind"] == "vggsnn"
    assert np.isfinite(summary["history"][0]["loss"])
    with pytest.raises(UserError, match="holds 3 frames per sample but timesteps is 5"):
        train(TrainConfig(**{**config.__dict__, "timesteps": 5}), data)


def test_cli_train_with_plots(tmp_path, capsys):
    out = tmp_path / "run" / "model.pt"
    code = main(["train", "--dataset", "synthetic", "--model", "convnet", "--channels", "4", "pool",
                 "--hidden", "8", "-T", "2", "--epochs", "1", "--batch-size", "64", "--out", str(out),
                 "--plot", "--json", "--device", "cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["plots"]) == 3
    for plot in summary["plots"]:
        assert Path(plot).read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in out.parent.iterdir()} == {
        "model.pt", "model_metrics.json", "model_firing_rate.png", "model_window_share.png", "model_training.png"}


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar10"], "--data-root"),
    (["--model", "resnet19", "--dataset", "synthetic", "--width", "0"], "argument --width: must be > 0"),
    (["--dataset", "cifar10", "--data-root", "/nonexistent/dir"], "no such folder"),
])
def test_cli_train_errors_are_one_line(tmp_path, capsys, argv, message):
    try:
        code = main(["train", *argv, "--out", str(tmp_path / "m.pt"), "--no-progress"])
    except SystemExit as exc:  # refused by the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_torchrun_ddp_two_processes(tmp_path):
    """Two CPU processes (gloo) train one epoch: the shards cover the data set, metrics are
    reduced over both, and only process 0 writes."""
    out = tmp_path / "ddp" / "model.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "dsatgo_deploy.cli", "train", "--dataset", "synthetic", "--model", "convnet",
               "--channels", "4", "pool", "--hidden", "8", "-T", "2", "--epochs", "1", "--batch-size", "50",
               "--device", "cpu", "--no-progress", "--json", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["world_size"] == 2
    checkpoint = load_checkpoint(out)
    assert checkpoint["meta"]["world_size"] == 2 and checkpoint["meta"]["epoch"] == 1
    assert all(torch.isfinite(v.float()).all() for v in checkpoint["state_dict"].values())
    history = json.loads(metrics_path(out).read_text())
    assert history[0]["samples_seen"] == 410  # 409 training samples padded to a multiple of 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt", "model_metrics.json"]
