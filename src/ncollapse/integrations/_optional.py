"""Import an optional dependency or raise a one-line NCollapseError naming the extra to install."""

from __future__ import annotations

import importlib

from ncollapse.errors import NCollapseError


def require(module: str, extra: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NCollapseError(
            f"{module} is not installed; install it with `pip install ncollapse[{extra}]` "
            f"(or `pip install {pip_name}`)"
        ) from exc
