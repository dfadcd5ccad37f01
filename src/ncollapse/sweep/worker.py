"""Run (or finish) one sweep run in its directory: ``python -m ncollapse.sweep.worker RUN_DIR``.

The directory holds the run's resolved ``config.yaml`` (written by the sweep before it starts).
A run with ``summary.json`` is finished and left alone; one with ``checkpoint.pt`` is resumed from
its last epoch (:meth:`ncollapse.train.Trainer.resume` semantics: the replayed epochs equal an
uninterrupted run); otherwise it starts fresh. An exclusive lock on ``RUN_DIR/.lock`` makes a second
worker on the same directory (e.g. after the sweep process alone was killed and restarted while
an orphaned worker still runs) wait for the first and then find the run finished.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from pathlib import Path

from ncollapse.sweep.layout import run_state


def run_one(run_dir: str | Path, threads: int | None = None) -> str:
    """Train or resume the run in ``run_dir``; returns what happened (for the log)."""
    run_dir = Path(run_dir)
    lock = open(run_dir / ".lock", "w")  # noqa: SIM115 - held for the process lifetime
    fcntl.flock(lock, fcntl.LOCK_EX)
    state = run_state(run_dir)
    if state == "done":
        print("already finished; nothing to do", flush=True)
        return "done"

    import torch

    from ncollapse.config import load_config
    from ncollapse.train import Trainer
    from ncollapse.train.checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(int(threads))
    overrides = ["train.progress=false"] + ([f"train.threads={int(threads)}"] if threads else [])
    cfg = load_config(run_dir / "config.yaml", overrides)
    if state == "partial":
        ckpt = load_checkpoint(run_dir)
        trainer = Trainer(cfg, run_dir=run_dir, resume_state=ckpt)
        print(f"resuming from the checkpoint after epoch {trainer.start_epoch}", flush=True)
    else:
        trainer = Trainer(cfg, run_dir=run_dir)
        print("starting", flush=True)
    log_epoch = trainer._log
    t0 = time.perf_counter()

    def _log(rec):  # one line per epoch in the run's log
        log_epoch(rec)
        acc = rec.get("test_acc")
        print(
            f"epoch {rec['epoch'] + 1}/{cfg.train.epochs}  loss {rec.get('train_loss', float('nan')):.4f}"
            + (f"  test acc {acc:.4f}" if isinstance(acc, float) else "")
            + f"  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )

    trainer._log = _log
    trainer.fit()
    print(f"finished in {time.perf_counter() - t0:.1f} s", flush=True)
    return "resumed" if state == "partial" else "trained"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ncollapse.sweep.worker")
    ap.add_argument("run_dir")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from ncollapse.errors import NCollapseError

    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] pid {os.getpid()} {args.run_dir}", flush=True)
    try:
        run_one(args.run_dir, args.threads)
    except NCollapseError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
