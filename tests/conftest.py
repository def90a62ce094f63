"""Shared fixtures: a small DS-ATGO MLP trained on digits, and its Loihi export."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits():
    from dsatgo_deploy.train.data import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, digits) -> Path:
    """A 64-64-10 DS-ATGO MLP, T=4, trained 12 epochs on digits (a few seconds)."""
    from dsatgo_deploy.train.loop import TrainConfig, train

    path = tmp_path_factory.mktemp("trained") / "model.pt"
    train(TrainConfig(hidden=[64], timesteps=4, epochs=12, out=str(path), progress=False, device="cpu"), digits)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory, trained_checkpoint, digits):
    """The trained MLP exported for Loihi with threshold schedules."""
    from dsatgo_deploy.export.exporter import export_checkpoint

    out = tmp_path_factory.mktemp("export") / "loihi"
    return export_checkpoint(trained_checkpoint, out, calibration_x=digits.x_train[:256])
