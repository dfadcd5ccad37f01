"""A small name -> factory registry with option checking (used for backbones, heads and losses).

Configs name components by string (``{"name": "resnet32", "width": 32}``). The registry turns an
unknown name into an :class:`~ncollapse.errors.NCollapseError` that lists the valid names, and an
unknown option into one that lists the valid options with their defaults, so a typo in a YAML
recipe is caught before any model is built.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from ncollapse.errors import NCollapseError


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
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> Callable[..., Any]:
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
