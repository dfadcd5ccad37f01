"""The YAML training recipes shipped with the package (also reachable as ``configs/`` in a checkout).

A recipe is named by its file stem: ``ncollapse train fmnist_lt_ce`` runs
``recipes/fmnist_lt_ce.yaml``, ``ncollapse train fmnist_lt_cal`` runs
``recipes/methods/fmnist_lt_cal.yaml``; a relative name with folders (``methods/fmnist_lt_cal``) or
a path to any YAML file works too. :func:`resolve_recipe` is the one place that decides which file
a name means: an existing file wins over a packaged recipe of the same name.

* ``*.yaml``: the demo and smoke recipes (Fashion-MNIST-LT CE / LDAM-DRW / SETF, digits);
* ``methods/*.yaml``: NCMC (AL, CAL, Loss P), AllNC and BBN on Fashion-MNIST-LT;
* ``methods/paper/*.yaml``: mirrors of the NCMC paper's CIFAR / SVHN / STL-10 settings;
* ``sweeps/*.yaml``: sweep specs (``ncollapse sweep digits_demo``), not training recipes.
"""

from __future__ import annotations

from pathlib import Path

from ncollapse.errors import NCollapseError

__all__ = ["RECIPES_DIR", "recipe_names", "resolve_recipe"]

#: The folder holding the packaged recipes.
RECIPES_DIR = Path(__file__).resolve().parent


#: Folders of :data:`RECIPES_DIR` that hold something other than training recipes.
NOT_RECIPES = ("sweeps",)


def recipe_names() -> list[str]:
    """Every packaged training recipe, as a path relative to :data:`RECIPES_DIR` without
    ``.yaml`` (sweep specs under ``sweeps/`` are not recipes)."""
    names = (p.relative_to(RECIPES_DIR).with_suffix("").as_posix()
             for p in RECIPES_DIR.rglob("*.yaml"))  # fmt: skip
    return sorted(n for n in names if n.split("/", 1)[0] not in NOT_RECIPES)


def resolve_recipe(name: str | Path) -> Path:
    """The YAML file that ``name`` means: an existing file; else a packaged recipe by relative
    name (``methods/fmnist_lt_cal``, with or without ``.yaml`` or a leading ``configs/``) or by
    stem alone (``fmnist_lt_cal``) when the stem is unique."""
    p = Path(name)
    if p.is_file():
        return p
    if p.is_dir():
        raise NCollapseError(f"config {p} is a folder; pass a YAML file or a recipe name")
    rel = p.as_posix()
    if rel.startswith("configs/"):
        rel = rel[len("configs/") :]
    rel = rel.removesuffix(".yaml").removesuffix(".yml")
    names = recipe_names()
    if rel in names:
        return RECIPES_DIR / f"{rel}.yaml"
    by_stem = [n for n in names if n.rsplit("/", 1)[-1] == rel]
    if len(by_stem) == 1:
        return RECIPES_DIR / f"{by_stem[0]}.yaml"
    top = ", ".join(n for n in names if "/" not in n)
    raise NCollapseError(
        f"config {str(name)!r} is neither a file nor a packaged recipe; pass a YAML path or a "
        f"recipe name such as {top} (all: ncollapse train --list)"
    )
