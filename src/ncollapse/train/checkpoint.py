"""Atomic checkpoints that load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_bytes

CKPT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Serialise ``state`` (tensors, numbers, strings, lists, dicts only) and write it atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    if not p.is_file():
        raise NCollapseError(f"no checkpoint at {p}; pass a run directory that has {CKPT_NAME}")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file or unsafe content
        raise NCollapseError(
            f"checkpoint {p} cannot be loaded safely ({type(exc).__name__}); "
            f"it may be truncated or not written by ncollapse"
        ) from exc
