"""`dsatgo train --preset`: the paper's recipes, listed in full, overridden by flags."""

from __future__ import annotations

import json

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.cli import build_parser, main
from dsatgo_deploy.train.loop import TrainConfig
from dsatgo_deploy.train.presets import PRESETS, preset_fields

from .test_data import fake_cifar10_python


def test_every_preset_is_a_valid_config_with_the_papers_optimiser():
    assert set(PRESETS) >= {"cifar10", "cifar100", "cifar10-dvs", "imagenet"}
    table1 = {"cifar10": ("cifar10", "resnet19", 2), "cifar100": ("cifar100", "resnet19", 2),
              "cifar10-dvs": ("cifar10_dvs", "vggsnn", 10), "imagenet": ("imagenet", "resnet18", 4)}
    for name in PRESETS:
        config = TrainConfig(**preset_fields(name))
        config.validate()
        assert (config.optimizer, config.lr, config.momentum, config.weight_decay, config.batch_size) == \
            ("sgd", 0.1, 0.9, 1e-4, 100)
        if name in table1:
            assert (config.dataset, config.model, config.timesteps) == table1[name]
    assert preset_fields("cifar10")["autoaugment"] and preset_fields("cifar100")["autoaugment"]
    assert preset_fields("cifar10-dvs")["loss"] == "tet"
    assert TrainConfig(**preset_fields("cifar10")).neuron_config()["surrogate_mode"] == "tgo"
    assert TrainConfig(**preset_fields("cifar10-code")).neuron_config()["surrogate_mode"] == "tgo_sigma"


def test_preset_list_and_help_show_every_field(capsys):
    assert main(["train", "--preset", "list"]) == 0
    listed = capsys.readouterr().out
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for name in PRESETS:
        for text in (listed, help_text):
            assert f"  {name}: " in text
            assert " ".join(f"{k}={v}" for k, v in preset_fields(name).items()) in text.replace("\n", " ")


def test_flags_override_the_preset(tmp_path, capsys):
    fake_cifar10_python(tmp_path / "data", n=6)
    out = tmp_path / "m.pt"
    code = main(["train", "--preset", "cifar10", "--data-root", str(tmp_path / "data"), "--model", "convnet",
                 "--channels", "4", "pool", "--hidden", "8", "--epochs", "1", "--batch-size", "10", "--lr", "0.05",
                 "--device", "cpu", "--json", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    config = json.loads(load_checkpoint(out)["meta"]["config"])
    assert (config["model"], config["epochs"], config["batch_size"], config["lr"]) == ("convnet", 1, 10, 0.05)
    assert (config["optimizer"], config["weight_decay"], config["timesteps"], config["autoaugment"]) == \
        ("sgd", 1e-4, 2, True)
    assert main(["train", "--preset", "cifar10", "--no-autoaugment", "--data-root", str(tmp_path / "data"),
                 "--model", "convnet", "--channels", "4", "pool", "--hidden", "8", "--epochs", "1",
                 "--device", "cpu", "--json", "--out", str(out), "--overwrite"]) == 0
    assert json.loads(load_checkpoint(out)["meta"]["config"])["autoaugment"] is False


def test_unknown_preset_is_one_line(tmp_path, capsys):
    assert main(["train", "--preset", "cifar1000", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'cifar1000'" in err and "cifar10-dvs" in err and "Traceback" not in err
