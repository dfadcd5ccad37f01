"""The one registry class: names -> factories, with option checking, for every kind of component.

Configs name components by string (``{"name": "resnet32", "width": 32}``). A :class:`Registry` turns
an unknown name into an :class:`~ncollapse.errors.NCollapseError` that lists the valid names, and an
unknown option into one that lists the valid options with their defaults, so a typo in a YAML
recipe is caught before any model is built (the pattern of timm's model registry).

The package's registries (``BACKBONES``, ``HEADS``, ``LOSSES``, ``METHODS``, and the datasets) are
*complete on lookup*: the first ``get`` / ``names`` / ``in`` / ``create`` on any registry imports
every module of :data:`PROVIDERS` (the modules whose import registers components), so
``create_loss("ncmc_cosine")`` works right after ``import ncollapse`` without importing
``ncollapse.methods`` first, while ``import ncollapse`` itself stays cheap (no torch import).
User modules register more components by decorating factories with ``register``; the config key
``imports:`` imports them before a run is assembled.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ncollapse.errors import NCollapseError

__all__ = ["PROVIDERS", "Registry", "load_all"]

#: Modules whose import registers the package's components (backbones, heads, losses, methods,
#: datasets). Imported once, on the first lookup in any registry.
PROVIDERS: tuple[str, ...] = (
    "ncollapse.models",
    "ncollapse.losses",
    "ncollapse.methods",
    "ncollapse.data",
)

_loaded = False


def load_all() -> None:
    """Import every module of :data:`PROVIDERS` once, so every registry holds all built-ins.

    Safe to call during those imports (a module looking a name up while the package is still being
    imported sees what is registered so far and does not recurse)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in PROVIDERS:
        importlib.import_module(mod)


class Registry:
    """Maps names to factories; ``reserved`` are the positional arguments the caller supplies."""

    def __init__(self, kind: str, reserved: tuple[str, ...] = (), plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.reserved = reserved
        self._factories: dict[str, Callable[..., Any]] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(
        self, name: str, **meta: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@registry.register("name", key=value)`` stores the factory and metadata."""
        if not isinstance(name, str) or not name:
            raise NCollapseError(f"{self.kind} name {name!r} must be a non-empty string")

        def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._factories and self._factories[name] is not factory:
                raise NCollapseError(
                    f"{self.kind} {name!r} is already registered; pick another name"
                )
            self._factories[name] = factory
            self._meta[name] = dict(meta)
            return factory

        return deco

    def names(self) -> list[str]:
        load_all()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        load_all()
        return name in self._factories

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def get(self, name: str) -> Callable[..., Any]:
        load_all()
        if name not in self._factories:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = ", ".join(self.names())
            raise NCollapseError(
                f"unknown {self.kind} {name!r}{hint}; valid {self.plural}: {valid}"
            )
        return self._factories[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def options(self, name: str) -> dict[str, Any]:
        """Keyword options of ``name`` and their defaults (``Parameter.empty`` if required)."""
        sig = inspect.signature(self.get(name))
        out = {}
        for p in sig.parameters.values():
            if p.name in self.reserved or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default
        return out

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        factory = self.get(name)
        sig = inspect.signature(factory)
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        if not accepts_any:
            valid = self.options(name)
            for key in kwargs:
                if key not in sig.parameters:
                    shown = ", ".join(
                        k if v is inspect.Parameter.empty else f"{k}={v!r}"
                        for k, v in valid.items()
                    )
                    raise NCollapseError(
                        f"unknown option {key!r} for {self.kind} {name!r}; "
                        f"valid options: {shown or '(none)'}"
                    )
        return factory(*args, **kwargs)
