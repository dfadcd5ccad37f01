"""Simplex equiangular tight frames (ETF), the centering matrix and seeded orthonormal embeddings.

Conventions (float64 throughout):

* ``P = I_k - 1 1^T / k`` is the centering matrix (:func:`centering`).
* The simplex ETF with unit-norm rows has Gram ``G = k/(k-1) * P``: every row has norm 1 and every
  pair of distinct rows has cosine ``-1/(k-1)`` (:func:`etf_gram`).
* :func:`simplex_etf` returns a ``k x d`` matrix whose rows are such a frame, embedded in ``R^d``.
  The frame spans a ``(k-1)``-dimensional subspace, so ``d >= k-1`` is required.
"""

from __future__ import annotations

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.validation import check_int

__all__ = ["centering", "etf_gram", "helmert_basis", "random_orthonormal", "simplex_etf"]


def centering(k: int) -> np.ndarray:
    """Centering matrix ``P = I_k - (1/k) 1 1^T`` (k x k, float64, symmetric, idempotent)."""
    k = check_int(k, "k", minimum=1)
    return np.eye(k) - np.full((k, k), 1.0 / k)


def etf_gram(k: int) -> np.ndarray:
    """Gram matrix of a unit-norm simplex ETF: ``G = k/(k-1) * P``.

    Diagonal entries are 1, off-diagonal entries ``-1/(k-1)``. Needs ``k >= 2``.
    """
    k = check_int(k, "k", minimum=2, fix="a simplex ETF needs at least 2 classes")
    return (k / (k - 1.0)) * centering(k)


def helmert_basis(k: int) -> np.ndarray:
    """Deterministic orthonormal basis of the complement of ``1`` in ``R^k`` (k x (k-1)).

    Column ``j`` (0-based) is ``(1, ..., 1, -(j+1), 0, ..., 0) / sqrt((j+1)(j+2))`` with ``j+1``
    ones (Helmert contrasts). Its columns are orthonormal, sum to zero, and ``B B^T = P``.
    """
    k = check_int(k, "k", minimum=2, fix="need at least 2 classes")
    B = np.zeros((k, k - 1))
    for j in range(k - 1):
        B[: j + 1, j] = 1.0
        B[j + 1, j] = -(j + 1.0)
        B[:, j] /= np.sqrt((j + 1.0) * (j + 2.0))
    return B


def random_orthonormal(d: int, m: int, seed: int | None = 0) -> np.ndarray:
    """A seeded ``d x m`` matrix with orthonormal columns (``Q^T Q = I_m``).

    Built as the QR decomposition of a ``d x m`` standard Gaussian matrix drawn with
    ``numpy.random.default_rng(seed)``; the sign of each column is fixed so that ``diag(R) > 0``,
    which makes ``Q`` Haar-distributed and the result reproducible for a given seed.
    """
    d = check_int(d, "d", minimum=1)
    m = check_int(m, "m", minimum=1)
    if m > d:
        raise NCollapseError(
            f"cannot fit m={m} orthonormal columns in d={d} dimensions; "
            f"use d >= {m} (or fewer columns)"
        )
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((d, m))
    q, r = np.linalg.qr(g)
    s = np.sign(np.diag(r))
    s[s == 0] = 1.0
    return q * s


def simplex_etf(k: int, d: int | None = None, seed: int | None = 0) -> np.ndarray:
    """A simplex ETF: ``W`` (k x d) with unit-norm rows and ``W W^T = etf_gram(k)``.

    Construction: ``W = sqrt(k/(k-1)) * B Q^T`` where ``B`` is :func:`helmert_basis` (an orthonormal
    basis of the complement of ``1``, so ``B B^T = P``) and ``Q`` is a ``d x (k-1)`` matrix with
    orthonormal columns:

    * ``seed`` an int: ``Q = random_orthonormal(d, k-1, seed)`` (a seeded random embedding);
    * ``seed=None``: the canonical embedding, ``Q`` = the first ``k-1`` coordinate axes.

    ``d`` defaults to ``k``; any ``d >= k-1`` works (``d = k-1`` is the tightest embedding). Rows
    sum to zero: ``1^T W = 0``.
    """
    k = check_int(k, "k", minimum=2, fix="a simplex ETF needs at least 2 classes")
    d = k if d is None else check_int(d, "d", minimum=1)
    if d < k - 1:
        raise NCollapseError(
            f"d={d} is too small for a simplex ETF with k={k} classes: it spans k-1={k - 1} "
            f"dimensions; use d >= {k - 1} (e.g. a feature/projection width of at least {k - 1})"
        )
    B = helmert_basis(k)
    if seed is None:
        Q = np.eye(d, k - 1)
    else:
        Q = random_orthonormal(d, k - 1, seed)
    return np.sqrt(k / (k - 1.0)) * (B @ Q.T)
