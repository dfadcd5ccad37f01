"""Re-export of :func:`ncollapse.validation.check_int` (kept so older imports keep working)."""

from ncollapse.validation import check_int

__all__ = ["check_int"]
