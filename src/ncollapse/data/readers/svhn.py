"""SVHN cropped digits (MATLAB v5 ``<split>_32x32.mat``; label 10 means digit 0)."""

from __future__ import annotations

from pathlib import Path

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import read_svhn_mat
from ncollapse.data.readers._common import DIGIT_CLASSES


def svhn_required(split: str, opts: dict) -> list[str]:
    return [f"{split}_32x32.mat"]


def read_svhn(folder: Path, split: str, **opts) -> ArrayDataset:
    x, y = read_svhn_mat(folder / f"{split}_32x32.mat")
    return ArrayDataset(x, y, 10, "svhn", DIGIT_CLASSES, split=split, source=str(folder))
