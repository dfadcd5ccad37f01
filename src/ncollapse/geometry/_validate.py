"""Small input checks shared by the geometry modules (all raise :class:`NCollapseError`)."""

from __future__ import annotations

import numbers

import numpy as np

from ncollapse.errors import NCollapseError


def check_int(value, name: str, *, minimum: int | None = None, fix: str = "") -> int:
    """Return ``value`` as an ``int``; reject non-integers and values below ``minimum``."""
    if isinstance(value, bool):
        raise NCollapseError(f"{name}={value!r} is not an integer")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        try:
            f = float(value)
        except (TypeError, ValueError) as exc:
            raise NCollapseError(f"{name}={value!r} is not an integer") from exc
        if not np.isfinite(f) or f != round(f):
            raise NCollapseError(f"{name}={value!r} is not an integer")
        v = int(round(f))
    if minimum is not None and v < minimum:
        extra = f"; {fix}" if fix else ""
        raise NCollapseError(f"{name}={v} must be >= {minimum}{extra}")
    return v
