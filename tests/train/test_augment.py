"""AutoAugment (CIFAR-10 policy) on a real photograph: every operation does what it names,
checked with numpy formulas independent of PIL, and the policy is the published one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_image

from dsatgo_deploy.train.augment import (CIFAR10_POLICY, FILL, MAGNITUDE_RANGES, OPERATIONS, apply_operation,
                                         autoaugment_batch, magnitude)

#: Cubuk et al. 2019, appendix (the CIFAR-10 policy), transcribed as "op prob bin op prob bin" rows.
PUBLISHED_CIFAR10 = """
Invert 0.1 7 Contrast 0.2 6 | Rotate 0.7 2 TranslateX 0.3 9 | Sharpness 0.8 1 Sharpness 0.9 3 |
ShearY 0.5 8 TranslateY 0.7 9 | AutoContrast 0.5 8 Equalize 0.9 2 | ShearY 0.2 7 Posterize 0.3 7 |
Color 0.4 3 Brightness 0.6 7 | Sharpness 0.3 9 Brightness 0.7 9 | Equalize 0.6 5 Equalize 0.5 1 |
Contrast 0.6 7 Sharpness 0.6 5 | Color 0.7 7 TranslateX 0.5 8 | Equalize 0.3 7 AutoContrast 0.4 8 |
TranslateY 0.4 3 Sharpness 0.2 6 | Brightness 0.9 6 Color 0.2 8 | Solarize 0.5 2 Invert 0.0 3 |
Equalize 0.2 0 AutoContrast 0.6 0 | Equalize 0.2 8 Equalize 0.6 4 | Color 0.9 9 Equalize 0.6 6 |
AutoContrast 0.8 4 Solarize 0.2 8 | Brightness 0.1 3 Color 0.7 0 | Solarize 0.4 5 AutoContrast 0.9 3 |
TranslateY 0.9 9 TranslateY 0.7 9 | AutoContrast 0.9 2 Solarize 0.8 3 | Equalize 0.8 8 Invert 0.1 3 |
TranslateY 0.7 9 AutoContrast 0.9 1"""


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_sample_image("china.jpg")[:331, 100:431].copy()  # 331 x 331: translate bin 9 = 150 px


def _published() -> tuple:
    rows = []
    for row in PUBLISHED_CIFAR10.split("|"):
        a, pa, ba, b, pb, bb = row.split()
        rows.append(((a, float(pa), int(ba)), (b, float(pb), int(bb))))
    return tuple(rows)


def test_the_policy_is_the_published_cifar10_policy():
    assert CIFAR10_POLICY == _published()
    assert set(OPERATIONS) == set(MAGNITUDE_RANGES)
    assert [magnitude("Posterize", b) for b in range(10)] == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert magnitude("Solarize", 0) == 256 and magnitude("Solarize", 9) == 0
    assert magnitude("Rotate", 9, -1) == -30 and magnitude("ShearX", 9) == pytest.approx(0.3)


def test_pixel_operations(photo):
    img = photo.astype(np.int64)
    np.testing.assert_array_equal(apply_operation(photo, "Invert", 0), 255 - img)
    threshold = magnitude("Solarize", 5)
    np.testing.assert_array_equal(apply_operation(photo, "Solarize", 5), np.where(img >= threshold, 255 - img, img))
    np.testing.assert_array_equal(apply_operation(photo, "Posterize", 9), img & 0b11110000)  # 4 bits
    contrasted = apply_operation(photo, "AutoContrast", 0).astype(np.int64)
    for channel in range(3):
        lo, hi = img[..., channel].min(), img[..., channel].max()
        expected = (img[..., channel] - lo) * 255.0 / (hi - lo)
        assert np.abs(contrasted[..., channel] - expected).max() <= 1.0
    equalized = apply_operation(photo, "Equalize", 0)
    for channel in range(3):  # the output's cumulative histogram is close to uniform
        cdf = np.searchsorted(np.sort(equalized[..., channel].ravel()), [64, 128, 192]) / equalized[..., 0].size
        np.testing.assert_allclose(cdf, [0.25, 0.5, 0.75], atol=0.05)


@pytest.mark.parametrize("sign", [1, -1])
def test_enhancements_blend_with_their_degenerate_image(photo, sign):
    img = photo.astype(np.float64)
    factor = 1.0 + magnitude("Brightness", 5, sign)
    assert abs(factor - 1.0) == pytest.approx(0.5)
    gray = img @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma
    expected = {
        "Brightness": img * factor,
        "Color": gray[..., None] + factor * (img - gray[..., None]),
        "Contrast": np.round(gray.mean()) + factor * (img - np.round(gray.mean())),
    }
    for name, target in expected.items():
        out = apply_operation(photo, name, 5, sign).astype(np.float64)
        assert np.abs(out - np.clip(target, 0, 255)).max() <= 2.0, name
    laplacian = lambda a: np.diff(a.astype(np.float64), 2, axis=0)[:, 1:-1].std()  # noqa: E731
    sharpened = apply_operation(photo, "Sharpness", 9, sign)
    assert (laplacian(sharpened) > laplacian(photo)) == (sign > 0)


def test_geometric_operations(photo):
    shifted = apply_operation(photo, "TranslateX", 9, 1)  # 150 px: the content moves left
    np.testing.assert_array_equal(shifted[:, :331 - 150], photo[:, 150:])
    assert np.all(shifted[:, 331 - 150:] == FILL)
    shifted = apply_operation(photo, "TranslateY", 9, -1)  # the content moves down
    np.testing.assert_array_equal(shifted[150:], photo[:331 - 150])
    assert np.all(shifted[:150] == FILL)
    # a marker: shear x' = x - v y; rotation counter-clockwise by the angle (y axis pointing down)
    marker = np.zeros((65, 65), dtype=np.uint8)
    marker[12, 52] = 255  # (x, y) = (52, 12): 20 right of and 20 above the centre (32, 32)
    shear = magnitude("ShearX", 9)
    y, x = np.unravel_index(np.argmax(apply_operation(marker, "ShearX", 9)), marker.shape)
    assert (y, x) == (12, round(52 - shear * 12))
    angle = np.radians(magnitude("Rotate", 9))  # 30 degrees
    y, x = np.unravel_index(np.argmax(apply_operation(marker, "Rotate", 9)), marker.shape)
    dx, dy = 20 * np.cos(angle) - 20 * np.sin(angle), 20 * np.sin(angle) + 20 * np.cos(angle)
    assert abs(x - (32 + dx)) <= 1 and abs(y - (32 - dy)) <= 1


def test_batches_are_reproducible_and_exact_for_8_bit_images(photo):
    images = torch.from_numpy(photo[:64, :64]).permute(2, 0, 1).float().div(255.0).expand(16, 3, 64, 64)
    first = autoaugment_batch(images, torch.Generator().manual_seed(3))
    again = autoaugment_batch(images, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal((first * 255).round() / 255, first)  # still on the 8-bit grid
    changed = (first != images).flatten(1).any(dim=1)
    assert 0 < int(changed.sum()) < 16  # some images drew no operation, most did
