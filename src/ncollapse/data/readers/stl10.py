"""STL-10 labelled binary files (``<split>_X.bin`` column-major 3 x 96 x 96, ``<split>_y.bin``)."""

from __future__ import annotations

from pathlib import Path

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import read_stl10_bin
from ncollapse.data.search import gz_or_raw

STL10_CLASSES = [
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
]


def stl10_required(split: str, opts: dict) -> list[str]:
    return [f"{split}_X.bin", f"{split}_y.bin"]


def read_stl10(folder: Path, split: str, **opts) -> ArrayDataset:
    """Images and 0-based labels; class names from ``class_names.txt`` when it has 10 lines."""
    xp = gz_or_raw(folder, f"{split}_X.bin")
    yp = gz_or_raw(folder, f"{split}_y.bin")
    x, y = read_stl10_bin(xp, yp)  # type: ignore[arg-type]
    classes = STL10_CLASSES
    names = folder / "class_names.txt"
    if names.is_file():
        lines = [s.strip() for s in names.read_text().splitlines() if s.strip()]
        if len(lines) == 10:
            classes = lines
    return ArrayDataset(x, y, 10, "stl10", classes, split=split, source=str(folder))
