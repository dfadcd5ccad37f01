"""IDX readers: MNIST, Fashion-MNIST (LeCun's layout) and EMNIST (images stored transposed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import DataFormatError, read_idx
from ncollapse.data.readers._common import DIGIT_CLASSES, check_labels
from ncollapse.data.search import gz_or_raw
from ncollapse.errors import NCollapseError

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
EMNIST_CLASSES = {
    "byclass": 62,
    "bymerge": 47,
    "balanced": 47,
    "letters": 26,
    "digits": 10,
    "mnist": 10,
}
MNIST_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_pair(folder: Path, img_stem: str, lab_stem: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Images (uint8 N x H x W) and labels (int64 N) from two IDX files, checked against each
    other."""
    ip, lp = gz_or_raw(folder, img_stem), gz_or_raw(folder, lab_stem)
    assert ip is not None and lp is not None
    x, y = read_idx(ip), read_idx(lp)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataFormatError(f"{ip}: expected uint8 images N x H x W, got {x.dtype} {x.shape}")
    if y.ndim != 1:
        raise DataFormatError(f"{lp}: expected a 1-D label vector, got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataFormatError(f"{ip} has {x.shape[0]} images but {lp} has {y.shape[0]} labels")
    return x, y.astype(np.int64), str(ip)


def mnist_required(split: str, opts: dict) -> list[str]:
    return list(MNIST_STEMS[split])


def mnist_reader(name: str, classes: list[str]):
    """A reader for a dataset in MNIST's file layout (MNIST, Fashion-MNIST)."""

    def reader(folder: Path, split: str, **opts) -> ArrayDataset:
        x, y, src = idx_pair(folder, *MNIST_STEMS[split])
        check_labels(y, 10, src)
        return ArrayDataset(x[:, None], y, 10, name, classes, split=split, source=str(folder))

    return reader


read_mnist = mnist_reader("mnist", DIGIT_CLASSES)
read_fashion_mnist = mnist_reader("fashion-mnist", FASHION_CLASSES)


def emnist_variant(opts: dict) -> str:
    v = str(opts.get("variant") or "balanced").lower()
    if v not in EMNIST_CLASSES:
        raise NCollapseError(
            f"unknown EMNIST variant {v!r}; choose one of {', '.join(EMNIST_CLASSES)}"
        )
    return v


def emnist_num_classes(opts: dict) -> int:
    return EMNIST_CLASSES[emnist_variant(opts)]


def emnist_required(split: str, opts: dict) -> list[str]:
    v = emnist_variant(opts)
    return [f"emnist-{v}-{split}-images-idx3-ubyte", f"emnist-{v}-{split}-labels-idx1-ubyte"]


def read_emnist(folder: Path, split: str, **opts) -> ArrayDataset:
    """EMNIST: IDX like MNIST but each image is stored transposed (``x.transpose(0, 2, 1)``).

    ``letters`` labels are 1..26 on disk and are shifted to 0..25 here.
    """
    v = emnist_variant(opts)
    img, lab = emnist_required(split, opts)
    x, y, src = idx_pair(folder, img, lab)
    x = np.ascontiguousarray(x.transpose(0, 2, 1))
    k = EMNIST_CLASSES[v]
    if v == "letters":
        if y.size and y.min() < 1:
            raise DataFormatError(f"{src}: EMNIST letters labels must be 1..26, got min {y.min()}")
        y = y - 1
    check_labels(y, k, src)
    classes = None
    mp = folder / f"emnist-{v}-mapping.txt"
    if mp.is_file():
        try:
            rows = [line.split() for line in mp.read_text().splitlines() if line.strip()]
            codes = {int(a): chr(int(b)) for a, b, *_ in rows}
            off = 1 if v == "letters" else 0
            classes = [codes.get(i + off, str(i)) for i in range(k)]
        except (ValueError, IndexError):
            classes = None
    return ArrayDataset(x[:, None], y, k, f"emnist-{v}", classes, split=split, source=str(folder))
