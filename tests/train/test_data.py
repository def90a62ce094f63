"""Data loaders on tiny fake files (no downloads), the restricted unpickler, augmentation."""

from __future__ import annotations

import gzip
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest
import torch

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.train.data import (RestrictedUnpickler, augment_batch, load_dataset, read_idx,
                                      restricted_load)

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- fake files


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def fake_mnist(folder, n_train=12, n_test=5, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, size=(n_train + n_test, 28, 28))
    labels = RNG.integers(0, 10, size=n_train + n_test)
    write_idx(folder / "train-images-idx3-ubyte", images[:n_train], gz)
    write_idx(folder / "train-labels-idx1-ubyte", labels[:n_train], gz)
    write_idx(folder / "t10k-images-idx3-ubyte", images[n_train:], gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[n_train:], gz)
    return images, labels


class Py2StylePickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (SHORT_BINSTRING/BINSTRING), as in the real CIFAR files,
    which were written by Python 2's cPickle (protocol 2): the only globals are numpy's."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(path, obj) -> None:
    with open(path, "wb") as handle:
        Py2StylePickler(handle, protocol=2).dump(obj)


def cifar_batch(n, label_key=b"labels", classes=10):
    data = RNG.integers(0, 256, size=(n, 3072)).astype(np.uint8)
    batch = {b"batch_label": b"training batch 1 of 5", b"data": data, b"filenames": [b"x.png"] * n}
    if label_key == b"labels":
        batch[b"labels"] = [int(v) for v in RNG.integers(0, classes, size=n)]
    else:
        batch[b"fine_labels"] = [int(v) for v in RNG.integers(0, 100, size=n)]
        batch[b"coarse_labels"] = [int(v) for v in RNG.integers(0, 20, size=n)]
    return batch


def fake_cifar10_python(root, n=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [cifar_batch(n) for _ in range(6)]
    for index, batch in enumerate(batches[:5], start=1):
        py2_pickle(folder / f"data_batch_{index}", batch)
    py2_pickle(folder / "test_batch", batches[5])
    return batches


# --------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz, layout", [(False, ""), (True, "MNIST/raw")])
def test_mnist_from_idx_files(tmp_path, gz, layout):
    images, labels = fake_mnist(tmp_path / layout if layout else tmp_path, gz=gz)
    data = load_dataset("mnist", root=tmp_path)
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.x_train[:, 0] * 255, images[:12], atol=1e-3)
    np.testing.assert_array_equal(np.concatenate([data.y_train, data.y_test]), labels)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10 and data.input_quantum == 1 / 255


def test_fashion_mnist_and_missing_files(tmp_path):
    fake_mnist(tmp_path / "FashionMNIST" / "raw")
    assert load_dataset("fashion_mnist", root=tmp_path).x_train.shape == (12, 1, 28, 28)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="missing: t10k-labels-idx1-ubyte"):
        load_dataset("fashion_mnist", root=tmp_path)


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(UserError, match="IDX header says"):
        read_idx(bad)
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(bad)


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_python_version(tmp_path):
    batches = fake_cifar10_python(tmp_path)
    # the fakes reference exactly the globals of the real (Python 2) files
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as handle:
        globals_used = {arg.replace("numpy._core", "numpy.core") for op, arg, _ in pickletools.genops(handle)
                        if op.name == "GLOBAL"}
    assert globals_used == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    data = load_dataset("cifar10", root=tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    expected = np.concatenate([b[b"data"] for b in batches[:5]]).reshape(-1, 3, 32, 32)
    np.testing.assert_allclose(data.x_train * 255, expected, atol=1e-3)
    np.testing.assert_array_equal(data.y_test, batches[5][b"labels"])
    assert data.num_classes == 10 and data.augment == "crop_flip" and data.normalize["mean"][0] == 0.4914
    # the folder itself works too
    assert load_dataset("cifar10", root=tmp_path / "cifar-10-batches-py").x_train.shape == (20, 3, 32, 32)


def test_cifar_files_written_by_python3_load_too(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        with open(folder / name, "wb") as handle:
            pickle.dump(cifar_batch(6, b"fine_labels"), handle, protocol=4)
    fine = load_dataset("cifar100", root=tmp_path)
    coarse = load_dataset("cifar100", root=tmp_path, label_mode="coarse")
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert fine.x_train.shape == (6, 3, 32, 32) and fine.normalize["mean"][0] == 0.5071


def test_cifar_binary_versions(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    records = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = RNG.integers(0, 10, size=(3, 1)).astype(np.uint8)
        pixels = RNG.integers(0, 256, size=(3, 3072)).astype(np.uint8)
        np.concatenate([labels, pixels], axis=1).tofile(folder / name)
        records[name] = (labels[:, 0], pixels)
    data = load_dataset("cifar10", root=tmp_path)
    np.testing.assert_array_equal(data.y_test, records["test_batch.bin"][0])
    np.testing.assert_allclose(data.x_test.reshape(3, -1) * 255, records["test_batch.bin"][1], atol=1e-3)
    assert data.x_train.shape == (15, 3, 32, 32)

    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    for name in ("train.bin", "test.bin"):
        rows = np.concatenate([RNG.integers(0, 20, (2, 1)), RNG.integers(0, 100, (2, 1)),
                               RNG.integers(0, 256, (2, 3072))], axis=1).astype(np.uint8)
        rows.tofile(folder / name)
    assert load_dataset("cifar100", root=tmp_path).y_train.max() < 100
    (folder / "test.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="not a multiple of the 3074-byte CIFAR record"):
        load_dataset("cifar100", root=tmp_path)


def test_cifar_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(UserError, match=r"cifar-10-batches-py/ \(data_batch_1..data_batch_5, test_batch\)"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(UserError, match="--data-root"):
        load_dataset("cifar10")
    with pytest.raises(UserError, match="no such folder"):
        load_dataset("cifar100", root=tmp_path / "nowhere")


class Exploit:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class EvalExploit:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("payload", ["os.system", "eval", "inside-array-dict"])
def test_restricted_unpickler_refuses_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    fake_cifar10_python(tmp_path)
    if payload == "os.system":
        evil = Exploit(f"touch {marker}")
    elif payload == "eval":
        evil = EvalExploit()
    else:
        evil = cifar_batch(4)
        evil[b"labels"] = Exploit(f"touch {marker}")
    py2_pickle(folder / "data_batch_3", evil)
    with pytest.raises(UserError, match="refusing to load global '(posix|os|builtins|__builtin__)[.](system|eval)'"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()
    with open(folder / "data_batch_3", "rb") as handle, pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(handle, encoding="latin1").load()


def test_restricted_unpickler_refuses_object_arrays(tmp_path):
    path = tmp_path / "objects"
    with open(path, "wb") as handle:
        pickle.dump({"data": np.array([{"a": 1}], dtype=object), "labels": [0]}, handle, protocol=2)
    with pytest.raises(UserError):
        restricted_load(path)


# --------------------------------------------------------------------------- events


def fake_events(root, n=(6, 4), steps=3, shape=(2, 8, 8), layout="npz", classes=10):
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count in zip(("train", "test"), n):
        frames = RNG.integers(0, 4, size=(count, steps, *shape)).astype(np.uint8)
        labels = RNG.integers(0, classes, size=count)
        if layout == "npz":
            np.savez(root / f"{split}.npz", frames=frames, labels=labels)
        else:
            np.save(root / f"{split}_frames.npy", frames)
            np.save(root / f"{split}_labels.npy", labels)
        out[split] = (frames, labels)
    return out


@pytest.mark.parametrize("layout", ["npz", "npy"])
def test_event_frames(tmp_path, layout):
    written = fake_events(tmp_path, layout=layout)
    data = load_dataset("cifar10_dvs", root=tmp_path)
    assert data.encoding == "sequence" and data.timesteps == 3 and data.input_shape == (2, 8, 8)
    assert data.x_train.shape == (6, 3, 2, 8, 8) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_test, written["test"][0])
    assert data.num_classes == 10 and data.input_quantum == 1.0 and data.augment == "flip_shift"


def test_event_frame_errors(tmp_path):
    with pytest.raises(UserError, match="train.npz and test.npz"):
        load_dataset("events", root=tmp_path)
    np.save(tmp_path / "train_frames.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for name in ("train_labels.npy", "test_frames.npy", "test_labels.npy"):
        np.save(tmp_path / name, np.zeros(1, dtype=np.int64))
    with pytest.raises(UserError, match="train_frames.npy: array .train_frames.: holds Python objects"):
        load_dataset("events", root=tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "train.npz", frames=np.zeros((2, 3, 8, 8)), labels=np.zeros(2, dtype=np.int64))
    np.savez(bad / "test.npz", frames=np.zeros((2, 3, 8, 8)), labels=np.zeros(2, dtype=np.int64))
    with pytest.raises(UserError, match=r"'frames' must be \(N, T, C, H, W\)"):
        load_dataset("events", root=bad)


# --------------------------------------------------------------------------- bundled sets, augmentation


def test_digits_and_synthetic_image_variants():
    flat, image = load_dataset("digits"), load_dataset("digits", image=True)
    assert flat.input_shape == (64,) and image.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(flat.x_test, image.x_test.reshape(-1, 64))
    synthetic = load_dataset("synthetic", image=True, num_samples=50)
    assert synthetic.x_train.shape == (40, 1, 8, 8) and synthetic.input_shape == (1, 8, 8)
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("svhn")


def test_augmentation_crop_flip_and_shift():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = augment_batch(x, "crop_flip", generator, padding=2)
    assert out.shape == x.shape
    # every output is the input shifted by at most 2 pixels (zero-filled) and maybe mirrored
    for sample, source in zip(out, x):
        candidates = []
        for image in (source, source.flip(-1)):
            padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
            candidates += [padded[:, i:i + 8, j:j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(sample, c) for c in candidates)
    assert not torch.equal(out, x)
    frames = torch.rand(16, 3, 2, 8, 8)
    rolled = augment_batch(frames, "flip_shift", generator, shift=1)
    for sample, source in zip(rolled, frames):
        options = [torch.roll(image, (dy, dx), (-2, -1)) for image in (source, source.flip(-1))
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(torch.equal(sample, option) for option in options)
    assert augment_batch(x, None) is x
