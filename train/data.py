"""Data sets, all from local disk (nothing is downloaded).

==============  =====================================================  =========================
name            source                                                  x (float32)
==============  =====================================================  =========================
digits          scikit-learn's bundled 8x8 digits                       (N, 64) or (N, 1, 8, 8)
synthetic       Gaussian class prototypes plus noise (tests)            (N, size) or (N, C, H, W)
mnist           ``root``: the four standard IDX files (see below)       (N, 1, 28, 28)
fashion_mnist   the same four file names, Fashion-MNIST content         (N, 1, 28, 28)
cifar10         ``root``: cifar-10-batches-py/ or cifar-10-batches-bin/  (N, 3, 32, 32)
cifar100        ``root``: cifar-100-python/ or cifar-100-binary/        (N, 3, 32, 32)
events          ``root``: event frames, .npz or .npy (see below)        (N, T, C, H, W)
cifar10_dvs     the same, or .aedat / SpikingJelly folders (event_data)  (N, T, 2, H, W)
imagenet        ``root``: train/ and val/ class folders (train.imagenet)  (N, 3, 224, 224), lazy
==============  =====================================================  =========================

Every loader returns a :class:`DataSplit`: float32 inputs (images in [0, 1];
event frames as stored, e.g. event counts) and int64 labels, plus
``input_quantum`` (the step between representable input values when the data
is integer-valued at source: digits 1/16, 8-bit images 1/255, integer event
counts 1; export uses it to encode inputs as exact graded spikes), the
per-channel ``normalize`` the model should apply (CIFAR; it goes into the
architecture, so the data itself stays in [0, 1]), the training ``augment``
policy (applied per batch by :func:`augment_batch`) and the ``encoding``
("direct": one static input per sample; "sequence": x is (N, T, *input_shape),
one frame per timestep).

File layouts (``root`` is the folder given with ``--data-root``):

* MNIST / Fashion-MNIST: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally
  ``.gz``), in ``root``, ``root/raw``, ``root/MNIST/raw`` or
  ``root/FashionMNIST/raw`` (torchvision's layout).
* CIFAR-10: ``root/cifar-10-batches-py/data_batch_1..5, test_batch`` (the
  "python version"), or ``root/cifar-10-batches-bin/data_batch_1..5.bin,
  test_batch.bin`` (the "binary version"); ``root`` may also be that folder.
* CIFAR-100: ``root/cifar-100-python/train, test`` or
  ``root/cifar-100-binary/train.bin, test.bin``; fine labels (100 classes) by
  default, ``label_mode="coarse"`` for the 20 superclasses.
* Event frames (CIFAR10-DVS and the like, already binned into T frames, e.g.
  T = 10 frames of 2 polarities x 48 x 48): ``root/train.npz`` and
  ``root/test.npz``, each holding arrays ``frames`` (N, T, C, H, W) and
  ``labels`` (N,), or the four files ``root/train_frames.npy``,
  ``train_labels.npy``, ``test_frames.npy``, ``test_labels.npy``. Read with
  ``allow_pickle=False``.

Security: the CIFAR "python version" files are pickles. They are read by
:class:`RestrictedUnpickler`, which resolves only the three numpy globals
that array reconstruction needs and refuses every other global (so a
doctored file cannot run code); nothing else in this project unpickles data.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dsatgo_deploy import limits
from dsatgo_deploy.train.zoo import CIFAR10_NORMALIZE, CIFAR100_NORMALIZE
from dsatgo_deploy.errors import UserError

from .unpickle import RestrictedUnpickler, restricted_load  # noqa: F401  (RestrictedUnpickler: this module's API)

DATASETS = ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10", "cifar100", "events", "cifar10_dvs",
            "imagenet")
#: Data sets read from files under a root folder.
FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "events", "cifar10_dvs", "imagenet")
AUGMENTATIONS = ("crop_flip", "flip_shift")


class DataSplit(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    input_quantum: float | None
    normalize: dict | None = None  # {"mean": [...], "std": [...]} per channel, for the architecture
    augment: str | None = None  # training augmentation policy (AUGMENTATIONS) or None
    encoding: str = "direct"  # "sequence": x is (N, T, *input_shape)

    @property
    def timesteps(self) -> int | None:
        """Frames per sample of sequence data; None for static data."""
        return int(self.x_train.shape[1]) if self.encoding == "sequence" else None


# --------------------------------------------------------------------------- bundled and synthetic


def load_digits(test_fraction: float = 0.2, split_seed: int = 0, image: bool = False) -> DataSplit:
    """scikit-learn's 8x8 digits (1797 images, 10 classes, pixels 0..16) scaled to [0, 1].

    The split is stratified and fixed by ``split_seed`` so that train, export
    and simulation all see the same test set. ``image``: samples shaped
    (1, 8, 8) for conv nets instead of (64,) (same values, same split).
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    shape = (1, 8, 8) if image else (64,)
    return DataSplit(x_train.reshape(-1, *shape), y_train, x_test.reshape(-1, *shape), y_test, 10, shape, 1.0 / 16.0)


def synthetic(num_samples: int = 512, input_size: int = 32, num_classes: int = 4, seed: int = 0,
              image: bool = False, image_shape: tuple[int, ...] = (1, 8, 8)) -> DataSplit:
    """Gaussian class prototypes plus noise, clipped to [0, 1]: a quick, learnable task for tests.

    Samples are (input_size,) vectors, or ``image_shape`` images with ``image``.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in image_shape) if image else (int(input_size),)
    size = math.prod(shape)
    prototypes = rng.uniform(0.0, 1.0, size=(num_classes, size))
    y = rng.integers(0, num_classes, size=num_samples)
    x = np.clip(prototypes[y] + rng.normal(0.0, 0.15, size=(num_samples, size)), 0.0, 1.0)
    cut = int(num_samples * 0.8)
    x = x.astype(np.float32).reshape(num_samples, *shape)
    return DataSplit(x[:cut], y[:cut], x[cut:], y[cut:], num_classes, shape, None)


# --------------------------------------------------------------------------- MNIST (IDX files)

_IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
              "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzipped) of unsigned bytes as a uint8 array; UserError if malformed."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            raw = limits.gunzip(path)  # bounded: a gzip bomb is refused while it inflates
        else:
            limits.check_memory(str(path), "its contents", path.stat().st_size)
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read ({limits.reason(exc)})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise UserError(f"{path}: IDX element type 0x{raw[2]:02x} is not supported (expected unsigned byte, 0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise UserError(f"{path}: IDX header says {dims} = {math.prod(dims)} bytes of data, "
                        f"the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(root: Path, subfolder: str, stem: str) -> Path | None:
    for folder in (root, root / "raw", root / subfolder / "raw", root / subfolder):
        for name in (stem, stem.replace("-idx", ".idx")):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
    return None


def load_mnist(root: str | Path, variant: str = "mnist") -> DataSplit:
    """MNIST or Fashion-MNIST (``variant`` "fashion_mnist") from the standard IDX files under ``root``."""
    root = Path(root)
    subfolder = "FashionMNIST" if variant == "fashion_mnist" else "MNIST"
    found = {key: _find_idx(root, subfolder, stem) for key, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise UserError(f"{root}: {variant} needs the IDX files {', '.join(_IDX_FILES.values())} (each may be "
                        f".gz) in that folder, its raw/ or {subfolder}/raw/; missing: {', '.join(missing)}")
    arrays = {key: read_idx(path) for key, path in found.items()}  # type: ignore[arg-type]
    parts = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{found[f'{split}_images']}: expected images (N, H, W) and labels (N,), got "
                            f"{images.shape} and {labels.shape}")
        if labels.size and labels.max() > 9:
            raise UserError(f"{found[f'{split}_labels']}: labels must be 0..9, found {int(labels.max())}")
        parts.append((images.astype(np.float32)[:, None] / 255.0, labels.astype(np.int64)))
    (x_train, y_train), (x_test, y_test) = parts
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(f"{root}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    return DataSplit(x_train, y_train, x_test, y_test, 10, tuple(x_train.shape[1:]), 1.0 / 255.0)


# --------------------------------------------------------------------------- CIFAR


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    payload = restricted_load(path)
    if not isinstance(payload, dict):
        raise UserError(f"{path}: expected a dict, got {type(payload).__name__}")
    entries = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in payload.items()}
    if "data" not in entries or label_key not in entries:
        raise UserError(f"{path}: expected keys 'data' and '{label_key}', found {sorted(map(str, entries))}")
    data, labels = entries["data"], np.asarray(entries[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{path}: 'data' must be a uint8 array (N, 3072), got "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: '{label_key}' must be {len(data)} integers")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_binary(path: Path, label_bytes: int, label_index: int) -> tuple[np.ndarray, np.ndarray]:
    limits.check_memory(str(path), "its records", path.stat().st_size)
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise UserError(f"{path}: size {raw.size} is not a multiple of the {record}-byte CIFAR record")
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_index].astype(np.int64)


def _cifar_folder(root: Path, folder: str, files: list[str]) -> Path | None:
    for candidate in (root / folder, root):
        if all((candidate / name).is_file() for name in files):
            return candidate
    return None


def _cifar_split(batches: list[tuple[np.ndarray, np.ndarray]], test: tuple[np.ndarray, np.ndarray],
                 num_classes: int, normalize: dict, origin: Path) -> DataSplit:
    x_train = np.concatenate([b[0] for b in batches])
    y_train = np.concatenate([b[1] for b in batches])
    for labels in (y_train, test[1]):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise UserError(f"{origin}: labels must be 0..{num_classes - 1}, found {int(labels.min())}..{int(labels.max())}")
    scale = np.float32(1.0 / 255.0)
    return DataSplit(x_train.astype(np.float32) * scale, y_train, test[0].astype(np.float32) * scale, test[1],
                     num_classes, (3, 32, 32), 1.0 / 255.0, dict(normalize), "crop_flip")


def load_cifar10(root: str | Path) -> DataSplit:
    """CIFAR-10 from ``root``: the python version (restricted unpickling) or the binary version."""
    root = Path(root)
    train_names = [f"data_batch_{i}" for i in range(1, 6)]
    folder = _cifar_folder(root, "cifar-10-batches-py", [*train_names, "test_batch"])
    if folder is not None:
        batches = [_cifar_batch(folder / name, "labels") for name in train_names]
        return _cifar_split(batches, _cifar_batch(folder / "test_batch", "labels"), 10, CIFAR10_NORMALIZE, folder)
    bin_names = [f"{name}.bin" for name in train_names]
    folder = _cifar_folder(root, "cifar-10-batches-bin", [*bin_names, "test_batch.bin"])
    if folder is not None:
        batches = [_cifar_binary(folder / name, 1, 0) for name in bin_names]
        return _cifar_split(batches, _cifar_binary(folder / "test_batch.bin", 1, 0), 10, CIFAR10_NORMALIZE, folder)
    raise UserError(f"{root}: cifar10 needs cifar-10-batches-py/ (data_batch_1..data_batch_5, test_batch) or "
                    "cifar-10-batches-bin/ (data_batch_1.bin..data_batch_5.bin, test_batch.bin) in that folder "
                    "(or the folder itself)")


def load_cifar100(root: str | Path, label_mode: str = "fine") -> DataSplit:
    """CIFAR-100 from ``root``: the python version (restricted unpickling) or the binary version.

    ``label_mode``: "fine" (100 classes) or "coarse" (20 superclasses).
    """
    if label_mode not in ("fine", "coarse"):
        raise UserError(f"cifar100 label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    root = Path(root)
    classes = 100 if label_mode == "fine" else 20
    folder = _cifar_folder(root, "cifar-100-python", ["train", "test"])
    if folder is not None:
        key = f"{label_mode}_labels"
        return _cifar_split([_cifar_batch(folder / "train", key)], _cifar_batch(folder / "test", key), classes,
                            CIFAR100_NORMALIZE, folder)
    folder = _cifar_folder(root, "cifar-100-binary", ["train.bin", "test.bin"])
    if folder is not None:
        index = 1 if label_mode == "fine" else 0
        return _cifar_split([_cifar_binary(folder / "train.bin", 2, index)], _cifar_binary(folder / "test.bin", 2, index),
                            classes, CIFAR100_NORMALIZE, folder)
    raise UserError(f"{root}: cifar100 needs cifar-100-python/ (train, test) or cifar-100-binary/ "
                    "(train.bin, test.bin) in that folder (or the folder itself)")


# --------------------------------------------------------------------------- event frames (DVS)


def _load_array(path: Path, key: str | None = None) -> np.ndarray:
    """One array of an .npz (``key``) or a bare .npy, sizes checked against the memory budget first."""
    if key is None:
        return limits.read_npy(path)
    arrays = limits.read_npz(path, keys=(key,))
    if key not in arrays:
        raise UserError(f"{path}: has no array '{key}' (found: {', '.join(limits.check_npz(path)) or 'none'})")
    return arrays[key]


def load_samples(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples a user gives as a file, for networks that come with no data set of ours (a lava-dl
    netx file, a NIR graph): a bare ``.npy`` of samples, or an ``.npz`` holding ``x`` (samples) and,
    optionally, ``y`` (integer labels, one per sample). Samples are static (N, *input_shape) or
    time-varying (N, T, *input_shape), in torch's (C, H, W) layout. Read with ``allow_pickle=False``
    and sized against the memory budget before loading."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file (--input takes a .npy of samples or an .npz with x and y)")
    if path.suffix == ".npz":
        keys = limits.check_npz(path)
        if "x" not in keys:
            raise UserError(f"{path}: has no array 'x' (found: {', '.join(keys) or 'none'}); "
                            "an .npz of samples holds x and, optionally, y")
        arrays = limits.read_npz(path, keys=tuple(k for k in ("x", "y") if k in keys))
        x, y = arrays["x"], arrays.get("y")
    else:
        x, y = limits.read_npy(path), None
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise UserError(f"{path}: samples must be a real-valued array (N, ...), got {x.dtype} of shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UserError(f"{path}: samples hold NaN or infinite values")
    if y is not None:
        if y.dtype.kind not in "iu" or y.shape != (len(x),):
            raise UserError(f"{path}: labels 'y' must be {len(x)} integers (one per sample), got {y.dtype} "
                            f"of shape {y.shape}")
        y = y.astype(np.int64)
    return x, y


def load_event_frames(root: str | Path, num_classes: int | None = None) -> DataSplit:
    """Event frames (N, T, C, H, W) and labels from ``root`` (train.npz/test.npz or the four .npy files).

    Frames are kept as stored (float32); ``input_quantum`` is 1 for integer
    frames (event counts), None otherwise. ``num_classes`` defaults to the
    largest label + 1.
    """
    root = Path(root)
    if (root / "train.npz").is_file() and (root / "test.npz").is_file():
        splits = [(_load_array(root / f"{s}.npz", "frames"), _load_array(root / f"{s}.npz", "labels"), root / f"{s}.npz")
                  for s in ("train", "test")]
    elif all((root / f"{s}_{k}.npy").is_file() for s in ("train", "test") for k in ("frames", "labels")):
        splits = [(_load_array(root / f"{s}_frames.npy"), _load_array(root / f"{s}_labels.npy"), root / f"{s}_frames.npy")
                  for s in ("train", "test")]
    else:
        raise UserError(f"{root}: event data needs train.npz and test.npz (arrays 'frames' (N, T, C, H, W) and "
                        "'labels' (N,)), or train_frames.npy, train_labels.npy, test_frames.npy, test_labels.npy")
    for frames, labels, path in splits:
        if frames.ndim != 5:
            raise UserError(f"{path}: 'frames' must be (N, T, C, H, W), got shape {frames.shape}")
        if labels.ndim != 1 or len(labels) != len(frames) or not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"{path}: 'labels' must be {len(frames)} integers, got {labels.dtype} {labels.shape}")
        if frames.dtype.kind not in "biuf":
            raise UserError(f"{path}: 'frames' must be real numbers, got {frames.dtype}")
        if frames.dtype.kind == "f" and not np.isfinite(frames).all():
            raise UserError(f"{path}: 'frames' holds NaN or infinite values (training on them gives a NaN model)")
    (x_train, y_train, train_path), (x_test, y_test, test_path) = splits
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(f"{root}: train frames {x_train.shape[1:]} and test frames {x_test.shape[1:]} differ in (T, C, H, W)")
    top = int(max(y_train.max(initial=0), y_test.max(initial=0)))
    classes = int(num_classes) if num_classes is not None else top + 1
    for labels, path in ((y_train, train_path), (y_test, test_path)):
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise UserError(f"{path}: labels must be 0..{classes - 1}, found {int(labels.min())}..{int(labels.max())}")
    integer = np.issubdtype(x_train.dtype, np.integer) or x_train.dtype == np.bool_
    return DataSplit(x_train.astype(np.float32), y_train.astype(np.int64), x_test.astype(np.float32),
                     y_test.astype(np.int64), classes, tuple(int(v) for v in x_train.shape[2:]),
                     1.0 if integer else None, None, "flip_shift", "sequence")


# --------------------------------------------------------------------------- augmentation


def _gather_crop(x, top, left, height: int, width: int):
    """Per-sample crop of x (B, ..., H', W') at (top[b], left[b]) to (B, ..., height, width)."""
    import torch

    batch, lead = x.shape[0], [1] * (x.dim() - 3)
    rows = (top.view(batch, 1) + torch.arange(height, device=x.device)).view(batch, *lead, height, 1)
    x = torch.gather(x, -2, rows.expand(*x.shape[:-2], height, x.shape[-1]))
    cols = (left.view(batch, 1) + torch.arange(width, device=x.device)).view(batch, *lead, 1, width)
    return torch.gather(x, -1, cols.expand(*x.shape[:-1], width))


def augment_batch(x, policy: str | None, generator=None, padding: int = 4, shift: int = 5):
    """Random training augmentation of a batch (a torch tensor, any device), per sample.

    "crop_flip" (CIFAR): zero-pad by ``padding``, random crop back to H x W,
    random horizontal flip. "flip_shift" (event frames (B, T, C, H, W), as in
    TET): random horizontal flip and a random roll by up to ``shift`` pixels in
    each direction, the same for all frames of a sample. None: unchanged.
    """
    import torch
    import torch.nn.functional as F

    if policy is None:
        return x
    if policy not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {policy!r} (known: {', '.join(AUGMENTATIONS)})")
    batch, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    flip = torch.rand(batch, generator=generator) < 0.5
    if policy == "crop_flip":
        top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
        left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
        x = _gather_crop(F.pad(x, (padding, padding, padding, padding)), top, left, height, width)
    else:
        dy = torch.randint(-shift, shift + 1, (batch,), generator=generator).to(x.device)
        dx = torch.randint(-shift, shift + 1, (batch,), generator=generator).to(x.device)
        tiled = x.repeat(*([1] * (x.dim() - 2)), 2, 2)  # roll = crop of the 2x2 tiling
        x = _gather_crop(tiled, (-dy) % height, (-dx) % width, height, width)
    mask = flip.to(x.device).view(batch, *([1] * (x.dim() - 1)))
    return torch.where(mask, x.flip(-1), x)


# --------------------------------------------------------------------------- registry


def load_dataset(name: str, root: str | Path | None = None, image: bool = False, **kwargs) -> DataSplit:
    """A data set by name (DATASETS). ``root``: the folder of a file-based set; ``image``:
    image-shaped samples for digits and synthetic (the file-based sets are always image-shaped)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if name == "digits":
        return load_digits(image=image, **kwargs)
    if name == "synthetic":
        return synthetic(image=image, **kwargs)
    if root is None:
        raise UserError(f"dataset {name!r} is read from local files: give their folder with --data-root "
                        f"(see `dsatgo train --help`)")
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (the --data-root of dataset {name!r})")
    if name in ("mnist", "fashion_mnist"):
        return load_mnist(root, variant=name, **kwargs)
    if name == "cifar10":
        return load_cifar10(root, **kwargs)
    if name == "cifar100":
        return load_cifar100(root, **kwargs)
    if name == "imagenet":  # train.imagenet: ImageFolder tree, decoded on demand
        from .imagenet import load_imagenet_folder
        return load_imagenet_folder(root, **kwargs)
    if name == "cifar10_dvs" and not any((root / f).exists() for f in ("train.npz", "train_frames.npy")):
        from .event_data import load_cifar10_dvs_files  # .aedat class folders or SpikingJelly frames
        return load_cifar10_dvs_files(root, **kwargs)
    if name == "cifar10_dvs":
        kwargs.pop("timesteps", None)  # pre-binned frames: the files fix T (build_architecture checks it)
        kwargs.setdefault("num_classes", 10)
    return load_event_frames(root, **kwargs)
