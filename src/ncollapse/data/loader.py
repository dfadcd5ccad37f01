"""Device-resident loader: the whole dataset lives on the device as ONE tensor, batches are
augmented there with a few tensor ops, and no per-sample Python runs in the hot loop.

Design (after Keller Jordan's airbench)
---------------------------------------
* The images are uploaded once as a uint8 tensor (float for 1-D/float datasets). With random-crop
  augmentation, the stored tensor is the zero-padded one, ``N x C x (H+2p) x (W+2p)``.
* Per epoch the loader makes a *plan* on the CPU from ``numpy.random.default_rng([seed, epoch])``:
  the sample order (from the sampler), crop offsets ``dy, dx`` in ``{0, ..., 2p}`` and flip bits.
  The plan depends only on ``(seed, epoch)``, so CPU and CUDA runs see the same batches.
* A batch is one indexing op on uint8 data. For a sample with offsets ``(dy, dx)`` the crop is
  the strided view ``pad[:, dy:dy+H, dx:dx+W]``, which lies inside ONE contiguous run of the padded
  image of length ``L = (C-1)·Hp·Wp + (H-1)·Wp + W`` starting at ``dy·Wp + dx``. A flipped sample
  reads the *mirrored* padded image at column ``2p - dx`` instead, since
  ``pad[dy+i, dx+W-1-j] = mirror[dy+i, 2p-dx+j]``. On the CPU (``crop_impl="segments"``) the
  resident tensor holds both orientations, ``N x 2 x C x Hp x Wp``, and a batch is
  ``index_select`` of B run starts from the stride-1 window view ``data.view(-1).unfold(0, L, 1)``
  (B memcpy-like block copies, no per-pixel index arithmetic), then an ``as_strided`` view picks
  the crop. On CUDA (``crop_impl="gather"``) only one orientation is stored and a batch is one
  ``torch.gather`` with per-pixel indices, which is cheap there. Both give identical batches.
* Normalisation is fused into the float conversion: ``x = u8 * (1 / (255 std_c)) - mean_c / std_c``
  (``mean``/``std`` are per-channel in [0, 1] units, torchvision's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ncollapse.errors import NCollapseError


@dataclass(frozen=True)
class Augment:
    """Batched augmentation: zero-padded random crop (``crop_padding`` pixels) and h-flip."""

    crop_padding: int = 4
    flip: bool = True

    def __post_init__(self):
        if int(self.crop_padding) != self.crop_padding or self.crop_padding < 0:
            raise NCollapseError(f"crop_padding={self.crop_padding} must be an integer >= 0")


def normalisation(c: int, is_uint8: bool, mean, std, ndim: int, device):
    """``(mean, std, scale, shift)`` with ``x = raw * scale + shift`` the normalised input:
    ``scale = 1 / (u std_c)``, ``shift = -mean_c / std_c`` (``u = 255`` for uint8 data, else 1;
    a missing mean is 0 and a missing std 1). ``scale``/``shift`` are float32 tensors shaped to
    broadcast over ``N x C x H x W`` (``ndim=4``) or ``N x L`` batches."""
    import torch

    mean = None if mean is None else np.broadcast_to(np.asarray(mean, np.float64), (c,))
    std = None if std is None else np.broadcast_to(np.asarray(std, np.float64), (c,))
    if std is not None and np.any(std <= 0):
        raise NCollapseError(f"std={std.tolist()} must be > 0")
    u = 255.0 if is_uint8 else 1.0
    scale = np.full(c, 1.0 / u) if std is None else 1.0 / (u * std)
    shift = np.zeros(c) if mean is None else -mean / (std if std is not None else 1.0)
    view = (1, c, 1, 1) if ndim == 4 else (1, 1)
    scale_t = torch.tensor(scale, dtype=torch.float32, device=device).view(view)
    shift_t = torch.tensor(shift, dtype=torch.float32, device=device).view(view)
    return mean, std, scale_t, shift_t


def epoch_plan(
    sampler,
    seed: int,
    epoch: int,
    augment: Augment | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, np.ndarray]:
    """One rank's sample order and augmentation draws for ``epoch``; a function of
    ``(sampler, seed, epoch)`` only, shared by every loader so that they all see the same batches.

    The order is ``sampler.indices(epoch)``, sharded like ``DistributedSampler`` (padded by
    wrapping to a multiple of ``world_size``, then every ``world_size``-th sample from ``rank``);
    crop offsets ``dy, dx`` in ``{0..2p}`` and flip bits come from
    ``numpy.random.default_rng([seed, epoch, 0xA06])``; ``valid`` is False at the repeated samples
    that pad a DDP epoch, which statistics must skip.
    """
    order = np.asarray(sampler.indices(epoch), dtype=np.int64)
    valid = np.ones(order.size, bool)  # False marks the repeats that pad a DDP epoch
    if world_size > 1:
        total = math.ceil(order.size / world_size) * world_size
        valid = (np.arange(total) < order.size)[rank::world_size]
        order = np.resize(order, total)[rank::world_size]
    n = order.size
    rng = np.random.default_rng([int(seed), int(epoch), 0xA06])
    p = int(augment.crop_padding) if augment is not None else 0
    dy = rng.integers(0, 2 * p + 1, size=n) if p else np.zeros(n, np.int64)
    dx = rng.integers(0, 2 * p + 1, size=n) if p else np.zeros(n, np.int64)
    flip = rng.random(n) < 0.5 if (augment is not None and augment.flip) else np.zeros(n, bool)
    return {
        "order": order,
        "dy": dy.astype(np.int64),
        "dx": dx.astype(np.int64),
        "flip": flip,
        "valid": valid,
    }


def gather_crops(padded, dy, dx, flip, h: int, w: int):
    """Crops ``padded[b, :, dy_b:dy_b+h, dx_b:dx_b+w]``, mirrored where ``flip_b``, as one
    ``torch.gather`` with per-pixel indices (``padded``: B x C x Hp x Wp; ``dy, dx, flip``: B
    tensors on the same device)."""
    import torch

    bsz, c, hp, wp = padded.shape
    ar_h = torch.arange(h, device=padded.device)
    ar_w = torch.arange(w, device=padded.device)
    rows = (dy[:, None] + ar_h) * wp  # B x H
    cols = torch.where(flip[:, None], w - 1 - ar_w, ar_w) + dx[:, None]
    pix = (rows[:, :, None] + cols[:, None, :]).view(bsz, 1, h * w)
    src = padded.reshape(bsz, c, hp * wp)
    return src.gather(2, pix.expand(bsz, c, h * w)).view(bsz, c, h, w)


def _to_tensor(x):
    import torch

    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.ascontiguousarray(x))


class DeviceLoader:
    """Iterate ``(x float32 N x C x H x W normalised, y int64)`` batches from device-resident data.

    Parameters
    ----------
    images : uint8 array/tensor N x C x H x W (N x H x W gets C = 1), or float N x L (1-D data,
        no augmentation); float images are used as they are (no division by 255).
    labels : int array N.
    sampler : ``"instance"`` (permutation, or identity when ``shuffle=False``),
        ``"class-balanced"``, ``"square-root"``, ``"reversed"``, or a sampler object with
        ``indices(epoch)``.
    augment : :class:`Augment` or None.
    mean, std : per-channel statistics in [0, 1] units; None = only scale to [0, 1].
    rank, world_size : shard every epoch's order like ``DistributedSampler`` (padding by wrapping;
        ``plan(e)["valid"]`` is False at the repeated samples, which statistics must skip).
    crop_impl : ``"auto"`` (segments on CPU, gather on CUDA), ``"segments"`` or ``"gather"``.

    Iterating starts the current epoch and then advances it by one; ``set_epoch(e)`` pins it.
    """

    def __init__(
        self,
        images,
        labels,
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
        crop_impl: str = "auto",
    ):
        import torch
        import torch.nn.functional as F

        from ncollapse.data.samplers import make_sampler

        x = _to_tensor(images)
        y = _to_tensor(labels).long().reshape(-1)
        if x.ndim == 3 and x.dtype == torch.uint8:
            x = x.unsqueeze(1)
        if x.ndim not in (2, 4):
            raise NCollapseError(
                f"images must be N x C x H x W (or N x L), got shape {tuple(x.shape)}"
            )
        if x.shape[0] != y.shape[0]:
            raise NCollapseError(f"{x.shape[0]} images but {y.shape[0]} labels")
        if x.shape[0] == 0:
            raise NCollapseError("cannot load an empty dataset")
        if int(batch_size) < 1:
            raise NCollapseError(f"batch_size={batch_size} must be >= 1")
        if not (0 <= int(rank) < int(world_size)):
            raise NCollapseError(f"rank={rank} must be in [0, world_size={world_size})")
        if augment is not None and x.ndim != 4:
            raise NCollapseError(
                "augmentation needs N x C x H x W images; pass augment=None for 1-D data"
            )
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.augment = augment
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.is_uint8 = x.dtype == torch.uint8
        self.n = int(x.shape[0])
        self.shape = tuple(int(s) for s in x.shape[1:])
        if isinstance(sampler, str):
            self.sampler = make_sampler(
                sampler,
                y.numpy() if y.device.type == "cpu" else y.cpu().numpy(),
                num_samples=num_samples,
                seed=seed,
                num_classes=num_classes,
                shuffle=shuffle,
            )
        else:
            self.sampler = sampler
        self.pad = int(augment.crop_padding) if augment is not None else 0
        if crop_impl == "auto":
            crop_impl = "gather" if self.device.type == "cuda" else "segments"
        if crop_impl not in ("segments", "gather"):
            raise NCollapseError(f"crop_impl={crop_impl!r}; use 'auto', 'segments' or 'gather'")
        self.crop_impl = crop_impl if augment is not None else "none"
        xd = x.to(self.device)
        if not self.is_uint8:
            xd = xd.float()
        if self.pad:
            p = self.pad
            xd = F.pad(xd, (p, p, p, p))  # zeros, as torchvision's RandomCrop(padding=p)
        self.orientations = 1
        if self.crop_impl == "segments" and augment.flip:
            xd = torch.stack([xd, xd.flip(3)], dim=1)  # N x 2 x C x Hp x Wp: plain and mirrored
            self.orientations = 2
        self.data = xd.contiguous()  # the one resident tensor
        self.labels = y.to(self.device)
        c = self.shape[0] if x.ndim == 4 else 1
        self.mean, self.std, self._scale, self._shift = normalisation(
            c, self.is_uint8, mean, std, x.ndim, self.device
        )

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> DeviceLoader:
        """Build from an :class:`~ncollapse.data.ArrayDataset`, using its mean/std by default."""
        kwargs.setdefault("mean", dataset.mean)
        kwargs.setdefault("std", dataset.std)
        kwargs.setdefault("num_classes", dataset.num_classes)
        return cls(dataset.images, dataset.labels, **kwargs)

    # ------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def _local_count(self) -> int:
        total = len(self.sampler)
        return math.ceil(total / self.world_size)

    def __len__(self) -> int:
        n = self._local_count()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def plan(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        """This rank's sample order and augmentation draws for ``epoch`` (numpy, CPU)."""
        e = self.epoch if epoch is None else int(epoch)
        return epoch_plan(self.sampler, self.seed, e, self.augment, self.rank, self.world_size)

    def __iter__(self):
        import torch

        e = self.epoch
        pl = self.plan(e)
        self.set_epoch(e + 1)
        dev = self.device
        order = torch.from_numpy(pl["order"]).to(dev)
        n = order.shape[0]
        nb = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        impl = self.crop_impl
        if impl != "none":
            c, h, w = self.shape
            p = self.pad
            hp, wp = h + 2 * p, w + 2 * p
            plane = hp * wp
            dy, dx, flip = pl["dy"], pl["dx"], pl["flip"]
            if impl == "segments":
                # flat start of each sample's crop run (see module docstring)
                col = np.where(flip, 2 * p - dx, dx) if self.orientations == 2 else dx
                base = pl["order"] * (self.orientations * c * plane) + dy * wp + col
                if self.orientations == 2:
                    base = base + flip.astype(np.int64) * (c * plane)
                base_t = torch.from_numpy(base).to(dev)
                run = (c - 1) * plane + (h - 1) * wp + w
                runs = self.data.view(-1).unfold(0, run, 1)  # every length-L window, no copy
                crop_stride = (run, plane, wp, 1)
            else:
                dy_t = torch.from_numpy(dy).to(dev)
                dx_t = torch.from_numpy(dx).to(dev)
                fl_t = torch.from_numpy(flip).to(dev)
        y_epoch = self.labels.index_select(0, order)
        for b in range(nb):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if impl == "segments":
                blocks = runs.index_select(0, base_t[lo:hi])  # B x L, contiguous
                x = blocks.as_strided((hi - lo, c, h, w), crop_stride)  # the crops, as a view
            elif impl == "gather":
                src = self.data.index_select(0, order[lo:hi])
                x = gather_crops(src, dy_t[lo:hi], dx_t[lo:hi], fl_t[lo:hi], h, w)
            else:
                x = self.data.index_select(0, order[lo:hi])
            yield x.float().mul_(self._scale).add_(self._shift), y_epoch[lo:hi]


def mixup(x, y, alpha: float, generator=None):
    """Input mixup (Zhang et al. 2018): ``x_mix = lam x + (1 - lam) x[perm]``, ``lam ~ Beta(a, a)``.

    Returns ``(x_mix, y_a, y_b, lam)`` with ``y_a = y`` and ``y_b = y[perm]``; the loss is
    ``lam * CE(out, y_a) + (1 - lam) * CE(out, y_b)``. ``alpha <= 0`` gives ``lam = 1`` (no mixing).
    ``generator`` is a ``torch.Generator`` (CPU) or a ``numpy.random.Generator``; it drives both
    ``lam`` and the permutation, so results are reproducible.
    """
    import torch

    if not math.isfinite(float(alpha)):
        raise NCollapseError(f"alpha={alpha} must be finite")
    if isinstance(generator, np.random.Generator):
        rng = generator
    else:
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
    lam = float(rng.beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = torch.from_numpy(rng.permutation(x.shape[0])).to(x.device)
    x_mix = x * lam + x.index_select(0, perm) * (1.0 - lam)
    return x_mix, y, y.index_select(0, perm), lam
