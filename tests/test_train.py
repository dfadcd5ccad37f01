"""Trainer: configs, schedules, a tiny end-to-end run, resume equality, NaN handling, CLI, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ncollapse.cli import main as cli_main
from ncollapse.config import load_config, parse_overrides
from ncollapse.errors import NCollapseError
from ncollapse.train import Trainer, TrainingDiverged
from ncollapse.train.checkpoint import load_checkpoint
from ncollapse.train.schedule import lr_factor

# sklearn digits: 1,797 8x8 images, 10 classes; a tiny MLP trains in a second per epoch.
BASE = [
    "data.name=digits",
    "data.profile=exp",
    "data.rho=10",
    "data.batch_size=64",
    "data.test_batch_size=512",
    "model.backbone=mlp",
    "model.backbone_args={depth: 2, width: 32, batchnorm: false}",
    "model.head=linear",
    "optim.lr=0.05",
    "sched.name=cosine",
    "train.epochs=3",
    "train.progress=false",
    "run.tensorboard=false",
    "eval.groups=ranges",
    "eval.ranges=[3,7]",
]


def _cfg(tmp_path, *extra):
    return load_config(None, [*BASE, f"run.out_dir={tmp_path}", *extra])


# ----------------------------------------------------------------------------- config


def test_overrides_parse_yaml_scalars():
    d = parse_overrides(["train.epochs=5", "loss.params.beta=0.9999", "sched.milestones=[3,4]"])
    assert d == {
        "train": {"epochs": 5},
        "loss": {"params": {"beta": 0.9999}},
        "sched": {"milestones": [3, 4]},
    }


def test_unknown_key_lists_valid_keys():
    with pytest.raises(NCollapseError, match=r"unknown config key 'train.epoch'.*epochs"):
        load_config(None, ["train.epoch=5"])
    with pytest.raises(NCollapseError, match=r"unknown config key 'foo'.*data.*train"):
        load_config(None, ["foo.bar=1"])


def test_wrong_type_is_named():
    with pytest.raises(NCollapseError, match=r"train.epochs='five' must be an integer"):
        load_config(None, ["train.epochs=five"])
    with pytest.raises(NCollapseError, match=r"train.amp=3 must be true or false"):
        load_config(None, ["train.amp=3"])


def test_config_file_errors(tmp_path):
    with pytest.raises(NCollapseError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(NCollapseError, match="mapping"):
        load_config(bad)


def test_shipped_recipes_load():
    root = Path(__file__).resolve().parents[1] / "configs"
    # sweep specs (configs/sweeps/) are not recipes; tests/test_sweep_spec.py loads them
    files = sorted(f for f in root.rglob("*.yaml") if "sweeps" not in f.relative_to(root).parts)
    assert files
    for f in files:
        load_config(f)


# ----------------------------------------------------------------------------- schedule


def test_schedule_warmup_step_cosine():
    kw = dict(epochs=200, warmup_epochs=5, milestones=[160, 180], gamma=0.1)
    assert lr_factor(0.0, name="step", **kw) == pytest.approx(0.2)
    assert lr_factor(4.5, name="step", **kw) == pytest.approx(1.0)
    assert lr_factor(100, name="step", **kw) == 1.0
    assert lr_factor(170, name="step", **kw) == pytest.approx(0.1)
    assert lr_factor(190, name="step", **kw) == pytest.approx(0.01)
    assert lr_factor(5, name="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(102.5, name="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(200, name="cosine", **kw) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(NCollapseError, match="sched.name"):
        lr_factor(1, name="poly", epochs=10)


# ----------------------------------------------------------------------------- training


def _final(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def test_tiny_run_writes_everything(tmp_path):
    res = Trainer(_cfg(tmp_path)).fit()
    rd = res.run_dir
    for name in [
        "config.yaml",
        "manifest.json",
        "env.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "summary.json",
    ]:
        assert (rd / name).is_file(), name
    hist = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    last = hist[-1]
    assert 0.0 <= last["test_acc"] <= 1.0
    assert set(last["group_acc"]) == {"head", "medium", "tail"}
    assert len(last["per_class_acc"]) == 10
    assert last["nc"]["nc1"]["nc1"] >= 0
    # balanced accuracy is the mean of per-class accuracies
    assert last["balanced_acc"] == pytest.approx(np.nanmean(last["per_class_acc"]))
    # the manifest rebuilds the exact subset
    man = json.loads((rd / "manifest.json").read_text())
    assert man["counts"][0] / man["counts"][-1] == pytest.approx(10, rel=0.15)
    # the checkpoint is loadable with weights_only=True
    state = torch.load(rd / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2
    # training learned something on digits
    assert last["train_acc"] > 0.5


def test_new_run_never_overwrites(tmp_path):
    a = Trainer(_cfg(tmp_path, "train.epochs=1", "run.name=same")).fit().run_dir
    b = Trainer(_cfg(tmp_path, "train.epochs=1", "run.name=same")).fit().run_dir
    assert a != b and a.is_dir() and b.is_dir()


@pytest.mark.parametrize("extra", [[], ["train.mixup_alpha=1.0"]])
def test_resume_matches_uninterrupted(tmp_path, extra):
    full = Trainer(_cfg(tmp_path / "full", *extra)).fit()
    part = Trainer(_cfg(tmp_path / "part", *extra)).fit(stop_after=2)  # "interrupted"
    assert load_checkpoint(part.run_dir)["epoch"] == 1
    resumed = Trainer.resume(part.run_dir).fit()
    a, b = _final(full.run_dir), _final(resumed.run_dir)
    assert b["epoch"] == 2
    for key in ["train_loss", "train_acc", "test_acc"]:
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
    assert a["nc"]["nc1"]["nc1"] == pytest.approx(b["nc"]["nc1"]["nc1"], rel=1e-6)
    sa = load_checkpoint(full.run_dir)["model"]
    sb = load_checkpoint(resumed.run_dir)["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-6, atol=1e-7)
    # the resumed run's log holds all three epochs once
    assert [
        json.loads(x)["epoch"] for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
    ] == [0, 1, 2]


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    tr = Trainer(_cfg(tmp_path))
    orig = tr.loss_fn.forward
    calls = {"n": 0}

    def flaky(out, y):
        calls["n"] += 1
        loss = orig(out, y)
        return loss * float("nan") if tr.loss_fn_epoch >= 1 else loss

    tr.loss_fn_epoch = 0
    orig_set = tr.loss_fn.set_epoch

    def set_epoch(e, total=None):
        tr.loss_fn_epoch = e
        orig_set(e, total)

    monkeypatch.setattr(tr.loss_fn, "forward", flaky)
    monkeypatch.setattr(tr.loss_fn, "set_epoch", set_epoch)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1.*optim.lr"):
        tr.fit()
    state = load_checkpoint(tr.run_dir)
    assert state["epoch"] == 0  # the last good epoch
    assert len((tr.run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_incompatible_loss_and_head(tmp_path):
    with pytest.raises(NCollapseError, match="cosine"):
        Trainer(_cfg(tmp_path, "loss.name=ldam"))


def test_resume_errors(tmp_path):
    with pytest.raises(NCollapseError, match="not a run directory"):
        Trainer.resume(tmp_path)


# ----------------------------------------------------------------------------- CLI


def test_cli_train_json_and_bad_key(tmp_path, capsys):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("train:\n  epochs: 1\n")
    rc = cli_main(["train", str(cfg), *BASE, "train.epochs=1", f"run.out_dir={tmp_path}", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epoch"] == 0 and "test_acc" in out and Path(out["run_dir"]).is_dir()
    rc = cli_main(["train", str(cfg), "train.epoch=3"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "valid keys" in err and "epochs" in err


# ----------------------------------------------------------------------------- DDP


@pytest.mark.slow
def test_ddp_two_processes_match_single(tmp_path):
    """2 CPU processes (gloo) for one epoch give the same model as one process.

    Exact agreement needs: no BatchNorm (per-process statistics), a global batch split evenly,
    and a sample count divisible by the global batch (no padding)."""
    counts = "[64,64,64,64,32,32,32,32,32,32]"  # 448 = 7 x 64
    extra = [
        "data.profile=counts",
        f"data.counts={counts}",
        "train.epochs=1",
        "sched.name=constant",
        "train.threads=1",
    ]
    single = Trainer(_cfg(tmp_path / "single", *extra)).fit()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ncollapse",
        "train",
        str(Path(__file__).parent / "data" / "empty.yaml"),
        *BASE,
        *extra,
        f"run.out_dir={tmp_path / 'ddp'}",
        "--json",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    a, b = _final(single.run_dir), _final(Path(out["run_dir"]))
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-9)
    assert a["nc"]["nc1"]["nc1"] == pytest.approx(b["nc"]["nc1"]["nc1"], rel=1e-5)
    sa = load_checkpoint(single.run_dir)["model"]
    sb = load_checkpoint(Path(out["run_dir"]))["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6)
