"""File names inside a sweep run directory and a run's state (shared by the runner and worker)."""

from __future__ import annotations

from pathlib import Path

DONE_NAME = "summary.json"  # written by the trainer, atomically, when a run finishes
CKPT_NAME = "checkpoint.pt"
LOG_NAME = "run.log"


def run_state(run_dir: Path) -> str:
    """``done`` (has summary.json) | ``partial`` (has a checkpoint) | ``new``."""
    run_dir = Path(run_dir)
    if (run_dir / DONE_NAME).is_file():
        return "done"
    if (run_dir / CKPT_NAME).is_file():
        return "partial"
    return "new"
