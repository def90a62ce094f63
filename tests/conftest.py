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


@pytest.fixture(scope="session")
def lava_dl_files() -> Path:
    """lava-dl 0.6.0's own netx files and recorded ground truths (tests/lava/lib/dl/netx of its
    wheel), kept by `make install` under .venv/share; BSD-3, licence beside them."""
    import sys

    folder = Path(sys.prefix) / "share" / "lava-dl-0.6.0-netx"
    if not (folder / "gts").is_dir():
        pytest.fail(f"{folder}: lava-dl's netx files are missing; `make install` keeps them from the lava-dl wheel")
    return folder
