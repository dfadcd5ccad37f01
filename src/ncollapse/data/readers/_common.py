"""Helpers shared by the readers."""

from __future__ import annotations

import numpy as np

from ncollapse.data.formats import DataFormatError

DIGIT_CLASSES = [str(i) for i in range(10)]


def check_labels(y: np.ndarray, k: int, source: str) -> None:
    """Raise DataFormatError naming ``source`` when a label is outside 0..k-1."""
    if y.size and (y.min() < 0 or y.max() >= k):
        raise DataFormatError(f"{source}: labels span {y.min()}..{y.max()}, expected 0..{k - 1}")
