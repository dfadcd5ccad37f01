"""The paper-scale recipes (configs/methods/paper/, NCMC's tables) fit one 80 GB A100, follow the
readings of docs/paper-recipes.md, and the SVHN reader's ``extra`` option that they use.

Memory: the repository has no estimator of a backbone's training memory, so this file holds one
(:func:`step_bytes`): the backbone is built on PyTorch's ``meta`` device (shapes only, nothing is
allocated) and one forward pass of a training batch counts every tensor autograd saves for the
backward pass (``torch.autograd.graph.saved_tensors_hooks``), plus weights, gradients and SGD
momentum. It leaves out cuDNN workspaces and the transient buffers of the backward pass.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml

from ncollapse.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "configs" / "methods" / "paper").glob("*.yaml"))
GIB = 2**30
A100_80GB = 80 * GIB  # 81,920 MiB
IN_SHAPE = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "svhn": (3, 32, 32),
            "stl10": (3, 96, 96)}  # fmt: skip


@cache
def step_bytes(backbone: str, args: tuple, in_shape: tuple, batch: int) -> tuple[int, int]:
    """``(activations, parameters)`` in bytes for one float32 training step of ``batch`` images:
    tensors saved for backward (each counted once) and weights + gradients + SGD momentum."""
    import torch

    from ncollapse.models import create_backbone

    with torch.device("meta"):
        net = create_backbone(backbone, in_channels=in_shape[0], **dict(args))
        x = torch.empty(batch, *in_shape)
    params = {id(p) for p in net.parameters()}
    saved: dict[int, torch.Tensor] = {}

    def pack(t):
        if id(t) not in params:
            saved.setdefault(id(t), t)  # kept alive, so ids are not reused
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net.features(x)
    assert out.device.type == "meta" and out.shape[0] == batch
    act = sum(t.numel() * t.element_size() for t in saved.values())
    par = 3 * sum(p.numel() * p.element_size() for p in net.parameters())
    return act, par


def recipe_step_bytes(cfg) -> tuple[int, int]:
    args = tuple(sorted(cfg.model.backbone_args.items()))
    return step_bytes(cfg.model.backbone, args, IN_SHAPE[cfg.data.name], int(cfg.data.batch_size))


def _cfg(path: Path):
    return config_from_dict(yaml.safe_load(path.read_text()))


# ----------------------------------------------------------------------------- memory
def test_estimator_reproduces_the_audit():
    """DenseNet-BC-150 with App. F's growth 32 at STL-10's 96 px: ~194 GiB, no single GPU; the
    growth-12 DenseNet of the SETF code at 96 px: ~73 GiB."""
    dn = (("bottleneck", True), ("depth", 150), ("reduction", 0.5))
    act32, _ = step_bytes("densenet_bc", (*dn, ("growth", 32)), (3, 96, 96), 128)
    act12, _ = step_bytes("densenet_bc", (*dn, ("growth", 12)), (3, 96, 96), 128)
    assert 190 * GIB < act32 < 200 * GIB
    assert 70 * GIB < act12 < 76 * GIB


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_recipe_fits_one_a100_80gb(path):
    cfg = _cfg(path)
    act, par = recipe_step_bytes(cfg)
    assert act + par < A100_80GB, f"{path.name}: {(act + par) / GIB:.1f} GiB per step"


# ----------------------------------------------------------------------------- readings
def test_paper_recipes_are_the_generated_grid(method_configs):
    want = {
        name.removeprefix("paper/"): recipe
        for name, recipe in method_configs.recipes().items()
        if name.startswith("paper/")
    }
    assert len(want) == 4 * 2 * 3 * 2 * 3  # data sets x backbones x methods x mixup x rho
    assert sorted(want) == [p.name for p in PAPER]
    for path in PAPER:
        header, cfg = want[path.name]
        assert yaml.safe_load(path.read_text()) == cfg, path.name
        assert path.read_text().startswith("# " + header.splitlines()[0])


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_recipe_readings(path):
    cfg = _cfg(path)
    ds, bb = cfg.data.name, cfg.model.backbone
    # SETF code: crop 4 + flip on CIFAR only; SVHN and STL-10 get ToTensor + Normalize
    assert cfg.data.augment is (ds in ("cifar10", "cifar100"))
    if cfg.data.augment:
        assert cfg.data.crop_padding == 4 and cfg.data.flip is True
    # SETF code: SVHN's training set is train + extra
    assert cfg.data.options == ({"extra": True} if ds == "svhn" else {})
    if bb == "densenet_bc":
        growth = {"cifar10": 12, "cifar100": 12, "svhn": 32, "stl10": 12}[ds]
        assert cfg.model.backbone_args["growth"] == growth
        assert cfg.model.backbone_args["depth"] == 150
    # CE baseline: a plain learnable linear classifier on the raw features, on every data set
    if cfg.loss.name == "ce":
        assert cfg.model.head == "linear" and not cfg.model.head_args
    if cfg.model.head == "multicenter":
        # App. F: BN(h/|h|) for DenseNet; SVHN / STL-10 normalise h first
        want = bb == "densenet_bc" or ds in ("svhn", "stl10")
        assert cfg.model.head_args.get("pre_normalize", False) is want
        # the NCMC norm penalty keeps the paper's per-sample (summed) form: nothing to set
        assert set(cfg.loss.params) == {"lam"}
    assert cfg.data.batch_size == 128 and cfg.train.epochs == 200


# ----------------------------------------------------------------------------- SVHN extra
def _write_mat(path: Path, labels: list[int], fill: int) -> None:
    import scipy.io

    n = len(labels)
    x = np.full((32, 32, 3, n), fill, dtype=np.uint8)
    x[0, 0, 0, :] = np.arange(n, dtype=np.uint8)  # tell the images apart
    y = np.asarray(labels, dtype=np.uint8).reshape(-1, 1)  # 10 = digit 0
    scipy.io.savemat(str(path), {"X": x, "y": y})


@pytest.fixture
def svhn_dir(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    _write_mat(folder / "train_32x32.mat", [1, 2, 10], fill=1)
    _write_mat(folder / "test_32x32.mat", [3, 10], fill=2)
    _write_mat(folder / "extra_32x32.mat", [10, 4, 5, 6], fill=3)
    return folder


def test_svhn_reader_appends_extra_to_train(svhn_dir):
    from ncollapse.data.readers.svhn import read_svhn

    plain = read_svhn(svhn_dir, "train")
    assert plain.labels.tolist() == [1, 2, 0] and plain.images.shape == (3, 3, 32, 32)
    both = read_svhn(svhn_dir, "train", extra=True)
    assert both.labels.tolist() == [1, 2, 0, 0, 4, 5, 6]
    assert both.images.shape == (7, 3, 32, 32) and both.images.dtype == np.uint8
    assert both.images[:3, 1, 5, 5].tolist() == [1, 1, 1]  # train first ...
    assert both.images[3:, 1, 5, 5].tolist() == [3, 3, 3, 3]  # ... then extra
    assert both.images[3:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert both.info == {"extra": True, "n_train": 3, "n_extra": 4}
    # the option only changes the training split
    assert read_svhn(svhn_dir, "test", extra=True).labels.tolist() == [3, 0]


def test_svhn_required_files():
    from ncollapse.data.readers.svhn import svhn_required

    assert svhn_required("train", {}) == ["train_32x32.mat"]
    assert svhn_required("train", {"extra": True}) == ["train_32x32.mat", "extra_32x32.mat"]
    assert svhn_required("test", {"extra": True}) == ["test_32x32.mat"]


def test_svhn_reader_missing_extra_names_file_and_folder(svhn_dir):
    from ncollapse.data.readers.svhn import read_svhn
    from ncollapse.errors import DataNotFoundError

    (svhn_dir / "extra_32x32.mat").unlink()
    with pytest.raises(DataNotFoundError) as err:
        read_svhn(svhn_dir, "train", extra=True)
    msg = str(err.value)
    assert "extra_32x32.mat" in msg and str(svhn_dir) in msg and "never downloads" in msg
    assert read_svhn(svhn_dir, "train").labels.tolist() == [1, 2, 0]  # without the option


def test_load_dataset_svhn_extra(svhn_dir):
    from ncollapse.data import load_dataset

    ds = load_dataset("svhn", "train", root=svhn_dir.parent, extra=True)
    assert len(ds) == 7 and ds.mean is not None
    assert len(load_dataset("svhn", "test", root=svhn_dir.parent, extra=True)) == 2


def test_load_dataset_svhn_extra_missing(svhn_dir):
    from ncollapse.data import load_dataset
    from ncollapse.errors import DataNotFoundError

    (svhn_dir / "extra_32x32.mat").unlink()
    with pytest.raises(DataNotFoundError, match=r"svhn \(train\) not found.*extra_32x32\.mat"):
        load_dataset("svhn", "train", root=svhn_dir.parent, extra=True)


def test_svhn_extra_must_be_a_bool(svhn_dir):
    """A string such as "false" is not silently read as true."""
    from ncollapse.data import load_dataset
    from ncollapse.errors import NCollapseError

    with pytest.raises(NCollapseError, match=r"svhn option extra='false' is not true or false.*"):
        load_dataset("svhn", "train", root=svhn_dir.parent, extra="false")
