"""ImageNet (ILSVRC-2012) from a local ImageFolder tree, decoded with PIL on demand.

Layout: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (the validation images
sorted into class folders, as torchvision's ImageFolder expects); classes are the sorted
folder names of train/. 1.28 M decoded images do not fit in memory, so the splits are
:class:`ImageFolderArray` objects: array-like (len, shape, indexing by an index array or a
slice) and decoded when indexed, in a thread pool (PIL releases the GIL while decoding).

Training images get the standard ImageNet augmentation: a random crop of 8-100 % of the area
with aspect ratio 3/4-4/3, resized to ``size`` (bilinear), and a random horizontal flip.
Evaluation images: the shorter side resized to ``size`` x 256/224, then the centre
``size`` x ``size`` crop. Values are float32 in [0, 1]; the per-channel normalisation goes
into the architecture (IMAGENET_NORMALIZE).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .zoo import IMAGENET_NORMALIZE
from dsatgo_deploy.errors import UserError

from .data import DataSplit

EXTENSIONS = (".jpeg", ".jpg", ".png")
RESIZE_RATIO = 256 / 224
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """A random crop of CROP_SCALE of the area and CROP_RATIO aspect, resized to size x size
    (10 tries, then the centre crop of the largest allowed aspect, as is usual)."""
    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))


def resize_centre_crop(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to round(size x 256/224), then the centre size x size crop."""
    width, height = image.size
    short = round(size * RESIZE_RATIO)
    scale = short / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.BILINEAR)
    left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


class ImageFolderArray:
    """The images of a split as a lazily decoded float32 array (N, 3, size, size)."""

    def __init__(self, files: list[Path], size: int, train: bool, seed: int = 0, workers: int | None = None) -> None:
        self.files = files
        self.size = size
        self.train = train
        self.rng = np.random.default_rng(seed)
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.shape = (len(files), 3, size, size)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, path: Path, seed: int) -> np.ndarray:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                if self.train:
                    rng = np.random.default_rng(seed)
                    image = random_resized_crop(image, self.size, rng)
                    if rng.random() < 0.5:
                        image = image.transpose(Image.FLIP_LEFT_RIGHT)
                else:
                    image = resize_centre_crop(image, self.size)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise UserError(f"{path}: not a readable image ({exc})") from None
        return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        indices = np.asarray(index, dtype=np.int64).reshape(-1)
        seeds = self.rng.integers(0, 2**63, len(indices))
        with ThreadPoolExecutor(self.workers) as pool:
            images = list(pool.map(self._decode, [self.files[i] for i in indices], seeds))
        out = np.stack(images) if images else np.zeros((0, 3, self.size, self.size), np.float32)
        return out if np.ndim(index) else out[0]


def _listing(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in EXTENSIONS) \
            if (folder / name).is_dir() else []
        files += found
        labels += [label] * len(found)
    return files, np.array(labels, dtype=np.int64)


def load_imagenet_folder(root: str | Path, size: int = 224, seed: int = 0) -> DataSplit:
    """ImageNet (or any ImageFolder tree with train/ and val/) as lazily decoded splits."""
    root = Path(root)
    train_folder, val_folder = root / "train", root / "val"
    for folder in (train_folder, val_folder):
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder (ImageNet needs {root}/train/<wnid>/*.JPEG and "
                            f"{root}/val/<wnid>/*.JPEG)")
    classes = sorted(p.name for p in train_folder.iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"{train_folder}: no class folders")
    train_files, y_train = _listing(train_folder, classes)
    val_files, y_val = _listing(val_folder, classes)
    if not train_files or not val_files:
        raise UserError(f"{root}: no images in train/ or val/ (extensions {', '.join(EXTENSIONS)})")
    x_train = ImageFolderArray(train_files, size, train=True, seed=seed)
    x_val = ImageFolderArray(val_files, size, train=False, seed=seed)
    return DataSplit(x_train, y_train, x_val, y_val, len(classes), (3, size, size), None,  # type: ignore[arg-type]
                     normalize=IMAGENET_NORMALIZE, augment=None)
