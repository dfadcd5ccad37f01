"""Sweeps that train: local pool and Ray against one-by-one `ncollapse train`, kill and restart,
resume of an interrupted run, failures, and the aggregated report (tiny digits runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ncollapse.cli import main

pytestmark = pytest.mark.slow  # about a minute on 2 idle cores (each run is a process)

REPO = Path(__file__).resolve().parents[1]
RECIPE = str(REPO / "configs" / "digits_lt_ce.yaml")
SET = {"train.epochs": 2, "model.backbone_args.width": 16, "run.tensorboard": False}
SPEC = {
    "name": "t",
    "recipe": RECIPE,
    "set": SET,
    "grid": {"optim.lr": [0.05, 0.1]},
    "seeds": [0, 1],
}
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _cli(*args, check=True, **kw):
    out = subprocess.run(
        [sys.executable, "-m", "ncollapse", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        **kw,
    )
    if check:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


def _write(tmp: Path, raw: dict, name: str = "spec.yaml") -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(raw))
    return p


def _records(run_dir: Path) -> list[dict]:
    """Per-epoch records without wall-clock times."""
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in recs]


def _runs(sweep: Path) -> dict[str, Path]:
    meta = json.loads((sweep / "sweep.json").read_text())
    return {r["run_id"]: sweep / "runs" / r["run_id"] for r in meta["runs"]}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    spec = _write(tmp, SPEC)
    out = _cli("sweep", spec, "--out", tmp / "local", "--workers", 2, "--threads", 1)
    return tmp, spec, tmp / "local", out


def test_local_sweep_equals_runs_one_by_one(local_sweep, tmp_path):
    tmp, spec, sweep, out = local_sweep
    assert "4 run(s) done, 0 skipped, 0 failed" in out.stdout
    runs = _runs(sweep)
    assert len(runs) == 4
    meta = json.loads((sweep / "sweep.json").read_text())["runs"]
    for r in meta:
        lr, seed = r["factors"]["optim.lr"], r["seed"]
        rc = main(
            [
                "train",
                RECIPE,
                "train.epochs=2",
                "model.backbone_args.width=16",
                "run.tensorboard=false",
                "train.progress=false",
                "train.threads=1",
                f"optim.lr={lr}",
                f"train.seed={seed}",
                f"run.out_dir={tmp_path}",
                f"run.name=r{lr}-{seed}",
                "--json",
            ]
        )
        assert rc == 0
        (one,) = tmp_path.glob(f"r{lr}-{seed}-*")
        assert _records(one) == _records(runs[r["run_id"]])
        assert (runs[r["run_id"]] / "run.log").read_text().count("starting") == 1


def test_rerun_skips_finished_runs_and_dry_run_lists_them(local_sweep):
    tmp, spec, sweep, _ = local_sweep
    before = {k: (d / "summary.json").stat().st_mtime_ns for k, d in _runs(sweep).items()}
    out = _cli("sweep", spec, "--out", sweep)
    assert "0 run(s) done, 4 skipped" in out.stdout
    after = {k: (d / "summary.json").stat().st_mtime_ns for k, d in _runs(sweep).items()}
    assert before == after
    dry = json.loads(_cli("sweep", spec, "--out", sweep, "--dry-run", "--json").stdout)
    assert [r["state"] for r in dry["runs"]] == ["done"] * 4


def test_ray_executor_gives_identical_results(local_sweep):
    pytest.importorskip(
        "ray", reason="the ray extra is not installed (pip install 'ncollapse[ray]')"
    )
    tmp, spec, sweep, _ = local_sweep
    out = _cli(
        "sweep", spec, "--out", tmp / "ray", "--executor", "ray", "--workers", 2, "--threads", 1
    )
    assert "4 run(s) done" in out.stdout
    ray_runs, local_runs = _runs(tmp / "ray"), _runs(sweep)
    assert ray_runs.keys() == local_runs.keys()
    for k in ray_runs:
        assert _records(ray_runs[k]) == _records(local_runs[k])
    assert _cli("report", tmp / "ray", "--csv").stdout == _cli("report", sweep, "--csv").stdout


def test_killed_sweep_restarts_without_repeating_finished_runs(local_sweep):
    tmp, spec, ref, _ = local_sweep
    sweep = tmp / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ncollapse", "sweep", str(spec), "--out", str(sweep)]
        + ["--workers", "2", "--threads", "1"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the sweep and its runs
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(sweep.glob("runs/*/summary.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {d.parent: d.stat().st_mtime_ns for d in sweep.glob("runs/*/summary.json")}
    assert 1 <= len(finished) < 4, "the sweep was not killed mid-way"
    out = _cli("sweep", spec, "--out", sweep, "--workers", 2, "--threads", 1)
    assert f"{len(finished)} skipped" in out.stdout
    for d, mtime in finished.items():
        assert (d / "summary.json").stat().st_mtime_ns == mtime  # not rerun
        assert (d / "run.log").read_text().count("starting") == 1
    assert _cli("report", sweep, "--csv").stdout == _cli("report", ref, "--csv").stdout


def test_interrupted_run_resumes_from_its_checkpoint(local_sweep, tmp_path):
    from ncollapse.config import load_config
    from ncollapse.sweep import load_spec, plan, run_sweep
    from ncollapse.sweep.runner import write_plan
    from ncollapse.train import Trainer

    _, _, ref, _ = local_sweep
    spec_path = _write(tmp_path, {**SPEC, "grid": {"optim.lr": [0.1]}, "seeds": [1]})
    spec = load_spec(spec_path, out_dir=tmp_path / "s")
    p = plan(spec)
    write_plan(p)
    (run_dir,) = p.dirs
    cfg = load_config(run_dir / "config.yaml", ["train.threads=1", "train.progress=false"])
    Trainer(cfg, run_dir=run_dir).fit(stop_after=1)  # as if killed after epoch 1 of 2
    assert plan(spec).states == ["partial"]
    outcome = run_sweep(spec, workers=1, threads=1, bar=False)
    assert outcome.done == [spec.runs[0].run_id]
    log = (run_dir / "run.log").read_text()
    assert "resuming from the checkpoint after epoch 1" in log and "starting" not in log
    assert "epoch 1/2" not in log and "epoch 2/2" in log  # epoch 1 was not trained again
    assert _records(run_dir) == _records(ref / "runs" / run_dir.name)


def test_failed_run_does_not_stop_the_others(tmp_path):
    raw = {
        "recipe": RECIPE,
        "set": {**SET, "train.epochs": 1},
        "runs": [
            {"name": "bad", "loss.name": "ldam"},
            {"name": "good"},
        ],  # ldam needs a cosine head
        "seeds": [0],
    }
    out = _cli("sweep", _write(tmp_path, raw), "--out", tmp_path / "s", "--workers", 2, check=False)
    assert out.returncode == 1
    assert "FAILED  bad-seed0-" in out.stderr
    assert "needs head 'cosine'" in out.stderr  # the last lines of the run's log
    assert "1 run(s) done, 0 skipped, 1 failed" in out.stderr
    assert list((tmp_path / "s" / "runs").glob("good-seed0-*/summary.json"))


def test_report_aggregates_over_seeds_and_pivots(local_sweep):
    _, _, sweep, _ = local_sweep
    meta = json.loads((sweep / "sweep.json").read_text())["runs"]
    data = json.loads(_cli("report", sweep, "--json").stdout)
    assert data["factors"] == ["method", "optim.lr"] and len(data["groups"]) == 2
    for g in data["groups"]:
        accs = []
        for r in meta:
            if r["factors"]["optim.lr"] == g["factors"]["optim.lr"]:
                last = _records(sweep / "runs" / r["run_id"])[-1]
                accs.append(last["group_acc"]["tail"])
        m = g["metrics"]["tail_acc"]
        assert g["n_runs"] == 2
        assert m["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert m["std"] == pytest.approx(np.std(accs), abs=1e-12)
    md = _cli(
        "report", sweep, "--pivot", "rows=method,cols=optim.lr,cell=tail_acc", "--markdown"
    ).stdout.splitlines()
    assert md[0] == "| method (tail acc) | lr=0.05 | lr=0.1 |"
    g = {x["factors"]["optim.lr"]: x["metrics"]["tail_acc"] for x in data["groups"]}
    want = [f"{100 * g[lr]['mean']:.1f} ± {100 * g[lr]['std']:.1f}" for lr in (0.05, 0.1)]
    assert md[2] == f"| digits_lt_ce | {want[0]} | {want[1]} |"
    bad = _cli("report", sweep, "--pivot", "rows=method,cell=few_acc", check=False)
    assert bad.returncode == 2 and "unknown measure 'few_acc'; measures: overall_acc" in bad.stderr


def test_fail_fast_stops_at_the_first_failure(tmp_path):
    raw = {
        "recipe": RECIPE,
        "set": {**SET, "train.epochs": 1},
        "runs": [{"name": "bad", "loss.name": "ldam"}, {"name": "good"}],
        "seeds": [0, 1],
    }
    out = _cli(
        "sweep",
        _write(tmp_path, raw),
        "--out",
        tmp_path / "s",
        "--workers",
        1,
        "--fail-fast",
        check=False,
    )
    assert out.returncode == 1
    assert "0 run(s) done, 0 skipped, 1 failed" in out.stderr  # the rest never started
    assert not list((tmp_path / "s" / "runs").glob("*/summary.json"))
