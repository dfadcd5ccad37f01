"""NCMC multi-center frames (Yan et al., "Neural Collapse to Multiple Centers for Imbalanced Data",
NeurIPS 2024, OpenReview RJEC9fZ9Ma: Sec. 3.2 Def. 3.2 for the frame, Sec. 3.5 for the center counts).

* ``K`` classes; class ``k`` gets ``f_k`` centers, ``F = Σ f_k``.
* ``W0`` (K x d): orthonormal classifier rows ``w_k``; ``V`` (F x d): orthonormal rows ``v_j^(k)``,
  jointly orthonormal with ``W0`` (so ``d >= F + K``; with ``f_k = f`` for all k, ``d >= (f+1)K``).
* Centers ``w_j^(k) = cos θ · v_j^(k) + sin θ · w_k``: unit norm, centers of different classes are
  orthogonal, two centers of the same class have cosine ``sin²θ``.
* Mean of a class's centers ``w̄^(k) = (1/f_k) Σ_j w_j^(k)``;
  ``cos α_k = cos∠(w̄^(k), w_j^(k)) = sqrt((cos²θ + f_k sin²θ)/f_k)`` and
  ``cos ρ_k = cos∠(w̄^(k), w_k) = sqrt(f_k) sin θ / sqrt(cos²θ + f_k sin²θ)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ncollapse.errors import NCollapseError, check_counts
from ncollapse.geometry.etf import random_orthonormal
from ncollapse.validation import check_int

__all__ = [
    "NCMC_THETA",
    "PAPER_THETA",
    "THETA_READINGS",
    "CAL_ORDERS",
    "CENTER_MODES",
    "MultiCenterFrame",
    "al_counts",
    "center_counts",
    "class_aware_counts",
    "cos_alpha",
    "cos_rho",
    "multicenter_frame",
    "paper_theta",
]

#: The angle NCMC's experiments use, theta = 0.2 (Sec. 4.3-4.4, App. F.2; Tables 1, 3, 7).
PAPER_THETA = 0.2
#: How a theta quoted by the paper maps onto this module's Def. 3.2 convention (see paper_theta).
THETA_READINGS = ("complement", "definition")


def paper_theta(theta: float = PAPER_THETA, reading: str = "complement") -> float:
    """This module's theta (Def. 3.2: ``w = cos θ·v + sin θ·w_k``) for an angle quoted by NCMC.

    The paper is ambiguous (Yan et al., NeurIPS 2024): Def. 3.2 and the weight of App. F use the
    convention above, in which a small theta spreads a class's centers (same-class cosine sin²θ);
    Sec. 4.4 ("if θ is small, the centers of a class are very close to each other") and the
    recommended range θ ∈ (0, π/4) read as if theta were the angle between a center and its class
    direction ``w_k``. ``reading="definition"`` returns ``theta`` unchanged; ``"complement"`` (the
    default) returns ``π/2 − theta``, the Sec. 4.4 reading. The default follows the measurements
    (``ncollapse reproduce ncmc-table6`` and ``ncmc-cal-theta``; docs/reproductions.md): on
    Fashion-MNIST-LT the complement reading of the paper's 0.2 gives CAL 4-9 points more balanced
    accuracy and the paper's ordering CAL >= SETF.
    """
    th = _check_theta(theta)
    if reading == "definition":
        return th
    if reading == "complement":
        return float(np.pi / 2 - th)
    raise NCollapseError(
        f"reading={reading!r} is not a theta reading; use one of {THETA_READINGS} "
        "('complement': the paper's theta is measured from the class direction w_k)"
    )


def _check_f(f) -> int:
    return check_int(
        f, "f", minimum=1, fix="f is the average number of centers per class (e.g. 20)"
    )


def _check_theta(theta) -> float:
    try:
        th = float(theta)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"theta={theta!r} is not a number (radians, e.g. 0.2)") from exc
    if not np.isfinite(th) or th < 0 or th > np.pi / 2 + 1e-12:
        raise NCollapseError(
            f"theta={theta!r} must be an angle in radians within [0, pi/2]; e.g. 0.2"
        )
    return th


#: The default theta of every NCMC frame (heads, recipes, UFM, CLI): the paper's 0.2 read as the
#: angle from the class direction, π/2 − 0.2 ≈ 1.3708 in Def. 3.2's convention (paper_theta).
NCMC_THETA = paper_theta(PAPER_THETA)


def al_counts(k: int, f: int) -> np.ndarray:
    """AL ("average loss") center counts: ``[f] * k`` (int64)."""
    k = check_int(k, "k", minimum=2, fix="need at least 2 classes")
    return np.full(k, _check_f(f), dtype=np.int64)


#: Readings of NCMC's class-aware rule: ``"rank"`` (classes indexed by size) or ``"positional"``.
CAL_ORDERS = ("rank", "positional")


def _class_aware_sorted(n: np.ndarray, f: int) -> np.ndarray:
    """The rule on counts already in head-to-tail order (entry ``i`` is ``f`` of the i-th class)."""
    K = n.size
    N = int(n.sum())
    a = ((f - 1) * K * n) // N + 1  # exact integer floor of (f-1) K n_k / N
    out = a[::-1].copy()
    deficit = f * K - int(out.sum())
    i = 0
    while deficit > 0:
        out[i % K] += 1
        deficit -= 1
        i += 1
    return out.astype(np.int64)


def class_aware_counts(counts, f: int, *, order: str = "rank") -> np.ndarray:
    """CAL center counts ``f_k`` by NCMC's class-aware strategy (Yan et al., NeurIPS 2024, Sec. 3.5).

    The paper indexes classes by size, head to tail (``n_1 > n_2 > ... > n_K``, Sec. 2), and on
    that ordering the rule is, with ``K`` classes and ``N = Σ n``:

    1. ``p_k = n_k / N``;
    2. ``a_k = floor((f-1) K p_k) + 1`` (so ``a_k >= 1``);
    3. reverse the list to ``(a_K, ..., a_1)`` and add 1 to entries from the left (cycling if ever
       needed) until the sum is ``f K``; entry ``i`` of the result is ``f_i`` for class ``i``.

    ``order="rank"`` (default) applies the rule to the classes ranked by size (descending, ties
    in index order) and returns the counts in the classes' own order, so the result does not
    depend on how classes are numbered and smaller classes get at least as many centers as larger
    ones (up to the +1 top-up of step 3 among near-equal classes) -- the GCR argument of Sec. 3.1
    (``f_1 <= ... <= f_K``). ``order="positional"`` applies the rule to the counts in the order
    given, as the paper's worked example does: ``(1,3,3), f=3 -> (4,4,1)`` (this contradicts the
    paper's own indexing, which would rank those classes ``(3,3,1)``).

    For counts already sorted head to tail both readings agree, e.g. CIFAR-10-LT (rho=100),
    ``f=20 -> (2,3,4,5,7,11,17,28,46,77)``. Since ``Σ a_k <= f K`` and the deficit is ``< K``, one
    left-to-right pass suffices. The paper applies the strategy for ``f >= 2``; ``f = 1`` gives
    all ones (the same as AL). This is the one implementation: the NCMC training head
    (:mod:`ncollapse.methods.ncmc`), ``ncollapse geometry multicenter`` and the UFM NCMC path call it.
    """
    n = check_counts(counts)
    f = _check_f(f)
    if order not in CAL_ORDERS:
        raise NCollapseError(
            f"order={order!r} is unknown; use 'rank' (classes indexed by size, the default) or "
            f"'positional' (the counts' own order, as in the paper's worked example)"
        )
    if order == "positional":
        return _class_aware_sorted(n, f)
    rank = np.argsort(-n, kind="stable")
    out = np.empty_like(n)
    out[rank] = _class_aware_sorted(n[rank], f)
    return out.astype(np.int64)


#: How a multi-center head chooses its per-class center counts (NCMC Sec. 3.3 / 3.5).
CENTER_MODES = ("al", "cal", "custom")


def center_counts(
    mode: str, num_classes: int, f: int, counts=None, f_counts=None, *, order: str = "rank"
) -> np.ndarray:
    """Per-class center counts ``f_k`` (int64, class order): the one decision used by the NCMC
    training head, ``ncollapse geometry multicenter`` and the UFM NCMC path.

    * ``"al"``: ``f`` for every class (:func:`al_counts`);
    * ``"cal"``: NCMC's class-aware strategy (:func:`class_aware_counts`) on the training
      ``counts``, classes ranked by size (``order="rank"``; ``"positional"`` for the paper's worked
      example), so any class order works;
    * ``"custom"``: ``f_counts`` as given.
    """
    if mode not in CENTER_MODES:
        raise NCollapseError(f"mode={mode!r} is not valid; choose one of {', '.join(CENTER_MODES)}")
    if mode == "custom":
        if f_counts is None:
            raise NCollapseError("mode='custom' needs f_counts=[f_1, ..., f_K] (centers per class)")
        fk = check_counts(f_counts, "f_counts")
        if fk.size != num_classes:
            raise NCollapseError(
                f"f_counts has {fk.size} entries but the model has {num_classes} classes"
            )
        return fk
    if f_counts is not None:
        raise NCollapseError(
            f"f_counts is only used with mode='custom' (got mode={mode!r}); drop f_counts or set "
            f"mode: custom"
        )
    if mode == "al":
        return al_counts(num_classes, f)
    if counts is None:
        raise NCollapseError(
            "head 'multicenter' with mode='cal' needs the training class counts: pass "
            "counts=[n_1, ..., n_K] (the trainer passes them for heads with needs_counts), or use "
            "mode='al'"
        )
    n = check_counts(counts, "counts")
    if n.size != num_classes:
        raise NCollapseError(
            f"counts has {n.size} entries but the model has {num_classes} classes; pass the "
            f"training counts of this data set"
        )
    return class_aware_counts(n, f, order=order)


def cos_alpha(f_counts, theta: float) -> np.ndarray:
    """``cos α_k = sqrt((cos²θ + f_k sin²θ) / f_k)``: cosine between ``w̄^(k)`` and each center."""
    fk = check_counts(f_counts, name="f_counts", min_classes=1).astype(float)
    th = _check_theta(theta)
    return np.sqrt((np.cos(th) ** 2 + fk * np.sin(th) ** 2) / fk)


def cos_rho(f_counts, theta: float) -> np.ndarray:
    """``cos ρ_k = sqrt(f_k) sin θ / sqrt(cos²θ + f_k sin²θ)``: cosine of ``w̄^(k)`` and ``w_k``."""
    fk = check_counts(f_counts, name="f_counts", min_classes=1).astype(float)
    th = _check_theta(theta)
    return np.sqrt(fk) * np.sin(th) / np.sqrt(np.cos(th) ** 2 + fk * np.sin(th) ** 2)


@dataclass
class MultiCenterFrame:
    """A fixed NCMC frame (float64, unit-norm rows).

    ``W0`` (K x d) orthonormal classifier rows; ``V`` (F x d) orthonormal rows orthogonal to ``W0``;
    ``centers`` (F x d): ``cos θ V + sin θ W0[center_class]``; ``center_class`` (F,) class of each
    center (consecutive blocks of sizes ``f_counts``); ``f_counts`` (K,); ``theta`` (radians);
    ``cos_alpha`` (K,); ``mean_centers`` (K x d): ``w̄^(k)``; ``cos_rho`` (K,); ``seed``.
    """

    W0: np.ndarray
    V: np.ndarray
    centers: np.ndarray
    center_class: np.ndarray
    f_counts: np.ndarray
    theta: float
    cos_alpha: np.ndarray
    mean_centers: np.ndarray
    cos_rho: np.ndarray
    seed: int | None = None

    def to_dict(self) -> dict:
        """Plain dict of python lists/floats (JSON-ready)."""
        from ncollapse.io import to_jsonable

        return to_jsonable(asdict(self))


def multicenter_frame(
    f_counts, d: int, theta: float = NCMC_THETA, seed: int | None = 0
) -> MultiCenterFrame:
    """Build a seeded multi-center frame for per-class center counts ``f_counts`` in ``R^d``.

    One ``d x (F+K)`` matrix ``Q`` with orthonormal columns is drawn with
    :func:`~ncollapse.geometry.etf.random_orthonormal` (QR of a seeded Gaussian); its first ``K``
    columns are ``w_k`` and the remaining ``F`` columns, in consecutive blocks of sizes
    ``f_1..f_K``, are the ``v_j^(k)``. Requires ``d >= F + K``.
    """
    fk = check_counts(f_counts, name="f_counts", min_classes=2)
    th = _check_theta(theta)
    K = fk.size
    F = int(fk.sum())
    d = check_int(d, "d", minimum=1)
    if d < F + K:
        mean_f = F / K
        f_txt = f"{int(mean_f)}" if mean_f == int(mean_f) else f"{mean_f:g}"
        raise NCollapseError(
            f"d={d} is too small for a multi-center frame with K={K} classes and F={F} centers: "
            f"need "
            f"d >= F+K = (f+1)K = ({f_txt}+1)*{K} = {F + K}; add a projection layer "
            f"Linear(d_backbone -> {F + K}) (or larger) before the classifier, or lower f"
        )
    Q = random_orthonormal(d, F + K, seed)
    W0 = Q[:, :K].T.copy()
    V = Q[:, K:].T.copy()
    center_class = np.repeat(np.arange(K), fk)
    centers = np.cos(th) * V + np.sin(th) * W0[center_class]
    mean_centers = np.zeros((K, d))
    np.add.at(mean_centers, center_class, centers)
    mean_centers /= fk[:, None]
    return MultiCenterFrame(
        W0=W0,
        V=V,
        centers=centers,
        center_class=center_class,
        f_counts=fk,
        theta=th,
        cos_alpha=cos_alpha(fk, th),
        mean_centers=mean_centers,
        cos_rho=cos_rho(fk, th),
        seed=seed,
    )
