"""The dataset protocol (ArrayDataset, LazyImageDataset, any map-style torch dataset) and MapLoader,
the torch-DataLoader path, which must yield exactly DeviceLoader's batches for the same data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_fixtures import write_png_images
from ncollapse.data import (
    ArrayDataset,
    Augment,
    DeviceLoader,
    LabelledDataset,
    LazyImageDataset,
    MapDataset,
    MapLoader,
    as_dataset,
    is_resident,
    loader_kind,
)
from ncollapse.errors import NCollapseError


class PlainDataset(torch.utils.data.Dataset):
    """What a user writes: __len__ and __getitem__ returning (x, y), nothing else."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def _array(n=37, c=3, h=8, w=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)
    y = np.arange(n) % k
    rng.shuffle(y)
    return ArrayDataset(x, y, k, "toy", mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))


def test_containers_satisfy_the_protocol(tmp_path):
    arr = _array()
    names = [(f"c{i % 2}/{i}.png", i % 2) for i in range(4)]
    write_png_images(tmp_path, names, size=(6, 6))
    lazy = LazyImageDataset([n for n, _ in names], [lab for _, lab in names], tmp_path, 2)
    wrapped = as_dataset(PlainDataset(torch.from_numpy(arr.images), arr.labels))
    for ds in (arr, lazy, wrapped):
        assert isinstance(ds, LabelledDataset)
        assert ds.labels.dtype == np.int64 and len(ds) == ds.labels.shape[0]
        sub = ds.subset([2, 0])
        assert sub.labels.tolist() == ds.labels[[2, 0]].tolist()
        assert np.array_equal(np.asarray(sub[0][0]), np.asarray(ds[2][0]))
    assert is_resident(arr) and not is_resident(lazy) and not is_resident(wrapped)
    assert [loader_kind(d) for d in (arr, lazy, wrapped)] == ["device", "map", "map"]
    assert as_dataset(arr) is arr and as_dataset(lazy) is lazy
    assert wrapped.num_classes == 4 and wrapped.counts().tolist() == arr.counts().tolist()


def test_map_dataset_labels_classes_and_errors():
    x = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
    y = [0, 2, 1, 2, 0, 1]
    read = MapDataset(PlainDataset(x, y))  # labels by reading every sample once
    assert read.labels.tolist() == y and read.num_classes == 3

    class WithTargets(PlainDataset):
        classes = ["a", "b", "c", "d"]

        @property
        def targets(self):
            return torch.tensor(self.y)

        def __getitem__(self, i):  # never called to learn the labels
            raise AssertionError("read a sample")

    t = MapDataset(WithTargets(x, y))
    assert t.labels.tolist() == y and t.num_classes == 4 and t.classes == ["a", "b", "c", "d"]
    assert as_dataset(PlainDataset(x, y), num_classes=5).num_classes == 5
    with pytest.raises(NCollapseError, match=r"labels of PlainDataset span 0\.\.2.*num_classes=2"):
        as_dataset(PlainDataset(x, y), num_classes=2)
    with pytest.raises(NCollapseError, match="integer class"):
        MapDataset([(torch.zeros(2), 0.5)] * 3)
    assert MapDataset([(torch.zeros(2), torch.tensor(1))] * 2).labels.tolist() == [1, 1]
    with pytest.raises(NCollapseError, match=r"return \(x, y\) pairs"):
        MapDataset([torch.zeros(2)] * 3)
    with pytest.raises(NCollapseError, match="map-style dataset"):
        MapDataset(iter([(torch.zeros(2), 0)]))
    with pytest.raises(NCollapseError, match="share one label space"):
        as_dataset(_array(k=4), num_classes=3)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(augment=Augment(4, True)),
        dict(augment=Augment(2, False), sampler="class-balanced", num_samples=50),
        dict(augment=Augment(3, True), rank=1, world_size=2, drop_last=True),
        dict(shuffle=False, batch_size=5),
    ],
)
def test_map_loader_yields_device_loader_batches(kw):
    ds = _array()
    kw = {"batch_size": 8, "seed": 3, **kw}
    dev = DeviceLoader(ds.images, ds.labels, mean=ds.mean, std=ds.std, **kw)
    mp = MapLoader(MapDataset(PlainDataset(ds.images, ds.labels)), mean=ds.mean, std=ds.std, **kw)
    assert len(mp) == len(dev)
    for epoch in range(2):
        a, b = list(dev), list(mp)
        assert len(a) == len(b) == len(dev), epoch
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xb.dtype == torch.float32 and torch.equal(ya, yb)
            assert torch.equal(xa, xb)  # same plan, same arithmetic: bit-identical
    mp.set_epoch(0)
    dev.set_epoch(0)
    assert torch.equal(next(iter(mp))[0], next(iter(dev))[0])  # set_epoch pins (resume)


def test_map_loader_float_vectors_and_workers():
    x = torch.randn(30, 40)
    y = torch.arange(30) % 3
    ds = MapDataset(PlainDataset(x, y))
    m = MapLoader(ds, batch_size=7, shuffle=False, mean=0.5, std=2.0)
    xb = torch.cat([t[0] for t in m])
    assert torch.allclose(xb, (x - 0.5) / 2.0, atol=1e-6)
    w0 = list(MapLoader(ds, batch_size=4, seed=1))
    w2 = list(MapLoader(ds, batch_size=4, seed=1, num_workers=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(w0, w2))
    with pytest.raises(NCollapseError, match="augment=None"):
        MapLoader(ds, augment=Augment())


def test_map_loader_bad_samples():
    from PIL import Image

    class Pil(PlainDataset):
        def __getitem__(self, i):
            return Image.new("RGB", (4, 4)), int(self.y[i])

    with pytest.raises(NCollapseError, match="numpy array or a torch tensor"):
        MapLoader(MapDataset(Pil(None, [0, 1])))

    class Ragged(PlainDataset):
        def __getitem__(self, i):
            return torch.zeros(3, 4 + i, 4, dtype=torch.uint8), int(self.y[i])

    with pytest.raises(NCollapseError, match="different shapes"):
        list(MapLoader(MapDataset(Ragged(None, [0, 1])), batch_size=2))
    with pytest.raises(NCollapseError, match="num_workers"):
        MapLoader(MapDataset(PlainDataset(torch.zeros(2, 3), [0, 1])), num_workers=-1)


def test_lazy_eval_view_and_decoding_into_memory(tmp_path):
    from data_fixtures import write_imagenet_lt
    from ncollapse.data import load_dataset

    write_imagenet_lt(tmp_path, per_class=(2, 2, 2))
    lazy = load_dataset("imagenet-lt", "train", root=tmp_path, size=8, resize=10)
    ev = lazy.eval_view()
    assert lazy.train and not ev.train and ev.eval_view() is ev and len(ev) == len(lazy)
    lazy.set_epoch(1)
    crops = [lazy[i][0] for i in range(len(lazy))]
    lazy.set_epoch(2)
    assert any(not torch.equal(c, lazy[i][0]) for i, c in enumerate(crops))  # random per epoch
    mem = load_dataset("imagenet-lt", "train", root=tmp_path, size=8, resize=10, lazy=False)
    assert isinstance(mem, ArrayDataset) and mem.split == "train" and mem.mean is not None
    for i in range(len(mem)):  # decoded with the evaluation transform, not one frozen random crop
        assert np.array_equal(mem.images[i], ev[i][0].numpy())


@pytest.mark.gpu
def test_cuda_map_loader_matches_cpu_device_loader():
    ds = _array(n=300)
    kw = dict(batch_size=64, augment=Augment(4, True), mean=ds.mean, std=ds.std, seed=9)
    cpu = DeviceLoader(ds.images, ds.labels, device="cpu", **kw)
    gpu = MapLoader(MapDataset(PlainDataset(ds.images, ds.labels)), device="cuda", **kw)
    for (xa, ya), (xb, yb) in zip(cpu, gpu):
        assert xb.is_cuda and torch.allclose(xa, xb.cpu(), atol=1e-6) and torch.equal(ya, yb.cpu())
