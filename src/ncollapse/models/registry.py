"""Re-export of :class:`ncollapse.registry.Registry` (kept so older imports keep working)."""

from ncollapse.registry import Registry

__all__ = ["Registry"]
