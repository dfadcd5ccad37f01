"""Checkpoints that are good when written and load with ``torch.load(weights_only=True)``.

*Good* means: every floating-point tensor of the state -- parameters, buffers (e.g. BatchNorm
running statistics), optimiser state (momentum) and loss state -- is finite and at most
:data:`MAX_ABS` in magnitude. A trained network's values are O(1)-O(100); a value above 1e10
means the run has diverged even while its loss is still finite (with lr = 50 the weights reach 1e17
and BatchNorm variances overflow to inf), and its square already overflows half precision and
leaves few orders of magnitude to float32's 3.4e38 once summed over a layer. The trainer checks the
state before writing it, so the file on disk is always the last good epoch, and checks it again
on resume. Writes are atomic (temporary file + fsync + rename).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_bytes

CKPT_NAME = "checkpoint.pt"
MAX_ABS = 1e10


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Serialise ``state`` (tensors, numbers, strings, lists, dicts only) and write it atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _tensors(obj: Any, prefix: str):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def find_bad_value(state: dict[str, Any], max_abs: float = MAX_ABS) -> str | None:
    """``None`` when the state is good, else a short description of its first bad tensor."""
    for name, t in _tensors(
        {k: state[k] for k in ("model", "optimizer", "loss") if k in state}, ""
    ):
        if not t.is_floating_point() or t.numel() == 0:
            continue
        t = t.detach()
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            n = int((~finite).sum())
            first = t[~finite].flatten()[0].item()
            return f"{name} has {n} non-finite value(s) ({first})"
        m = float(t.abs().max())
        if m > max_abs:
            return f"{name} reaches {m:.3g} (limit {max_abs:.0e})"
    return None


def checkpoint_status(run_dir: str | os.PathLike | None) -> str:
    """A phrase for error messages: where the last good checkpoint is, or that there is none."""
    if run_dir is None:
        return "no good checkpoint exists (the run folder was not created)"
    p = Path(run_dir) / CKPT_NAME
    if p.is_file():
        try:
            epoch = torch.load(p, map_location="cpu", weights_only=True).get("epoch")
        except Exception:  # pragma: no cover - the file was validated when written
            epoch = None
        at = f" (after epoch {epoch})" if epoch is not None else ""
        return f"the last good checkpoint is {p}{at}; it is intact"
    return "no good checkpoint exists: the run diverged before its first epoch ended"


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / CKPT_NAME
    if not p.is_file():
        raise NCollapseError(
            f"no checkpoint at {p}: the run ended before its first epoch was saved; start it "
            f"again without --resume (pass a run directory that has {CKPT_NAME})"
        )
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file or unsafe content
        raise NCollapseError(
            f"checkpoint {p} cannot be loaded safely ({type(exc).__name__}); "
            f"it may be truncated or not written by ncollapse"
        ) from exc


def check_resumable(state: dict[str, Any], path: str | os.PathLike, world_size: int) -> None:
    """Refuse a checkpoint that is not good, or that another number of processes wrote."""
    bad = find_bad_value(state)
    if bad is not None:
        raise NCollapseError(
            f"checkpoint {path} is not a good state ({bad}); it cannot be resumed: start the run "
            f"again with a lower optim.lr"
        )
    saved = int(state.get("world_size", 1))
    if saved != int(world_size):
        how = (
            f"torchrun --nproc_per_node={saved} -m ncollapse train --resume ..."
            if saved > 1
            else "a single process (ncollapse train --resume ...)"
        )
        raise NCollapseError(
            f"checkpoint {path} was written by {saved} process(es) but this resume runs "
            f"{world_size}: the batches would differ and the run would diverge from its record; "
            f"resume it with {how}"
        )
