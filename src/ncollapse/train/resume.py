"""What a resume may change, and the record of every resume.

A run folder records what was run: ``config.yaml`` and ``manifest.json`` are written once, when the
run starts, and never rewritten. A resume may take only overrides that leave the recorded run
intact (:data:`RESUME_KEYS`: more epochs, where and how fast it runs, what it displays); any other
change (data, model, loss, optimiser, schedule, seeds) would make the folder hold a run nobody
configured, so it is refused with one line that lists the keys a resume may take. Each resume
appends one JSON line to ``resumes.jsonl`` (time, epoch it resumed from, the overrides and the
environment); the effective config of a run is ``config.yaml`` with the overrides of every
recorded resume applied in order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ncollapse.config import Config, apply_overrides, config_from_dict, read_config_file
from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_text, to_jsonable

RESUMES_NAME = "resumes.jsonl"

#: overrides a resume may take, with what they change
RESUME_KEYS = {
    "train.epochs": "train longer (only more epochs than recorded)",
    "train.device": "where it runs",
    "train.threads": "CPU threads",
    "train.progress": "progress display",
    "train.dist_timeout": "DDP collective timeout",
    "run.tensorboard": "TensorBoard logging",
    "data.root": "where the data files are (the same data)",
}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recorded_overrides(run_dir: str | os.PathLike) -> list[str]:
    """The overrides of every earlier resume of ``run_dir``, in order."""
    p = Path(run_dir) / RESUMES_NAME
    if not p.is_file():
        return []
    out: list[str] = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.extend(json.loads(line).get("overrides", []))
        except (ValueError, AttributeError) as exc:
            raise NCollapseError(
                f"{p} line {i} is not a JSON record; restore it or delete the line"
            ) from exc
    return out


def resume_config(
    run_dir: str | os.PathLike, overrides: list[str] | None
) -> tuple[Config, dict[str, tuple[Any, Any]]]:
    """The effective config of a resume and the changes it makes (key -> (old, new)).

    Raises :class:`NCollapseError` for an override that a resume may not take."""
    run_dir = Path(run_dir)
    base = read_config_file(run_dir / "config.yaml")
    earlier = recorded_overrides(run_dir)
    before = config_from_dict(apply_overrides(base, earlier))
    after = config_from_dict(apply_overrides(base, [*earlier, *(overrides or [])]))
    a, b = _flat(before.to_dict()), _flat(after.to_dict())
    changes = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    allowed = ", ".join(RESUME_KEYS)
    for key, (old, new) in changes.items():
        if key not in RESUME_KEYS:
            raise NCollapseError(
                f"a resume cannot change {key} ({old!r} -> {new!r}): the folder records the run "
                f"as configured; a resume may change only {allowed}; start a new run instead"
            )
    if "train.epochs" in changes and changes["train.epochs"][1] < changes["train.epochs"][0]:
        old, new = changes["train.epochs"]
        raise NCollapseError(
            f"a resume cannot lower train.epochs ({old} -> {new}): the schedule of the recorded "
            f"run depends on it; resume with train.epochs >= {old}"
        )
    return after, changes


def record_resume(
    run_dir: str | os.PathLike,
    from_epoch: int,
    overrides: list[str] | None,
    changes: dict[str, tuple[Any, Any]],
    env: dict[str, Any],
) -> None:
    """Append one line to ``resumes.jsonl`` (atomically: the file always holds whole lines)."""
    p = Path(run_dir) / RESUMES_NAME
    rec = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "from_epoch": int(from_epoch),
        "overrides": list(overrides or []),
        "changes": {k: list(v) for k, v in changes.items()},
        "env": env,
    }
    old = p.read_text() if p.is_file() else ""
    atomic_write_text(p, old + json.dumps(to_jsonable(rec)) + "\n")


def prepare_resume(run_dir: str | os.PathLike, overrides: list[str] | None):
    """Lock ``run_dir``, check the overrides and the checkpoint: ``(cfg, state, lock, changes)``."""
    from ncollapse.train.checkpoint import CKPT_NAME, check_resumable, load_checkpoint
    from ncollapse.train.lock import lock_run_dir

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise NCollapseError(
            f"{run_dir} is not a run directory (no config.yaml); pass the folder "
            "printed when the run started"
        )
    lock = lock_run_dir(run_dir)
    try:
        cfg, changes = resume_config(run_dir, overrides)
        state = load_checkpoint(run_dir / CKPT_NAME)
        check_resumable(state, run_dir / CKPT_NAME, int(os.environ.get("WORLD_SIZE", "1")))
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return cfg, state, lock, changes


def claim_new_run_dir(run_dir: str | os.PathLike):
    """Lock a folder for a fresh run; refuse one that already holds a run's records."""
    from ncollapse.train.checkpoint import CKPT_NAME
    from ncollapse.train.lock import lock_run_dir

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise NCollapseError(f"run folder {run_dir} is a file; choose another run folder")
    lock = lock_run_dir(run_dir)
    if lock is None:
        return None
    found = [n for n in (CKPT_NAME, "metrics.jsonl") if (run_dir / n).exists()]
    if found:
        lock.release()
        raise NCollapseError(
            f"run folder {run_dir} already holds a run ({', '.join(found)}); continue it with "
            f"--resume {run_dir}, or choose an empty folder"
        )
    return lock
