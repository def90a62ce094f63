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


@pytest.fixture(scope="session")
def digits_conv_checkpoint(tmp_path_factory) -> Path:
    """A digits conv net (conv 8, 2x2 pool, conv 16, dense 32, readout; T = 3) trained 3 epochs on half of
    the digits training images (about 10 s; some 90 % test accuracy): its classes mean something."""
    from dsatgo_deploy.train.data import load_dataset
    from dsatgo_deploy.train.loop import TrainConfig, train

    images = load_dataset("digits", image=True)
    half = images._replace(x_train=images.x_train[:720], y_train=images.y_train[:720])
    path = tmp_path_factory.mktemp("conv") / "conv.pt"
    train(TrainConfig(model="convnet", channels=[8, "pool", 16], hidden=[32], timesteps=3, epochs=3, lr=4e-3,
                      out=str(path), progress=False, device="cpu"), half)
    return path
