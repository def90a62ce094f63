"""ImageNet from an ImageFolder tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), decoded with PIL on demand."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.train.data import load_dataset
from dsatgo_deploy.train.imagenet import resize_centre_crop
from dsatgo_deploy.train.loop import TrainConfig, train

COLOURS = {"n01440764": (200, 30, 10), "n01443537": (10, 180, 90), "n01484850": (40, 60, 220)}


def fake_imagenet(root, per_class=(4, 2), size=(40, 30)):
    """Uniform-colour images per class (PNG for exact values, and one JPEG per class for the codec)."""
    for split, count in zip(("train", "val"), per_class):
        for wnid, colour in COLOURS.items():
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for index in range(count):
                image = Image.new("RGB", size, colour)
                suffix = ".JPEG" if index == 0 else ".png"
                image.save(folder / f"{wnid}_{index}{suffix}", quality=95)


def test_splits_labels_and_transforms(tmp_path):
    fake_imagenet(tmp_path)
    data = load_dataset("imagenet", root=tmp_path, size=16)
    assert data.num_classes == 3 and data.input_shape == (3, 16, 16) and data.normalize["std"][0] == 0.229
    assert len(data.x_train) == 12 and data.x_train.shape == (12, 3, 16, 16) and len(data.x_test) == 6
    assert data.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and data.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    val = data.x_test[np.arange(6)]
    assert val.shape == (6, 3, 16, 16) and val.dtype == np.float32
    for image, label in zip(val[1::2], data.y_test[1::2]):  # the PNGs: exactly their colour
        np.testing.assert_allclose(image, np.broadcast_to(np.array(list(COLOURS.values())[label])[:, None, None] / 255,
                                                          image.shape), atol=1e-6)
    jpeg_error = np.abs(val[0] - np.array(COLOURS["n01440764"])[:, None, None] / 255).max()
    assert jpeg_error < 0.03
    train_batch = data.x_train[np.array([0, 5, 11])]
    assert train_batch.shape == (3, 3, 16, 16) and 0.0 <= train_batch.min() and train_batch.max() <= 1.0
    assert data.x_train[1:3].shape == (2, 3, 16, 16) and data.x_test[0].shape == (3, 16, 16)
    # training crops are random, but a uniform image stays its colour under any crop and flip
    np.testing.assert_allclose(train_batch[2], np.broadcast_to(np.array(COLOURS["n01484850"])[:, None, None] / 255,
                                                               (3, 16, 16)), atol=1e-6)


def test_centre_crop_keeps_the_middle():
    # a 300 x 200 image whose left and right thirds are black and middle third white
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[:, 100:200] = 255
    out = np.asarray(resize_centre_crop(Image.fromarray(pixels), 56))  # short side 64: 96 x 64, centre 56 x 56
    assert out.shape == (56, 56, 3)
    middle = out[:, 24:32]  # columns 44..52 of the 96-wide resize: inside the white third (32..64)
    assert middle.min() == 255 and out[:, 0].max() < 255


def test_a_training_epoch_reads_the_folder_lazily(tmp_path):
    fake_imagenet(tmp_path)
    data = load_dataset("imagenet", root=tmp_path, size=32)
    summary = train(TrainConfig(dataset="imagenet", model="resnet18", width=1 / 16, timesteps=1, epochs=1,
                                batch_size=6, optimizer="sgd", lr=0.1, out=str(tmp_path / "m.pt"), progress=False,
                                device="cpu"), data)
    assert summary["history"][0]["samples_seen"] == 12 and 0.0 <= summary["test_accuracy"] <= 1.0


def test_missing_folders_name_the_layout(tmp_path):
    with pytest.raises(UserError, match="train/<wnid>/"):
        load_dataset("imagenet", root=tmp_path)
