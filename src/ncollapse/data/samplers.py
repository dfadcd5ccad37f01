"""Class-aware samplers: seeded generators of sample indices, one array per epoch.

Each sampler draws a class ``k`` with probability ``p_k`` and then a sample of that class
uniformly (with replacement), except the instance sampler, which is a plain permutation:

==================  ===========================  ==========================================
name                ``p_k``                       note
==================  ===========================  ==========================================
``instance``        ``n_k / N``                   a permutation of all N samples per epoch
``class-balanced``  ``1 / K``                     (Kang et al. 2020, cRT)
``square-root``     ``sqrt(n_k) / sum sqrt(n_j)``  (Mahajan et al. 2018)
``reversed``        ``(1/n_k) / sum (1/n_j)``     BBN's reversed sampler (w_k = n_max / n_k)
==================  ===========================  ==========================================

All four are ``p_k ∝ n_k ** q`` with ``q = 1, 0, 1/2, -1``. Epoch ``e`` uses
``numpy.random.default_rng([seed, e])``, so an epoch's indices depend only on ``(seed, e)``.
Samplers are iterable (``__iter__``/``__len__``/``set_epoch``), so they also work as a torch
``DataLoader(sampler=...)``.
"""

from __future__ import annotations

import numpy as np

from ncollapse.errors import NCollapseError

SAMPLER_POWERS = {"instance": 1.0, "class-balanced": 0.0, "square-root": 0.5, "reversed": -1.0}
_ALIASES = {
    "instance": "instance",
    "instance-balanced": "instance",
    "random": "instance",
    "class-balanced": "class-balanced",
    "balanced": "class-balanced",
    "class": "class-balanced",
    "square-root": "square-root",
    "sqrt": "square-root",
    "reversed": "reversed",
    "reverse": "reversed",
    "inverse": "reversed",
}


def canonical_sampler_name(name: str) -> str:
    key = str(name).lower().replace("_", "-")
    if key not in _ALIASES:
        raise NCollapseError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_POWERS)}")
    return _ALIASES[key]


class ClassAwareSampler:
    """Draw ``num_samples`` indices per epoch with class probabilities ``p_k ∝ n_k ** power``."""

    name = "class-aware"

    def __init__(
        self,
        labels,
        power: float,
        num_samples: int | None = None,
        seed: int = 0,
        num_classes: int | None = None,
    ):
        from ncollapse.data.longtail import class_counts

        y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
        self.labels = y.astype(np.int64)
        self.counts = class_counts(self.labels, num_classes)
        if self.labels.size == 0:
            raise NCollapseError("cannot sample from an empty label vector")
        self.power = float(power)
        self.num_samples = int(num_samples) if num_samples is not None else int(self.labels.size)
        if self.num_samples < 1:
            raise NCollapseError(f"num_samples={num_samples} must be >= 1")
        self.seed = int(seed)
        self.epoch = 0
        present = self.counts > 0
        w = np.zeros(self.counts.shape[0], dtype=np.float64)
        w[present] = self.counts[present].astype(np.float64) ** self.power
        self.class_probs = w / w.sum()
        # samples sorted by class: class k occupies order[start[k]:start[k] + n_k]
        self._order = np.argsort(self.labels, kind="stable")
        self._start = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """The int64 sample indices for ``epoch`` (default: the current epoch)."""
        e = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, e])
        cls = rng.choice(self.counts.shape[0], size=self.num_samples, p=self.class_probs)
        off = np.floor(rng.random(self.num_samples) * self.counts[cls]).astype(np.int64)
        return self._order[self._start[cls] + off]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class InstanceSampler(ClassAwareSampler):
    """Instance-balanced: a seeded permutation of all samples (``shuffle=False``: identity)."""

    name = "instance"

    def __init__(self, labels, num_samples=None, seed=0, num_classes=None, shuffle=True):
        super().__init__(labels, 1.0, num_samples, seed, num_classes)
        self.shuffle = bool(shuffle)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        e = self.epoch if epoch is None else int(epoch)
        n = self.labels.size
        reps = -(-self.num_samples // n)
        if not self.shuffle:
            return np.tile(np.arange(n, dtype=np.int64), reps)[: self.num_samples]
        rng = np.random.default_rng([self.seed, e])
        return np.concatenate([rng.permutation(n) for _ in range(reps)])[: self.num_samples].astype(
            np.int64
        )


class ClassBalancedSampler(ClassAwareSampler):
    name = "class-balanced"

    def __init__(self, labels, num_samples=None, seed=0, num_classes=None):
        super().__init__(labels, 0.0, num_samples, seed, num_classes)


class SquareRootSampler(ClassAwareSampler):
    name = "square-root"

    def __init__(self, labels, num_samples=None, seed=0, num_classes=None):
        super().__init__(labels, 0.5, num_samples, seed, num_classes)


class ReversedSampler(ClassAwareSampler):
    """BBN's reversed sampler: ``p_k = w_k / sum w_j`` with ``w_k = n_max / n_k``."""

    name = "reversed"

    def __init__(self, labels, num_samples=None, seed=0, num_classes=None):
        super().__init__(labels, -1.0, num_samples, seed, num_classes)


_CLASSES = {
    "instance": InstanceSampler,
    "class-balanced": ClassBalancedSampler,
    "square-root": SquareRootSampler,
    "reversed": ReversedSampler,
}


def make_sampler(
    name: str,
    labels,
    num_samples: int | None = None,
    seed: int = 0,
    num_classes: int | None = None,
    shuffle: bool = True,
) -> ClassAwareSampler:
    """Sampler by name: instance, class-balanced, square-root or reversed (aliases accepted)."""
    key = canonical_sampler_name(name)
    if key == "instance":
        return InstanceSampler(labels, num_samples, seed, num_classes, shuffle=shuffle)
    return _CLASSES[key](labels, num_samples, seed, num_classes)


def sampler_class_probs(name: str, counts) -> np.ndarray:
    """Closed-form ``p_k`` of a named sampler for class counts ``n_k`` (all > 0)."""
    n = np.asarray(counts, dtype=np.float64)
    w = n ** SAMPLER_POWERS[canonical_sampler_name(name)]
    return w / w.sum()
