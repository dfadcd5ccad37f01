"""CIFAR-10/100 python pickles, read through the restricted unpickler
(:class:`~ncollapse.data.formats.RestrictedUnpickler`: no pickle can run code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import read_cifar_pickle, read_pickle_meta
from ncollapse.data.readers._common import check_labels
from ncollapse.data.search import gz_or_raw


def _file(folder: Path, stem: str) -> Path:
    return gz_or_raw(folder, stem) or folder / stem


def cifar10_required(split: str, opts: dict) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def cifar100_required(split: str, opts: dict) -> list[str]:
    return [split]


def read_cifar10(folder: Path, split: str, **opts) -> ArrayDataset:
    """``data_batch_1..5`` (train) or ``test_batch`` (test); class names from ``batches.meta``."""
    xs, ys = [], []
    for f in cifar10_required(split, opts):
        x, y = read_cifar_pickle(_file(folder, f), "labels")
        check_labels(y, 10, str(folder / f))
        xs.append(x)
        ys.append(y)
    classes = read_pickle_meta(folder / "batches.meta", "label_names")
    if classes is not None and len(classes) != 10:
        classes = None
    return ArrayDataset(
        np.concatenate(xs),
        np.concatenate(ys),
        10,
        "cifar10",
        classes,
        split=split,
        source=str(folder),
    )


def read_cifar100(folder: Path, split: str, **opts) -> ArrayDataset:
    """``train`` / ``test`` pickles with ``fine_labels`` (100 classes); names from ``meta``."""
    x, y = read_cifar_pickle(_file(folder, split), "fine_labels", allowed_keys=("coarse_labels",))
    check_labels(y, 100, str(folder / split))
    classes = read_pickle_meta(folder / "meta", "fine_label_names")
    if classes is not None and len(classes) != 100:
        classes = None
    return ArrayDataset(x, y, 100, "cifar100", classes, split=split, source=str(folder))
