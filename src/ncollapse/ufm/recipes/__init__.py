"""Reproduction recipes: ``ncollapse ufm reproduce seli|liu|ncmc``.

Each recipe module exposes ``run(out_dir=None, *, quick=False, device=None, progress=None)``
returning a summary dict; it writes ``results.json``, ``predictions.md`` / ``predictions.csv``
("prediction | numerics | error | tol"), data tables as CSV and a PNG figure into ``out_dir``
(default ``./outputs/ufm/<name>/``). ``quick=True`` runs tiny grids (for tests).
"""

from __future__ import annotations

import importlib

RECIPES = ("seli", "liu", "ncmc")


def run_recipe(name: str, out_dir=None, *, quick: bool = False, device=None, progress=None) -> dict:
    """Run recipe ``name`` (one of :data:`RECIPES`)."""
    from ncollapse.errors import NCollapseError

    if name not in RECIPES:
        raise NCollapseError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    import torch

    mod = importlib.import_module(f"ncollapse.ufm.recipes.{name}")
    # the problems are tiny: one thread avoids OpenMP spin contention on shared machines
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return mod.run(out_dir, quick=quick, device=device, progress=progress)
    finally:
        torch.set_num_threads(threads)


__all__ = ["RECIPES", "run_recipe"]
