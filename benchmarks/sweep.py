"""Sweep benchmarks (issue: sweeps §6), all as wall times of the user's commands.

(a) 8 tiny digits runs: `ncollapse sweep` (local pool: one single-thread run per core, i.e. 2 at a time
    on 2 cores) against the same 8 runs as sequential `ncollapse train` processes (torch's default
    threads). Goal: >= 1.8x on 2 cores.
(b) the Ray executor (a local Ray instance, started and stopped by the command) against the local
    executor on the same spec. Goal: within 15 %. Both sweeps must give identical results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = str(REPO / "configs" / "digits_lt_ce.yaml")


def _spec(epochs: int) -> dict:
    return {
        "name": "bench",
        "recipe": RECIPE,
        "set": {"train.epochs": epochs, "run.tensorboard": False},
        "grid": {"optim.lr": [0.05, 0.1]},
        "seeds": [0, 1, 2, 3],
    }  # 8 runs


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def _records(sweep: Path) -> dict:
    out = {}
    for d in sorted((sweep / "runs").iterdir()):
        recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x]
        out[d.name] = [{k: v for k, v in r.items() if not k.startswith("time_")} for r in recs]
    return out


def _have_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False) -> dict:
    epochs = 5 if quick else 20
    raw = _spec(epochs)
    nc = [sys.executable, "-m", "ncollapse"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = tmp / "spec.yaml"
        spec.write_text(yaml.safe_dump(raw))
        # (a) sequential `ncollapse train`, one process after another
        t_seq = 0.0
        for lr in raw["grid"]["optim.lr"]:
            for seed in raw["seeds"]:
                t_seq += _timed(
                    nc
                    + ["train", RECIPE, f"train.epochs={epochs}", "run.tensorboard=false"]
                    + [f"optim.lr={lr}", f"train.seed={seed}", "train.progress=false"]
                    + [f"run.out_dir={tmp / 'seq'}", "--json"]
                )
        # local and Ray alternate (L, R, L, R); the best of each counts, so a burst of load from
        # other jobs on a shared machine does not decide the comparison
        t_locals, t_rays = [], []
        have_ray = _have_ray()
        for rep in range(2):
            t_locals.append(_timed(nc + ["sweep", str(spec), "--out", str(tmp / f"local{rep}")]))
            if have_ray:
                t_rays.append(
                    _timed(
                        nc
                        + ["sweep", str(spec), "--out", str(tmp / f"ray{rep}"), "--executor", "ray"]
                    )
                )
        t_local = min(t_locals)
        rows.append(
            {
                "case": f"8 digits runs ({epochs} epochs): sequential `ncollapse train` vs "
                "`ncollapse sweep` (local pool)",
                "value": round(t_seq / t_local, 2),
                "unit": f"x ({t_seq:.1f} s vs {t_local:.1f} s)",
                "goal": ">= 1.8x",
                "ok": t_seq / t_local >= 1.8,
            }
        )
        if not have_ray:
            rows.append(
                {
                    "case": "ray vs local",
                    "value": None,
                    "unit": "ray not installed",
                    "goal": "within 15 %",
                    "ok": None,
                }
            )
        else:
            t_ray = min(t_rays)
            same = _records(tmp / "ray0") == _records(tmp / "local0")
            rows.append(
                {
                    "case": "same spec: `--executor ray` (local instance, started and stopped by "
                    "the command) vs local pool; best of 2 each, alternating",
                    "value": round(t_ray / t_local - 1, 3),
                    "unit": f"relative ({t_ray:.1f} s vs {t_local:.1f} s; all: ray "
                    f"{', '.join(f'{t:.1f}' for t in t_rays)}, local "
                    f"{', '.join(f'{t:.1f}' for t in t_locals)}; identical results: {same})",
                    "goal": "within 15 %",
                    "ok": abs(t_ray / t_local - 1) <= 0.15 and same,
                }
            )
    return {"name": "sweep", "rows": rows}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import print_rows, save

    res = run(quick="--quick" in sys.argv)
    print_rows(res)
    print(f"wrote {save(res)}")
