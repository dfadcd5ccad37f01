"""The fault suite: kill training at random moments and compare with an uninterrupted run.

Real ``ncollapse train`` processes are SIGKILLed at seeded random moments (between epochs, mid
epoch, mid-checkpoint with a half-written temporary file, and while two resumes race for the
folder), then resumed until done; the final weights and every logged metric must equal the
uninterrupted run's exactly. Under DDP (2 gloo processes) a rank is killed or frozen (SIGSTOP)
and the survivor must stop with one line that says so, and the padded samples of an uneven epoch
must not enter the statistics.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ncollapse.train.checkpoint import load_checkpoint

SRC = str(Path(__file__).parents[1] / "src")
BASE = [
    "data.name=digits",
    "data.profile=exp",
    "data.rho=10",
    "data.batch_size=64",
    "data.test_batch_size=512",
    "model.backbone=mlp",
    "model.backbone_args={depth: 2, width: 32, batchnorm: true}",
    "model.head=linear",
    "optim.lr=0.05",
    "sched.name=cosine",
    "train.epochs=6",
    "train.threads=1",
    "train.progress=false",
    "run.tensorboard=false",
    "eval.groups=ranges",
    "eval.ranges=[3,7]",
]
TIME_KEYS = {"time_train_s", "time_epoch_s"}


def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC, **extra}
    env.pop("NCOLLAPSE_DEBUG", None)
    return env


def _recipe(tmp: Path) -> Path:
    p = tmp / "recipe.yaml"
    p.write_text("{}\n")
    return p


def _start(args: list[str], cwd: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ncollapse", "train", *args],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _records_raw(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _records(run: Path) -> list[dict]:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in recs]


def _assert_same_run(ref: Path, run: Path) -> None:
    assert _records(run) == _records(ref)  # every metric of every epoch, exactly
    a, b = load_checkpoint(ref), load_checkpoint(run)
    assert a["epoch"] == b["epoch"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not list(run.glob(".*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, through the same CLI in a subprocess."""
    tmp = tmp_path_factory.mktemp("ref")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncollapse",
            "train",
            str(_recipe(tmp)),
            *BASE,
            f"run.out_dir={tmp}",
        ],
        cwd=tmp,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = [p for p in tmp.iterdir() if p.is_dir()]
    return run


def _run_dir(out: Path) -> Path | None:
    dirs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
    return dirs[0] if dirs else None


def _resume_to_end(run: Path, tmp: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ncollapse", "train", "--resume", str(run)],
        cwd=tmp,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _lines(run: Path | None) -> int:
    p = None if run is None else run / "metrics.jsonl"
    return len(p.read_text().splitlines()) if p is not None and p.exists() else -1


def test_random_kills_resume_exactly(reference, tmp_path):
    """SIGKILL at seeded random moments, resume after each, until done: identical to the
    uninterrupted run. Each kill waits for a random number of finished epochs (-1: as soon as
    the run folder exists, before any checkpoint) plus a random fraction of an epoch, timed on the
    reference run (an epoch of this tiny run takes milliseconds, so fixed delays would let it end)."""
    rng = random.Random(16)
    out = tmp_path / "runs"
    recs = _records_raw(reference)
    epoch_s = sorted(r.get("time_epoch_s", 0.05) for r in recs)[len(recs) // 2]
    plan = [
        (-1, rng.uniform(0, 0.2)),
        (1, rng.uniform(0, 1) * epoch_s),
        (3, rng.uniform(0, 1) * epoch_s),
    ]
    killed_at = []
    for target, extra in plan:
        run = _run_dir(out)
        if run is not None and not (run / "checkpoint.pt").exists():
            shutil.rmtree(run)  # killed before its first checkpoint: nothing to resume
            run = None
        args = (
            ["--resume", str(run)] if run else [str(_recipe(tmp_path)), *BASE, f"run.out_dir={out}"]
        )
        p = _start(args, tmp_path)
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline and _lines(_run_dir(out)) < target:
            time.sleep(0.001)
        time.sleep(extra)
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
        killed_at.append(_lines(_run_dir(out)))
    _resume_to_end(_run_dir(out), tmp_path)
    assert max(killed_at) < 6, killed_at  # at least one kill hit a run in progress
    _assert_same_run(reference, _run_dir(out))


_MID_CHECKPOINT = """
import os, signal, sys
import ncollapse.io as nio
real_fsync = nio.os.fsync
count = {"n": 0}
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if ".checkpoint.pt." in name:
        count["n"] += 1
        if count["n"] == int(os.environ["KILL_AT"]):
            if os.environ.get("HALF"):
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_fsync(fd)
nio.os.fsync = fsync
from ncollapse.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("half", [False, True], ids=["written-not-renamed", "half-written"])
def test_kill_mid_checkpoint(reference, tmp_path, half):
    """Killed inside the 3rd checkpoint write (temporary file written, or half written, not yet
    renamed): the previous checkpoint is intact, the orphan is removed at the next start, and
    the resumed run equals the uninterrupted one."""
    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc to name file descriptors")
    out = tmp_path / "runs"
    env = _env(KILL_AT="3", **({"HALF": "1"} if half else {}))
    proc = subprocess.run(
        [sys.executable, "-c", _MID_CHECKPOINT, "train", str(_recipe(tmp_path)), *BASE,
         f"run.out_dir={out}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    run = _run_dir(out)
    assert len(list(run.glob(".checkpoint.pt.*.tmp"))) == 1  # the orphan
    assert load_checkpoint(run)["epoch"] == 1  # the previous one, intact
    _resume_to_end(run, tmp_path)
    _assert_same_run(reference, run)


def test_concurrent_resumes_one_owner(reference, tmp_path):
    """Two resumes of one folder at once: exactly one trains, the other stops with one line
    naming the holder; the winner is then killed at a random moment and resumed."""
    out = tmp_path / "runs"
    p = _start([str(_recipe(tmp_path)), *BASE, f"run.out_dir={out}"], tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline:  # let it save a checkpoint, then kill it
        run = _run_dir(out)
        if run is not None and (run / "checkpoint.pt").exists():
            break
        time.sleep(0.05)
    p.kill()
    p.wait()
    run = _run_dir(out)
    a = _start(["--resume", str(run)], tmp_path)
    b = _start(["--resume", str(run)], tmp_path)
    rng = random.Random(7)
    loser = None
    t0 = time.time()
    while time.time() - t0 < 120 and loser is None:
        for q in (a, b):
            if q.poll() is not None:
                loser = q
        time.sleep(0.05)
    assert loser is not None
    err = loser.stderr.read()
    winner = b if loser is a else a
    if loser.returncode == 0:  # the winner finished first; the other resumed a finished run
        winner.wait(timeout=120)
    else:
        assert loser.returncode == 2 and "is in use by pid" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        time.sleep(rng.uniform(0.0, 1.5))
        winner.kill()
        winner.wait()
    for q in (a, b):
        q.stdout.close()
        q.stderr.close()
    _resume_to_end(run, tmp_path)
    epochs = [r["epoch"] for r in _records(run)]
    assert epochs == list(range(6))  # never two writers: no repeated epochs
    _assert_same_run(reference, run)


# ----------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_pair(args: list[str], cwd: Path) -> list[subprocess.Popen]:
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        procs.append(
            _start(
                args,
                cwd,
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE="2",
                LOCAL_WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            )
        )
    return procs


DDP_BASE = [
    *[a for a in BASE if not a.startswith(("model.backbone_args", "train.epochs"))],
    "model.backbone_args={depth: 2, width: 32, batchnorm: false}",
]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_ddp_rank_frozen_or_killed(tmp_path, fault):
    """Rank 1 is frozen (SIGSTOP) or killed mid-training: rank 0 stops with one line naming what
    happened, within the collective timeout, instead of stalling forever."""
    args = [str(_recipe(tmp_path)), *DDP_BASE, "train.epochs=200", "train.dist_timeout=5",
            f"run.out_dir={tmp_path}/runs"]  # fmt: skip
    r0, r1 = _ddp_pair(args, tmp_path)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            run = _run_dir(tmp_path / "runs")
            if run is not None and (run / "checkpoint.pt").exists():
                break
            assert r0.poll() is None and r1.poll() is None, r0.stderr.read()[-2000:]
            time.sleep(0.05)
        os.kill(r1.pid, getattr(signal, fault))
        t0 = time.time()
        r0.wait(timeout=60)
        waited = time.time() - t0
    finally:
        for q in (r0, r1):
            if q.poll() is None:
                q.kill()
                q.wait()
    err = r0.stderr.read()
    for q in (r0, r1):
        q.stdout.close()
        q.stderr.close()
    assert r0.returncode == 2, err[-2000:]
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("error: ")]
    assert len(line) == 1, err[-2000:]
    assert "rank 0/2" in line[0] and "restart all processes with --resume" in line[0]
    if fault == "SIGSTOP":
        assert "no answer from another process within train.dist_timeout=5 s" in line[0]
        assert waited < 40
    assert load_checkpoint(run)["world_size"] == 2


@pytest.mark.slow
def test_ddp_padding_not_counted(tmp_path):
    """An odd sample count over 2 processes: the loader repeats one sample to even the shards; it
    must not enter the loss, the accuracy or the NC statistics. With lr = 0 the model never
    changes, so the all-reduced statistics must equal one process's."""
    from ncollapse.config import load_config
    from ncollapse.train import Trainer

    extra = ["train.epochs=1", "optim.lr=0", "sched.name=constant", "data.rho=7"]
    single = Trainer(load_config(None, [*DDP_BASE, *extra, f"run.out_dir={tmp_path}/one"])).fit()
    a = _records(single.run_dir)[0]
    assert a["nc"]["data"]["samples"] % 2 == 1, "pick a profile with an odd sample count"
    r0, r1 = _ddp_pair([str(_recipe(tmp_path)), *DDP_BASE, *extra, f"run.out_dir={tmp_path}/two"],
                       tmp_path)  # fmt: skip
    for q in (r0, r1):
        q.wait(timeout=240)
    err = r0.stderr.read()
    for q in (r0, r1):
        q.stdout.close()
        q.stderr.close()
    assert r0.returncode == 0 and r1.returncode == 0, err[-2000:]
    b = _records(_run_dir(tmp_path / "two"))[0]
    assert b["nc"]["data"]["samples"] == a["nc"]["data"]["samples"]
    assert b["train_acc"] == pytest.approx(a["train_acc"], rel=1e-12)
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
    assert b["nc"]["nc1"]["nc1"] == pytest.approx(a["nc"]["nc1"]["nc1"], rel=1e-6)
