"""Lazy image datasets (decoded with PIL on access), for data too large to hold in memory, such
as ImageNet-LT.

They are read through :class:`~ncollapse.data.maploader.MapLoader` (a torch ``DataLoader`` with
worker processes): per-sample work (decode, resize/crop to uint8) happens in the workers, the batch
is then moved to the device and normalised there in one op. Train-time random-resized-crop and
flip draws for sample ``i`` in epoch ``e`` come from ``numpy.random.default_rng([seed, e, i])``,
so they do not depend on the number of workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ncollapse.data.base import ArrayDataset, class_count_vector
from ncollapse.errors import NCollapseError

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".ppm",
    ".pgm",
    ".webp",
    ".tif",
    ".tiff",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def escapes_root(entry: str | os.PathLike) -> bool:
    """True when ``entry`` is not a path inside its root: absolute, empty, or leaving it through
    ``..`` once the components are folded lexically (``a/../b`` stays inside, ``a/../../b`` not)."""
    s = os.fspath(entry)
    if not s or os.path.isabs(s):
        return True
    norm = os.path.normpath(s)
    return norm in (".", "..") or norm.startswith(".." + os.sep)


def decode_image(path: str | os.PathLike, mode: str = "RGB"):
    """Open an image with PIL and convert it to ``mode``; errors name the file."""
    from PIL import Image, UnidentifiedImageError

    from ncollapse.data.formats import DataFormatError

    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode)
    except FileNotFoundError:
        raise DataFormatError(
            f"image {path} listed in the split file does not exist; check the image root"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(
            f"cannot decode image {path} ({exc}); the file is corrupt or truncated"
        ) from exc


def _pil_to_uint8(im) -> np.ndarray:
    a = np.asarray(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a)


def resize_center_crop(im, size: int | None, resize: int | None):
    """Resize the shorter side to ``resize`` (bilinear), then center-crop ``size`` x ``size``."""
    from PIL import Image

    if resize:
        w, h = im.size
        s = resize / min(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    if size:
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return im


def random_resized_crop(
    im, size: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
):
    """Inception-style crop: area fraction ~ U(scale), log aspect ~ U(log ratio), then resize."""
    from PIL import Image

    w, h = im.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return im.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
    s = min(w, h)  # fallback: central square
    left, top = (w - s) // 2, (h - s) // 2
    return im.resize((size, size), Image.BILINEAR, box=(left, top, left + s, top + s))


class LazyImageDataset:
    """``(path, label)`` pairs decoded on access into uint8 C x H x W tensors.

    Train mode (``train=True``): random-resized-crop to ``size`` + horizontal flip (p = 0.5).
    Eval mode: shorter side to ``resize``, then center crop ``size`` (``size=None``: no resizing).
    With a ``root``, every path must lie inside it (relative, no ``..`` above it); without one,
    paths are used as given.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels,
        root: str | os.PathLike | None = None,
        num_classes: int | None = None,
        name: str = "images",
        classes: list[str] | None = None,
        size: int | None = 224,
        resize: int | None = 256,
        train: bool = False,
        mode: str = "RGB",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        seed: int = 0,
    ):
        self.root = Path(root) if root is not None else None
        self.paths = [str(p) for p in paths]
        if self.root is not None:
            bad = next((i for i, p in enumerate(self.paths) if escapes_root(p)), None)
            if bad is not None:
                raise NCollapseError(
                    f"path {bad} of the dataset leaves its image root {self.root} (an absolute "
                    f"path or '..' above it); paths must be relative to the root and inside it"
                )
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.paths) != self.labels.shape[0]:
            raise NCollapseError(f"{len(self.paths)} paths but {self.labels.shape[0]} labels")
        if self.labels.size and self.labels.min() < 0:
            raise NCollapseError("labels must be 0..K-1")
        self.num_classes = (
            int(num_classes) if num_classes is not None else int(self.labels.max(initial=-1) + 1)
        )
        if self.labels.size and self.labels.max() >= self.num_classes:
            raise NCollapseError(
                f"label {int(self.labels.max())} >= num_classes={self.num_classes}"
            )
        self.name, self.classes = name, classes
        self.size, self.resize, self.train, self.mode = size, resize, bool(train), mode
        self.mean, self.std = mean, std
        self.seed, self.epoch = int(seed), 0

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> np.ndarray:
        return class_count_vector(self.labels, self.num_classes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def full_path(self, i: int) -> Path:
        p = Path(self.paths[i])
        return p if (self.root is None or p.is_absolute()) else self.root / p

    def subset(self, indices) -> LazyImageDataset:
        idx = np.asarray(indices, dtype=np.int64)
        out = LazyImageDataset(
            [self.paths[i] for i in idx],
            self.labels[idx],
            self.root,
            self.num_classes,
            self.name,
            self.classes,
            self.size,
            self.resize,
            self.train,
            self.mode,
            self.mean,
            self.std,
            self.seed,
        )
        return out

    def eval_view(self) -> LazyImageDataset:
        """The same samples with evaluation transforms (resize + center crop, no randomness)."""
        if not self.train:
            return self
        out = self.subset(np.arange(len(self)))
        out.train = False
        return out

    def load_uint8(self, i: int) -> np.ndarray:
        """Sample ``i`` decoded (train mode: randomly cropped/flipped) as uint8 C x H x W."""
        im = decode_image(self.full_path(i), self.mode)
        if self.train and self.size:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            im = random_resized_crop(im, self.size, rng)
            a = _pil_to_uint8(im)
            if rng.random() < 0.5:
                a = np.ascontiguousarray(a[:, :, ::-1])
            return a
        return _pil_to_uint8(resize_center_crop(im, self.size, self.resize))

    def __getitem__(self, i):
        import torch

        return torch.from_numpy(self.load_uint8(int(i))), int(self.labels[int(i)])

    def to_array_dataset(self):
        """Decode everything into an :class:`~ncollapse.data.ArrayDataset` (small data only)."""
        arrs = [self.load_uint8(i) for i in range(len(self))]
        shapes = {a.shape for a in arrs}
        if len(shapes) > 1:
            raise NCollapseError(
                f"images have different sizes {sorted(shapes)[:3]}...; pass size=S (and resize=S) "
                f"to resize them to S x S"
            )
        images = np.stack(arrs) if arrs else np.zeros((0, 3, 1, 1), np.uint8)
        return ArrayDataset(images, self.labels.copy(), self.num_classes, self.name, self.classes)
