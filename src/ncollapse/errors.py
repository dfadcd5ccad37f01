"""One error type for bad input, and boundary checks whose messages name the value and the fix.

Every user-facing validation raises :class:`NCollapseError` (a ``ValueError``). The CLI catches it,
prints its one-line message and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class NCollapseError(ValueError):
    """Bad input: the message says which value is wrong and how to fix it."""


class DataNotFoundError(NCollapseError, FileNotFoundError):
    """A dataset is missing on disk: the message names the paths searched and how to get it."""


def check_counts(
    counts: Sequence[int] | np.ndarray, name: str = "counts", min_classes: int = 2
) -> np.ndarray:
    """Validate a class-count vector: integers >= 1, at least ``min_classes`` entries.

    Returns it as an int64 numpy array.
    """
    try:
        arr = np.asarray(counts, dtype=float)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(
            f"{name}={counts!r} is not a list of numbers; pass e.g. 10,10,1,1"
        ) from exc
    if arr.ndim != 1:
        raise NCollapseError(f"{name} must be a 1-D vector of class counts, got shape {arr.shape}")
    if arr.size < min_classes:
        raise NCollapseError(
            f"{name}={arr.astype(int).tolist()} has {arr.size} class(es); need at least {min_classes} classes"
        )
    if not np.all(np.isfinite(arr)):
        raise NCollapseError(
            f"{name}={arr.tolist()} contains NaN or inf; counts must be positive integers"
        )
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise NCollapseError(
            f"{name}[{bad[0]}]={arr[bad[0]]:g} is not positive; every class needs at least 1 sample "
            f"(drop empty classes or relabel)"
        )
    if np.any(arr != np.round(arr)):
        i = int(np.flatnonzero(arr != np.round(arr))[0])
        raise NCollapseError(f"{name}[{i}]={arr[i]:g} is not an integer; counts are sample numbers")
    return arr.astype(np.int64)


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Validate a finite positive (or non-negative) scalar."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"{name}={value!r} is not a number") from exc
    if not np.isfinite(v):
        raise NCollapseError(f"{name}={v} is not finite; pass a finite number")
    if v < 0 or (v == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise NCollapseError(f"{name}={v:g} must be {need}")
    return v


def check_finite(x, name: str) -> None:
    """Raise if an array or tensor holds NaN or inf, naming how many and where the first one is."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            ok = torch.isfinite(x)
            if not bool(ok.all()):
                bad = (~ok).nonzero()
                n = int(bad.shape[0])
                raise NCollapseError(
                    f"{name} has {n} NaN/inf value(s), first at index {tuple(bad[0].tolist())}; "
                    f"check the model output (diverged training?) or drop those rows"
                )
            return
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(x)
    ok = np.isfinite(arr)
    if not ok.all():
        bad = np.argwhere(~ok)
        raise NCollapseError(
            f"{name} has {len(bad)} NaN/inf value(s), first at index {tuple(bad[0].tolist())}; "
            f"check the model output (diverged training?) or drop those rows"
        )
