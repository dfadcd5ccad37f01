"""File lists: ImageNet-LT ``path label`` split lists and ``path,label`` CSV lists.

Every entry of a list must name a file *inside* its image root: a relative path that stays inside
after ``..`` components are folded (``a/../b`` is fine, ``../x.png``, ``a/../../x`` and absolute
paths are refused). The check is lexical, so symbolic links inside the root (a common way to
mount ILSVRC-2012) are followed as usual. A refused entry is reported by list file and line only;
the path it would have reached is never echoed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ncollapse.data.formats import DataFormatError
from ncollapse.data.lazy import LazyImageDataset, escapes_root
from ncollapse.errors import DataNotFoundError


def check_entries_inside(paths: list[str], source: str, line_numbers: list[int]) -> None:
    """Raise DataFormatError at the first entry that leaves the image root."""
    for p, n in zip(paths, line_numbers):
        if escapes_root(p):
            raise DataFormatError(
                f"{source}:{n}: entry leaves the image root (an absolute path or '..' above it); "
                f"list entries must be paths relative to the image root and inside it"
            )


def read_split_list(path: Path) -> tuple[list[str], np.ndarray]:
    """Read ``"relative/path label"`` lines (ImageNet-LT / OLTR split lists)."""
    paths, labels, lines = [], [], []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read split list {path} ({exc})") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise DataFormatError(f"{path}:{n}: expected 'path label', got {line[:80]!r}")
        try:
            lab = int(parts[1])
        except ValueError:
            raise DataFormatError(f"{path}:{n}: label {parts[1]!r} is not an integer") from None
        paths.append(parts[0])
        labels.append(lab)
        lines.append(n)
    if not paths:
        raise DataFormatError(f"split list {path} is empty")
    check_entries_inside(paths, str(path), lines)
    y = np.asarray(labels, dtype=np.int64)
    if y.min() < 0:
        raise DataFormatError(f"{path}: negative label {y.min()}")
    return paths, y


def imagenet_lt_required(split: str, opts: dict) -> list[str]:
    return [f"ImageNet_LT_{split}.txt"]


def read_imagenet_lt(folder: Path, split: str, **opts) -> LazyImageDataset:
    """ImageNet-LT: split list + ILSVRC-2012 image root, decoded lazily (a LazyImageDataset).

    Options: ``image_root`` (default: the lists' folder), ``num_classes`` (default: the largest
    label in the folder's train/val/test lists, plus one -- 1000 for ImageNet-LT itself, and right
    for other lists in the same format such as Places-LT's), ``size``/``resize`` (224/256),
    ``train`` (random-resized-crop + flip; default for the train split), ``seed``.
    """
    paths, y = read_split_list(folder / f"ImageNet_LT_{split}.txt")
    k = opts.get("num_classes")
    if not k:  # one label space for every split: the largest label of all the lists, plus one
        top = int(y.max())
        for other in ("train", "val", "test"):
            path = folder / f"ImageNet_LT_{other}.txt"
            if other != split and path.is_file():
                top = max(top, int(read_split_list(path)[1].max()))
        k = top + 1
    image_root = Path(opts.get("image_root") or folder)
    first = image_root / paths[0]
    if not first.is_file():
        raise DataNotFoundError(
            f"imagenet-lt: image {first} (first entry of ImageNet_LT_{split}.txt) not found; pass "
            f"image_root=<ILSVRC-2012 folder holding train/ and val/> (CLI: --image-root)"
        )
    return LazyImageDataset(
        paths,
        y,
        image_root,
        int(k),
        "imagenet-lt",
        None,
        size=opts.get("size", 224),
        resize=opts.get("resize", 256),
        train=opts.get("train", split == "train"),
        seed=int(opts.get("seed", 0)),
    )


def csv_file(root: Path, split: str | None) -> Path | None:
    """``root`` itself when it is a file, else ``root/<split>.csv`` or ``root/<split>.txt``
    (``split=None``: train, then test)."""
    if root.is_file():
        return root
    for s in (split,) if split else ("train", "test"):
        for cand in (root / f"{s}.csv", root / f"{s}.txt"):
            if cand.is_file():
                return cand
    return None


def locate_csv(root: Path, split: str | None, opts: dict) -> tuple[Path | None, list[str]]:
    s = split or "train"
    return csv_file(root, split), [str(root), str(root / f"{s}.csv"), str(root / f"{s}.txt")]


def read_csv_list(path: Path, split: str, **opts) -> LazyImageDataset:
    """CSV rows ``path,label`` (header optional; labels integers or class names; paths relative
    to the CSV's folder, or to ``image_root``)."""
    if path.is_dir():
        path = csv_file(path, split)  # type: ignore[assignment]
        assert path is not None
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"cannot read CSV file list {path} ({exc})") from exc
    numbered = [(n, r) for n, r in enumerate(rows, 1) if r and any(s.strip() for s in r)]
    if numbered and numbered[0][1][-1].strip().lower() in {
        "label",
        "class",
        "target",
        "category",
        "y",
    }:
        numbered = numbered[1:]
    if not numbered:
        raise DataFormatError(f"CSV file list {path} has no rows; expected 'path,label' lines")
    bad = [(n, r) for n, r in numbered if len(r) < 2]
    if bad:
        raise DataFormatError(
            f"{path}: row {bad[0][0]} has {len(bad[0][1])} field(s); expected path,label"
        )
    paths = [r[0].strip() for _, r in numbered]
    check_entries_inside(paths, str(path), [n for n, _ in numbered])
    raw = [r[-1].strip() for _, r in numbered]
    try:
        labels = [int(v) for v in raw]
        classes = None
        k = max(labels) + 1
    except ValueError:
        classes = sorted(set(raw))
        lut = {c: i for i, c in enumerate(classes)}
        labels = [lut[v] for v in raw]
        k = len(classes)
    image_root = Path(opts.get("image_root") or path.parent)
    return LazyImageDataset(
        paths,
        labels,
        image_root,
        k,
        "csv-list",
        classes,
        size=opts.get("size"),
        resize=opts.get("resize", opts.get("size")),
        train=False,
        mode=opts.get("mode", "RGB"),
        mean=None,
        std=None,
    )
