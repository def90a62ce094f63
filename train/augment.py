"""AutoAugment, the CIFAR-10 policy of Cubuk et al. (CVPR 2019), on uint8 images with PIL.

torchvision is not a dependency; these are the same operations on PIL images. A policy is 25
sub-policies of two operations each, ``(name, probability, magnitude bin)``; one sub-policy is
drawn uniformly per image and each of its operations is applied with its probability. A
magnitude bin 0..9 maps linearly onto the operation's range (:data:`MAGNITUDE_RANGES`, the
ranges of the paper's search space: shear 0.3, translate 150/331 of the image side, rotate 30
degrees, enhancement factors 1 +- 0.9, posterize 8..4 bits, solarize threshold 256..0); signed
operations take a random sign. Geometric operations fill with grey (128), as the DeepVoltaire
implementation most SNN code bases (the DS-ATGO authors' included) use.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

#: The published CIFAR-10 policy (Cubuk et al. 2019, appendix Table 7): (op, prob, bin) pairs.
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
    (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.2, 8), ("Equalize", 0.6, 4)),
    (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
    (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
)

MAGNITUDE_BINS = 10
#: (value at bin 0, value at bin 9, signed); None: the operation takes no magnitude.
MAGNITUDE_RANGES: dict[str, tuple[float, float, bool] | None] = {
    "ShearX": (0.0, 0.3, True), "ShearY": (0.0, 0.3, True),
    "TranslateX": (0.0, 150 / 331, True), "TranslateY": (0.0, 150 / 331, True),
    "Rotate": (0.0, 30.0, True),
    "Color": (0.0, 0.9, True), "Contrast": (0.0, 0.9, True), "Sharpness": (0.0, 0.9, True),
    "Brightness": (0.0, 0.9, True),
    "Posterize": (8.0, 4.0, False), "Solarize": (256.0, 0.0, False),
    "AutoContrast": None, "Equalize": None, "Invert": None,
}
FILL = 128


def magnitude(name: str, bin_index: int, sign: int = 1) -> float:
    """The value of magnitude bin ``bin_index`` of an operation (times ``sign`` if it is signed)."""
    bounds = MAGNITUDE_RANGES[name]
    if bounds is None:
        return 0.0
    low, high, signed = bounds
    value = low + (high - low) * bin_index / (MAGNITUDE_BINS - 1)
    if name == "Posterize":
        value = float(round(value))
    return value * sign if signed else value


def _affine(image: Image.Image, coefficients: tuple[float, ...], resample: int) -> Image.Image:
    fill = (FILL,) * len(image.getbands())
    return image.transform(image.size, Image.AFFINE, coefficients, resample, fillcolor=fill)


#: Each operation on a PIL image with its (signed) magnitude value.
OPERATIONS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    # PIL's affine maps output (x, y) to input (a x + b y + c, d x + e y + f)
    "ShearX": lambda img, v: _affine(img, (1, v, 0, 0, 1, 0), Image.BICUBIC),
    "ShearY": lambda img, v: _affine(img, (1, 0, 0, v, 1, 0), Image.BICUBIC),
    "TranslateX": lambda img, v: _affine(img, (1, 0, v * img.size[0], 0, 1, 0), Image.NEAREST),
    "TranslateY": lambda img, v: _affine(img, (1, 0, 0, 0, 1, v * img.size[1]), Image.NEAREST),
    "Rotate": lambda img, v: img.rotate(v, fillcolor=(FILL,) * len(img.getbands())),
    "Color": lambda img, v: ImageEnhance.Color(img).enhance(1.0 + v),
    "Contrast": lambda img, v: ImageEnhance.Contrast(img).enhance(1.0 + v),
    "Sharpness": lambda img, v: ImageEnhance.Sharpness(img).enhance(1.0 + v),
    "Brightness": lambda img, v: ImageEnhance.Brightness(img).enhance(1.0 + v),
    "Posterize": lambda img, v: ImageOps.posterize(img, int(v)),
    "Solarize": lambda img, v: ImageOps.solarize(img, v),
    "AutoContrast": lambda img, v: ImageOps.autocontrast(img),
    "Equalize": lambda img, v: ImageOps.equalize(img),
    "Invert": lambda img, v: ImageOps.invert(img),
}


def apply_operation(image: np.ndarray, name: str, bin_index: int, sign: int = 1) -> np.ndarray:
    """One named operation on an (H, W, C) or (H, W) uint8 array; returns a new uint8 array."""
    if image.dtype != np.uint8:
        raise ValueError(f"AutoAugment works on uint8 images, got {image.dtype}")
    pil = Image.fromarray(image)
    return np.asarray(OPERATIONS[name](pil, magnitude(name, bin_index, sign)), dtype=np.uint8)


def autoaugment(image: np.ndarray, rng: np.random.Generator,
                policy: tuple = CIFAR10_POLICY) -> np.ndarray:
    """One AutoAugment draw on an (H, W, C) uint8 image: a random sub-policy, each operation
    with its probability and a random sign."""
    first, second = policy[int(rng.integers(len(policy)))]
    for name, probability, bin_index in (first, second):
        if rng.random() < probability:
            image = apply_operation(image, name, bin_index, 1 if rng.random() < 0.5 else -1)
    return image


def autoaugment_batch(x, generator=None):
    """AutoAugment each image of a float batch (B, C, H, W) in [0, 1] (a torch tensor, any device;
    8-bit images such as CIFAR round-trip exactly through uint8). The draws come from a numpy
    generator seeded from ``generator`` (a torch.Generator), so runs are reproducible."""
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    pixels = (x.detach().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    squeeze = pixels.shape[-1] == 1
    out = np.empty_like(pixels)
    for index, image in enumerate(pixels):
        image = image[..., 0] if squeeze else image
        augmented = autoaugment(image, rng)
        out[index] = augmented[..., None] if squeeze else augmented
    result = torch.from_numpy(out).permute(0, 3, 1, 2).to(dtype=x.dtype) / 255.0
    return result.to(x.device)
