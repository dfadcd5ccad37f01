"""UFM-specific measures on class-level matrices (float64 numpy, batched over a leading axis).

All distances are Frobenius distances between Frobenius-normalised matrices (spec §4.2):

    dist(A, B) = || A/||A||_F - B/||B||_F ||_F   in [0, 2].

If either matrix is (numerically) zero the distance is undefined and ``nan`` is returned; the zero
solution of a ridge-regularised UFM has no direction.
"""

from __future__ import annotations

import numpy as np

_ZERO = 1e-300


def gram_distance(a, b) -> np.ndarray | float:
    """Normalised Frobenius distance ``||A/||A||_F - B/||B||_F||_F`` over the last two axes.

    ``a`` and ``b`` broadcast against each other (e.g. a batch ``(B, K, K)`` against one ``(K, K)``).
    Returns a float for 2-D input, else an array over the leading axes; ``nan`` where either is 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.sqrt(np.sum(a * a, axis=(-2, -1)))
    nb = np.sqrt(np.sum(b * b, axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        da = a / np.where(na > _ZERO, na, np.nan)[..., None, None]
        db = b / np.where(nb > _ZERO, nb, np.nan)[..., None, None]
        out = np.sqrt(np.sum((da - db) ** 2, axis=(-2, -1)))
    return float(out) if out.ndim == 0 else out


def cosine_matrix(vectors) -> np.ndarray:
    """Pairwise cosines of the ROWS of ``vectors`` (``(..., n, d)``); zero rows give ``nan``."""
    v = np.asarray(vectors, dtype=np.float64)
    g = v @ np.swapaxes(v, -1, -2)
    nrm = np.sqrt(np.clip(np.diagonal(g, axis1=-2, axis2=-1), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        den = nrm[..., :, None] * nrm[..., None, :]
        return np.where(den > _ZERO, g / np.where(den > _ZERO, den, 1.0), np.nan)


def gram_cosines(gram) -> np.ndarray:
    """Cosine matrix from a Gram matrix ``G_ij = <v_i, v_j>``; zero vectors give ``nan``."""
    g = np.asarray(gram, dtype=np.float64)
    nrm = np.sqrt(np.clip(np.diagonal(g, axis1=-2, axis2=-1), 0, None))
    den = nrm[..., :, None] * nrm[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > _ZERO, g / np.where(den > _ZERO, den, 1.0), np.nan)


def psd_sqrt(a, pinv: bool = False, rtol: float = 1e-12) -> np.ndarray:
    """Symmetric PSD square root ``A^{1/2}`` (or pseudo-inverse root ``A^{+1/2}``), batched.

    Eigenvalues below ``rtol * max eigenvalue`` are treated as zero.
    """
    a = np.asarray(a, dtype=np.float64)
    a = 0.5 * (a + np.swapaxes(a, -1, -2))
    w, v = np.linalg.eigh(a)
    top = np.max(np.abs(w), axis=-1, keepdims=True)
    keep = w > rtol * np.maximum(top, _ZERO)
    wc = np.where(keep, np.clip(w, 0, None), 0.0)
    if pinv:
        s = np.where(keep, 1.0 / np.sqrt(np.where(keep, wc, 1.0)), 0.0)
    else:
        s = np.sqrt(wc)
    return (v * s[..., None, :]) @ np.swapaxes(v, -1, -2)


def block_stats(gram, minority) -> dict:
    """Norm ratio and within/between-block cosines from one Gram matrix (unsquared norms).

    ``minority`` is a boolean mask over classes. Returns ``ratio_maj_min`` = mean ||v_maj|| /
    mean ||v_min||, ``cos_min_min``, ``cos_maj_maj``, ``cos_maj_min`` (averages over pairs; ``nan``
    when a block has fewer than two classes or a vector is zero).
    """
    g = np.asarray(gram, dtype=np.float64)
    mino = np.asarray(minority, dtype=bool)
    maj = ~mino
    norms = np.sqrt(np.clip(np.diag(g), 0, None))
    cos = gram_cosines(g)

    def _pairs(ma, mb, same):
        sub = cos[np.ix_(ma, mb)]
        if same:
            iu = np.triu_indices(sub.shape[0], 1)
            vals = sub[iu]
        else:
            vals = sub.ravel()
        return float(np.mean(vals)) if vals.size else float("nan")

    mmin = float(np.mean(norms[mino])) if mino.any() else float("nan")
    mmaj = float(np.mean(norms[maj])) if maj.any() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = mmaj / mmin if mmin > _ZERO else float("inf")
    return {
        "ratio_maj_min": ratio,
        "cos_min_min": _pairs(mino, mino, True),
        "cos_maj_maj": _pairs(maj, maj, True),
        "cos_maj_min": _pairs(maj, mino, False),
    }
