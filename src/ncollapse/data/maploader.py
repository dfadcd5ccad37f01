"""Loader for datasets read sample by sample (lazily decoded images, any map-style torch dataset).

:class:`MapLoader` is the counterpart of :class:`~ncollapse.data.loader.DeviceLoader` for data that
cannot (or should not) be uploaded to the device as one tensor. Both take their batches from the
same :func:`~ncollapse.data.loader.epoch_plan`, so for the same samples, sampler, seed and epoch
they yield the same batches -- the order of epoch ``e`` depends only on ``(seed, e)``, and a
resumed run replays exactly. Samples are read by a torch ``DataLoader`` (``num_workers`` worker
processes; ``0`` reads in the main process), uint8 batches are moved to the device, augmented
there in one ``gather`` (zero-padded random crop + flip, like ``DeviceLoader``'s CUDA path) and
normalised in one fused op.
"""

from __future__ import annotations

import math

import numpy as np

from ncollapse.data.loader import Augment, epoch_plan, gather_crops, normalisation
from ncollapse.errors import NCollapseError


def _as_tensor(x):
    import torch

    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise NCollapseError(
        f"a sample is a {type(x).__name__}; datasets must return x as a numpy array or a torch "
        f"tensor (uint8 C x H x W images, or float)"
    )


def collate_samples(items):
    """Stack the ``x`` of ``(x, y)`` samples into one batch tensor (labels come from the plan)."""
    import torch

    xs = [_as_tensor(it[0]) for it in items]
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        raise NCollapseError(
            f"samples of one batch have different shapes {sorted(shapes)[:3]}; resize them to one "
            f"size (image datasets: size=S)"
        )
    return torch.stack(xs)


class MapLoader:
    """Iterate ``(x float32 normalised, y int64)`` batches of a map-style dataset on ``device``.

    ``dataset`` satisfies :class:`~ncollapse.data.base.LabelledDataset` (``labels``,
    ``num_classes``, ``ds[i] -> (x, y)``); other arguments as :class:`DeviceLoader`, plus
    ``num_workers`` and ``pin_memory`` of the torch ``DataLoader``. A dataset with ``set_epoch``
    (per-sample random transforms) is told the epoch before each pass.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        device="cpu",
        shuffle: bool = True,
        drop_last: bool = False,
        sampler="instance",
        augment: Augment | None = None,
        mean=None,
        std=None,
        seed: int = 0,
        num_samples: int | None = None,
        num_classes: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ):
        import torch

        from ncollapse.data.samplers import make_sampler

        n = len(dataset)
        if n == 0:
            raise NCollapseError("cannot load an empty dataset")
        if int(batch_size) < 1:
            raise NCollapseError(f"batch_size={batch_size} must be >= 1")
        if not (0 <= int(rank) < int(world_size)):
            raise NCollapseError(f"rank={rank} must be in [0, world_size={world_size})")
        if int(num_workers) < 0:
            raise NCollapseError(f"num_workers={num_workers} must be >= 0")
        labels = np.asarray(dataset.labels, dtype=np.int64).reshape(-1)
        if labels.shape[0] != n:
            raise NCollapseError(f"{n} samples but {labels.shape[0]} labels")
        x0 = _as_tensor(dataset[0][0])
        if x0.ndim not in (1, 3):
            raise NCollapseError(
                f"samples must be C x H x W images or length-L vectors, got shape {tuple(x0.shape)}"
            )
        if augment is not None and x0.ndim != 3:
            raise NCollapseError(
                "augmentation needs C x H x W images; pass augment=None for 1-D data"
            )
        self.dataset = dataset
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.augment = augment
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.num_workers = int(num_workers)
        self.pin_memory = (self.device.type == "cuda") if pin_memory is None else bool(pin_memory)
        self.epoch = 0
        self.shape = tuple(int(s) for s in x0.shape)
        self.is_uint8 = x0.dtype == torch.uint8
        if isinstance(sampler, str):
            self.sampler = make_sampler(
                sampler,
                labels,
                num_samples=num_samples,
                seed=seed,
                num_classes=num_classes or getattr(dataset, "num_classes", None),
                shuffle=shuffle,
            )
        else:
            self.sampler = sampler
        self.labels = torch.from_numpy(labels)
        c = self.shape[0] if x0.ndim == 3 else 1
        self.mean, self.std, self._scale, self._shift = normalisation(
            c, self.is_uint8, mean, std, x0.ndim + 1, self.device
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def __len__(self) -> int:
        n = math.ceil(len(self.sampler) / self.world_size)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def plan(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        """This rank's sample order and augmentation draws for ``epoch`` (as DeviceLoader's)."""
        e = self.epoch if epoch is None else int(epoch)
        return epoch_plan(self.sampler, self.seed, e, self.augment, self.rank, self.world_size)

    def __iter__(self):
        import torch
        import torch.nn.functional as F

        e = self.epoch
        pl = self.plan(e)
        self.set_epoch(e + 1)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(e)  # copied into the workers when the iterator starts
        order = pl["order"]
        n = order.shape[0]
        nb = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        bounds = [(b * self.batch_size, min((b + 1) * self.batch_size, n)) for b in range(nb)]
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=[order[lo:hi].tolist() for lo, hi in bounds],
            num_workers=self.num_workers,
            collate_fn=collate_samples,
            pin_memory=self.pin_memory,
        )
        dev = self.device
        nbl = dev.type == "cuda"
        y_epoch = self.labels.index_select(0, torch.from_numpy(order))
        p = self.augment.crop_padding if self.augment is not None else 0
        if self.augment is not None:
            dy = torch.from_numpy(pl["dy"]).to(dev)
            dx = torch.from_numpy(pl["dx"]).to(dev)
            fl = torch.from_numpy(pl["flip"]).to(dev)
        for (lo, hi), x in zip(bounds, loader):
            x = x.to(dev, non_blocking=nbl)
            if not self.is_uint8:
                x = x.float()
            if self.augment is not None:
                h, w = self.shape[1], self.shape[2]
                xp = F.pad(x, (p, p, p, p)) if p else x
                x = gather_crops(xp, dy[lo:hi], dx[lo:hi], fl[lo:hi], h, w)
            y = y_epoch[lo:hi].to(dev, non_blocking=nbl)
            yield x.float().mul_(self._scale).add_(self._shift), y


# The name this loader had when it served only LazyImageDataset.
LazyLoader = MapLoader


def make_lazy_loader(
    dataset,
    batch_size: int = 256,
    device="cpu",
    sampler="instance",
    shuffle: bool = True,
    num_workers: int = 4,
    seed: int = 0,
    drop_last: bool = False,
    mean=None,
    std=None,
    num_samples: int | None = None,
    pin_memory: bool | None = None,
) -> MapLoader:
    """A :class:`MapLoader` with ``num_workers`` decoding workers (default 4) behind a seeded epoch
    sampler; ``mean``/``std`` default to the dataset's (ImageNet statistics for ImageNet-LT)."""
    return MapLoader(
        dataset,
        batch_size=batch_size,
        device=device,
        shuffle=shuffle,
        drop_last=drop_last,
        sampler=sampler,
        mean=getattr(dataset, "mean", None) if mean is None else mean,
        std=getattr(dataset, "std", None) if std is None else std,
        seed=seed,
        num_samples=num_samples,
        rank=0,
        world_size=1,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
