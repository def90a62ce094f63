"""--resume: the cosine schedule continues over the new total of epochs; incompatible settings are refused."""

from __future__ import annotations

import json
import math

import pytest

from dsatgo_deploy.checkpoint import load_checkpoint
from dsatgo_deploy.cli import main
from dsatgo_deploy.train.loop import metrics_path
from dsatgo_deploy.train.resume import cosine_lr


def _train(out, *extra: str) -> int:
    return main(["train", "--dataset", "digits", "--hidden", "8", "-T", "2", "--lr", "0.01", "--no-progress",
                 "--device", "cpu", "--out", str(out), *extra])


def test_resume_with_more_epochs_continues_the_cosine_over_the_new_total(tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert _train(out, "--epochs", "2") == 0
    first = json.loads(metrics_path(out).read_text())
    assert [r["lr"] for r in first] == pytest.approx([0.01, 0.005])  # cosine over 2 epochs
    assert _train(out, "--epochs", "4", "--resume") == 0
    history = json.loads(metrics_path(out).read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    # Epochs 3 and 4 train at the rates a 4-epoch cosine gives them: 0.01 (1 + cos(pi e / 4)) / 2 for e = 2, 3,
    # i.e. 0.005 and 0.0014645 (the old 2-epoch schedule would have reached rate 0 at epoch 3).
    assert [r["lr"] for r in history[2:]] == pytest.approx([0.005, 0.01 * (1 + math.cos(3 * math.pi / 4)) / 2])
    assert history[3]["lr"] == pytest.approx(0.0014645, rel=1e-4)
    assert all(r["lr"] > 0 for r in history)
    assert load_checkpoint(out)["meta"]["epoch"] == 4


def test_cosine_lr_matches_torchs_cosine_annealing():
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=7)
    for epoch in range(7):
        assert cosine_lr(0.1, epoch, 7) == pytest.approx(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize("change, message", [
    (["--optimizer", "sgd"], "cannot resume with optimizer 'sgd'"),
    (["--loss", "tet"], "cannot resume with loss 'tet'"),
    (["--epochs", "1"], "has 2 epochs already"),
])
def test_resume_refuses_incompatible_settings_with_one_line(tmp_path, capsys, change, message):
    out = tmp_path / "model.pt"
    assert _train(out, "--epochs", "2") == 0
    capsys.readouterr()
    before = out.read_bytes()
    assert _train(out, "--epochs", "3", "--resume", *change) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out.read_bytes() == before  # nothing trained, nothing rewritten
