"""Neural-collapse measures: pure numpy float64 functions of :class:`Statistics` (+ optional W, b).

Notation: K classes, ``n_c`` samples in class c, ``N = Σ n_c``, class means ``μ_c`` (rows of a
K x d matrix), classifier rows ``w_c`` (``W`` is K x d), ``P = I − 11ᵀ/K``.

Conventions (explicit parameters; see docs/metrics.md):

* ``mean`` -- the global mean ``μ_G`` used to centre class means: ``"unweighted"`` (default,
  ``μ_G = (1/K) Σ_c μ_c``; both the ETF and the SELI targets satisfy ``Σ_c μ_c = 0``, so exactly
  collapsed ETF or SELI features read 0 under any imbalance) or ``"weighted"`` (``μ_G = (1/N) Σ_i
  h_i``, Papyan et al. / Zhu et al. / Fang et al.). Identical for balanced data. ``M̃`` denotes the
  centred means ``μ_c − μ_G``.
* ``Σ_W`` -- ``within="sample"``: ``(1/N) Σ_i (h_i − μ_{y_i})(·)ᵀ`` (everyone's); ``"class"``:
  class-balanced ``(1/K) Σ_c Σ_W^(c)`` with ``Σ_W^(c) = (1/n_c) Σ_{i∈c} (h_i − μ_c)(·)ᵀ``.
* ``Σ_B = (1/K) Σ_c (μ_c − μ_G)(μ_c − μ_G)ᵀ`` (classes averaged, as Papyan and Zhu).
* Pseudo-inverse ``Σ_B†`` from the eigendecomposition of the K x K Gram ``M̃ M̃ᵀ / K`` (or of the
  d x d ``Σ_B`` when d < K); eigenvalues ``<= rtol · λ_max`` (``PINV_RTOL = 1e-10``) count as 0.
  Never an SVD of an N x d matrix.
* Standard deviations are population (ddof = 0). Cosines with a zero vector are NaN and are left
  out of averages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ncollapse.errors import NCollapseError, check_finite
from ncollapse.metrics.stats import Statistics

__all__ = [
    "MEANS",
    "PINV_RTOL",
    "between_covariance",
    "between_factor",
    "cdnv",
    "cdnv_matrix",
    "centered_means",
    "check_classifier",
    "cosine_matrix",
    "duality_cosines",
    "equiangularity",
    "equinorm",
    "global_mean",
    "gram_cosines",
    "gram_distance",
    "logit_measures",
    "max_angle",
    "mean_pairwise_cosine",
    "minority_collapse",
    "nc1",
    "nc1_per_class",
    "nc1_quotient",
    "nc2",
    "ncmc",
    "norms_vs_counts",
    "require_classes",
    "self_duality",
    "seli_duality",
    "target_distances",
    "within_covariance",
]

#: Relative eigenvalue tolerance of the between-class pseudo-inverse.
PINV_RTOL = 1e-10
MEANS = ("unweighted", "weighted")


# ------------------------------------------------------------------------------ basics
def _check_mean(mean: str) -> str:
    if mean not in MEANS:
        raise NCollapseError(f"mean={mean!r} is unknown; use 'unweighted' or 'weighted'")
    return mean


def require_classes(stats: Statistics) -> None:
    """Raise unless every class has at least one sample."""
    if not isinstance(stats, Statistics):
        raise NCollapseError(
            f"expected ncollapse.metrics.Statistics (from NCStats.snapshot()), got "
            f"{type(stats).__name__}"
        )
    empty = np.flatnonzero(stats.counts == 0)
    if empty.size:
        raise NCollapseError(
            f"class(es) {empty[:10].tolist()} have no samples; NC measures need every class "
            f"(feed all classes, or relabel to drop empty ones and lower num_classes)"
        )


def check_classifier(W, stats: Statistics, name: str = "W") -> np.ndarray:
    """Validate a classifier matrix: shape (K, d), finite; returns float64."""
    K, d = stats.num_classes, stats.dim
    try:
        W = np.asarray(W.detach().cpu() if hasattr(W, "detach") else W, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"{name} is not a numeric matrix; pass a (K, d) array") from exc
    if W.shape != (K, d):
        hint = " (it looks transposed: pass W.T)" if W.shape == (d, K) else ""
        raise NCollapseError(
            f"{name} has shape {W.shape}, expected (K, d) = ({K}, {d}): one classifier row per "
            f"class in the feature space{hint}"
        )
    check_finite(W, name)
    return W


def _check_bias(b, K: int) -> np.ndarray:
    b = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
    if b.shape != (K,):
        raise NCollapseError(f"b has shape {b.shape}, expected (K,) = ({K},): one bias per class")
    check_finite(b, "b")
    return b


def global_mean(stats: Statistics, mean: str = "unweighted") -> np.ndarray:
    """``μ_G``: ``(1/K) Σ_c μ_c`` (unweighted) or ``(1/N) Σ_i h_i`` (weighted)."""
    _check_mean(mean)
    require_classes(stats)
    if mean == "weighted":
        return stats.sums.sum(0) / stats.total
    return stats.means.mean(0)


def centered_means(stats: Statistics, mean: str = "unweighted") -> np.ndarray:
    """``M̃`` (K x d), rows ``μ_c − μ_G``."""
    return stats.means - global_mean(stats, mean)


def within_covariance(stats: Statistics, within: str = "sample") -> np.ndarray:
    """``Σ_W`` (d x d): ``"sample"`` = ``S_W / N``; ``"class"`` = ``(1/K) Σ_c S_c / n_c`` (needs
    ``per_class_scatter``)."""
    require_classes(stats)
    if within == "sample":
        return stats.scatter / stats.total
    if within == "class":
        if stats.class_scatter is None:
            raise NCollapseError(
                "the class-balanced Σ_W needs per-class scatters; create NCStats(..., "
                "per_class_scatter=True) (memory K·d²) or use nc1(..., within='class', second=...) "
                "with a SecondPass result"
            )
        return (stats.class_scatter / stats.counts[:, None, None]).mean(0)
    raise NCollapseError(f"within={within!r} is unknown; use 'sample' or 'class'")


def between_covariance(stats: Statistics, mean: str = "unweighted") -> np.ndarray:
    """``Σ_B = M̃ᵀ M̃ / K`` (d x d)."""
    Mt = centered_means(stats, mean)
    return Mt.T @ Mt / stats.num_classes


def between_factor(
    stats: Statistics, mean: str = "unweighted", rtol: float = PINV_RTOL
) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-factor of ``Σ_B``: ``(U, λ)`` with ``U`` (d x r) orthonormal, ``λ > rtol·λ_max`` so
    that ``Σ_B ≈ U diag(λ) Uᵀ`` and ``Σ_B† = U diag(1/λ) Uᵀ``.

    Uses the K x K Gram ``G = M̃ M̃ᵀ/K = V Λ Vᵀ`` when ``K <= d`` (then ``U = M̃ᵀ V Λ^{-1/2}/√K``),
    else the d x d ``Σ_B``. Cached on the snapshot.
    """
    _check_mean(mean)
    key = ("between_factor", mean, float(rtol))
    if key in stats._cache:
        return stats._cache[key]
    Mt = centered_means(stats, mean)
    K, d = Mt.shape
    if K <= d:
        G = Mt @ Mt.T / K
        lam, V = np.linalg.eigh((G + G.T) / 2)
        keep = lam > rtol * max(lam.max(), 0.0)
        lam, V = lam[keep], V[:, keep]
        U = (Mt.T @ V) / np.sqrt(K * lam) if lam.size else np.zeros((d, 0))
    else:
        S = Mt.T @ Mt / K
        lam, U = np.linalg.eigh((S + S.T) / 2)
        keep = lam > rtol * max(lam.max(), 0.0)
        lam, U = lam[keep], U[:, keep]
    lam = np.ascontiguousarray(lam[::-1])
    U = np.ascontiguousarray(U[:, ::-1])
    U.setflags(write=False)
    lam.setflags(write=False)
    stats._cache[key] = (U, lam)
    return U, lam


# --------------------------------------------------------------------------------- NC1
def nc1(
    stats: Statistics,
    mean: str = "unweighted",
    within: str = "sample",
    divide_by_k: bool = True,
    rtol: float = PINV_RTOL,
    second=None,
) -> float:
    """NC1 = ``tr(Σ_W Σ_B†) / K`` (Papyan et al. Fig. 6; ``divide_by_k=False`` drops the ``/K``,
    as Thrampoulidis et al.'s code does).

    ``within="sample"`` uses the sample-weighted Σ_W (one pass); ``"class"`` the class-balanced
    Σ_W, i.e. ``(1/K) Σ_c NC1_c`` -- it needs per-class scatters or a :class:`SecondPass` result
    (``second``). Computed as ``Σ_j (u_jᵀ Σ_W u_j)/λ_j`` over the eigenpairs of
    :func:`between_factor`.
    Exact arithmetic gives a value ``>= 0``; rounding can give ``-1e-17``-size negatives, which are
    clipped to 0. NaN when all class means coincide (``Σ_B = 0``).
    """
    require_classes(stats)
    if within == "class":
        per = nc1_per_class(stats, mean, divide_by_k=divide_by_k, rtol=rtol, second=second)
        if per is None:
            within_covariance(stats, "class")  # raises the explanatory error
        return float(per.mean())
    if within != "sample":
        raise NCollapseError(f"within={within!r} is unknown; use 'sample' or 'class'")
    U, lam = between_factor(stats, mean, rtol)
    if lam.size == 0:
        return float("nan")
    Sw = stats.scatter / stats.total
    t = np.einsum("ir,ir->r", U, Sw @ U)
    val = float(max(np.sum(t / lam), 0.0))
    return val / stats.num_classes if divide_by_k else val


def nc1_per_class(
    stats: Statistics,
    mean: str = "unweighted",
    divide_by_k: bool = True,
    rtol: float = PINV_RTOL,
    second=None,
) -> np.ndarray | None:
    """Per-class ``NC1_c = tr(Σ_W^(c) Σ_B†) / K`` (same ``/K`` convention as :func:`nc1`), so the
    sample-weighted NC1 is ``Σ_c (n_c/N) NC1_c`` and the class-balanced one ``(1/K) Σ_c NC1_c``.

    Source: the per-class scatters when the statistics keep them; else the end-of-pass projection of
    a :class:`~ncollapse.metrics.second_pass.SecondPass` (``second``), which accumulated
    ``Σ_{i∈c} ‖diag(λ)^{-1/2} Uᵀ (h_i − μ_c)‖²``. Returns None when neither is available.
    Clipped at 0.
    """
    require_classes(stats)
    _check_mean(mean)
    K = stats.num_classes
    if stats.class_scatter is not None:
        U, lam = between_factor(stats, mean, rtol)
        if lam.size == 0:
            return np.full(K, np.nan)
        Ul = U / lam
        t = np.einsum("cij,jr,ir->c", stats.class_scatter, U, Ul, optimize=True)
        per = t / stats.counts
    elif second is not None:
        if not np.array_equal(second.counts, stats.counts):
            raise NCollapseError(
                "the SecondPass result saw different data (class counts differ from the "
                "statistics); run the second pass over the same samples"
            )
        if float(second.rtol) != float(rtol):
            raise NCollapseError(
                f"the SecondPass used rtol={second.rtol}, but rtol={rtol} was asked; use the same"
            )
        per = second.proj_ss[mean] / stats.counts
    else:
        return None
    per = np.maximum(per, 0.0)
    return per / K if divide_by_k else per


def nc1_quotient(stats: Statistics, mean: str = "unweighted", within: str = "sample") -> float:
    """``tr(Σ_W) / tr(Σ_B)`` (Tirer et al.'s quotient variant) from the per-class traces."""
    require_classes(stats)
    if within == "sample":
        tw = stats.class_ss.sum() / stats.total
    elif within == "class":
        tw = (stats.class_ss / stats.counts).mean()
    else:
        raise NCollapseError(f"within={within!r} is unknown; use 'sample' or 'class'")
    tb = np.sum(centered_means(stats, mean) ** 2) / stats.num_classes
    return float(tw / tb) if tb > 0 else float("nan")


def cdnv_matrix(stats: Statistics, unbiased: bool = False) -> np.ndarray:
    """K x K class-distance-normalised variance (Galanti et al.):
    ``(σ_c² + σ_{c'}²) / (2 ‖μ_c − μ_{c'}‖²)`` with ``σ_c² = Σ_{i∈c} ‖h_i − μ_c‖² / n_c``
    (``unbiased=True``: ``/(n_c − 1)``, NaN for ``n_c = 1``). Diagonal NaN; coinciding means give
    inf (or NaN if both variances are 0)."""
    require_classes(stats)
    key = ("cdnv_matrix", bool(unbiased))
    if key in stats._cache:
        return stats._cache[key].copy()
    n = stats.counts.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = stats.class_ss / (n - 1 if unbiased else n)
        var = np.where(n - (1 if unbiased else 0) > 0, var, np.nan)
        mu = stats.means
        # exact row-by-row differences (no K x K x d temporary, no Gram-identity cancellation)
        d2 = np.empty((mu.shape[0], mu.shape[0]))
        for c in range(mu.shape[0]):
            diff = mu - mu[c]
            d2[c] = np.einsum("ij,ij->i", diff, diff)
        C = (var[:, None] + var[None, :]) / (2 * d2)
    np.fill_diagonal(C, np.nan)
    stats._cache[key] = C
    return C.copy()


def cdnv(stats: Statistics, unbiased: bool = False) -> float:
    """Mean CDNV over class pairs ``c < c'`` (see :func:`cdnv_matrix`)."""
    C = cdnv_matrix(stats, unbiased)
    iu = np.triu_indices(stats.num_classes, 1)
    v = C[iu]
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


# --------------------------------------------------------------------------------- NC2
def _norms(rows: np.ndarray) -> np.ndarray:
    return np.linalg.norm(rows, axis=1)


def equinorm(rows: np.ndarray) -> float:
    """Coefficient of variation of the row norms: ``std(‖v_c‖) / mean(‖v_c‖)`` (ddof 0)."""
    r = _norms(np.asarray(rows, dtype=float))
    m = r.mean()
    return float(r.std() / m) if m > 0 else float("nan")


def cosine_matrix(rows: np.ndarray) -> np.ndarray:
    """Pairwise cosines of the rows (K x K); rows of zero norm give NaN."""
    rows = np.asarray(rows, dtype=float)
    r = _norms(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = rows / r[:, None]
        C = u @ u.T
    C[r == 0, :] = np.nan
    C[:, r == 0] = np.nan
    return np.clip(C, -1.0, 1.0)


def _upper(C: np.ndarray, idx=None) -> np.ndarray:
    if idx is not None:
        C = C[np.ix_(idx, idx)]
    v = C[np.triu_indices(C.shape[0], 1)]
    return v[~np.isnan(v)]


def equiangularity(rows: np.ndarray) -> float:
    """``std_{c<c'} cos(v_c, v_{c'})`` (ddof 0; Papyan Fig. 3)."""
    v = _upper(cosine_matrix(rows))
    return float(v.std()) if v.size else float("nan")


def max_angle(rows: np.ndarray) -> float:
    """``mean_{c<c'} |cos(v_c, v_{c'}) + 1/(K−1)|`` (Papyan Fig. 4)."""
    K = np.asarray(rows).shape[0]
    v = _upper(cosine_matrix(rows))
    return float(np.abs(v + 1.0 / (K - 1)).mean()) if v.size else float("nan")


def mean_pairwise_cosine(rows: np.ndarray, idx: Sequence[int] | None = None) -> float:
    """Mean of ``cos(v_i, v_j)`` over pairs ``i < j`` of ``idx`` (all rows by default)."""
    v = _upper(cosine_matrix(rows), None if idx is None else np.asarray(idx, dtype=np.int64))
    return float(v.mean()) if v.size else float("nan")


def gram_distance(G: np.ndarray, T: np.ndarray) -> float | np.ndarray:
    """``‖G/‖G‖_F − T/‖T‖_F‖_F`` over the last two axes (in [0, 2]).

    Zero-matrix rule (the one rule of the package): a matrix whose Frobenius norm is exactly 0
    has no direction, so the distance is NaN (never 0 or 1). Leading axes broadcast (a batch
    ``(B, K, K)`` against one ``(K, K)``); 2-D input returns a float, else an array.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d = _unit_frobenius(G) - _unit_frobenius(T)
        out = np.sqrt(np.sum(d * d, axis=(-2, -1)))
    return float(out) if out.ndim == 0 else out


def _unit_frobenius(A) -> np.ndarray:
    """``A / ‖A‖_F`` over the last two axes (scaled first, so tiny matrices do not underflow);
    NaN where ``A`` is exactly 0."""
    A = np.asarray(A, dtype=float)
    m = np.max(np.abs(A), axis=(-2, -1), keepdims=True)
    B = A / np.where(m > 0, m, np.nan)
    return B / np.sqrt(np.sum(B * B, axis=(-2, -1), keepdims=True))


def gram_cosines(G: np.ndarray) -> np.ndarray:
    """Cosines ``G_ij / sqrt(G_ii G_jj)`` from a Gram matrix ``G_ij = <v_i, v_j>`` (last two axes),
    clipped to [-1, 1]; a zero vector (``G_ii <= 0``) gives NaN, as in :func:`cosine_matrix`."""
    G = np.asarray(G, dtype=float)
    r = np.sqrt(np.clip(np.diagonal(G, axis1=-2, axis2=-1), 0.0, None))
    den = r[..., :, None] * r[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        C = G / np.where(den > 0, den, np.nan)
    return np.clip(C, -1.0, 1.0)


def _nc2_rows(rows: np.ndarray) -> dict:
    return {
        "equinorm": equinorm(rows),
        "equiangularity": equiangularity(rows),
        "max_angle": max_angle(rows),
        "mean_cos": mean_pairwise_cosine(rows),
    }


def nc2(stats: Statistics, W=None, mean: str = "unweighted") -> dict:
    """NC2 for the centred class means (and the classifier rows ``w_c``, uncentred, if ``W``):
    ``equinorm`` (CV of norms), ``equiangularity`` (std of cosines), ``max_angle``
    (``mean |cos + 1/(K−1)|``), ``mean_cos``."""
    out = {"means": _nc2_rows(centered_means(stats, mean))}
    if W is not None:
        out["classifier"] = _nc2_rows(check_classifier(W, stats))
    return out


def target_distances(stats: Statistics, W=None, mean: str = "unweighted") -> dict:
    """Distances of Frobenius-normalised Grams to the ETF and to SELI for the same counts
    (spec §4.2 "Distances to SELI"), all with :func:`gram_distance`:

    * ``dist_etf_M = d(M̃ M̃ᵀ, etf_gram(K))``, ``dist_seli_M = d(M̃ M̃ᵀ, G_M*)``;
    * with W: ``dist_etf_W = d(W Wᵀ, etf_gram(K))``, ``dist_seli_W = d(W Wᵀ, G_W*)`` (W uncentred),
      and ``dist_WM = d(W M̃ᵀ, P)`` -- SELI's ``W M = P``; at the ETF ``W M ∝ P`` too, so this one
      distance serves both targets.

    ``G_W* = (P D_n P)^{1/2}``, ``G_M* = (P D_n P)^{+1/2}`` (``ncollapse.geometry``). Both targets
    are centred at the unweighted mean, so ``mean="weighted"`` gives nonzero distances for exact
    ETF/SELI features under imbalance.
    """
    from ncollapse.geometry import centering, etf_gram, seli_class_grams

    K = stats.num_classes
    Mt = centered_means(stats, mean)
    E = etf_gram(K)
    GW, GM = seli_class_grams(stats.counts)
    Gm = Mt @ Mt.T
    out = {"dist_etf_M": gram_distance(Gm, E), "dist_seli_M": gram_distance(Gm, GM)}
    if W is not None:
        W = check_classifier(W, stats)
        Gw = W @ W.T
        out["dist_etf_W"] = gram_distance(Gw, E)
        out["dist_seli_W"] = gram_distance(Gw, GW)
        out["dist_WM"] = gram_distance(W @ Mt.T, centering(K))
    return out


# --------------------------------------------------------------------------------- NC3
def self_duality(stats: Statistics, W, mean: str = "unweighted", squared: bool = False) -> float:
    """``‖W/‖W‖_F − M̃/‖M̃‖_F‖_F`` (Papyan Fig. 5 plots the square: ``squared=True``)."""
    W = check_classifier(W, stats)
    Mt = centered_means(stats, mean)
    a, b = np.linalg.norm(W), np.linalg.norm(Mt)
    if a == 0 or b == 0:
        return float("nan")
    v = float(np.linalg.norm(W / a - Mt / b))
    return v * v if squared else v


def seli_duality(stats: Statistics, W, mean: str = "unweighted") -> float:
    """SELI duality ``d(W M̃ᵀ, P)`` (``(W M̃ᵀ)_{c c'} = ⟨w_c, μ̃_{c'}⟩``; same as ``dist_WM``)."""
    from ncollapse.geometry import centering

    W = check_classifier(W, stats)
    return gram_distance(W @ centered_means(stats, mean).T, centering(stats.num_classes))


def duality_cosines(stats: Statistics, W, mean: str = "unweighted") -> np.ndarray:
    """Per class ``cos(w_c, μ_c − μ_G)`` (NaN for a zero vector)."""
    W = check_classifier(W, stats)
    Mt = centered_means(stats, mean)
    a, b = _norms(W), _norms(Mt)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.sum(W * Mt, axis=1) / (a * b)
    return np.where((a > 0) & (b > 0), np.clip(c, -1, 1), np.nan)


# ------------------------------------------------------------------- logits / NC4 / NCMC
def logit_measures(stats: Statistics) -> dict | None:
    """From logits seen in the pass (None if none): training ``accuracy`` (argmax), per-class
    ``accuracy_per_class``, and ``dist_logits_P = d(Z̄ P, P)`` where column c of ``Z̄`` (K x K) is
    the mean logit vector of class c (``= W μ_c + b``); right-multiplying by P removes the bias."""
    from ncollapse.geometry import centering

    if stats.logit_sums is None:
        return None
    require_classes(stats)
    Zbar = (stats.logit_sums / stats.counts[:, None]).T
    P = centering(stats.num_classes)
    return {
        "accuracy": float(stats.correct.sum() / stats.total),
        "accuracy_per_class": stats.correct / stats.counts,
        "dist_logits_P": gram_distance(Zbar @ P, P),
    }


def ncmc(stats: Statistics) -> dict | None:
    """NCMC collapse (spec ncmc-allnc §1.8) over all samples (None without ``centers``):
    ``NC_ave = mean_i ‖h_i/‖h_i‖ − w̄_y/‖w̄_y‖‖²``, ``NC_std`` its population std, per-class
    ``NC_ave``; ``variability = mean_i (1 − cos(h_i, w_{y_i}))`` (with ``w0``)."""
    if stats.nc_mean is None and stats.var_mean is None:
        return None
    require_classes(stats)
    n, N = stats.counts.astype(float), stats.total
    out: dict = {}

    def pooled(m, m2):
        ave = float(np.sum(n * m) / N)
        tot = float(np.sum(m2 + n * (m - ave) ** 2))
        return ave, float(np.sqrt(max(tot, 0.0) / N))

    if stats.nc_mean is not None:
        out["NC_ave"], out["NC_std"] = pooled(stats.nc_mean, stats.nc_m2)
        out["NC_ave_per_class"] = stats.nc_mean.copy()
        out["NC_std_per_class"] = np.sqrt(np.maximum(stats.nc_m2, 0) / n)
    if stats.var_mean is not None:
        out["variability"], out["variability_std"] = pooled(stats.var_mean, stats.var_m2)
        out["variability_per_class"] = stats.var_mean.copy()
    return out


# ---------------------------------------------------------------- imbalance-aware views
def _loglog_slope(n: np.ndarray, v: np.ndarray) -> float | None:
    ok = v > 0
    if np.unique(n[ok]).size < 2:
        return None
    x, y = np.log(n[ok]), np.log(v[ok])
    x = x - x.mean()
    return float(np.sum(x * (y - y.mean())) / np.sum(x * x))


def _head_tail_ratio(n: np.ndarray, v: np.ndarray) -> float | None:
    if n.max() == n.min():
        return None
    a, b = v[n == n.max()].mean(), v[n == n.min()].mean()
    return float(a / b) if b > 0 else None


def norms_vs_counts(stats: Statistics, W=None, mean: str = "unweighted") -> dict:
    """Per-class norms against counts: ``counts``, ``mean_norm`` = ‖μ_c − μ_G‖, ``mean_norm_raw`` =
    ‖μ_c‖, ``w_norm`` = ‖w_c‖; summaries ``*_loglog_slope`` (least-squares slope of log‖·‖ on
    log n_c; None for equal counts) and ``*_ratio_max_min`` (mean norm of the classes with the
    largest count over that of the classes with the smallest count; unsquared -- square it for the
    squared ratios of Thrampoulidis et al.'s code)."""
    n = stats.counts.astype(float)
    mn = _norms(centered_means(stats, mean))
    out = {
        "counts": stats.counts.copy(),
        "mean_norm": mn,
        "mean_norm_raw": _norms(stats.means),
        "mean_norm_loglog_slope": _loglog_slope(n, mn),
        "mean_norm_ratio_max_min": _head_tail_ratio(n, mn),
    }
    if W is not None:
        wn = _norms(check_classifier(W, stats))
        out["w_norm"] = wn
        out["w_norm_loglog_slope"] = _loglog_slope(n, wn)
        out["w_norm_ratio_max_min"] = _head_tail_ratio(n, wn)
    return out


def minority_collapse(
    stats: Statistics, classes: Sequence[int], W=None, mean: str = "unweighted"
) -> dict:
    """Minority collapse (Fang et al.): mean pairwise cosine among the given (minority) classes'
    classifiers ``w_c`` (``classifier_cos``) and centred means (``mean_cos``); 1 = collapsed."""
    idx = np.asarray(classes, dtype=np.int64)
    K = stats.num_classes
    if idx.ndim != 1 or idx.size < 2:
        raise NCollapseError(
            f"minority collapse needs at least 2 minority classes, got {idx.tolist()}; pass more "
            f"classes (e.g. --minority 7,8,9) or a group with >= 2 classes"
        )
    if idx.min() < 0 or idx.max() >= K or np.unique(idx).size != idx.size:
        raise NCollapseError(
            f"minority classes {idx.tolist()} must be distinct indices in 0..{K - 1}"
        )
    out = {
        "classes": idx.tolist(),
        "mean_cos": mean_pairwise_cosine(centered_means(stats, mean), idx),
    }
    if W is not None:
        out["classifier_cos"] = mean_pairwise_cosine(check_classifier(W, stats), idx)
    return out


def _weighted(v, w, idx):
    v, w = np.asarray(v, dtype=float)[idx], np.asarray(w, dtype=float)[idx]
    ok = np.isfinite(v)
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() and w[ok].sum() > 0 else None


def _mean(v, idx):
    v = np.asarray(v, dtype=float)[idx]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def group_view(
    stats: Statistics,
    groups: Mapping[str, Sequence[int]],
    per_class: Mapping[str, np.ndarray],
    W=None,
    mean: str = "unweighted",
) -> dict:
    """Aggregate per-class values over groups of classes. Sample-level quantities (``nc1`` with the
    sample-weighted Σ_W, ``accuracy``, ``nc4``, ``NC_ave``) are count-weighted, so each group value
    is that measure restricted to the group's samples; class-level ones (norms, CDNV, within
    variance, duality cosine) are plain class means. Plus minority collapse inside each group."""
    from ncollapse.groups import check_groups

    groups = check_groups(groups, stats.num_classes)
    n = stats.counts
    out = {}
    count_weighted = {"nc1", "accuracy", "nc4", "NC_ave", "variability"}
    for name, idx in groups.items():
        g: dict = {"classes": idx.tolist(), "n_classes": int(idx.size)}
        if idx.size == 0:
            out[name] = g
            continue
        g["n_samples"] = int(n[idx].sum())
        for key, v in per_class.items():
            if v is None or key == "count":
                continue
            g[key] = _weighted(v, n, idx) if key in count_weighted else _mean(v, idx)
        if idx.size >= 2:
            mc = minority_collapse(stats, idx, W, mean)
            g["mean_cos"] = mc["mean_cos"]
            if "classifier_cos" in mc:
                g["classifier_cos"] = mc["classifier_cos"]
        out[name] = g
    return out
