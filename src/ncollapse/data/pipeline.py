"""The trainer's data path: datasets in, loaders out.

:func:`load_train_test` reads (or adopts) the two splits as :class:`~ncollapse.data.base.
LabelledDataset` objects; :func:`make_train_loaders` builds the training, clean-pass and test
loaders for the samples a long-tailed profile kept. The one decision here, which loader a dataset
gets, is :func:`loader_kind`: datasets that hold all their samples in one array (``images``) are
uploaded to the device once (:class:`~ncollapse.data.loader.DeviceLoader`); every other map-style
dataset is read through a torch ``DataLoader`` (:class:`~ncollapse.data.maploader.MapLoader`).
Both take each epoch's order and augmentation draws from the same ``(seed, epoch)`` plan, so a
resumed run replays exactly either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncollapse.data.base import as_dataset, eval_view, is_resident
from ncollapse.data.loader import Augment, DeviceLoader
from ncollapse.data.maploader import MapLoader, collate_samples
from ncollapse.data.registry import load_dataset
from ncollapse.errors import NCollapseError


def load_train_test(name: str, root=None, options: dict | None = None, datasets=None):
    """``(train, test)``: ``datasets`` when given (any map-style datasets, wrapped by
    :func:`~ncollapse.data.base.as_dataset` when needed), else the train and test splits of
    ``name`` read by :func:`~ncollapse.data.load_dataset` with ``options``."""
    if datasets is not None:
        try:
            train, test = datasets
        except (TypeError, ValueError):
            raise NCollapseError(
                "datasets must be a pair (train, test) of map-style datasets"
            ) from None
    else:
        opts = dict(options or {})
        train = load_dataset(name, split="train", root=root, **opts)
        test = load_dataset(name, split="test", root=root, **opts)
    train = as_dataset(train)
    test = as_dataset(test, num_classes=train.num_classes)
    return train, test


def loader_kind(ds) -> str:
    """``"device"`` (one resident tensor, :class:`DeviceLoader`) or ``"map"`` (sample by sample
    through a torch ``DataLoader``, :class:`MapLoader`)."""
    return "device" if is_resident(ds) else "map"


@dataclass
class TrainLoaders:
    """The loaders of one training run and the input shape they yield (without the batch)."""

    train: Any
    nc: Any
    test: Any
    in_shape: tuple[int, ...]
    kind: str
    aux: Callable[..., Any]


def make_train_loaders(
    train,
    test,
    indices,
    *,
    batch_size: int,
    test_batch_size: int,
    sampler="instance",
    augment: Augment | None = None,
    seed: int = 0,
    device="cpu",
    rank: int = 0,
    world_size: int = 1,
    limit_test: int | None = None,
    num_workers: int = 0,
) -> TrainLoaders:
    """Loaders over ``train[indices]`` (training order sharded over ``world_size`` ranks;
    ``batch_size`` is the per-rank batch) and over the whole ``test`` split (its first
    ``limit_test`` samples when set); the clean pass and the test pass are not sharded.

    ``aux(sampler, seed)`` builds a second training loader over the same samples with another
    sampler (as many samples per epoch), e.g. BBN's reversed branch.
    """
    import torch

    mean, std = getattr(train, "mean", None), getattr(train, "std", None)
    idx = np.asarray(indices, dtype=np.int64)
    if loader_kind(train) == "device" and loader_kind(test) == "device":
        x_tr = torch.as_tensor(np.asarray(train.images))[torch.as_tensor(idx)]
        y_tr = torch.as_tensor(np.asarray(train.labels))[torch.as_tensor(idx)].long()
        x_te = torch.as_tensor(np.asarray(test.images))
        y_te = torch.as_tensor(np.asarray(test.labels)).long()
        if limit_test:
            x_te, y_te = x_te[:limit_test], y_te[:limit_test]
        common = dict(device=device, mean=mean, std=std)

        def make(x, y, **kw):
            return DeviceLoader(x, y, **kw, **common)

        tr_src, nc_src, te_src = (x_tr, y_tr), (x_tr, y_tr), (x_te, y_te)
        in_shape = tuple(x_tr.shape[1:])
        kind = "device"
    else:
        sub = train.subset(idx)
        te = test.subset(np.arange(min(limit_test, len(test)))) if limit_test else test
        common = dict(device=device, mean=mean, std=std, num_workers=num_workers)

        def make(ds, **kw):
            return MapLoader(ds, **kw, **common)

        tr_src, nc_src, te_src = (sub,), (eval_view(sub),), (te,)
        in_shape = tuple(collate_samples([nc_src[0][0]]).shape[1:])
        kind = "map"
    n_train = int(idx.shape[0])
    train_loader = make(
        *tr_src,
        batch_size=batch_size,
        shuffle=True,
        sampler=sampler,
        augment=augment,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
    nc_loader = make(*nc_src, batch_size=test_batch_size, shuffle=False, augment=None)
    test_loader = make(*te_src, batch_size=test_batch_size, shuffle=False, augment=None)

    def aux(aux_sampler, aux_seed: int):
        return make(
            *tr_src,
            batch_size=batch_size,
            shuffle=True,
            sampler=aux_sampler,
            augment=augment,
            seed=aux_seed,
            rank=rank,
            world_size=world_size,
            num_samples=n_train,
        )

    return TrainLoaders(train_loader, nc_loader, test_loader, in_shape, kind, aux)
