"""What the two target geometries predict for a run's training counts, in the report's terms.

* SELI (Thrampoulidis et al., "Imbalance trouble", NeurIPS 2022, arXiv:2208.05512, Thm. 1 and
  Eq. (6)): ``W Wᵀ = (P D_n P)^{1/2}``, ``Mᵀ M = (P D_n P)^{+1/2}``, ``W M = P`` with
  ``P = I − 11ᵀ/K`` -- the closed forms live in :mod:`ncollapse.geometry.seli`.
* The simplex ETF (Papyan, Han & Donoho, PNAS 2020, arXiv:2008.08186, Def. 1): equal norms,
  pairwise cosines ``−1/(K−1)``, classifier rows parallel to the centred class means.

Norms are scale-free (SELI has scale α = 1), so the report compares them relative to the largest
class value (``/ max``). All arrays are float64 numpy, indexed like the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Predictions", "predictions", "group_cosines"]


@dataclass
class Predictions:
    """Per-class and class-pair predictions of one target geometry for given counts."""

    name: str
    counts: np.ndarray
    G_W: np.ndarray  # K x K classifier Gram W Wᵀ
    G_M: np.ndarray  # K x K class-mean Gram Mᵀ M (means centred at the unweighted mean)
    w_norm: np.ndarray  # ‖w_c‖ / max_c ‖w_c‖
    mean_norm: np.ndarray  # ‖μ_c − μ_G‖ / max
    cos_W: np.ndarray
    cos_M: np.ndarray
    duality_cos: np.ndarray  # cos(w_c, μ_c − μ_G)


def _unit_cos(G: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.clip(np.diag(G), 0.0, None))
    safe = np.where(d > 0, d, 1.0)
    return G / np.outer(safe, safe)


def predictions(counts, target: str) -> Predictions:
    """``target`` = ``"seli"`` or ``"etf"``; ``counts`` are the training counts per class."""
    from ncollapse.errors import NCollapseError, check_counts
    from ncollapse.geometry import centering, etf_gram, seli_geometry

    n = check_counts(counts)
    K = n.size
    if target == "seli":
        geo = seli_geometry(n)
        G_W, G_M = geo.G_W, geo.G_M
        wn, mn = geo.w_norms, geo.mu_norms
        # W M = P, so <w_c, μ_c> = 1 − 1/K for every class
        dual = centering(K).diagonal() / (wn * mn)
        return Predictions(
            "SELI", n, G_W, G_M, wn / wn.max(), mn / mn.max(), geo.cos_W, geo.cos_M, dual
        )
    if target == "etf":
        E = etf_gram(K)
        ones = np.ones(K)
        return Predictions("ETF", n, E, E.copy(), ones, ones.copy(), _unit_cos(E),
                           _unit_cos(E), ones.copy())  # fmt: skip
    raise NCollapseError(f"target={target!r} is unknown; use seli or etf")


def group_cosines(pred: Predictions, classes) -> tuple[float, float] | None:
    """Mean pairwise cosine of the classifiers and of the means over ``classes`` (None if < 2)."""
    idx = np.asarray([int(c) for c in classes], dtype=np.int64)
    if idx.size < 2:
        return None
    iu = np.triu_indices(idx.size, 1)
    return (
        float(pred.cos_W[np.ix_(idx, idx)][iu].mean()),
        float(pred.cos_M[np.ix_(idx, idx)][iu].mean()),
    )
