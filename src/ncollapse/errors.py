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


def available_memory() -> int:
    """Bytes of memory this process can still allocate on the host (``MemAvailable`` on Linux).

    Falls back to the physical memory size where ``/proc/meminfo`` is absent. A limit set with
    the environment variable ``NCOLLAPSE_MAX_MEMORY`` (bytes) caps the result.
    """
    import os

    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover
            avail = 2**63 - 1
    cap = os.environ.get("NCOLLAPSE_MAX_MEMORY")
    if cap:
        try:
            avail = min(avail, int(float(cap)))
        except ValueError as exc:
            raise NCollapseError(
                f"NCOLLAPSE_MAX_MEMORY={cap!r} is not a number of bytes; unset it or pass e.g. 8e9"
            ) from exc
    return avail


def format_bytes(nbytes: float) -> str:
    """``1536 -> '1.5 KiB'`` (binary units, three significant digits)."""
    x = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(x) < 1024 or unit == "PiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.3g} {unit}"
        x /= 1024
    return f"{x:.3g} PiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, fix: str, *, available: float | None = None) -> None:
    """Refuse a request before allocating when it needs more memory than is available.

    ``nbytes`` is the caller's estimate of the peak memory, ``what`` names the request (e.g.
    "the CE-UFM with K=60000 classes") and ``fix`` says which option lowers it (e.g. "use fewer
    classes or --features class"). ``available`` defaults to :func:`available_memory` (for a
    GPU pass ``torch.cuda.mem_get_info()[0]``). The message reads ``<what> needs 1.2 TiB of
    memory, more than the 30.1 GiB available; <fix>``.
    """
    need = float(nbytes)
    have = float(available_memory() if available is None else available)
    if need > have:
        raise NCollapseError(
            f"{what} needs {format_bytes(need)} of memory, more than the {format_bytes(have)} "
            f"available; {fix}"
        )
