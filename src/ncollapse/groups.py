"""Class groups for imbalance-aware reporting: shot groups by training count, or index ranges.

Two ways to split ``k`` classes into groups (each returns an ordered ``{name: int64 index array}``
dict whose arrays partition ``0..k-1``; a group may be empty):

* :func:`shot_groups` -- by *training* counts, the long-tail convention (OLTR, Liu et al.,
  CVPR 2019, arXiv 1904.05160; Kang et al., ICLR 2020, arXiv 1910.09217): ``many`` =
  ``n_c > many``, ``medium`` = ``few <= n_c <= many``, ``few`` = ``n_c < few``. The default
  thresholds come from :func:`shot_thresholds`, the one rule every caller uses: 100 / 20 for head
  classes up to the ImageNet-LT / CIFAR-100-LT scale, scaled by powers of ten for larger ones.
* :func:`range_groups` -- by class index, for data whose classes are ordered head to tail
  (e.g. CIFAR-LT): ``boundaries=(3, 7)`` with ``k=10`` gives ``head=[0,1,2]``,
  ``medium=[3..6]``, ``tail=[7,8,9]``.

Both are used by the metrics (per-group NC views) and by the data layer (per-group accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ncollapse.errors import NCollapseError, check_counts

__all__ = [
    "SHOT_FEW",
    "SHOT_MANY",
    "check_groups",
    "class_group_names",
    "group_mean",
    "make_groups",
    "default_minority",
    "parse_int_list",
    "range_groups",
    "shot_groups",
    "shot_thresholds",
]

#: The standard shot thresholds: many-shot is ``n > 100``, few-shot is ``n < 20``.
SHOT_MANY = 100
SHOT_FEW = 20
#: Largest head class (exclusive) for which the standard thresholds apply unscaled, times 10.
SHOT_SCALE_FROM = 5000


def shot_thresholds(counts, many: int | None = None, few: int | None = None) -> tuple[int, int]:
    """The shot thresholds ``(many, few)`` for training ``counts``: the one default of the package.

    An explicit ``many`` / ``few`` is kept. A missing one is the standard threshold (100 / 20, set
    for head classes of 500 to 1,300 images: CIFAR-100-LT, ImageNet-LT, Places-LT) times
    ``s = 10**m``, the largest power of ten with ``n_max >= 500 * s`` once ``n_max >= 5000``, i.e.
    ``s = 1`` for ``n_max < 5000``, ``s = 10`` for ``5000 <= n_max < 50000``, and so on. At
    CIFAR-10-LT or Fashion-MNIST-LT scale (``n_max`` 5,000 / 6,000) the standard thresholds put 8
    of 10 classes in *many* and none in *few*; the scaled ones (1000 / 200) give 4 / 3 / 3 at
    ``rho = 100``, the split the recipes report.
    """
    n = check_counts(counts, name="counts", min_classes=1)
    scale = 1
    while int(n.max()) >= SHOT_SCALE_FROM * scale:
        scale *= 10
    return (
        SHOT_MANY * scale if many is None else many,
        SHOT_FEW * scale if few is None else few,
    )


def shot_groups(counts, many: int | None = None, few: int | None = None) -> dict[str, np.ndarray]:
    """Split classes by training count: ``many`` (n > many), ``medium`` (few <= n <= many),
    ``few`` (n < few); missing thresholds come from :func:`shot_thresholds`.

    Returns ``{"many": idx, "medium": idx, "few": idx}`` (int64 arrays, ascending; possibly empty).
    """
    n = check_counts(counts, name="counts", min_classes=1)
    many, few = shot_thresholds(n, many, few)
    if not (isinstance(many, (int, np.integer)) and isinstance(few, (int, np.integer))):
        raise NCollapseError(f"shot thresholds must be integers, got many={many!r}, few={few!r}")
    if few < 1 or many < few:
        raise NCollapseError(
            f"shot thresholds many={many}, few={few} are invalid; need 1 <= few <= many "
            f"(e.g. many=100, few=20)"
        )
    return {
        "many": np.flatnonzero(n > many).astype(np.int64),
        "medium": np.flatnonzero((n >= few) & (n <= many)).astype(np.int64),
        "few": np.flatnonzero(n < few).astype(np.int64),
    }


def _range_names(m: int) -> list[str]:
    if m == 1:
        return ["all"]
    if m == 2:
        return ["head", "tail"]
    if m == 3:
        return ["head", "medium", "tail"]
    return [f"group{i}" for i in range(m)]


def range_groups(k: int, boundaries: Sequence[int]) -> dict[str, np.ndarray]:
    """Split classes ``0..k-1`` at index ``boundaries`` (strictly increasing, each in ``1..k-1``).

    Names: one boundary -> ``head``/``tail``; two -> ``head``/``medium``/``tail``; more ->
    ``group0``, ``group1``, ... . Example: ``range_groups(10, (3, 7))`` ->
    ``{"head": [0,1,2], "medium": [3,4,5,6], "tail": [7,8,9]}``.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise NCollapseError(f"k={k!r} must be a positive integer number of classes")
    b = [int(x) for x in boundaries]
    for i, x in enumerate(b):
        if not 1 <= x <= k - 1:
            raise NCollapseError(
                f"range boundary {x} is outside 1..{k - 1} (k={k} classes); boundaries are the "
                f"first class index of each new group, e.g. --ranges 3,7 for k=10"
            )
        if i and x <= b[i - 1]:
            raise NCollapseError(
                f"range boundaries {b} are not strictly increasing; pass e.g. 3,7 (head=0..2, "
                f"medium=3..6, tail=7..)"
            )
    edges = [0, *b, k]
    names = _range_names(len(edges) - 1)
    return {
        names[i]: np.arange(edges[i], edges[i + 1], dtype=np.int64) for i in range(len(edges) - 1)
    }


def parse_int_list(text: str, name: str) -> list[int]:
    """Parse ``"3,7"`` into ``[3, 7]``; errors name the option and an example."""
    try:
        out = [int(t) for t in str(text).replace(" ", "").split(",") if t != ""]
    except ValueError as exc:
        raise NCollapseError(
            f"{name}={text!r} is not a comma-separated list of integers, e.g. 3,7"
        ) from exc
    if not out:
        raise NCollapseError(f"{name} is empty; pass a comma-separated list of integers, e.g. 3,7")
    return out


def make_groups(
    counts,
    mode: str = "thresholds",
    *,
    many: int | None = None,
    few: int | None = None,
    boundaries: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """``mode="thresholds"`` -> :func:`shot_groups`; ``mode="ranges"`` -> :func:`range_groups`
    (``boundaries`` required)."""
    if mode == "thresholds":
        return shot_groups(counts, many=many, few=few)
    if mode == "ranges":
        if boundaries is None:
            raise NCollapseError("groups mode 'ranges' needs boundaries, e.g. --ranges 3,7")
        return range_groups(len(np.asarray(counts)), boundaries)
    raise NCollapseError(f"groups mode {mode!r} is unknown; use 'thresholds' or 'ranges'")


def default_minority(groups: Mapping[str, Sequence[int]]) -> str | None:
    """The group whose classes minority collapse is measured on when none is named: the last
    non-empty group (``few`` / ``tail``), provided it holds at least 2 classes and at least 2 groups
    are non-empty; else ``None`` (no minority section)."""
    nonempty = [g for g, idx in groups.items() if len(idx) >= 1]
    if len(nonempty) >= 2 and len(groups[nonempty[-1]]) >= 2:
        return nonempty[-1]
    return None


def check_groups(groups: Mapping[str, Sequence[int]], k: int) -> dict[str, np.ndarray]:
    """Validate a user group mapping: integer class indices in ``0..k-1``, no duplicates inside a
    group. Groups may overlap each other and need not cover every class."""
    out: dict[str, np.ndarray] = {}
    for name, idx in groups.items():
        a = np.asarray(idx)
        if a.size == 0:
            out[str(name)] = np.zeros(0, dtype=np.int64)
            continue
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise NCollapseError(f"group {name!r} must be a 1-D list of integer class indices")
        if a.min() < 0 or a.max() >= k:
            bad = int(a[(a < 0) | (a >= k)][0])
            raise NCollapseError(
                f"group {name!r} contains class {bad}, outside 0..{k - 1}; use class indices "
                f"< k={k}"
            )
        if np.unique(a).size != a.size:
            raise NCollapseError(f"group {name!r} lists a class twice; list each class once")
        out[str(name)] = a.astype(np.int64)
    return out


def class_group_names(groups: Mapping[str, Sequence[int]], k: int) -> list[str]:
    """Name of the (first) group of each class, ``""`` for classes in no group."""
    names = [""] * k
    for name, idx in groups.items():
        for c in np.asarray(idx, dtype=np.int64):
            if not names[int(c)]:
                names[int(c)] = str(name)
    return names


def group_mean(
    values, groups: Mapping[str, Sequence[int]], weights=None
) -> dict[str, float | None]:
    """Mean of a per-class vector over each group (optionally weighted, e.g. by counts); ``None``
    for an empty group or when all values in the group are NaN."""
    v = np.asarray(values, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    out: dict[str, float | None] = {}
    for name, idx in groups.items():
        idx = np.asarray(idx, dtype=np.int64)
        vals = v[idx]
        ok = np.isfinite(vals)
        if not ok.any():
            out[name] = None
            continue
        if w is None:
            out[name] = float(vals[ok].mean())
        else:
            ww = w[idx][ok]
            out[name] = float((vals[ok] * ww).sum() / ww.sum()) if ww.sum() > 0 else None
    return out
