"""The dataset protocol and its containers.

Every dataset the library hands out, or accepts, is seen through :class:`LabelledDataset`:

* ``labels`` -- int64 numpy vector of the N labels, ``0 <= y < num_classes``;
* ``num_classes`` and ``classes`` (names, or None);
* ``len(ds)`` and ``ds[i] -> (x, y)`` (map-style, as a torch ``Dataset``);
* ``subset(indices)`` -- the same kind of dataset restricted to ``indices``;
* optionally ``images`` -- the whole data set as one array/tensor (``N x C x H x W`` or ``N x L``).
  Its presence is the *capability* "can live on the device" (:func:`is_resident`); datasets without
  it are read sample by sample through a torch ``DataLoader``;
* optionally ``mean``/``std`` (per-channel, [0, 1] units), ``name``, ``set_epoch(e)`` (per-epoch
  random transforms) and ``eval_view()`` (the same samples with evaluation transforms).

:class:`ArrayDataset` (in memory) and :class:`~ncollapse.data.lazy.LazyImageDataset` (decoded on
access) satisfy it; :func:`as_dataset` wraps any other map-style dataset (e.g. a user's
``torch.utils.data.Dataset`` returning ``(x, y)``) in a :class:`MapDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ncollapse.errors import NCollapseError


@runtime_checkable
class LabelledDataset(Protocol):
    """What the trainer, the long-tail builders and the loaders need from a dataset."""

    labels: np.ndarray
    num_classes: int
    classes: list[str] | None

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> tuple[Any, int]: ...

    def subset(self, indices) -> LabelledDataset: ...


def is_resident(ds) -> bool:
    """True when ``ds`` holds all its samples as one array (``ds.images``), so it can be uploaded
    to the device once; False for datasets read sample by sample."""
    return getattr(ds, "images", None) is not None


def eval_view(ds):
    """``ds`` with evaluation transforms (``ds.eval_view()`` when it has one, else ``ds``)."""
    fn = getattr(ds, "eval_view", None)
    return fn() if callable(fn) else ds


def class_count_vector(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def _check_label_range(labels: np.ndarray, num_classes: int, what: str = "labels") -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise NCollapseError(
            f"{what} span {int(labels.min())}..{int(labels.max())} but "
            f"num_classes={num_classes}; labels must be 0..K-1"
        )


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
        _check_label_range(self.labels, self.num_classes)
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
        return class_count_vector(self.labels, self.num_classes)

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


def with_stats(ds: ArrayDataset) -> ArrayDataset:
    """Fill in ``ds.mean``/``ds.std`` from the images when they are unknown."""
    if ds.mean is None or ds.std is None:
        ds.mean, ds.std = channel_stats(ds.images)
    return ds


# ----------------------------------------------------------------------------------------------
# Any map-style dataset
# ----------------------------------------------------------------------------------------------


def _label_of(y, i: int) -> int:
    try:
        v = y.item() if hasattr(y, "item") else y
        if isinstance(v, bool) or int(v) != v:
            raise TypeError
        return int(v)
    except (TypeError, ValueError):
        raise NCollapseError(
            f"sample {i} has label {y!r}; a dataset must return (x, y) with an integer class y"
        ) from None


def _labels_of(base, indices: np.ndarray) -> np.ndarray:
    """The labels of ``base[i]`` for ``i`` in ``indices``: from ``base.targets``/``base.labels``
    when present (torchvision's convention), else by reading every sample once."""
    for attr in ("targets", "labels"):
        t = getattr(base, attr, None)
        if t is not None and not callable(t):
            arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
            if arr.ndim == 1 and arr.shape[0] == len(base):
                return arr[indices].astype(np.int64)
    out = np.empty(indices.shape[0], dtype=np.int64)
    for k, i in enumerate(indices.tolist()):
        item = base[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise NCollapseError(
                f"sample {i} of {type(base).__name__} is a {type(item).__name__}; a dataset must "
                f"return (x, y) pairs"
            )
        out[k] = _label_of(item[1], i)
    return out


class MapDataset:
    """Any map-style dataset (``len(base)``, ``base[i] -> (x, y)``) seen through the protocol.

    Labels come from ``base.targets`` / ``base.labels`` when present, else from one pass over the
    samples; ``num_classes`` from ``base.num_classes``, ``len(base.classes)`` or ``max(y) + 1``.
    ``x`` must be an array or tensor (uint8 images are scaled by 1/255 by the loaders).
    """

    def __init__(
        self,
        base,
        labels=None,
        num_classes: int | None = None,
        classes: list[str] | None = None,
        name: str | None = None,
        indices=None,
        mean=None,
        std=None,
    ):
        try:
            n = len(base)
        except TypeError:
            raise NCollapseError(
                f"{type(base).__name__} has no len(); the trainer needs a map-style dataset "
                f"(torch.utils.data.Dataset with __len__ and __getitem__)"
            ) from None
        self.base = base
        self.indices = (
            np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        )
        if labels is None:
            labels = _labels_of(base, self.indices)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if self.labels.shape[0] != self.indices.shape[0]:
            raise NCollapseError(
                f"{self.indices.shape[0]} samples but {self.labels.shape[0]} labels"
            )
        if classes is None:
            cl = getattr(base, "classes", None)
            classes = [str(c) for c in cl] if isinstance(cl, (list, tuple)) else None
        if num_classes is None:
            num_classes = getattr(base, "num_classes", None)
        if num_classes is None:
            num_classes = len(classes) if classes else int(self.labels.max(initial=-1)) + 1
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise NCollapseError(f"{type(base).__name__} is empty; a dataset needs samples")
        if classes is not None and len(classes) != self.num_classes:
            classes = None
        self.classes = classes
        _check_label_range(self.labels, self.num_classes, f"labels of {type(base).__name__}")
        self.name = name or getattr(base, "name", None) or type(base).__name__
        self.mean = mean if mean is not None else getattr(base, "mean", None)
        self.std = std if std is not None else getattr(base, "std", None)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, i):
        x = self.base[int(self.indices[int(i)])][0]
        return x, int(self.labels[int(i)])

    def __repr__(self) -> str:
        return f"MapDataset({type(self.base).__name__}, n={len(self)}, K={self.num_classes})"

    def counts(self) -> np.ndarray:
        return class_count_vector(self.labels, self.num_classes)

    def set_epoch(self, epoch: int) -> None:
        fn = getattr(self.base, "set_epoch", None)
        if callable(fn):
            fn(epoch)

    def subset(self, indices) -> MapDataset:
        idx = np.asarray(indices, dtype=np.int64)
        return MapDataset(
            self.base,
            self.labels[idx],
            self.num_classes,
            self.classes,
            self.name,
            self.indices[idx],
            self.mean,
            self.std,
        )


def as_dataset(ds, num_classes: int | None = None):
    """``ds`` if it satisfies :class:`LabelledDataset`, else a :class:`MapDataset` around it.

    ``num_classes`` (e.g. the training set's, for a test set) overrides what would be inferred
    for a wrapped dataset and must agree with a protocol dataset's own.
    """
    if isinstance(ds, LabelledDataset) and isinstance(getattr(ds, "labels", None), np.ndarray):
        if num_classes is not None and int(ds.num_classes) != int(num_classes):
            raise NCollapseError(
                f"the test set has num_classes={ds.num_classes} but the training set "
                f"{num_classes}; both splits must share one label space"
            )
        return ds
    return MapDataset(ds, num_classes=num_classes)
