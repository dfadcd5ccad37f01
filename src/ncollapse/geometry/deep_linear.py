"""Exact global minimizer of the L-layer deep-linear UFM with MSE loss (Liu 2024; Dang et al. 2023).

Objective (spec seli-liu-metrics.md §2.2), over ``W_L (K x d), W_{L-1..1} (d x d), H (d x N), b``::

    (1/2N) ‖W_L ⋯ W_1 H + b 1_N^T - Y‖_F² + (λ_W/2) Σ_l ‖W_l‖_F² + (λ_H/2) ‖H‖_F²

with the bias ``b`` unregularized. Write ``W = W_L ⋯ W_1``, ``c = (λ_W^L λ_H)^{1/(L+1)}``,
``D = diag(sqrt(n))`` and ``N = Σ n``.

* With bias: ``b* = n/N`` and the target reduces to ``Ŷ = (I - n 1^T / N) D`` (K x K), whose
  singular values are those of the centred label matrix. Without bias: ``Ŷ`` is replaced by ``D``
  (``U = V = I``, directions = classes in the given order).
* SVD ``Ŷ = U diag(σ) V^T``; each singular value is shrunk to ``t_i`` (:func:`shrinkage`), the
  global minimizer of ``(t - σ)²/(2N) + ((L+1)/2) c t^{2/(L+1)}`` over ``t >= 0``.
* Factors: ``W = U diag(w_i) R^T`` with ``w_i = (c/λ_W)^{L/2} t_i^{L/(L+1)}``;
  ``M = R diag(h_i) V^T D^{-1}`` with ``h_i = sqrt(c/λ_H) t_i^{1/(L+1)}``; every layer has singular
  values ``sqrt(c/λ_W) t_i^{1/(L+1)}``. Grams: ``W W^T = U diag(w²) U^T``,
  ``M^T M = D^{-1} V diag(h²) V^T D^{-1}``, ``W M = U diag(t) V^T D^{-1}``; class-mean logits
  ``W M + b 1^T`` (column ``c`` = logits of class ``c``'s mean feature).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ncollapse.errors import NCollapseError, check_counts, check_positive
from ncollapse.geometry._validate import check_int

#: Whether the deep-linear MSE UFM has a bias unless told otherwise: Liu's L-extended UFM (arXiv
#: 2411.17278) has one. The one default for ``deep_linear_ufm``, ``ufm.DeepLinearMSEUFM`` and the
#: commands ``geometry deep-linear`` and ``ufm solve|sweep --model mse``.
DEEP_LINEAR_BIAS = True

__all__ = [
    "DEEP_LINEAR_BIAS",
    "DeepLinearSolution",
    "deep_linear_ufm",
    "global_threshold",
    "scalar_objective",
    "shrinkage",
    "stationary_threshold",
    "y_hat",
]


def y_hat(counts) -> np.ndarray:
    """``Ŷ = (I_K - n 1_K^T / N) D`` with ``D = diag(sqrt(n))`` (K x K, float64).

    ``1^T Ŷ = 0`` and ``Ŷ sqrt(n) = 0`` (rank ``<= K-1``); ``Ŷ Ŷ^T = diag(n) - n n^T / N``.
    """
    n = check_counts(counts).astype(float)
    N = n.sum()
    K = n.size
    return (np.eye(K) - np.outer(n, np.ones(K)) / N) @ np.diag(np.sqrt(n))


def _check_layers(layers) -> int:
    return check_int(layers, "layers", minimum=1, fix="the deep-linear UFM needs at least 1 layer")


def _check_nc(n_total, c) -> tuple[float, float]:
    return check_positive(n_total, "n_total"), check_positive(c, "c")


def scalar_objective(t, sigma, n_total: float, c: float, layers: int):
    """The per-direction objective ``(t - σ)²/(2N) + ((L+1)/2) c t^{2/(L+1)}`` (vectorised)."""
    t = np.asarray(t, dtype=float)
    L = layers
    return (t - sigma) ** 2 / (2.0 * n_total) + 0.5 * (L + 1) * c * np.abs(t) ** (2.0 / (L + 1))


def global_threshold(n_total: float, c: float, layers: int) -> float:
    """Global threshold ``σ*``: ``t > 0`` is optimal iff ``σ > σ*``.

    ``L = 1``: ``σ* = N c`` (soft threshold). ``L >= 2``:
    ``σ* = [N c L (L/(L-1))^{(L-1)/(L+1)}]^{(L+1)/(2L)}``; at ``σ*`` the minimizer jumps from 0 to
    ``((L-1)/L) σ*``.
    """
    N, c = _check_nc(n_total, c)
    L = _check_layers(layers)
    if L == 1:
        return N * c
    return float(
        (N * c * L * (L / (L - 1.0)) ** ((L - 1.0) / (L + 1.0))) ** ((L + 1.0) / (2.0 * L))
    )


def stationary_threshold(n_total: float, c: float, layers: int) -> float:
    """Smallest ``σ`` with a positive stationary point: ``σ_stat = τ + N c τ^{-a}``.

    ``a = (L-1)/(L+1)``, ``τ = (a N c)^{1/(a+1)}``. For ``L >= 2``, ``σ_stat < σ*``: between them
    the positive root is only a local minimum and ``t = 0`` is still global (taking the largest root
    there is the pitfall of Dang et al.'s code). For ``L = 1`` this returns ``N c`` (= ``σ*``).
    """
    N, c = _check_nc(n_total, c)
    L = _check_layers(layers)
    if L == 1:
        return N * c
    a = (L - 1.0) / (L + 1.0)
    tau = (a * N * c) ** (1.0 / (a + 1.0))
    return float(tau + N * c * tau ** (-a))


def _larger_root(sigma: float, N: float, c: float, L: int) -> float | None:
    """Larger root of ``σ - t = N c t^{-a}`` on ``(τ, σ)``, or None if no root exists."""
    from scipy.optimize import brentq  # lazy: keeps `import ncollapse.geometry` light

    a = (L - 1.0) / (L + 1.0)
    tau = (a * N * c) ** (1.0 / (a + 1.0))
    g = lambda t: t + N * c * t ** (-a) - sigma
    if g(tau) > 0:
        return None
    if g(tau) == 0:
        return tau
    return brentq(g, tau, sigma, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


def shrinkage(sigma, n_total: float, c: float, layers: int) -> np.ndarray:
    """Global minimizer ``t >= 0`` of ``(t - σ)²/(2N) + ((L+1)/2) c t^{2/(L+1)}`` (vectorised in σ).

    ``L = 1``: ``t = max(σ - N c, 0)``. ``L >= 2``: the larger root of
    ``σ - t = N c t^{-(L-1)/(L+1)}`` (found by bracketing on ``[τ, σ]``) when it exists AND its
    objective is strictly below the value at ``t = 0`` (``σ²/(2N)``); otherwise 0. This equals
    thresholding at :func:`global_threshold`, not at the stationary threshold. Returns an array
    of the same shape as ``sigma``.
    """
    N, c = _check_nc(n_total, c)
    L = _check_layers(layers)
    s = np.asarray(sigma, dtype=float)
    if np.any(~np.isfinite(s)) or np.any(s < 0):
        raise NCollapseError("sigma must be finite and >= 0 (singular values)")
    if L == 1:
        return np.maximum(s - N * c, 0.0)
    out = np.zeros_like(s)
    flat = out.reshape(-1)
    for i, si in enumerate(s.reshape(-1)):
        if si <= 0:
            continue
        r = _larger_root(float(si), N, c, L)
        if r is None:
            continue
        if scalar_objective(r, si, N, c, L) < scalar_objective(0.0, si, N, c, L):
            flat[i] = r
    return out


@dataclass
class DeepLinearSolution:
    """Global minimizer of the L-layer deep-linear UFM (class level); see the module docstring.

    Fields: ``counts``, ``layers``, ``bias``, ``lambda_w``, ``lambda_h``, ``c``;
    ``sigma`` (K,): singular values of ``Ŷ`` (with bias: descending, last one 0; bias-free:
    ``sqrt(n)`` in class order); ``U``, ``V`` (K x K): singular vectors; ``t`` (K,): shrunk values;
    ``threshold``: ``σ*``; ``zeroed`` (K,) bool: directions with ``t_i = 0``; ``WWt``, ``MtM``,
    ``WM`` (K x K); ``b`` (K,): ``n/N`` with bias, zeros without; ``logits = WM + b 1^T``
    (class-mean logits, column c = class c); ``w_norms``, ``mu_norms`` (K,): norms of the rows of
    ``W = W_L⋯W_1`` and of the class means; ``layer_singular_values`` (K,): singular values of each
    ``W_l`` (the same for every layer); ``w_singular_values`` / ``h_singular_values`` (K,): ``w_i``
    and ``h_i``. Sign convention: each column of ``U`` is flipped so that its entry of largest
    absolute value is positive (first one on ties) and ``V`` is flipped with it; the null right
    vector is ``sqrt(n)/‖sqrt(n)‖``. Within a repeated singular value the basis is LAPACK's choice;
    the Grams do not depend on it.
    """

    counts: np.ndarray
    layers: int
    bias: bool
    lambda_w: float
    lambda_h: float
    c: float
    sigma: np.ndarray
    U: np.ndarray
    V: np.ndarray
    t: np.ndarray
    threshold: float
    zeroed: np.ndarray
    WWt: np.ndarray
    MtM: np.ndarray
    WM: np.ndarray
    b: np.ndarray
    logits: np.ndarray
    w_norms: np.ndarray
    mu_norms: np.ndarray
    layer_singular_values: np.ndarray
    w_singular_values: np.ndarray
    h_singular_values: np.ndarray

    def to_dict(self) -> dict:
        """Plain dict of python lists/floats (JSON-ready)."""
        from ncollapse.io import to_jsonable

        return to_jsonable(asdict(self))


def _svd_signed(A: np.ndarray, null_right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    U, s, Vt = np.linalg.svd(A)
    V = Vt.T
    K = A.shape[0]
    idx = np.argmax(np.abs(U), axis=0)
    sign = np.sign(U[idx, np.arange(K)])
    sign[sign == 0] = 1.0
    U = U * sign
    V = V * sign
    tol = 1e-12 * max(s.max(), 1.0)
    for i in np.flatnonzero(s <= tol):
        # the right null vector of Ŷ is sqrt(n) (up to sign); make it positive
        if V[:, i] @ null_right < 0:
            V[:, i] *= -1
            U[:, i] *= -1
        s[i] = 0.0
    return U, s, V


def deep_linear_ufm(
    counts,
    layers: int = 1,
    lambda_w: float = 5e-3,
    lambda_h: float = 5e-3,
    bias: bool = DEEP_LINEAR_BIAS,
) -> DeepLinearSolution:
    """Closed-form global minimizer of the L-layer deep-linear MSE UFM (see module docstring)."""
    from ncollapse.geometry.class_memory import check_class_matrices

    n = check_counts(counts)
    check_class_matrices(n.size, 12, "the deep-linear UFM minimizer")
    L = _check_layers(layers)
    lw = check_positive(lambda_w, "lambda_w")
    lh = check_positive(lambda_h, "lambda_h")
    nf = n.astype(float)
    N = float(nf.sum())
    K = n.size
    c = float((lw**L * lh) ** (1.0 / (L + 1)))
    sq = np.sqrt(nf)
    if bias:
        U, sigma, V = _svd_signed(y_hat(n), sq / np.linalg.norm(sq))
        b = nf / N
    else:
        U = np.eye(K)
        V = np.eye(K)
        sigma = sq.copy()
        b = np.zeros(K)
    t = shrinkage(sigma, N, c, L)
    w_sv = (c / lw) ** (L / 2.0) * t ** (L / (L + 1.0))
    h_sv = np.sqrt(c / lh) * t ** (1.0 / (L + 1.0))
    layer_sv = np.sqrt(c / lw) * t ** (1.0 / (L + 1.0))
    Dinv = np.diag(1.0 / sq)
    WWt = (U * w_sv**2) @ U.T
    A = Dinv @ V
    MtM = (A * h_sv**2) @ A.T
    WM = (U * t) @ V.T @ Dinv
    logits = WM + b[:, None]
    return DeepLinearSolution(
        counts=n,
        layers=L,
        bias=bool(bias),
        lambda_w=lw,
        lambda_h=lh,
        c=c,
        sigma=sigma,
        U=U,
        V=V,
        t=t,
        threshold=global_threshold(N, c, L),
        zeroed=t == 0,
        WWt=WWt,
        MtM=MtM,
        WM=WM,
        b=b,
        logits=logits,
        w_norms=np.sqrt(np.clip(np.diag(WWt), 0.0, None)),
        mu_norms=np.sqrt(np.clip(np.diag(MtM), 0.0, None)),
        layer_singular_values=layer_sv,
        w_singular_values=w_sv,
        h_singular_values=h_sv,
    )
