"""The trainer's data path: lazily read ImageNet-LT-style lists train end to end through the CLI
and resume exactly, any map-style torch Dataset trains (and gives the in-memory path's result),
and an explicit data root that does not exist stops the run with one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import write_imagenet_lt
from ncollapse.cli import main
from ncollapse.config import load_config
from ncollapse.data import ArrayDataset, load_dataset
from ncollapse.errors import DataNotFoundError
from ncollapse.train import Trainer
from ncollapse.train.checkpoint import load_checkpoint

TINY = [
    "model.backbone=mlp",
    "model.backbone_args={depth: 2, width: 16, batchnorm: false}",
    "model.head=linear",
    "optim.lr=0.05",
    "sched.name=cosine",
    "train.progress=false",
    "run.tensorboard=false",
    "eval.groups=ranges",
    "eval.ranges=[1,2]",
]


def _lt_args(root: Path, out: Path) -> list[str]:
    return [
        "data.name=imagenet-lt",
        f"data.root={root}",
        "data.profile=none",
        "data.batch_size=4",
        "data.test_batch_size=2",
        *TINY,
        f"run.out_dir={out}",
    ]


def _history(run_dir) -> list[dict]:
    return [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


EMPTY = str(Path(__file__).parent / "data" / "empty.yaml")


def test_imagenet_lt_lists_train_one_epoch_through_the_cli(tmp_path, capsys):
    root = tmp_path / "ilsvrc"
    write_imagenet_lt(root, per_class=(5, 3, 2))
    rc = main(["train", EMPTY, *_lt_args(root, tmp_path / "runs"), "train.epochs=1", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    out = json.loads(cap.out)
    hist = _history(out["run_dir"])
    assert [h["epoch"] for h in hist] == [0]
    assert hist[0]["group_sizes"] == {"head": 1, "medium": 1, "tail": 1}
    assert np.isfinite(hist[0]["train_loss"]) and 0 <= hist[0]["test_acc"] <= 1
    assert hist[0]["nc"]["nc1"]["nc1"] >= 0
    man = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    assert man["counts"] == [5, 3, 2]  # K = 3 from the lists; images at the default 224 x 224


def test_imagenet_lt_resume_is_exact_with_random_crops(tmp_path):
    """Lazy train-mode crops are drawn per (seed, epoch, index) and the loader order per
    (seed, epoch): an interrupted run resumed from its checkpoint equals an uninterrupted one."""
    root = tmp_path / "ilsvrc"
    write_imagenet_lt(root, per_class=(5, 3, 2))
    args = [*_lt_args(root, tmp_path), "train.epochs=2", "data.augment=true", "data.flip=true"]
    args += ["data.crop_padding=1", "data.options={size: 8, resize: 10, seed: 4}"]
    full = Trainer(load_config(None, [*args, "run.name=full"])).fit()
    part = Trainer(load_config(None, [*args, "run.name=part"])).fit(stop_after=1)
    resumed = Trainer.resume(part.run_dir).fit()
    a, b = _history(full.run_dir)[-1], _history(resumed.run_dir)[-1]
    assert b["epoch"] == 1
    for key in ["train_loss", "train_acc", "test_acc"]:
        assert a[key] == b[key], key
    sa, sb = load_checkpoint(full.run_dir)["model"], load_checkpoint(resumed.run_dir)["model"]
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class UserDataset(torch.utils.data.Dataset):
    """A user's own dataset: nothing but __len__ and __getitem__ -> (tensor, int)."""

    def __init__(self, images, labels):
        self.images, self.labels_ = torch.from_numpy(images), labels

    def __len__(self):
        return len(self.labels_)

    def __getitem__(self, i):
        return self.images[i], int(self.labels_[i])


@pytest.mark.parametrize(
    "extra",
    [
        ["train.epochs=2"],
        # BBN: a second loader with the reversed sampler over the same samples
        ["train.epochs=1", "model.head=bilateral", "method.name=gbbn", "data.augment=true"],
    ],
)
def test_trainer_accepts_any_map_style_torch_dataset(tmp_path, extra):
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    args = [
        "data.profile=exp",
        "data.rho=10",
        "data.batch_size=64",
        "data.test_batch_size=256",
        *TINY,
        "eval.ranges=[3,7]",
        *extra,
    ]
    user = Trainer(
        load_config(None, [*args, f"run.out_dir={tmp_path / 'user'}"]),
        datasets=(UserDataset(tr.images, tr.labels), UserDataset(te.images, te.labels)),
    )
    assert user.loaders.kind == "map" and user.num_classes == 10
    assert (user.aux_loader is not None) == ("method.name=gbbn" in extra)
    res = user.fit()
    # the same samples as in-memory arrays (no statistics: the user dataset has none either)
    arrays = (
        ArrayDataset(tr.images, tr.labels, 10, "digits"),
        ArrayDataset(te.images, te.labels, 10, "digits"),
    )
    ref_tr = Trainer(load_config(None, [*args, f"run.out_dir={tmp_path / 'ref'}"]), datasets=arrays)
    assert ref_tr.loaders.kind == "device"
    ref = ref_tr.fit()
    a, b = _history(res.run_dir)[-1], _history(ref.run_dir)[-1]
    for key in ["train_loss", "train_acc", "test_acc", "balanced_acc"]:
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
    assert a["nc"]["nc1"]["nc1"] == pytest.approx(b["nc"]["nc1"]["nc1"], rel=1e-6)
    assert json.loads((res.run_dir / "manifest.json").read_text())["counts"][0] == 139


def test_data_root_that_does_not_exist_stops_the_run(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    cfg = load_config(None, ["data.name=digits", f"data.root={missing}", f"run.out_dir={tmp_path}"])
    with pytest.raises(DataNotFoundError, match=f"data root {missing} does not exist"):
        Trainer(cfg)
    argv = ["train", EMPTY, "data.name=fashion-mnist", f"data.root={missing}"]
    rc = main([*argv, f"run.out_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"data root {missing} does not exist" in err
    assert not any(tmp_path.iterdir())  # no run folder was made
