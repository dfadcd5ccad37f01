"""Loader throughput: ncollapse's DeviceLoader vs a torch DataLoader with per-sample transforms.

All loaders do the same CIFAR-style augmentation on CPU -- zero-padded random crop (padding 4),
horizontal flip with p = 0.5, normalisation by per-channel mean/std -- on synthetic uint8
32 x 32 x 3 images, batch 128, measured side by side in one run (epochs interleaved, best epoch of
each, one torch thread for all). Two per-sample baselines, both written with torch ops because
torchvision is not installed, both in the main process (``num_workers=0``):

* torchvision-style: the structure of ``Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
  ToTensor(), Normalize(mean, std)])`` on uint8 tensors -- what long-tail codebases run (the goal);
* lean: the same steps fused into one function (a lower bound for any per-sample pipeline).

A third row times ncollapse's own sample-by-sample path, :class:`~ncollapse.data.MapLoader` (what
lazily read and user-supplied map-style datasets get in the trainer): samples read one by one
through a torch ``DataLoader`` (``num_workers=0``), then the same batched crop + flip + normalise
as ``DeviceLoader``, with the same batches.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class PerSampleAugment:
    """Lean per-sample pipeline in one function: pad, random crop, flip, normalise."""

    def __init__(self, pad: int, mean, std, generator):
        import torch

        self.pad = pad
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.g = generator

    def __call__(self, img):
        import torch
        import torch.nn.functional as F

        p = self.pad
        _, h, w = img.shape
        x = F.pad(img, (p, p, p, p))
        dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=self.g))
        x = x[:, dy : dy + h, dx : dx + w]
        if torch.rand(1, generator=self.g).item() < 0.5:
            x = x.flip(2)
        return (x.float().div(255.0) - self.mean) / self.std


# torchvision-style pipeline: the structure of Compose([RandomCrop(32, padding=4),
# RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)]) on uint8 tensors, written with torch
# ops (each transform draws its own random numbers; Normalize clones, as torchvision's does)


class RandomCropT:
    def __init__(self, size: int, padding: int, g):
        self.size, self.padding, self.g = size, padding, g

    def __call__(self, img):
        import torch
        import torch.nn.functional as F

        p = self.padding
        img = F.pad(img, [p, p, p, p], mode="constant", value=0)
        _, h, w = img.shape
        i = int(torch.randint(0, h - self.size + 1, size=(1,), generator=self.g).item())
        j = int(torch.randint(0, w - self.size + 1, size=(1,), generator=self.g).item())
        return img[..., i : i + self.size, j : j + self.size]


class RandomHorizontalFlipT:
    def __init__(self, g, p: float = 0.5):
        self.g, self.p = g, p

    def __call__(self, img):
        import torch

        if torch.rand(1, generator=self.g) < self.p:
            return img.flip(-1)
        return img


class ToFloatT:
    def __call__(self, img):
        import torch

        return img.to(torch.float32).div(255)


class NormalizeT:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, t):
        import torch

        t = t.clone()
        mean = torch.as_tensor(self.mean, dtype=t.dtype, device=t.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=t.dtype, device=t.device).view(-1, 1, 1)
        return t.sub_(mean).div_(std)


class ComposeT:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img


class PerSampleDataset:
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def _epoch(loader) -> int:
    n = 0
    for x, _y in loader:
        n += x.shape[0]
    return n


def run(quick: bool = False, threads: int = 1) -> dict:
    """One epoch per loader; ``threads`` torch intra-op threads for both (1: this machine is shared,
    and small per-batch ops only lose to thread hand-off costs)."""
    import torch

    from ncollapse.data import Augment, DeviceLoader, MapDataset, MapLoader

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    n = 4000 if quick else 20000
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, size=n)).long()

    dev = DeviceLoader(
        images,
        labels,
        batch_size=128,
        device="cpu",
        augment=Augment(crop_padding=4, flip=True),
        mean=MEAN,
        std=STD,
        seed=0,
    )

    mapl = MapLoader(
        MapDataset(PerSampleDataset(images, labels, lambda im: im), labels=labels.numpy()),
        batch_size=128,
        device="cpu",
        augment=Augment(crop_padding=4, flip=True),
        mean=MEAN,
        std=STD,
        seed=0,
    )

    def per_sample_loader(transform):
        return torch.utils.data.DataLoader(
            PerSampleDataset(images, labels, transform),
            batch_size=128,
            shuffle=True,
            num_workers=0,
            generator=torch.Generator().manual_seed(0),
        )

    g = torch.Generator().manual_seed(0)
    tv_style = per_sample_loader(
        ComposeT(
            [RandomCropT(32, 4, g), RandomHorizontalFlipT(g), ToFloatT(), NormalizeT(MEAN, STD)]
        )
    )
    lean = per_sample_loader(PerSampleAugment(4, MEAN, STD, g))
    _epoch(dev)  # warm-up (allocator, first touch)
    # interleave the loaders so that all see the same machine load; keep each one's best epoch
    t_dev, t_tv, t_lean, t_map = float("inf"), float("inf"), float("inf"), float("inf")
    for _ in range(2 if quick else 4):
        for _ in range(3):
            t0 = time.perf_counter()
            assert _epoch(dev) == n
            t_dev = min(t_dev, time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert _epoch(tv_style) == n
        t_tv = min(t_tv, time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert _epoch(lean) == n
        t_lean = min(t_lean, time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert _epoch(mapl) == n
        t_map = min(t_map, time.perf_counter() - t0)
    torch.set_num_threads(prev_threads)
    ips_dev, ips_tv, ips_lean, ips_map = n / t_dev, n / t_tv, n / t_lean, n / t_map
    ratio, ratio_lean = ips_dev / ips_tv, ips_dev / ips_lean
    row = lambda case, value, unit, goal="", ok="": {
        "case": case, "value": value, "unit": unit, "goal": goal, "ok": ok,
    }  # fmt: skip
    return {
        "name": "loader",
        "rows": [
            row("DeviceLoader (batched crop+flip+normalise)", round(ips_dev), "img/s"),
            row("DataLoader, torchvision-style per-sample transforms", round(ips_tv), "img/s"),
            row("DataLoader, lean one-function per-sample transform", round(ips_lean), "img/s"),
            row("speed-up vs torchvision-style", round(ratio, 1), "x", ">= 20", bool(ratio >= 20)),
            row("speed-up vs lean per-sample", round(ratio_lean, 1), "x"),
            row(
                "MapLoader (per-sample reads, batched crop+flip+normalise)", round(ips_map), "img/s"
            ),
            row("MapLoader speed-up vs torchvision-style", round(ips_map / ips_tv, 1), "x"),
        ],
        "images": n,
        "shape": [3, 32, 32],
        "batch_size": 128,
        "torch_threads": threads,
    }


if __name__ == "__main__":
    from _common import print_rows, save

    quick = "--quick" in sys.argv
    res = run(quick=quick)
    print_rows(res)
    print(f"wrote {save(res)}")
