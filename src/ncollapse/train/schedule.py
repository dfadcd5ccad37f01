"""Learning-rate schedules: linear warm-up, then step decay or cosine annealing (per iteration)."""

from __future__ import annotations

import math

from ncollapse.errors import NCollapseError


def lr_factor(
    epoch_float: float,
    *,
    name: str,
    epochs: int,
    warmup_epochs: int = 0,
    milestones: list[int] | None = None,
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at fractional epoch ``epoch_float`` (0-based).

    warm-up: factor (e + 1) / warmup_epochs during the first ``warmup_epochs`` epochs (the LDAM/SETF
    recipes use 5); then
    * ``step``: gamma ** (number of milestones <= epoch)
    * ``cosine``: 0.5 (1 + cos(pi t)), t the fraction of post-warm-up training done
    * ``constant``: 1
    """
    if warmup_epochs > 0 and epoch_float < warmup_epochs:
        # epoch-wise linear warm-up as in the LDAM-DRW / SETF recipes: (e + 1) / warmup for e < warmup
        return (math.floor(epoch_float) + 1) / warmup_epochs
    if name == "step":
        passed = sum(1 for m in (milestones or []) if epoch_float >= m)
        return gamma**passed
    if name == "cosine":
        span = max(epochs - warmup_epochs, 1)
        t = min(max((epoch_float - warmup_epochs) / span, 0.0), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "constant":
        return 1.0
    raise NCollapseError(f"sched.name={name!r} is unknown; use one of: step, cosine, constant")
