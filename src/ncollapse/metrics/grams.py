"""Uncentred class Grams: everything a geometry comparison needs, in three K x K matrices.

``M`` is the d x K matrix of class means, ``W`` the K x d classifier. The uncentred Grams
``G_M = M^T M``, ``G_W = W W^T`` and ``G_WM = W M`` (plus the class counts) determine every
centred variant: centring the means at the mean with weights ``p`` (``p = n/N``: the sample-weighted
global mean; ``p = 1/K``: the unweighted one) is ``M C`` with ``C = I - p 1^T``, so

    (M C)^T (M C) = C^T G_M C        and        W (M C) = G_WM C.

The trainer records these each NC epoch (small K), so that any theory -- the ETF, SELI (centred at
the unweighted mean), Liu's deep-linear minimizer (weighted mean with a bias, uncentred without) --
can be compared after the run without another pass over the data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_GRAM_CLASSES", "centre_grams", "class_grams", "centring_matrix"]

#: Grams are recorded for up to this many classes (3 K^2 floats per epoch).
MAX_GRAM_CLASSES = 64


def class_grams(means: np.ndarray, W: np.ndarray | None = None) -> dict:
    """``{"MtM": M^T M, "WWt": W W^T, "WM": W M}`` from class means (K x d, rows = classes) and
    the classifier ``W`` (K x d), as nested lists (JSON-ready). ``W`` may be None."""
    mu = np.asarray(means, dtype=np.float64)
    out = {"MtM": (mu @ mu.T).tolist()}
    if W is not None:
        w = np.asarray(W, dtype=np.float64)
        out["WWt"] = (w @ w.T).tolist()
        out["WM"] = (w @ mu.T).tolist()
    return out


def centring_matrix(counts, mean: str) -> np.ndarray:
    """``C = I - p 1^T`` with ``p = n/N`` (``mean="weighted"``) or ``1/K`` (``"unweighted"``);
    ``mean="none"`` gives the identity."""
    n = np.asarray(counts, dtype=np.float64)
    K = n.size
    if mean == "none":
        return np.eye(K)
    if mean == "weighted":
        p = n / n.sum()
    elif mean == "unweighted":
        p = np.full(K, 1.0 / K)
    else:
        raise ValueError(f"mean={mean!r}; use weighted, unweighted or none")
    return np.eye(K) - np.outer(p, np.ones(K))


def centre_grams(grams: dict, counts, mean: str) -> dict:
    """Centred Grams from uncentred ones (module docstring): ``MtM -> C^T MtM C``,
    ``WM -> WM C``; ``WWt`` is unchanged."""
    C = centring_matrix(counts, mean)
    out = {"MtM": C.T @ np.asarray(grams["MtM"], dtype=np.float64) @ C}
    if "WWt" in grams:
        out["WWt"] = np.asarray(grams["WWt"], dtype=np.float64)
        out["WM"] = np.asarray(grams["WM"], dtype=np.float64) @ C
    return out
