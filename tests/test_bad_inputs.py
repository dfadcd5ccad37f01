"""The bad-input suite: every bad input a new user or an adversary tried, through the CLI.

Each case runs ``ncollapse.cli.main`` in-process and asserts: a non-zero exit, exactly one line on
stderr (argparse's own checks: its usage line plus one error line), no traceback, and that nothing
outside the case's run folder changed (every file under the case's working folder is snapshotted
before and after). A few cases run as real subprocesses to prove the no-traceback path end to end.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from ncollapse.cli import main as cli_main

BASE = [
    "data.name=digits",
    "data.profile=exp",
    "data.rho=10",
    "data.batch_size=64",
    "data.test_batch_size=512",
    "model.backbone=mlp",
    "model.backbone_args={depth: 2, width: 16, batchnorm: false}",
    "model.head=linear",
    "optim.lr=0.05",
    "sched.name=cosine",
    "train.epochs=2",
    "train.progress=false",
    "run.tensorboard=false",
    "eval.groups=ranges",
    "eval.ranges=[3,7]",
]
NO_CUDA = not torch.cuda.is_available()


@dataclass
class Case:
    id: str
    argv: list[str]  # "{tmp}", "{run}", "{cfg}" are filled in
    expect: str  # regex the one stderr line must match
    setup: Callable[[Path], None] | None = None
    argparse: bool = False  # argparse rejects it: usage line + one error line
    may_change: list[str] = field(default_factory=list)  # folders (relative) allowed to change
    patch: Callable | None = None  # (monkeypatch) -> None, e.g. simulate a full disk
    skip: str | None = None
    xfail: str | None = None  # a known gap in a file another change owns


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def f(tmp: Path) -> None:
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    return f


def _npz(**arrays) -> Callable[[Path], None]:
    def f(tmp: Path) -> None:
        np.savez(tmp / "f.npz", **{k: v() if callable(v) else v for k, v in arrays.items()})

    return f


def _good(K=4, d=6, n=40):
    rng = np.random.default_rng(0)
    y = np.arange(n) % K
    H = rng.normal(size=(n, d)) + 3 * np.eye(K, d)[y]
    W = rng.normal(size=(K, d))
    return H, y, W


H0, Y0, W0 = _good()


def _chain(*fs):
    def f(tmp):
        for g in fs:
            g(tmp)

    return f


def _copy_run(tmp: Path) -> None:
    shutil.copytree(_RUN["dir"], tmp / "run")


def _edit_ckpt(fn) -> Callable[[Path], None]:
    def f(tmp: Path) -> None:
        p = tmp / "run" / "checkpoint.pt"
        state = torch.load(p, weights_only=True)
        fn(state)
        torch.save(state, p)

    return f


def _inf_bn(state):
    k = next(iter(state["model"]))
    state["model"][k] = state["model"][k].clone().fill_(float("inf"))


def _huge(state):
    k = next(iter(state["model"]))
    state["model"][k] = state["model"][k].clone().fill_(1e17)


def _ws2(state):
    state["world_size"] = 2


def _lock_run(tmp: Path) -> None:
    from ncollapse.train.lock import RunLock

    _HELD.append(RunLock(tmp / "run").acquire())  # another holder (released after the case)


_HELD: list = []
_RUN: dict = {}


def _enospc(monkeypatch):
    import ncollapse.io as nio

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nio.os, "fsync", fsync)


def _eacces(monkeypatch):
    import ncollapse.io as nio

    def mkstemp(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", k.get("dir"))

    monkeypatch.setattr(nio.tempfile, "mkstemp", mkstemp)


TRAIN = ["train", "{cfg}", *BASE, "run.out_dir={tmp}/runs"]
RES = ["train", "--resume", "{tmp}/run"]
M = ["metrics", "{tmp}/f.npz"]
RUNS = ["runs"]

CASES = [
    # ---- config files and overrides (issue 16: the new ones first) ----
    Case("empty-yaml", ["train", "{tmp}/e.yaml"], r"is empty", _write("e.yaml", "")),
    Case("comment-only-yaml", ["train", "{tmp}/e.yaml"], r"is empty", _write("e.yaml", "# x\n")),
    Case(
        "duplicate-key",
        ["train", "{tmp}/d.yaml"],
        r"'epochs' appears twice.*line 3",
        _write("d.yaml", "train:\n  epochs: 2\n  epochs: 5\n"),
    ),
    Case(
        "duplicate-section",
        ["train", "{tmp}/d.yaml"],
        r"'train' appears twice",
        _write("d.yaml", "train: {epochs: 2}\ntrain: {seed: 1}\n"),
    ),
    Case("epochs-0", [*TRAIN, "train.epochs=0"], r"train.epochs=0 must be >= 1"),
    Case("epochs-neg", [*TRAIN, "train.epochs=-3"], r"train.epochs=-3 must be >= 1"),
    Case("lr-neg", [*TRAIN, "optim.lr=-1"], r"optim.lr=-1.0 must be >= 0"),
    Case("lr-nan", [*TRAIN, "optim.lr=.nan"], r"optim.lr=nan must be a finite number"),
    Case("lr-inf", [*TRAIN, "optim.lr=.inf"], r"must be a finite number"),
    Case("lr-word", [*TRAIN, "optim.lr=fast"], r"optim.lr='fast' must be a number"),
    Case("wd-neg", [*TRAIN, "optim.weight_decay=-5e-4"], r"weight_decay=-0.0005 must be >= 0"),
    Case("momentum-1.5", [*TRAIN, "optim.momentum=1.5"], r"momentum=1.5 must be in \[0, 1\)"),
    Case(
        "nesterov-no-momentum",
        [*TRAIN, "optim.nesterov=true", "optim.momentum=0"],
        r"nesterov.*needs optim.momentum > 0",
    ),
    Case("batch-0", [*TRAIN, "data.batch_size=0"], r"data.batch_size=0 must be >= 1"),
    Case("batch-frac", [*TRAIN, "data.batch_size=1.5"], r"batch_size=1.5 must be an integer"),
    Case("test-batch-0", [*TRAIN, "data.test_batch_size=0"], r"test_batch_size=0 must be >= 1"),
    Case("nc-every-0", [*TRAIN, "train.nc_every=0"], r"nc_every=0 must be >= 1"),
    Case("threads-0", [*TRAIN, "train.threads=0"], r"threads=0 must be >= 1"),
    Case("gamma-0", [*TRAIN, "sched.gamma=0"], r"sched.gamma=0.0 must be > 0"),
    Case("warmup-neg", [*TRAIN, "sched.warmup_epochs=-1"], r"warmup_epochs=-1 must be >= 0"),
    Case("mixup-neg", [*TRAIN, "train.mixup_alpha=-1"], r"mixup_alpha=-1.0 must be >= 0"),
    Case("limit-test-0", [*TRAIN, "data.limit_test=0"], r"limit_test=0 must be >= 1"),
    Case("rho-below-1", [*TRAIN, "data.rho=0.5"], r"data.rho=0.5 must be >= 1"),
    Case("crop-neg", [*TRAIN, "data.crop_padding=-1"], r"crop_padding=-1 must be >= 0"),
    Case("timeout-0", [*TRAIN, "train.dist_timeout=0"], r"dist_timeout=0.0 must be > 0"),
    Case("unknown-key", [*TRAIN, "train.epoch=3"], r"unknown config key 'train.epoch'.*epochs"),
    Case("unknown-section", [*TRAIN, "foo.bar=1"], r"unknown config key 'foo'"),
    Case("epochs-word", [*TRAIN, "train.epochs=five"], r"train.epochs='five' must be an integer"),
    Case("bool-3", [*TRAIN, "train.amp=3"], r"train.amp=3 must be true or false"),
    Case("no-equals", [*TRAIN, "train.epochs"], r"must look like section.key=value"),
    Case("empty-key", [*TRAIN, "=5"], r"first argument|empty key"),
    Case("double-dot", [*TRAIN, "train..epochs=5"], r"empty key"),
    Case("trailing-dot", [*TRAIN, "train.=5"], r"empty key"),
    Case("bad-yaml-value", [*TRAIN, "sched.milestones=[1,"], r"cannot parse value"),
    Case("section-scalar", [*TRAIN, "data=5"], r"'data' is a section"),
    Case("dict-scalar", [*TRAIN, "model.backbone_args=5"], r"backbone_args=5 must be a mapping"),
    Case(
        "dict-under-scalar",
        [*TRAIN, "train.epochs.x=1"],
        r"train.epochs is 2, not a section",
    ),
    Case("list-word", [*TRAIN, "sched.milestones=abc"], r"milestones='abc' must be a list"),
    Case(
        "config-missing",
        ["train", "{tmp}/nope.yaml"],
        r"nope.yaml.* is neither a file nor a packaged recipe",
    ),
    Case("config-folder", ["train", "{tmp}"], r"is a folder; pass a YAML file"),
    Case("config-list", ["train", "{tmp}/l.yaml"], r"must hold a mapping", _write("l.yaml", "- 1")),
    Case("config-scalar", ["train", "{tmp}/l.yaml"], r"must hold a mapping", _write("l.yaml", "3")),
    Case(
        "config-bad-yaml", ["train", "{tmp}/b.yaml"], r"not valid YAML", _write("b.yaml", "a: [1,")
    ),
    Case(
        "config-python-tag",
        ["train", "{tmp}/t.yaml"],
        r"not valid YAML",
        _write("t.yaml", "train: !!python/object/apply:os.system ['true']\n"),
    ),
    Case(
        "config-binary",
        ["train", "{tmp}/bin.yaml"],
        r"cannot read config file|not valid YAML",
        lambda t: (t / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage"),
    ),
    Case("no-config", ["train"], r"pass a YAML recipe"),
    Case("override-first", ["train", "train.epochs=3"], r"first argument must be a YAML file"),
    Case("resume-and-config", ["train", "{cfg}", "--resume", "{tmp}"], r"do not pass a config"),
    Case("device-tpu", [*TRAIN, "train.device=tpu"], r"train.device='tpu' is not a device"),
    Case(
        "device-cuda",
        [*TRAIN, "train.device=cuda"],
        r"CUDA is not available",
        skip=None if NO_CUDA else "CUDA present",
    ),
    Case(
        "profile-bogus", [*TRAIN, "data.profile=bogus"], r"unknown profile 'bogus' \(data.profile"
    ),
    Case("profile-exp-no-rho", [*TRAIN, "data.rho=null"], r"needs data.rho"),
    Case("optim-adam", [*TRAIN, "optim.name=adam"], r"optim.name='adam' is unknown; use sgd"),
    Case("groups-bogus", [*TRAIN, "eval.groups=bogus"], r"eval.groups='bogus' is unknown"),
    Case("ranges-missing", [*TRAIN, "eval.ranges=null"], r"eval.groups=ranges needs eval.ranges"),
    Case(
        "loss-unknown", [*TRAIN, "loss.name=nosuch"], r"unknown loss 'nosuch'; valid losses: .*ce"
    ),
    Case(
        "backbone-unknown",
        [*TRAIN, "model.backbone=nosuch"],
        r"unknown backbone 'nosuch'; valid backbones",
    ),
    Case("head-unknown", [*TRAIN, "model.head=nosuch"], r"unknown head 'nosuch'; valid heads"),
    Case(
        "method-unknown", [*TRAIN, "method.name=nosuch"], r"unknown method 'nosuch'; valid methods"
    ),
    Case("sampler-unknown", [*TRAIN, "data.sampler=nosuch"], r"unknown sampler 'nosuch'"),
    Case(
        "dataset-unknown",
        [*TRAIN, "data.name=nosuchdata"],
        r"unknown dataset 'nosuchdata'; known: ",
    ),
    Case("loss-head-mismatch", [*TRAIN, "loss.name=ldam"], r"cosine"),
    Case(
        "backbone-arg-unknown",
        [*TRAIN, "model.backbone_args.nosuch=1"],
        r"unknown option 'nosuch' for backbone 'mlp'",
    ),
    Case(
        "counts-profile-no-counts",
        [*TRAIN, "data.profile=counts"],
        r"profile='counts' needs counts",
    ),
    # ---- output paths, permissions, full disk ----
    Case(
        "out-dir-under-file",
        [*TRAIN[:-1], "run.out_dir={tmp}/afile/runs"],
        r"afile.*(Not a directory|File exists).*(is a file|in the way)",
        _write("afile", "x"),
    ),
    Case(
        "out-dir-read-only",
        TRAIN,
        r"cannot use .*runs.*Permission denied.*writable",
        patch=_eacces,
        may_change=["runs"],
    ),
    Case(
        "disk-full",
        TRAIN,
        r"cannot use .*runs/.*No space left on device; the disk is full",
        patch=_enospc,
        may_change=["runs"],
    ),
    # ---- divergence: an honest "last good checkpoint" ----
    Case(
        "lr-1e6",
        [*TRAIN, "optim.lr=1e6"],
        r"(loss became|diverged).*no good checkpoint exists",
        may_change=["runs"],
    ),
    # ---- resume (a finished 2-epoch run copied to {tmp}/run) ----
    Case("resume-missing", ["train", "--resume", "{tmp}/nope"], r"not a run directory"),
    Case("resume-not-run", ["train", "--resume", "{tmp}"], r"not a run directory"),
    Case(
        "resume-rho",
        [*RES, "data.rho=5"],
        r"cannot change data.rho \(10.0 -> 5.0\).*may change only train.epochs",
        _copy_run,
    ),
    Case(
        "resume-fewer-epochs",
        [*RES, "train.epochs=1"],
        r"cannot lower train.epochs \(2 -> 1\)",
        _copy_run,
    ),
    Case("resume-lr", [*RES, "optim.lr=0.2"], r"cannot change optim.lr", _copy_run),
    Case(
        "resume-width",
        [*RES, "model.backbone_args.width=64"],
        r"cannot change model.backbone_args.width",
        _copy_run,
    ),
    Case("resume-seed", [*RES, "train.seed=1"], r"cannot change train.seed", _copy_run),
    Case("resume-loss", [*RES, "loss.name=focal"], r"cannot change loss.name", _copy_run),
    Case(
        "resume-bad-override", [*RES, "train.epochs=-1"], r"train.epochs=-1 must be >= 1", _copy_run
    ),
    Case(
        "resume-no-checkpoint",
        RES,
        r"no checkpoint at .*checkpoint.pt: the run ended before its first epoch",
        _chain(_copy_run, lambda t: (t / "run" / "checkpoint.pt").unlink()),
    ),
    Case(
        "resume-corrupt-checkpoint",
        RES,
        r"cannot be loaded safely",
        _chain(_copy_run, lambda t: (t / "run" / "checkpoint.pt").write_bytes(b"garbage")),
    ),
    Case(
        "resume-truncated-checkpoint",
        RES,
        r"cannot be loaded safely",
        _chain(
            _copy_run,
            lambda t: (t / "run" / "checkpoint.pt").write_bytes(
                (t / "run" / "checkpoint.pt").read_bytes()[:300]
            ),
        ),
    ),
    Case(
        "resume-inf-checkpoint",
        RES,
        r"is not a good state \(.*non-finite",
        _chain(_copy_run, _edit_ckpt(_inf_bn)),
    ),
    Case(
        "resume-huge-checkpoint",
        RES,
        r"is not a good state \(.*reaches 1e\+17",
        _chain(_copy_run, _edit_ckpt(_huge)),
    ),
    Case(
        "resume-ddp-checkpoint-single",
        RES,
        r"written by 2 process\(es\) but this resume runs 1.*torchrun --nproc_per_node=2",
        _chain(_copy_run, _edit_ckpt(_ws2)),
    ),
    Case(
        "resume-locked",
        RES,
        r"run folder .*run is in use by pid \d+ on ",
        _chain(_copy_run, _lock_run),
    ),
    Case(
        "resume-corrupt-resumes-log",
        RES,
        r"resumes.jsonl line 1 is not a JSON record",
        _chain(_copy_run, _write("run/resumes.jsonl", "{oops\n")),
    ),
    Case(
        "resume-no-config",
        RES,
        r"not a run directory \(no config.yaml\)",
        _chain(_copy_run, lambda t: (t / "run" / "config.yaml").unlink()),
    ),
    # ---- metrics ----
    Case("metrics-missing", M, r"f.npz does not exist"),
    Case("metrics-folder", ["metrics", "{tmp}"], r"is a folder; pass the .npz"),
    Case("metrics-not-zip", M, r"not an .npz", _write("f.npz", "hello")),
    Case("metrics-no-H", M, r"no array 'H'", _npz(y=Y0)),
    Case("metrics-no-y", M, r"no array 'y'", _npz(H=H0)),
    Case(
        "metrics-W-transposed",
        M,
        r"W has shape \(6, 4\), expected \(K, d\).*transposed",
        _npz(H=H0, y=Y0, W=W0.T),
    ),
    Case(
        "metrics-W-wrong-d",
        M,
        r"W has shape \(4, 5\), expected \(K, d\) with d = 6",
        _npz(H=H0, y=Y0, W=W0[:, :5]),
    ),
    Case(
        "metrics-W-few-rows",
        M,
        r"labels\[3\]=3 is out of range for num_classes=3",
        _npz(H=H0, y=Y0, W=W0[:3]),
    ),
    Case("metrics-W-1d", M, r"W has shape \(6,\)", _npz(H=H0, y=Y0, W=W0[0])),
    Case(
        "metrics-minority-unknown",
        [*M, "--minority", "nosuchgroup"],
        r"--minority='nosuchgroup' is neither a group \(many, medium, few\)",
        _npz(H=H0, y=Y0, W=W0),
    ),
    Case(
        "metrics-batch-0",
        [*M, "--batch-size", "0"],
        r"--batch-size=0 must be >= 1",
        _npz(H=H0, y=Y0),
    ),
    Case("metrics-H-1d", M, r"must be a 2-D array .* got shape \(40,\)", _npz(H=H0[:, 0], y=Y0)),
    Case("metrics-len-mismatch", M, r"10 rows but labels have 40 entries", _npz(H=H0[:10], y=Y0)),
    Case(
        "metrics-nan",
        M,
        r"features has 6 NaN/inf value\(s\)",
        _npz(H=np.where(np.eye(40, 6) > 0, np.nan, H0), y=Y0),
    ),
    Case(
        "metrics-pickle",
        M,
        r"Object arrays cannot be loaded when allow_pickle=False",
        _npz(H=H0, y=np.array([object()] * 40, dtype=object)),
    ),
    Case(
        "metrics-logits-shape", M, r"logits have shape", _npz(H=H0, y=Y0, logits=np.zeros((40, 3)))
    ),
    Case(
        "metrics-ranges-word",
        [*M, "--ranges", "a,b"],
        r"--ranges='a,b' is not a comma-separated",
        _npz(H=H0, y=Y0),
    ),
    Case(
        "metrics-empty",
        M,
        r"y is empty",
        _npz(H=np.zeros((0, 6)), y=np.zeros(0, int)),
    ),
    Case("metrics-neg-labels", M, r"labels\[0\]=-1 is out of range", _npz(H=H0, y=Y0 - 1)),
    Case("metrics-float-labels", M, r"labels must be integers", _npz(H=H0, y=Y0 + 0.5)),
    Case(
        "metrics-missing-class",
        M,
        r"class\(es\) \[2\] have no samples",
        _npz(H=H0, y=np.where(Y0 == 2, 3, Y0), W=W0),
    ),
    # ---- geometry ----
    Case("etf-k1", ["geometry", "etf", "--k", "1"], r"k=1 must be an integer >= 2"),
    Case("etf-k0", ["geometry", "etf", "--k", "0"], r"k=0 must be an integer >= 2"),
    Case(
        "etf-d-small",
        ["geometry", "etf", "--k", "5", "--d", "2"],
        r"d=2 is too small for a simplex ETF",
    ),
    Case("etf-k-word", ["geometry", "etf", "--k", "five"], r"invalid int value", argparse=True),
    Case("seli-one-class", ["geometry", "seli", "--counts", "1"], r"at least 2 classes"),
    Case("seli-words", ["geometry", "seli", "--counts", "a,b"], r"'a' is not a number"),
    Case("seli-zero", ["geometry", "seli", "--counts", "0,5"], r"not positive"),
    Case("seli-nan", ["geometry", "seli", "--counts", "1,nan"], r"'nan' is not an integer"),
    Case("seli-frac", ["geometry", "seli", "--counts", "1.5,2"], r"not an integer"),
    Case(
        "seli-empty",
        ["geometry", "seli", "--counts", ""],
        r"--counts='' is not a comma-separated list",
    ),
    Case(
        "step-R-small",
        ["geometry", "step", "--k-maj", "2", "--k-min", "2", "--R", "0.5"],
        r"R=0.5 must be >= 1",
    ),
    Case(
        "step-kmaj-0",
        ["geometry", "step", "--k-maj", "0", "--k-min", "2", "--R", "2"],
        r"k_maj=0 must be an integer >= 1",
    ),
    Case(
        "deep-linear-L0",
        ["geometry", "deep-linear", "--counts", "5,1", "--layers", "0"],
        r"layers=0 must be an integer >= 1",
    ),
    Case(
        "deep-linear-lw-neg",
        ["geometry", "deep-linear", "--counts", "5,1", "--lambda-w", "-1"],
        r"lambda_w=-1 must be > 0",
    ),
    Case(
        "multicenter-f0",
        ["geometry", "multicenter", "--counts", "5,1", "--f", "0"],
        r"f=0 must be an integer >= 1",
    ),
    Case(
        "multicenter-counts-words",
        ["geometry", "multicenter", "--counts", "x", "--f", "2"],
        r"'x' is not a number",
    ),
    Case(
        "multicenter-mode",
        ["geometry", "multicenter", "--counts", "5,1", "--mode", "zz"],
        r"invalid choice",
        argparse=True,
    ),
    # ---- ufm ----
    Case(
        "ufm-one-class", ["ufm", "solve", "--model", "ce", "--counts", "1"], r"at least 2 classes"
    ),
    Case(
        "ufm-lambda-neg",
        ["ufm", "solve", "--model", "ce", "--counts", "5,1", "--lambda", "-1"],
        r"lambda=-1 must be >= 0",
    ),
    Case(
        "ufm-max-iter-0",
        ["ufm", "solve", "--model", "ce", "--counts", "5,1", "--lambda", "0.1", "--max-iter", "0"],
        r"max_iter|max-iter",
    ),
    Case(
        "ufm-ncmc-f0",
        ["ufm", "solve", "--model", "ncmc", "--counts", "5,1", "--lambda", "0.1", "--f", "0"],
        r"f=0 must be an integer >= 1",
    ),
    Case(
        "ufm-d0",
        ["ufm", "solve", "--model", "ce", "--counts", "5,1", "--d", "0"],
        r"d=0 is too small",
    ),
    Case("ufm-model-bogus", ["ufm", "solve", "--model", "zz"], r"invalid choice", argparse=True),
    Case(
        "ufm-sweep-lambdas",
        ["ufm", "sweep", "--model", "mse", "--counts", "5,1", "--lambdas", "abc"],
        r"'abc' is not a number",
    ),
    Case(
        "ufm-device-cuda",
        ["ufm", "solve", "--model", "ce", "--counts", "5,1", "--device", "cuda"],
        r"CUDA is not available",
        skip=None if NO_CUDA else "CUDA present",
    ),
    # ---- data ----
    Case("data-unknown", ["data", "show", "nosuchdata"], r"nosuchdata"),
    Case("data-rho-small", ["data", "show", "digits", "--rho", "0.5", "--no-plot"], r"rho=0.5 < 1"),
    Case(
        "data-profile-bogus",
        ["data", "show", "digits", "--profile", "bogus", "--no-plot"],
        r"unknown profile 'bogus'",
    ),
    Case(
        "data-counts-mismatch",
        ["data", "show", "digits", "--profile", "counts", "--counts", "5,5", "--no-plot"],
        r"counts has 2 entries but the labels have K=10",
    ),
    Case(
        "data-tau-2",
        ["data", "show", "digits", "--tau", "2", "--no-plot"],
        r"tau=2.0 must be in \(0, 1\]",
    ),
    Case(
        "data-out-under-file",
        ["data", "show", "digits", "--rho", "10", "--out", "{tmp}/afile/x"],
        r"afile.*(is a file|in the way)",
        _write("afile", "x"),
    ),
    # ---- report ----
    Case("report-missing", ["report", "{tmp}/nope"], r"nope is not a run directory"),
    Case(
        "report-empty-folder",
        ["report", "{tmp}/empty"],
        r"holds no run directories",
        lambda t: (t / "empty").mkdir(),
    ),
    Case(
        "report-corrupt-metrics",
        ["report", "{tmp}/run"],
        r"metrics.jsonl line 2 is not valid JSON.*restore the file",
        _chain(
            _copy_run, lambda t: (t / "run" / "metrics.jsonl").write_text('{"epoch": 0}\n{"epo\n')
        ),
        may_change=["run"],
    ),
    Case(
        "report-binary-metrics",
        ["report", "{tmp}/run"],
        r"metrics.jsonl is not a text file of JSON lines",
        _chain(_copy_run, lambda t: (t / "run" / "metrics.jsonl").write_bytes(b"\xff\xfe\x00")),
        may_change=["run"],
    ),
    Case(
        "report-empty-metrics",
        ["report", "{tmp}/run"],
        r"metrics.jsonl is empty",
        _chain(_copy_run, lambda t: (t / "run" / "metrics.jsonl").write_text("")),
        may_change=["run"],
    ),
    Case(
        "report-html-under-file",
        ["report", "{tmp}/run", "--html", "{tmp}/afile/r.html"],
        r"afile.*(is a file|in the way)",
        _chain(_copy_run, _write("afile", "x")),
        may_change=["run"],
    ),
    # ---- demo ----
    Case("demo-epochs-neg", ["demo", "--epochs", "-1"], r"--epochs=-1 must be >= 1"),
    Case("demo-epochs-0", ["demo", "--epochs", "0"], r"--epochs=0 must be >= 1"),
    Case("demo-configs-missing", ["demo", "--configs", "{tmp}/nope"], r"demo recipes .* not found"),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if p.name == ".lock":
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns) if p.is_file() else (0, 0)
    return out


@pytest.fixture(scope="module", autouse=True)
def finished_run(tmp_path_factory):
    """A finished 2-epoch digits run that the resume and report cases copy."""
    from ncollapse.config import load_config
    from ncollapse.train import Trainer

    out = tmp_path_factory.mktemp("base")
    res = Trainer(load_config(None, [*BASE, f"run.out_dir={out}"])).fit()
    _RUN["dir"] = res.run_dir
    yield res.run_dir


def _fill(argv: list[str], tmp: Path) -> list[str]:
    cfg = tmp / "recipe.yaml"
    if not cfg.exists():
        cfg.write_text("{}\n")
    return [a.replace("{tmp}", str(tmp)).replace("{cfg}", str(cfg)) for a in argv]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_one_line(case: Case, tmp_path, capsys, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    if case.xfail:
        pytest.xfail(case.xfail)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NCOLLAPSE_DEBUG", raising=False)
    argv = _fill(case.argv, tmp_path)
    if case.setup:
        case.setup(tmp_path)
    before = _snapshot(tmp_path)
    if case.patch:
        case.patch(monkeypatch)
    try:
        try:
            rc = cli_main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code
    finally:
        while _HELD:
            _HELD.pop().release()
        monkeypatch.undo()
    out, err = capsys.readouterr()
    assert rc not in (0, None), f"exit {rc}; stdout: {out[-500:]}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if case.argparse:
        assert lines[0].startswith("usage:"), err  # usage (may wrap), then one error line
        assert "error:" in lines[-1] and all("error" not in x for x in lines[:-1])
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
    assert re.search(case.expect, lines[-1]), lines[-1]
    after = _snapshot(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    changed = {
        k for k in changed if not any(k == m or k.startswith(m + "/") for m in case.may_change)
    }
    assert not changed, f"changed outside the run folder: {sorted(changed)}"


# ----------------------------------------------------------------------------- beyond one line


def test_full_disk_keeps_previous_checkpoint(tmp_path, monkeypatch, capsys):
    """Disk full while writing epoch 2's checkpoint: one line, epoch 1's checkpoint intact,
    no temporary file left."""
    import ncollapse.io as nio
    from ncollapse.train.checkpoint import load_checkpoint

    real = nio.atomic_write_bytes

    def flaky(path, data):
        if Path(path).name == "checkpoint.pt" and flaky.n >= 1:

            def fsync(fd):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(nio.os, "fsync", fsync)
        flaky.n += Path(path).name == "checkpoint.pt"
        return real(path, data)

    flaky.n = 0
    import ncollapse.train.checkpoint as ck

    monkeypatch.setattr(ck, "atomic_write_bytes", flaky)
    cfg = tmp_path / "r.yaml"
    cfg.write_text("{}\n")
    rc = cli_main(["train", str(cfg), *BASE, "train.epochs=3", f"run.out_dir={tmp_path}/runs"])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "checkpoint.pt: No space left on device" in err
    (run,) = (tmp_path / "runs").iterdir()
    assert load_checkpoint(run)["epoch"] == 0
    assert not list(run.glob(".*.tmp"))


def test_lr_1e6_names_no_missing_checkpoint(tmp_path, capsys):
    """Divergence in the first epoch: the message must not name a checkpoint that is absent."""
    cfg = tmp_path / "r.yaml"
    cfg.write_text("{}\n")
    rc = cli_main(["train", str(cfg), *BASE, "optim.lr=1e6", f"run.out_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 2 and "no good checkpoint exists" in err
    assert not list(tmp_path.rglob("checkpoint.pt"))


def test_lr_50_batchnorm_keeps_only_good_checkpoints(tmp_path, capsys):
    """lr = 50 with BatchNorm: weights blow up while the loss can stay finite. Every checkpoint the
    run leaves must be good, and the message names it (or says there is none)."""
    from ncollapse.train.checkpoint import find_bad_value, load_checkpoint

    cfg = tmp_path / "r.yaml"
    cfg.write_text("{}\n")
    args = [*BASE, "model.backbone_args={depth: 3, width: 32, batchnorm: true}", "optim.lr=50"]
    rc = cli_main(["train", str(cfg), *args, "train.epochs=6", f"run.out_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(r"diverged|loss became", err)
    ckpts = list(tmp_path.rglob("checkpoint.pt"))
    if ckpts:
        assert find_bad_value(load_checkpoint(ckpts[0])) is None
        assert "the last good checkpoint is" in err and str(ckpts[0]) in err
    else:
        assert "no good checkpoint exists" in err


def test_found_bad_values():
    from ncollapse.train.checkpoint import find_bad_value

    good = {"model": {"w": torch.ones(3), "step": torch.tensor(3)}, "optimizer": {}}
    assert find_bad_value(good) is None
    bn = {"model": {"bn.running_var": torch.tensor([1.0, float("inf")])}}
    assert "bn.running_var has 1 non-finite value(s) (inf)" in find_bad_value(bn)
    big = {"optimizer": {"state": {0: {"momentum_buffer": torch.full((2,), 1e17)}}}}
    assert "momentum_buffer reaches 1e+17" in find_bad_value(big)


def test_fresh_run_into_a_folder_with_a_run_is_refused(tmp_path):
    from ncollapse.config import load_config
    from ncollapse.errors import NCollapseError
    from ncollapse.train import Trainer

    run = tmp_path / "run"
    shutil.copytree(_RUN["dir"], run)
    before = _snapshot(run)
    with pytest.raises(NCollapseError, match=r"already holds a run .*--resume"):
        Trainer(load_config(None, [*BASE, f"run.out_dir={tmp_path}"]), run_dir=run)
    assert _snapshot(run) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    res = Trainer(load_config(None, [*BASE, "train.epochs=1"]), run_dir=empty).fit()
    assert res.epochs_done == 1


def test_resume_keeps_the_record_and_logs_overrides(tmp_path):
    """An allowed override (more epochs) trains on; config.yaml, manifest.json and env.json stay
    byte-identical and resumes.jsonl holds the override; a later plain resume keeps it."""
    from ncollapse.train import Trainer

    run = tmp_path / "run"
    shutil.copytree(_RUN["dir"], run)
    kept = {n: (run / n).read_bytes() for n in ("config.yaml", "manifest.json", "env.json")}
    res = Trainer.resume(run, ["train.epochs=3", "train.progress=false"]).fit(stop_after=3)
    assert res.epochs_done == 3
    assert {n: (run / n).read_bytes() for n in kept} == kept
    recs = [json.loads(x) for x in (run / "resumes.jsonl").read_text().splitlines()]
    assert recs[0]["overrides"] == ["train.epochs=3", "train.progress=false"]
    assert recs[0]["changes"]["train.epochs"] == [2, 3] and recs[0]["from_epoch"] == 2
    again = Trainer.resume(run)  # the recorded override still holds: nothing left to train
    assert again.cfg.train.epochs == 3 and again.start_epoch == 3
    again._lock.release()


def test_temp_files_cleaned_at_next_start(tmp_path):
    from ncollapse.train import Trainer

    run = tmp_path / "run"
    shutil.copytree(_RUN["dir"], run)
    orphan = run / ".checkpoint.pt.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    tr = Trainer.resume(run)
    assert not orphan.exists()
    tr._lock.release()


def test_per_epoch_line_when_not_a_tty(tmp_path, capsys):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("{}\n")
    args = [a for a in BASE if a != "train.progress=false"]
    assert cli_main(["train", str(cfg), *args, f"run.out_dir={tmp_path}", "--json"]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("epoch ")]
    assert [x.split()[1] for x in lines] == ["1/2", "2/2"], err
    assert "test_acc" in lines[0]


def test_dict_override_semantics():
    from ncollapse.config import load_config

    a = load_config(
        None, ["model.backbone_args={depth: 2, width: 4}", "model.backbone_args.width=8"]
    )
    assert a.model.backbone_args == {"depth": 2, "width": 8}  # key.sub=v merges
    b = load_config(
        None, ["model.backbone_args={depth: 2, width: 4}", "model.backbone_args={width: 8}"]
    )
    assert b.model.backbone_args == {"width": 8}  # key={...} replaces


def test_numbers_people_write_parse(tmp_path):
    from ncollapse.config import load_config

    c = load_config(None, ["optim.weight_decay=5e-4", "optim.lr=1e6", "loss.params={beta: 1E-4}"])
    assert c.optim.weight_decay == 5e-4 and c.optim.lr == 1e6 and c.loss.params["beta"] == 1e-4
    f = tmp_path / "r.yaml"
    f.write_text("optim:\n  lr: 2e-1\n  weight_decay: 5.e-4\ntrain:\n  epochs: 12\n")
    c = load_config(f)
    assert c.optim.lr == 0.2 and c.optim.weight_decay == 5e-4 and c.train.epochs == 12


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "{tmp}/e.yaml"],
        ["train", "{cfg}", "optim.lr=-1", "data.name=digits"],
        ["metrics", "{tmp}"],
    ],
    ids=["empty-yaml", "lr-neg", "metrics-folder"],
)
def test_subprocess_no_traceback(argv, tmp_path):
    (tmp_path / "e.yaml").write_text("")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env.pop("NCOLLAPSE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ncollapse", *_fill(argv, tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
