"""File names inside a sweep run directory and a run's state (shared by the runner and worker)."""

from __future__ import annotations

import json
from pathlib import Path

DONE_NAME = "summary.json"  # written by the trainer, atomically, when a run finishes
CKPT_NAME = "checkpoint.pt"
LOG_NAME = "run.log"


def run_state(run_dir: Path, epochs: int | None = None) -> str:
    """``done`` (summary.json of the last epoch) | ``partial`` (has a checkpoint) | ``new``.

    The trainer also writes summary.json when a fit stops early (``fit(stop_after=e)``), so with
    ``epochs`` given a summary counts as finished only if it is the summary of epoch ``epochs``."""
    run_dir = Path(run_dir)
    p = run_dir / DONE_NAME
    if p.is_file():
        if epochs is None:
            return "done"
        try:
            last = json.loads(p.read_text()).get("epoch")
        except (OSError, ValueError):
            last = None
        if isinstance(last, int) and last + 1 >= epochs:
            return "done"
    if (run_dir / CKPT_NAME).is_file():
        return "partial"
    return "new"
