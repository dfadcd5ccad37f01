"""DeviceLoader (determinism, augmentation vs a per-sample reference, samplers, sharding), mixup,
and the lazy DataLoader-worker path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_fixtures import write_png_images
from ncollapse.data import (
    ArrayDataset,
    Augment,
    DeviceLoader,
    LazyImageDataset,
    make_lazy_loader,
    mixup,
)
from ncollapse.errors import NCollapseError


def _data(n=37, c=3, h=8, w=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, k, size=n))
    return x, y


def reference_epoch(x, y, plan, pad, mean, std):
    """Per-sample reference: zero-pad, crop at (dy, dx), flip, scale to [0,1], normalise."""
    outs = []
    c = x.shape[1]
    m = torch.tensor(mean if mean is not None else [0.0] * c, dtype=torch.float64).view(c, 1, 1)
    s = torch.tensor(std if std is not None else [1.0] * c, dtype=torch.float64).view(c, 1, 1)
    h, w = x.shape[2], x.shape[3]
    for k, i in enumerate(plan["order"]):
        im = F.pad(x[i], (pad, pad, pad, pad))
        dy, dx = int(plan["dy"][k]), int(plan["dx"][k])
        im = im[:, dy : dy + h, dx : dx + w]
        if plan["flip"][k]:
            im = torch.flip(im, dims=[2])
        outs.append((im.double() / 255.0 - m) / s)
    return torch.stack(outs), y[torch.from_numpy(plan["order"])]


@pytest.mark.parametrize("impl", ["segments", "gather"])
@pytest.mark.parametrize("aug", [Augment(4, True), Augment(2, False), Augment(0, True), None])
def test_augmentation_matches_per_sample_reference(impl, aug):
    x, y = _data()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    dl = DeviceLoader(x, y, batch_size=8, augment=aug, mean=mean, std=std, seed=11, crop_impl=impl)
    plan = dl.plan(0)
    batches = list(dl)
    xb = torch.cat([b[0] for b in batches])
    yb = torch.cat([b[1] for b in batches])
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert [b[0].shape[0] for b in batches] == [8, 8, 8, 8, 5]
    pad = aug.crop_padding if aug else 0
    ref_x, ref_y = reference_epoch(x, y, plan, pad, mean, std)
    assert torch.allclose(xb.double(), ref_x, atol=1e-5)
    assert torch.equal(yb, ref_y)
    assert sorted(plan["order"].tolist()) == list(range(37))
    assert plan["dy"].min() >= 0 and plan["dy"].max() <= 2 * pad
    assert plan["dx"].min() >= 0 and plan["dx"].max() <= 2 * pad
    if aug is None or not aug.flip:
        assert not plan["flip"].any()


def test_crop_offsets_and_flips_cover_their_range_and_the_last_sample():
    x, y = _data(n=3, c=2, h=5, w=4)
    dl = DeviceLoader(x, y, batch_size=3, augment=Augment(2, True), seed=0)
    seen = set()
    for e in range(60):
        plan = dl.plan(e)
        xb = next(iter(dl))[0]
        ref, _ = reference_epoch(x, y, plan, 2, None, None)
        assert torch.allclose(xb.double(), ref, atol=1e-6)
        for k in range(3):
            seen.add(
                (
                    int(plan["order"][k]),
                    int(plan["dy"][k]),
                    int(plan["dx"][k]),
                    bool(plan["flip"][k]),
                )
            )
    # the last sample was read with the extreme offsets in both orientations (end of the tensor)
    assert (2, 4, 4, True) in seen and (2, 4, 4, False) in seen and (2, 0, 0, True) in seen
    flips = np.concatenate([dl.plan(e)["flip"] for e in range(200)])
    assert abs(flips.mean() - 0.5) < 0.08
    offs = np.concatenate([dl.plan(e)["dx"] for e in range(200)])
    assert set(offs.tolist()) == {0, 1, 2, 3, 4}


def test_determinism_epochs_and_set_epoch():
    x, y = _data(n=50)
    kw = dict(batch_size=16, augment=Augment(4, True), seed=3)
    a, b = DeviceLoader(x, y, **kw), DeviceLoader(x, y, **kw)
    e0a, e0b = [t[0] for t in a], [t[0] for t in b]
    assert all(torch.equal(p, q) for p, q in zip(e0a, e0b))
    e1a = [t[0] for t in a]  # iterating again advances to epoch 1
    assert not torch.equal(e0a[0], e1a[0])
    a.set_epoch(0)
    assert all(torch.equal(p, q[0]) for p, q in zip(e0a, a))
    c = DeviceLoader(x, y, **{**kw, "seed": 4})
    assert not torch.equal(next(iter(c))[0], e0a[0])
    seq = DeviceLoader(x, y, batch_size=16, shuffle=False)
    assert torch.equal(torch.cat([t[1] for t in seq]), y)


def test_len_drop_last_and_sampler_in_loader():
    x, y = _data(n=37)
    assert len(DeviceLoader(x, y, batch_size=8)) == 5
    dl = DeviceLoader(x, y, batch_size=8, drop_last=True)
    assert len(dl) == 4 and len(list(dl)) == 4
    yy = torch.cat([torch.zeros(90, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    xx = torch.zeros(100, 1, 4, 4, dtype=torch.uint8)
    cb = DeviceLoader(xx, yy, batch_size=1000, sampler="class-balanced", num_samples=20000, seed=1)
    frac = torch.cat([t[1] for t in cb]).float().mean().item()
    assert abs(frac - 0.5) < 0.02
    rv = DeviceLoader(xx, yy, batch_size=1000, sampler="reversed", num_samples=20000, seed=1)
    frac = torch.cat([t[1] for t in rv]).float().mean().item()
    assert abs(frac - 0.9) < 0.02  # p_k ∝ 1/n_k: (1/10) / (1/10 + 1/90) = 0.9


def test_sharding_covers_the_epoch():
    x, y = _data(n=23)
    plans = [
        DeviceLoader(x, y, batch_size=4, rank=r, world_size=3, seed=2).plan(5) for r in range(3)
    ]
    allidx = np.concatenate([p["order"] for p in plans])
    assert len(allidx) == 24 and set(allidx.tolist()) == set(range(23))
    assert all(len(p["order"]) == 8 for p in plans)
    with pytest.raises(NCollapseError, match="rank"):
        DeviceLoader(x, y, rank=3, world_size=3)


def test_float_1d_data_and_dataset_constructor():
    x = torch.randn(30, 40)
    y = torch.arange(30) % 3
    dl = DeviceLoader(x, y, batch_size=7, shuffle=False, mean=0.5, std=2.0)
    xb = torch.cat([t[0] for t in dl])
    assert torch.allclose(xb, (x - 0.5) / 2.0, atol=1e-6)
    with pytest.raises(NCollapseError, match="augment=None"):
        DeviceLoader(x, y, augment=Augment())
    ds = ArrayDataset(
        np.zeros((5, 1, 4, 4), np.uint8) + 51, np.arange(5) % 2, 2, "toy", mean=(0.2,), std=(0.1,)
    )
    xb = next(iter(DeviceLoader.from_dataset(ds, batch_size=5, shuffle=False)))[0]
    assert torch.allclose(xb, torch.zeros_like(xb), atol=1e-5)  # (51/255 - 0.2)/0.1 = 0


def test_bad_loader_input():
    x, y = _data(n=5)
    with pytest.raises(NCollapseError, match="labels"):
        DeviceLoader(x, y[:3])
    with pytest.raises(NCollapseError, match="batch_size"):
        DeviceLoader(x, y, batch_size=0)
    with pytest.raises(NCollapseError, match="crop_padding"):
        Augment(crop_padding=-1)
    with pytest.raises(NCollapseError, match="std"):
        DeviceLoader(x, y, mean=(0, 0, 0), std=(1, 0, 1))


def test_mixup():
    x = torch.randn(16, 3, 4, 4)
    y = torch.arange(16)
    g = torch.Generator().manual_seed(5)
    xm, ya, yb, lam = mixup(x, y, 0.4, g)
    assert 0.0 <= lam <= 1.0 and torch.equal(ya, y)
    perm = yb  # labels are 0..15, so y_b is the permutation itself
    assert sorted(perm.tolist()) == list(range(16))
    assert torch.allclose(xm, lam * x + (1 - lam) * x[perm], atol=1e-6)
    xm2, _, yb2, lam2 = mixup(x, y, 0.4, torch.Generator().manual_seed(5))
    assert lam2 == lam and torch.equal(yb2, yb) and torch.equal(xm2, xm)
    _, _, _, one = mixup(x, y, 0.0, np.random.default_rng(0))
    assert one == 1.0
    lams = [mixup(x, y, 1.0, np.random.default_rng(s))[3] for s in range(400)]
    assert abs(np.mean(lams) - 0.5) < 0.05  # Beta(1, 1) is uniform


def test_lazy_loader_workers_match_in_process(tmp_path):
    names = [(f"c{i % 3}/img{i}.png", i % 3) for i in range(10)]
    imgs = write_png_images(tmp_path, names, size=(12, 14))
    ds = LazyImageDataset(
        [n for n, _ in names],
        [lab for _, lab in names],
        tmp_path,
        3,
        size=8,
        resize=None,
        train=True,
        seed=1,
    )
    l0 = make_lazy_loader(ds, batch_size=4, num_workers=0, seed=2, mean=(0.5,) * 3, std=(0.5,) * 3)
    l2 = make_lazy_loader(ds, batch_size=4, num_workers=2, seed=2, mean=(0.5,) * 3, std=(0.5,) * 3)
    b0, b2 = list(l0), list(l2)
    assert len(b0) == len(l0) == 3
    for (xa, ya), (xb, yb) in zip(b0, b2):
        assert xa.shape[1:] == (3, 8, 8) and xa.dtype == torch.float32
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(list(l0)[0][0], b0[0][0])  # next epoch: new order / crops
    ev = LazyImageDataset(
        [n for n, _ in names], [lab for _, lab in names], tmp_path, 3, size=None, resize=None
    )
    xb, yb = next(
        iter(make_lazy_loader(ev, batch_size=10, num_workers=0, shuffle=False, mean=0.0, std=1.0))
    )
    ref = torch.stack([torch.from_numpy(imgs[n]) for n, _ in names]).float() / 255
    assert torch.allclose(xb, ref, atol=1e-6) and yb.tolist() == [lab for _, lab in names]


@pytest.mark.gpu
def test_cuda_loader_matches_cpu_loader():
    x, y = _data(n=300)
    kw = dict(batch_size=64, augment=Augment(4, True), mean=(0.5,) * 3, std=(0.25,) * 3, seed=9)
    cpu = DeviceLoader(x, y, device="cpu", **kw)
    gpu = DeviceLoader(x, y, device="cuda", **kw)
    assert gpu.crop_impl == "gather" and cpu.crop_impl == "segments"
    for (xa, ya), (xb, yb) in zip(cpu, gpu):
        assert xb.is_cuda and torch.allclose(xa, xb.cpu(), atol=1e-6) and torch.equal(ya, yb.cpu())
