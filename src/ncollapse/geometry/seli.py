"""SEL matrix and the SELI geometry (Thrampoulidis et al., NeurIPS 2022), closed forms in float64.

Notation (spec seli-liu-metrics.md §1.3-1.5): ``k`` classes with counts ``n`` (``D_n = diag(n)``),
``N = sum(n)``, one-hot label matrix ``Y`` (k x N), centering ``P = I - 1 1^T / k``.

* SEL matrix ``Ẑ = P Y`` (k x N): column ``i`` is ``e_{y_i} - 1/k``. Rank ``k-1``; margins all 1.
* SELI (scale ``α = 1``): with the compact SVD ``Ẑ = U Λ V^T``, ``W = U Λ^{1/2}`` (classifier rows,
  k x (k-1)) and ``H = Λ^{1/2} V^T`` (features, (k-1) x N). Class means ``M = H Y^T D_n^{-1}``
  ((k-1) x k, columns = classes).
* Class-level closed forms: ``G_W = W W^T = (P D_n P)^{1/2}``, ``G_M = M^T M = (P D_n P)^{+1/2}``
  (pseudo-inverse square root), ``W M = P``. Both Grams have range inside ``range(P)``, so
  ``Σ_c w_c = 0`` and ``Σ_c μ_c = 0`` (means centred at the *unweighted* mean of class means).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ncollapse.errors import NCollapseError, check_counts, check_positive
from ncollapse.geometry.etf import centering
from ncollapse.validation import check_int

__all__ = [
    "EIG_RTOL",
    "SELIFactors",
    "SELIGeometry",
    "one_hot",
    "sel_matrix",
    "seli_class_grams",
    "seli_factors",
    "seli_geometry",
    "step_counts",
    "step_seli_closed_form",
]

#: Relative eigenvalue tolerance: eigenvalues of ``P D_n P`` below ``EIG_RTOL * λ_max`` count as 0.
#: (The nonzero eigenvalues lie in ``[n_min, n_max]`` by Cauchy interlacing, and the zero one is
#: ``O(eps * n_max)``, so any imbalance ratio below ``1e10`` is separated safely.)
EIG_RTOL = 1e-10


def _check_labels(labels, k: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise NCollapseError(f"labels must be a non-empty 1-D integer vector, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        yf = y.astype(float)
        if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)):
            raise NCollapseError("labels must be integers 0..k-1; got non-integer values")
        y = yf.astype(np.int64)
    y = y.astype(np.int64)
    if y.min() < 0:
        raise NCollapseError(f"labels contain {int(y.min())} < 0; labels must be in 0..k-1")
    if k is None:
        k = int(y.max()) + 1
    k = check_int(k, "k", minimum=2, fix="need at least 2 classes")
    if y.max() >= k:
        raise NCollapseError(
            f"labels contain {int(y.max())} >= k={k}; labels must be in 0..k-1 (or pass a larger k)"
        )
    check_counts(np.bincount(y, minlength=k), name="class counts of labels")
    return y, k


def one_hot(labels, k: int | None = None) -> np.ndarray:
    """One-hot label matrix ``Y`` (k x N, float64), ``Y[c, i] = 1`` iff ``labels[i] == c``."""
    y, k = _check_labels(labels, k)
    Y = np.zeros((k, y.size))
    Y[y, np.arange(y.size)] = 1.0
    return Y


def sel_matrix(labels, k: int | None = None) -> np.ndarray:
    """Simplex-encoded label matrix ``Ẑ = P Y`` (k x N): column ``i`` is ``e_{y_i} - 1_k / k``.

    ``k`` defaults to ``max(labels) + 1``; every class must occur at least once.
    """
    Y = one_hot(labels, k)
    return centering(Y.shape[0]) @ Y


def _pdp_eig(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ncollapse.geometry.class_memory import check_class_matrices

    k = n.size
    check_class_matrices(k, 10, "the SELI geometry")
    P = centering(k)
    A = P @ np.diag(n.astype(float)) @ P
    evals, evecs = np.linalg.eigh((A + A.T) / 2)
    tol = EIG_RTOL * max(evals.max(), 0.0)
    evals = np.where(evals > tol, evals, 0.0)
    return evals, evecs


def seli_class_grams(counts) -> tuple[np.ndarray, np.ndarray]:
    """SELI class-level Grams ``(G_W, G_M) = ((P D_n P)^{1/2}, (P D_n P)^{+1/2})``.

    Computed from the symmetric eigendecomposition ``P D_n P = Q diag(λ) Q^T``; eigenvalues below
    ``EIG_RTOL * λ_max`` (1e-10 relative) are treated as exactly 0 (the direction ``1``), and both
    results are re-projected with ``P`` so that their rows sum to zero to machine precision.
    ``G_W @ G_M = P``.
    """
    n = check_counts(counts)
    evals, Q = _pdp_eig(n)
    pos = evals > 0
    s = np.zeros_like(evals)
    s[pos] = np.sqrt(evals[pos])
    si = np.zeros_like(evals)
    si[pos] = 1.0 / s[pos]
    P = centering(n.size)
    G_W = P @ ((Q * s) @ Q.T) @ P
    G_M = P @ ((Q * si) @ Q.T) @ P
    return (G_W + G_W.T) / 2, (G_M + G_M.T) / 2


@dataclass
class SELIFactors:
    """Sample-level SELI factors from the compact SVD ``Ẑ = U Λ V^T`` (scale α = 1).

    ``W = U Λ^{1/2}`` (k x (k-1)), ``H = Λ^{1/2} V^T`` ((k-1) x N), ``M`` the class means of ``H``
    ((k-1) x k, columns = classes), ``singular_values`` = diag(Λ), descending. ``W H = Ẑ``.
    Sign convention: each left singular vector (column of ``U``) is flipped so that its entry of
    largest absolute value is positive (ties: the first such entry); ``V`` is flipped with it.
    """

    W: np.ndarray
    H: np.ndarray
    M: np.ndarray
    singular_values: np.ndarray
    labels: np.ndarray
    counts: np.ndarray


def seli_factors(labels, k: int | None = None) -> SELIFactors:
    """SELI sample-level factors (see :class:`SELIFactors`) for a label vector."""
    y, k = _check_labels(labels, k)
    Z = sel_matrix(y, k)
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    U, s, Vt = U[:, : k - 1], s[: k - 1], Vt[: k - 1]
    idx = np.argmax(np.abs(U), axis=0)
    sign = np.sign(U[idx, np.arange(k - 1)])
    sign[sign == 0] = 1.0
    U = U * sign
    Vt = Vt * sign[:, None]
    r = np.sqrt(s)
    W = U * r
    H = r[:, None] * Vt
    counts = np.bincount(y, minlength=k)
    Y = one_hot(y, k)
    M = (H @ Y.T) / counts
    return SELIFactors(W=W, H=H, M=M, singular_values=s, labels=y, counts=counts)


@dataclass
class SELIGeometry:
    """Class-level SELI geometry for a count vector (scale α = 1).

    Fields: ``counts``; ``G_W = W W^T``; ``G_M = M^T M``; ``WM = W M`` (= P); ``singular_values``:
    the k-1 nonzero singular values of ``Ẑ`` (= sqrt of the nonzero eigenvalues of ``P D_n P``),
    descending; ``w_norms`` = sqrt(diag G_W); ``mu_norms`` = sqrt(diag G_M); ``cos_W`` and
    ``cos_M``: k x k cosine matrices (diagonal 1).
    """

    counts: np.ndarray
    G_W: np.ndarray
    G_M: np.ndarray
    WM: np.ndarray
    singular_values: np.ndarray
    w_norms: np.ndarray
    mu_norms: np.ndarray
    cos_W: np.ndarray
    cos_M: np.ndarray

    def to_dict(self) -> dict:
        """Plain dict of python lists/floats (JSON-ready)."""
        from ncollapse.io import to_jsonable

        return to_jsonable(asdict(self))


def _cos(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.sqrt(np.clip(np.diag(G), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    C = G / np.outer(safe, safe)
    C[norms == 0, :] = 0.0
    C[:, norms == 0] = 0.0
    return norms, C


def seli_geometry(counts) -> SELIGeometry:
    """SELI class-level geometry (Grams, norms, cosines, spectrum) for a count vector."""
    n = check_counts(counts)
    G_W, G_M = seli_class_grams(n)
    evals, _ = _pdp_eig(n)
    sv = np.sqrt(np.sort(evals[evals > 0])[::-1])
    w_norms, cos_W = _cos(G_W)
    mu_norms, cos_M = _cos(G_M)
    return SELIGeometry(
        counts=n,
        G_W=G_W,
        G_M=G_M,
        WM=G_W @ G_M,
        singular_values=sv,
        w_norms=w_norms,
        mu_norms=mu_norms,
        cos_W=cos_W,
        cos_M=cos_M,
    )


def _check_step(k_maj, k_min, R, n_min) -> tuple[int, int, float, int, int]:
    k_maj = check_int(
        k_maj, "k_maj", minimum=1, fix="a STEP profile needs at least 1 majority class"
    )
    k_min = check_int(
        k_min, "k_min", minimum=1, fix="a STEP profile needs at least 1 minority class"
    )
    R = check_positive(R, "R")
    if R < 1:
        raise NCollapseError(
            f"R={R:g} must be >= 1 (R = n_maj / n_min); swap k_maj and k_min for R < 1"
        )
    n_min = check_int(n_min, "n_min", minimum=1, fix="every class needs at least 1 sample")
    n_maj_f = R * n_min
    n_maj = int(round(n_maj_f))
    if abs(n_maj_f - n_maj) > 1e-9 * max(1.0, n_maj_f):
        raise NCollapseError(
            f"R*n_min = {R:g}*{n_min} = {n_maj_f:g} is not an integer; choose R and n_min so the "
            f"majority count R*n_min is a whole number (e.g. n_min={n_min} with an integer R)"
        )
    return k_maj, k_min, float(R), n_min, n_maj


def step_counts(k_maj: int, k_min: int, R: float, n_min: int = 1) -> np.ndarray:
    """STEP count vector ``[R*n_min]*k_maj + [n_min]*k_min`` (int64; majorities first).

    ``R >= 1`` and ``R*n_min`` must be an integer.
    """
    k_maj, k_min, _, n_min, n_maj = _check_step(k_maj, k_min, R, n_min)
    return np.array([n_maj] * k_maj + [n_min] * k_min, dtype=np.int64)


def step_seli_closed_form(k_maj: int, k_min: int, R: float, n_min: int = 1) -> dict:
    """Closed-form SELI norms, inner products and cosines for a STEP profile (Thrampoulidis et al.,
    arXiv 2208.05512: the SELI geometry under STEP imbalance).

    With ``k = k_maj + k_min``, ``n_maj = R n_min`` and ``λ_mix = (k_min n_maj + k_maj n_min)/k``,
    and ``f(x) = sqrt(x)`` for classifiers (``v = w``) or ``f(x) = 1/sqrt(x)`` for class means
    (``v = μ``)::

        ‖v_maj‖²        = f(n_maj)(1 - 1/k_maj) + f(λ_mix) k_min/(k k_maj)
        <v_maj, v_maj'> = -f(n_maj)/k_maj        + f(λ_mix) k_min/(k k_maj)
        ‖v_min‖²        = f(n_min)(1 - 1/k_min) + f(λ_mix) k_maj/(k k_min)
        <v_min, v_min'> = -f(n_min)/k_min        + f(λ_mix) k_maj/(k k_min)
        <v_maj, v_min>  = -f(λ_mix)/k

    Returned keys (``v`` in ``{w, mu}``):

    * profile: ``k``, ``k_maj``, ``k_min``, ``R``, ``n_maj``, ``n_min``, ``lambda_mix``;
    * squared norms / inner products: ``{v}_maj_sq``, ``{v}_min_sq``, ``{v}_maj_maj``,
      ``{v}_min_min``, ``{v}_maj_min``;
    * ratios: ``{v}_norm_ratio`` = ‖v_maj‖/‖v_min‖ (unsquared), ``{v}_norm_ratio_sq`` (squared);
    * cosines: ``cos_{v}_maj_maj``, ``cos_{v}_min_min``, ``cos_{v}_maj_min``. A within-group
      cosine is ``nan`` (and the inner product too) when that group has a single class.
    """
    k_maj, k_min, R, n_min, n_maj = _check_step(k_maj, k_min, R, n_min)
    k = k_maj + k_min
    lam = (k_min * n_maj + k_maj * n_min) / k
    out: dict = {
        "k": k,
        "k_maj": k_maj,
        "k_min": k_min,
        "R": R,
        "n_maj": n_maj,
        "n_min": n_min,
        "lambda_mix": lam,
    }
    for v, f in (("w", np.sqrt), ("mu", lambda x: 1.0 / np.sqrt(x))):
        fa, fi, fl = float(f(n_maj)), float(f(n_min)), float(f(lam))
        maj_sq = fa * (1 - 1 / k_maj) + fl * k_min / (k * k_maj)
        min_sq = fi * (1 - 1 / k_min) + fl * k_maj / (k * k_min)
        maj_maj = -fa / k_maj + fl * k_min / (k * k_maj) if k_maj >= 2 else float("nan")
        min_min = -fi / k_min + fl * k_maj / (k * k_min) if k_min >= 2 else float("nan")
        maj_min = -fl / k
        out[f"{v}_maj_sq"] = maj_sq
        out[f"{v}_min_sq"] = min_sq
        out[f"{v}_maj_maj"] = maj_maj
        out[f"{v}_min_min"] = min_min
        out[f"{v}_maj_min"] = maj_min
        out[f"{v}_norm_ratio_sq"] = maj_sq / min_sq
        out[f"{v}_norm_ratio"] = float(np.sqrt(maj_sq / min_sq))
        out[f"cos_{v}_maj_maj"] = maj_maj / maj_sq
        out[f"cos_{v}_min_min"] = min_min / min_sq
        out[f"cos_{v}_maj_min"] = float(maj_min / np.sqrt(maj_sq * min_sq))
    return out
