"""Data sets: scikit-learn's bundled digits (the default) and a synthetic generator.

Every loader returns a :class:`DataSplit` of float32 arrays in [0, 1] (inputs)
and int64 labels, plus ``input_quantum``: the step between representable input
values when the data is integer-valued at source (digits: 1/16), which export
uses to encode inputs as exact graded spikes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DATASETS = ("digits", "synthetic")


class DataSplit(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    input_quantum: float | None


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> DataSplit:
    """scikit-learn's 8x8 digits (1797 images, 10 classes, pixels 0..16) scaled to [0, 1].

    The split is stratified and fixed by ``split_seed`` so that train, export
    and simulation all see the same test set.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    return DataSplit(x_train, y_train, x_test, y_test, 10, (64,), 1.0 / 16.0)


def synthetic(num_samples: int = 512, input_size: int = 32, num_classes: int = 4, seed: int = 0) -> DataSplit:
    """Gaussian class prototypes plus noise, clipped to [0, 1]: a quick, learnable task for tests."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0.0, 1.0, size=(num_classes, input_size))
    y = rng.integers(0, num_classes, size=num_samples)
    x = np.clip(prototypes[y] + rng.normal(0.0, 0.15, size=(num_samples, input_size)), 0.0, 1.0)
    cut = int(num_samples * 0.8)
    x = x.astype(np.float32)
    return DataSplit(x[:cut], y[:cut], x[cut:], y[cut:], num_classes, (input_size,), None)


def load_dataset(name: str, **kwargs) -> DataSplit:
    if name == "digits":
        return load_digits(**kwargs)
    if name == "synthetic":
        return synthetic(**kwargs)
    raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
