"""One error type for bad input.

Every user-facing validation raises :class:`NCollapseError` (a ``ValueError``). The CLI catches it,
prints its one-line message and exits with status 2. The checks themselves live in
:mod:`ncollapse.validation`; ``check_counts``, ``check_positive`` and ``check_finite`` are
re-exported here so that older imports keep working.
"""

from __future__ import annotations


class NCollapseError(ValueError):
    """Bad input: the message says which value is wrong and how to fix it."""


class DataNotFoundError(NCollapseError, FileNotFoundError):
    """A dataset is missing on disk: the message names the paths searched and how to get it."""


from ncollapse.validation import (  # noqa: E402
    available_memory,
    check_counts,
    check_finite,
    check_memory,
    check_positive,
    format_bytes,
)

__all__ = [
    "DataNotFoundError",
    "NCollapseError",
    "available_memory",
    "check_counts",
    "check_finite",
    "check_memory",
    "check_positive",
    "format_bytes",
]
