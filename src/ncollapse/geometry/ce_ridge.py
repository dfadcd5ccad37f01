"""Closed-form thresholds of the cross-entropy UFM with ridge (the SELI model).

Model (Thrampoulidis, Kini, Vakilian & Behnia, "Imbalance Trouble: Revisiting Neural-Collapse
Geometry", NeurIPS 2022, arXiv 2208.05512; the unconstrained-features model with CE and ridge)::

    min_{W, H, b}  sum_i CE(W h_i + b; y_i) + (lambda_W/2)||W||_F^2 + (lambda_H/2)||H||_F^2

(sum over samples; an averaged CE has the same minimisers with ``lambda = N lambda'``). Because
``min{(lambda_W ||W||^2 + lambda_H ||H||^2)/2 : W H = X} = sqrt(lambda_W lambda_H) ||X||_*``, it
is the convex problem ``min_X sum_i CE(x_i; y_i) + lambda_eff ||X||_*`` (d >= K), whose optimum
has identical columns within a class; at class level ``||Xbar Y||_* = ||Xbar D||_*`` with
``D = diag(sqrt(n))``. Two thresholds follow from the optimality condition
``-grad CE(X) in lambda_eff * subdifferential ||.||_*``:

* :func:`zero_threshold`: ``W = H = 0`` is optimal iff ``lambda_eff >= sigma_max`` of the CE
  gradient at ``X = 0`` (the SEL matrix ``Zhat = P Y``, ``||Zhat||_op = ||P D||_op``; with an
  unregularised bias the gradient is ``(I - n 1^T/N) Y``, Liu's ``Yhat``, arXiv 2411.17278).
* :func:`minority_collapse_threshold`: for classes sharing the smallest count ``n_min`` the
  minority classifiers coincide (``cos(w_min, w_min') = 1``) iff ``lambda_eff >= sqrt(n_min)``.
  Derived here: at any point with collapsed minority logits the CE gradient has the singular
  pair ``(u, u)`` with value ``sqrt(n_min)`` for every minority-difference vector ``u``, so the
  nuclear-norm subgradient condition on that block holds iff ``lambda_eff >= sqrt(n_min)``. This
  is the "ridge regularisation tweaks the geometry when minorities are present" of the SELI
  abstract, in closed form.
"""

from __future__ import annotations

import numpy as np

from ncollapse.errors import NCollapseError, check_counts

__all__ = ["minority_collapse_threshold", "zero_threshold"]


def _count_rows(counts) -> np.ndarray:
    try:
        arr = np.asarray(counts, dtype=float)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(
            f"counts={counts!r} is not a vector or a list of equal-length vectors"
        ) from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise NCollapseError(f"counts must be (K,) or (B, K), got shape {arr.shape}")
    return np.stack([check_counts(row, name=f"counts[{i}]") for i, row in enumerate(arr)])


def zero_threshold(counts, bias: bool = False) -> float | np.ndarray:
    """``sigma_max`` of the class-level CE gradient at ``X = 0``: ``W = H = 0`` iff
    ``sqrt(lambda_W lambda_H)`` is at least this value.

    Without bias: ``||P D||_op = ||Zhat||_op`` (the SEL matrix; ``sqrt(n_maj)`` for a STEP profile
    with at least two majority classes). With an unregularised bias the optimal bias at
    ``X = 0`` has ``softmax(b) = n/N`` and the matrix is ``(I - n 1^T/N) D``. ``counts`` is one
    count vector (returns a float) or a ``(B, K)`` batch (returns an array).
    """
    cnt = _count_rows(counts).astype(np.float64)
    B, K = cnt.shape
    out = np.empty(B)
    for i in range(B):
        n = cnt[i]
        Dm = np.diag(np.sqrt(n))
        if bias:
            A = (np.eye(K) - np.outer(n / n.sum(), np.ones(K))) @ Dm
        else:
            A = (np.eye(K) - 1.0 / K) @ Dm
        out[i] = np.linalg.norm(A, 2)
    return float(out[0]) if B == 1 else out


def minority_collapse_threshold(counts) -> float:
    """``sqrt(n_min)``: the classifiers of the classes with the smallest count coincide iff
    ``sqrt(lambda_W lambda_H) >= sqrt(n_min)`` (module docstring). Needs at least two classes
    with the smallest count (otherwise there is nothing to collapse)."""
    n = check_counts(counts)
    m = int(np.sum(n == n.min()))
    if m < 2:
        raise NCollapseError(
            f"counts={n.tolist()} has one class with the smallest count; minority collapse needs "
            "at least two classes sharing it"
        )
    return float(np.sqrt(n.min()))
