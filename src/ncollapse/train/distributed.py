"""Minimal DDP plumbing for ``torchrun``: gloo on CPU, NCCL on CUDA; rank 0 writes.

Every collective waits at most ``train.dist_timeout`` seconds (``init_process_group(timeout=)``):
a process that dies or freezes (SIGSTOP, a hung device) makes the others fail with one line that
says so instead of stalling forever; :func:`explain_failure` turns the backend's error into it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ncollapse.errors import NCollapseError


class PeerLost(NCollapseError):
    """Another DDP process died, froze or stopped answering."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout_s: float = 600.0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str, timeout_s: float = 600.0) -> DistInfo:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(timeout_s=timeout_s)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend, timeout=datetime.timedelta(seconds=float(timeout_s))
        )
    if device_kind == "cuda":
        torch.cuda.set_device(local)
    return DistInfo(rank=rank, world_size=world, local_rank=local, timeout_s=timeout_s)


_PEER_SIGNS = (
    "timed out",
    "timeout",
    "connection closed",
    "connection reset",
    "broken pipe",
    "socket",
    "peer",
    "gloo",
    "nccl",
    "recv",
    "send",
)


def explain_failure(exc: BaseException, info: DistInfo, where: str = "") -> PeerLost | None:
    """A one-line :class:`PeerLost` for a collective that failed because a peer is gone."""
    if not info.enabled or isinstance(exc, NCollapseError):
        return None
    text = str(exc).lower()
    if not any(s in text for s in _PEER_SIGNS):
        return None
    what = (
        f"no answer from another process within train.dist_timeout={info.timeout_s:g} s"
        if "time" in text
        else "another process closed its connection (it died)"
    )
    return PeerLost(
        f"rank {info.rank}/{info.world_size}: {what}; a peer was killed, stopped or hung; "
        f"{where + '; ' if where else ''}restart all processes with --resume"
    )


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def valid_rows(step_out, mask: torch.Tensor, loss_fn):
    """The rows of a training step's output that are not DDP padding, and their loss.

    ``step_out`` is a method's step result (``output``, ``y``, ``y_b``, ``lam``); returns
    ``(output, y, y_b, loss)`` restricted to ``mask``, the loss recomputed on those rows (it is a
    mean over the batch, so the padded rows cannot simply be weighted out)."""
    from ncollapse.methods.base import loss_with_mixup

    out, y, y_b = step_out.output, step_out.y, step_out.y_b
    b = y.shape[0]
    fields = []
    for name, f in zip(out._fields, out):
        keep = isinstance(f, torch.Tensor) and f.dim() > 0 and f.shape[0] == b
        fields.append(f[mask] if keep and name != "fixed_weight" else f)
    out = type(out)(*fields)
    y = y[mask]
    y_b = None if y_b is None else y_b[mask]
    loss = loss_with_mixup(loss_fn, out, y, y_b, float(step_out.lam))
    return out, y, y_b, loss
