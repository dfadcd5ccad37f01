"""High-level UFM entry points: solve one model, compare with its theory, sweep grids.

* :func:`solve_ce`, :func:`solve_mse`, :func:`solve_ncmc` build the batched model, run the chosen
  solver and return the solution; :func:`ce_report`, :func:`mse_report`, :func:`ncmc_report`
  compare a solution with its closed form / ground truth and return JSON-ready dicts.
* :func:`sweep_ce` and :func:`sweep_mse` solve a whole grid (lambda x R x seeds, or
  lambda x layers) as ONE batched problem per shape and return one row per problem.

How to solve is one :class:`~ncollapse.ufm.solvers.SolverOptions` (``options=``); the old
keywords (``solver=``, ``tol=``, ``max_iter=``, ``lr=``, ``momentum=``, ``seeds=``,
``init_scale=``, ``progress=``) still work and override its fields.

Conventions: class-level Grams ``W W^T``, ``M^T M`` (uncentred means), ``W M`` (columns =
classes); distances are :func:`ncollapse.metrics.gram_distance` (Frobenius distance of
Frobenius-normalised matrices; NaN for a zero matrix). Closed forms come from
:mod:`ncollapse.geometry` (SELI Grams, ``zero_threshold``, ``deep_linear_ufm``,
``loss_p_features``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ncollapse import geometry as geo
from ncollapse.errors import NCollapseError, check_counts
from ncollapse.geometry import DEEP_LINEAR_BIAS
from ncollapse.metrics import gram_cosines, gram_distance

from .convex import ConvexCESolution, solve_ce_convex
from .models import CE_BIAS, CERidgeUFM, DeepLinearMSEUFM, NCMCLossP
from .solvers import SolverOptions, UFMSolution, solve


# --------------------------------------------------------------------------------------- CE
def solve_ce(
    counts,
    lam=None,
    *,
    lambda_w=None,
    lambda_h=None,
    bias: bool = CE_BIAS,
    lambda_b=0.0,
    d: int | None = None,
    features: str = "class",
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> UFMSolution | ConvexCESolution:
    """Solve CE-UFM problem(s) (batched over lambda / counts rows) with ``options.solver``.

    ``solver="convex"`` returns the exact class-level optimum (:class:`ConvexCESolution`);
    "lbfgs" / "gd" solve the factorised ``(W, H, b)`` problem (:class:`UFMSolution`).
    ``solver_kw``: :class:`SolverOptions` fields overriding ``options``.
    """
    opts = SolverOptions.build(options, **solver_kw)
    if opts.solver == "convex":
        if features != "class":
            raise NCollapseError("solver='convex' is class-level; drop features='sample'")
        if d is not None:
            CERidgeUFM(counts, lam, lambda_w=lambda_w, lambda_h=lambda_h, d=d)  # validates d
        return solve_ce_convex(
            counts,
            lam,
            lambda_w=lambda_w,
            lambda_h=lambda_h,
            bias=bias,
            lambda_b=lambda_b,
            tol=opts.tol_value,
            max_iter=opts.max_iter_value,
            device=device,
            progress=opts.progress,
        )
    model = CERidgeUFM(
        counts,
        lam,
        lambda_w=lambda_w,
        lambda_h=lambda_h,
        bias=bias,
        lambda_b=lambda_b,
        d=d,
        features=features,
        device=device,
    )
    return solve(model, opts)


def _block_stats(gram, minority) -> dict:
    """Norm ratio and within/between-block cosines from one Gram matrix (unsquared norms).

    ``minority`` is a boolean mask over classes. Returns ``ratio_maj_min`` = mean ||v_maj|| /
    mean ||v_min||, ``cos_min_min``, ``cos_maj_maj``, ``cos_maj_min`` (averages over pairs; ``nan``
    when a block has fewer than two classes or a vector is zero). Cosines:
    :func:`ncollapse.metrics.gram_cosines`.
    """
    g = np.asarray(gram, dtype=np.float64)
    mino = np.asarray(minority, dtype=bool)
    maj = ~mino
    norms = np.sqrt(np.clip(np.diag(g), 0, None))
    cos = gram_cosines(g)

    def _pairs(ma, mb, same):
        sub = cos[np.ix_(ma, mb)]
        vals = sub[np.triu_indices(sub.shape[0], 1)] if same else sub.ravel()
        return float(np.mean(vals)) if vals.size else float("nan")

    mmin = float(np.mean(norms[mino])) if mino.any() else float("nan")
    mmaj = float(np.mean(norms[maj])) if maj.any() else float("nan")
    ratio = mmaj / mmin if mmin > 0 else float("inf")
    return {
        "ratio_maj_min": ratio,
        "cos_min_min": _pairs(mino, mino, True),
        "cos_maj_maj": _pairs(maj, maj, True),
        "cos_maj_min": _pairs(maj, mino, False),
    }


def _minority_mask(counts: np.ndarray) -> np.ndarray | None:
    c = np.asarray(counts)
    if c.min() == c.max():
        return None
    return c == c.min()


def ce_geometry_stats(WWt, MtM, WM, counts) -> dict:
    """Distances to SELI / ETF and block statistics of one class-level CE solution.

    Keys: ``norm_X`` = ``||W H||_F = ||WM D||_F``; ``dist_WH_Z`` = dist(WM D, P D) (= dist(WH, Zhat)
    over all samples); ``dist_W_seli`` / ``dist_M_seli`` = dist to ``(P D_n P)^{1/2}`` /
    ``(P D_n P)^{+1/2}``; ``dist_W_etf`` / ``dist_M_etf`` / ``dist_WM_etf`` = dist to ``P``
    (for W M, SELI and ETF coincide: ``W M = P``); ``ratio_w`` = mean ||w_maj|| / mean ||w_min||
    and ``cos_w_min_min`` etc. (minorities = classes with the smallest count; ``nan`` if balanced);
    ``sum_w`` = ``||sum_c w_c|| / sqrt(tr WW^T)`` and ``sum_mu`` likewise. For the zero solution
    (``||X||_F <= 1e-10 ||Zhat||_F``) only ``norm_X`` and ``zero_solution = True`` are meaningful;
    the rest is ``nan``.
    """
    n = check_counts(counts).astype(float)
    K = n.size
    P = geo.centering(K)
    G_W, G_M = geo.seli_class_grams(n)
    sq = np.sqrt(n)
    X = WM * sq[None, :]
    nx = float(np.linalg.norm(X))
    if nx <= 1e-10 * np.linalg.norm(P * sq[None, :]):
        # the zero solution (lambda >= sigma_max): directions are undefined
        nan = float("nan")
        keys = (
            "dist_WH_Z",
            "dist_W_seli",
            "dist_M_seli",
            "dist_W_etf",
            "dist_M_etf",
            "dist_WM_etf",
            "sum_w",
            "sum_mu",
        )
        return {"norm_X": nx, "zero_solution": True, **dict.fromkeys(keys, nan)}
    out = {
        "zero_solution": False,
        "norm_X": nx,
        "dist_WH_Z": gram_distance(X, P * sq[None, :]),
        "dist_W_seli": gram_distance(WWt, G_W),
        "dist_M_seli": gram_distance(MtM, G_M),
        "dist_W_etf": gram_distance(WWt, P),
        "dist_M_etf": gram_distance(MtM, P),
        "dist_WM_etf": gram_distance(WM, P),
    }
    one = np.ones(K)
    trw, trm = np.trace(WWt), np.trace(MtM)
    out["sum_w"] = float(np.sqrt(max(one @ WWt @ one, 0)) / np.sqrt(trw)) if trw > 0 else np.nan
    out["sum_mu"] = float(np.sqrt(max(one @ MtM @ one, 0)) / np.sqrt(trm)) if trm > 0 else np.nan
    mino = _minority_mask(n)
    if mino is not None:
        for tag, G in (("w", WWt), ("mu", MtM)):
            bs = _block_stats(G, mino)
            out[f"ratio_{tag}"] = bs["ratio_maj_min"]
            for key in ("min_min", "maj_maj", "maj_min"):
                out[f"cos_{tag}_{key}"] = bs[f"cos_{key}"]
        w = np.sqrt(np.clip(np.diag(WWt), 0, None))
        out["w_min_over_w_maj"] = float(w[mino].mean() / w[~mino].mean()) if w.max() > 0 else 0.0
    return out


def ce_report(sol, i: int = 0, reference: ConvexCESolution | None = None) -> dict:
    """JSON-ready report of problem ``i``: solver summary, Grams, SELI/ETF distances and, when a
    convex ``reference`` is given (or the solution is itself convex), distances to it."""
    counts = sol.counts[i] if isinstance(sol, ConvexCESolution) else sol.model.counts_np[i]
    WWt, MtM, WM = sol.WWt()[i], sol.MtM()[i], sol.WM()[i]
    b = sol.b[i] if isinstance(sol, ConvexCESolution) else sol.extracted["b"][i]
    out = {"counts": counts, **sol.summary(i)}
    if isinstance(sol, UFMSolution):
        out.update(
            {
                k: (float(v[i]) if np.ndim(v) else v)
                for k, v in sol.model.describe().items()
                if k in ("lambda_w", "lambda_h", "bias", "d", "features")
            }
        )
    else:
        out["lambda_eff"] = float(sol.lam[i])
        out["bias"] = sol.bias
    out["zero_threshold"] = geo.zero_threshold(counts, bias=bool(out.get("bias", False)))
    out["geometry"] = ce_geometry_stats(WWt, MtM, WM, counts)
    out["WWt"], out["MtM"], out["WM"], out["b"] = WWt, MtM, WM, b
    if reference is not None:
        out["vs_convex"] = {
            "dist_WWt": gram_distance(WWt, reference.WWt()[i]),
            "dist_MtM": gram_distance(MtM, reference.MtM()[i]),
            "dist_WM": gram_distance(WM, reference.WM()[i]),
            "objective_gap": float(sol.objective[i] - reference.objective[i]),
        }
    return out


# -------------------------------------------------------------------------------------- MSE
def solve_mse(
    counts,
    lam=None,
    *,
    lambda_w=None,
    lambda_h=None,
    layers: int = 1,
    bias: bool = DEEP_LINEAR_BIAS,
    lambda_b=0.0,
    d: int | None = None,
    features: str = "class",
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> UFMSolution:
    """Solve deep-linear MSE UFM problem(s) (batched over lambda / counts rows); one descent run
    per problem (:func:`solve_mse_global` for the global minimiser when ``L >= 2``)."""
    opts = SolverOptions.build(options, **solver_kw)
    if opts.solver == "convex":
        raise NCollapseError(
            "solver='convex' exists for --model ce only; the MSE model has a closed form "
            "(ncollapse.geometry.deep_linear_ufm); use lbfgs or gd"
        )
    model = DeepLinearMSEUFM(
        counts,
        lam,
        lambda_w=lambda_w,
        lambda_h=lambda_h,
        layers=layers,
        bias=bias,
        lambda_b=lambda_b,
        d=d,
        features=features,
        device=device,
    )
    return solve(model, opts)


def mse_global_search(
    sol: UFMSolution, options: SolverOptions | None = None, **solver_kw
) -> UFMSolution:
    """Rank-deflation restarts: the global minimiser of deep-linear MSE problems (L >= 2).

    For ``L >= 2`` the origin of every singular direction is a local minimum and, for
    ``sigma_stat < sigma_i < sigma*``, a non-zero local minimum coexists with the global ``t_i = 0``
    (Liu, arXiv 2411.17278; the scalar problem per singular value), so one descent run can stop in
    either. From a solution ``sol`` (ideally
    started from a large init, so all directions above ``sigma_stat`` are on), this restarts every
    problem ``K + 1`` times with only the top-``r`` feature directions kept (``r = 0..K``):
    ``Pi_r`` projects onto the top-``r`` left singular vectors of ``M D`` and ``W_1 <- W_1 Pi_r``,
    ``G <- Pi_r G`` (a subspace the dynamics cannot leave). All ``B (K+1)`` restarts run as one
    batched L-BFGS solve; per problem the lowest objective wins. ``info["rank"]`` holds the
    chosen ``r``; ``info["candidates"]`` the objectives of all restarts, shape ``(B, K+1)``.
    """
    m = sol.model
    if not isinstance(m, DeepLinearMSEUFM):
        raise NCollapseError("mse_global_search needs a DeepLinearMSEUFM solution")
    B, K = m.B, m.K
    R1 = K + 1
    idx = np.repeat(np.arange(B), R1)
    ranks = np.tile(np.arange(R1), B)
    init = {k: v[idx].copy() for k, v in sol.params.items()}
    MD = sol.extracted["M"] * np.sqrt(m.counts_np.astype(float))[:, None, :]
    Q = np.linalg.svd(MD)[0]  # (B, d, d)
    for j, (i, r) in enumerate(zip(idx, ranks)):
        Pi = Q[i, :, :r] @ Q[i, :, :r].T
        init["G"][j] = Pi @ init["G"][j]
        init["W1"][j] = init["W1"][j] @ Pi
    big = m.take(idx)
    opts = SolverOptions.build(options, **solver_kw)
    opts = replace(opts, solver="lbfgs", history=False, lr=None, momentum=None)
    res = solve(big, opts, init=init)
    obj = res.objective.reshape(B, R1)
    best = np.argmin(obj, axis=1)
    out = res.take(np.arange(B) * R1 + best)
    out.iterations = out.iterations + sol.iterations
    out.time_s = sol.time_s + res.time_s
    out.info = {"rank": best, "candidates": obj}
    return out


def mse_spectral_init(model: DeepLinearMSEUFM) -> dict[str, np.ndarray]:
    """Balanced, label-aligned start ``W M D = U diag(sigma) V^T`` (every factor ``sigma^{1/(L+1)}``).

    ``U, sigma, V`` from the SVD of the label target (``Yhat = (I - n 1^T/N) D`` with bias, ``D``
    without); ``R`` = the first K axes of ``R^d``. From here every singular direction only has to
    shrink: it descends to the larger stationary root where one exists, else to 0. Used by
    :func:`solve_mse_global` next to a random start; it uses only the data, not the closed form.
    """
    B, K, d, L = model.B, model.K, model.d, model.layers
    out = {f"W{l}": np.zeros((B, d, d)) for l in range(1, L)}
    out[f"W{L}"] = np.zeros((B, K, d))
    out["G"] = np.zeros((B, d, model.J))
    if model.bias:
        out["b"] = np.zeros((B, K))
    for i in range(B):
        n = model.counts_np[i].astype(float)
        sq = np.sqrt(n)
        A = geo.y_hat(n) if model.bias else np.diag(sq)
        U, sig, Vt = np.linalg.svd(A)
        s = sig ** (1.0 / (L + 1))
        Rd = np.zeros((d, K))
        Rd[:K, :K] = np.eye(K)
        for l in range(1, L):
            out[f"W{l}"][i] = (Rd * s) @ Rd.T
        out[f"W{L}"][i] = (U * s) @ Rd.T
        MD = (Rd * s) @ Vt  # (d, K) = M D
        if model.features == "class":
            out["G"][i] = MD  # G = M sqrt(n) = M D
        else:
            M = MD / sq[None, :]
            lab = model.labels_np[i]
            out["G"][i] = M[:, lab] * (model.weights_np[i] > 0)[None, :]
    return out


def solve_mse_global(
    counts,
    lam=None,
    *,
    lambda_w=None,
    lambda_h=None,
    layers: int = 1,
    bias: bool = DEEP_LINEAR_BIAS,
    d: int | None = None,
    features: str = "class",
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> UFMSolution:
    """Global minimiser of deep-linear MSE UFMs by multi-start + rank deflation (all batched).

    Two starts per problem, a seeded random one (std ``init_scale``) and
    :func:`mse_spectral_init`, are solved by L-BFGS in one batch; then
    :func:`mse_global_search` restarts both with every top-``r`` truncation; the lowest objective
    wins. ``info["start"]`` is 0 (random) or 1 (spectral), ``info["rank"]`` the kept rank and
    ``info["random_start_ok"]`` whether the plain random-start run already had the winning
    objective (to 1e-10 relative). Always L-BFGS; ``options.init_scale`` defaults to 1.0 here.
    """
    opts = SolverOptions.build(options, **solver_kw)
    if opts.solver != "lbfgs":
        raise NCollapseError(
            f"the global search uses L-BFGS, not solver={opts.solver!r}; pass solver='lbfgs' "
            "(or --no-global for one descent run with another solver)"
        )
    init_scale = 1.0 if opts.init_scale is None else opts.init_scale
    seeds = opts.seeds
    opts = SolverOptions.build(opts, history=False)
    model = DeepLinearMSEUFM(
        counts,
        lam,
        lambda_w=lambda_w,
        lambda_h=lambda_h,
        layers=layers,
        bias=bias,
        d=d,
        features=features,
        device=device,
        init_scale=init_scale,
    )
    B = model.B
    seeds = np.broadcast_to(np.atleast_1d(np.asarray(seeds, dtype=np.int64)), (B,))
    big = model.take(np.repeat(np.arange(B), 2))
    rnd = {k: v.cpu().numpy() for k, v in model.init_params(seeds).items()}
    spec = mse_spectral_init(model)
    init = {k: np.stack([rnd[k], spec[k]], axis=1).reshape(2 * B, *rnd[k].shape[1:]) for k in rnd}
    sol0 = solve(big, opts, init=init)
    sol1 = mse_global_search(sol0, opts)
    obj = sol1.objective.reshape(B, 2)
    start = np.argmin(obj, axis=1)
    out = sol1.take(np.arange(B) * 2 + start)
    best = obj[np.arange(B), start]
    out.time_s = sol1.time_s
    out.info = {
        "start": start,
        "rank": sol1.info["rank"].reshape(B, 2)[np.arange(B), start],
        "random_start_objective": sol0.objective[0::2],
        "random_start_ok": sol0.objective[0::2] <= best + 1e-10 * np.maximum(np.abs(best), 1.0),
    }
    return out


def rel_err(a, b) -> float:
    """``||a - b||_F / max(||b||_F, 1e-300)``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def mse_singular_values(WM, counts, bias: bool, U=None, V=None) -> np.ndarray:
    """Numerical ``t_i``: with the closed form's singular vectors ``U, V`` (if given) the diagonal
    of ``U^T (W M D) V``, else the singular values of ``W M D`` (descending)."""
    X = np.asarray(WM) * np.sqrt(np.asarray(counts, float))[None, :]
    if U is not None and V is not None:
        return np.diag(U.T @ X @ V)
    return np.linalg.svd(X, compute_uv=False)


def mse_report(sol: UFMSolution, i: int = 0) -> dict:
    """Solution ``i`` against :func:`ncollapse.geometry.deep_linear_ufm` (relative errors).

    The global objective is ``sum_i [(t_i - sigma_i)^2/(2N) + ((L+1)/2) c t_i^{2/(L+1)}]`` (the
    per-direction scalar problems of Liu's model, arXiv 2411.17278); ``at_global_minimum`` is False when the
    solver stopped in a local minimum (``objective_rel_gap > 1e-9``; try solve_mse_global).
    """
    m = sol.model
    if m.bias and m.lambda_b_np[i] != 0:
        raise NCollapseError("the closed form assumes an unregularised bias (lambda_b = 0)")
    counts = m.counts_np[i]
    cf = geo.deep_linear_ufm(counts, m.layers, m.lambda_w_np[i], m.lambda_h_np[i], bias=m.bias)
    WWt, MtM, WM = sol.WWt()[i], sol.MtM()[i], sol.WM()[i]
    b = sol.extracted["b"][i]
    t_num = mse_singular_values(WM, counts, m.bias, cf.U, cf.V)
    out = {"counts": counts, "layers": m.layers, "bias": m.bias, **sol.summary(i)}
    out.update(lambda_w=float(m.lambda_w_np[i]), lambda_h=float(m.lambda_h_np[i]), d=m.d)
    out["closed_form"] = {
        "sigma": cf.sigma,
        "t": cf.t,
        "threshold": cf.threshold,
        "zeroed": cf.zeroed,
        "b": cf.b,
    }
    out["numerics"] = {"t": t_num, "b": b, "w_norms": np.sqrt(np.clip(np.diag(WWt), 0, None))}
    N = float(np.sum(counts))
    f_cf = float(np.sum(geo.scalar_objective(cf.t, cf.sigma, N, cf.c, m.layers)))
    gap = (float(sol.objective[i]) - f_cf) / max(abs(f_cf), 1e-300)
    out["objective_closed_form"] = f_cf
    out["at_global_minimum"] = bool(gap <= 1e-9)
    out["errors"] = {
        "objective_rel_gap": gap,
        "WWt_rel": rel_err(WWt, cf.WWt),
        "MtM_rel": rel_err(MtM, cf.MtM),
        "WM_rel": rel_err(WM, cf.WM),
        "b_abs": float(np.max(np.abs(b - cf.b))),
        "t_abs": float(np.max(np.abs(t_num - cf.t))),
    }
    out["WWt"], out["MtM"], out["WM"] = WWt, MtM, WM
    return out


# ------------------------------------------------------------------------------------- NCMC
def ncmc_frames(counts, f: int, theta, *, class_aware: bool = True, d: int | None = None, seed=0):
    """Frames for NCMC: one per ``theta`` value (list), with ``f_k`` from the class-aware strategy
    (``class_aware=True``, CAL) or ``f_k = f`` (AL); ``d`` defaults to ``F + K``."""
    n = check_counts(counts)
    fk = geo.center_counts("cal" if class_aware else "al", n.size, f, counts=n)
    dd = int(fk.sum() + n.size) if d is None else int(d)
    thetas = np.atleast_1d(np.asarray(theta, dtype=float))
    return [geo.multicenter_frame(fk, dd, float(th), seed) for th in thetas]


def solve_ncmc(
    counts,
    lambda_h,
    *,
    f: int = 3,
    theta=geo.NCMC_THETA,
    class_aware: bool = True,
    frames=None,
    d: int | None = None,
    frame_seed=0,
    features: str = "class",
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> UFMSolution:
    """Solve NCMC Loss P problems with fixed frames (one per theta, or ``frames`` given)."""
    opts = SolverOptions.build(options, **solver_kw)
    if opts.solver == "convex":
        raise NCollapseError("solver='convex' exists for --model ce only; use lbfgs or gd")
    if frames is None:
        frames = ncmc_frames(counts, f, theta, class_aware=class_aware, d=d, seed=frame_seed)
    model = NCMCLossP(counts, frames, lambda_h, features=features, device=device)
    return solve(model, opts)


def ncmc_report(sol: UFMSolution, i: int = 0) -> dict:
    """Solution ``i`` against Cor. 3.7: norms, direction ``wbar^(k)``, orthogonality, cos rho."""
    m = sol.model
    fr = m.frames[i]
    counts = m.counts_np[i]
    pred = geo.loss_p_features(fr, counts, m.lambda_h_np[i])
    M = sol.extracted["M"][i]  # (d, K)
    h_norms = np.linalg.norm(M, axis=0)
    wbar = fr.mean_centers
    cos_wbar = np.sum(M.T * wbar, 1) / (h_norms * np.linalg.norm(wbar, axis=1))
    cos_w0 = np.sum(M.T * fr.W0, 1) / h_norms
    cen = np.asarray(fr.centers)
    other = np.asarray(fr.center_class)[None, :] != np.arange(m.K)[:, None]
    cross = (M.T @ cen.T) / h_norms[:, None]  # <h_k/|h_k|, center_j>
    out = {"counts": counts, **sol.summary(i)}
    out.update(
        lambda_h=float(m.lambda_h_np[i]),
        theta=float(fr.theta),
        f_counts=fr.f_counts,
        S=pred["S"],
        d=m.d,
    )
    out["prediction"] = {"h_norms": pred["h_norms"], "cos_h_w0": pred["cos_rho"]}
    out["numerics"] = {"h_norms": h_norms, "cos_h_wbar": cos_wbar, "cos_h_w0": cos_w0}
    out["errors"] = {
        "h_norm_rel": float(np.max(np.abs(h_norms - pred["h_norms"]) / pred["h_norms"])),
        "h_rel": rel_err(M, pred["h"]),
        "cos_wbar_gap": float(np.max(1.0 - cos_wbar)),
        "cross_class_abs": float(np.max(np.abs(cross[other]))) if other.any() else 0.0,
        "cos_w0_abs": float(np.max(np.abs(cos_w0 - pred["cos_rho"]))),
    }
    return out


# ------------------------------------------------------------------------------------ sweeps
def sweep_ce(
    *,
    k_maj: int,
    k_min: int,
    n_min: int = 1,
    Rs=(1,),
    lambdas=(0.1,),
    seeds=(0,),
    bias: bool = CE_BIAS,
    d: int | None = None,
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> list[dict]:
    """Solve the grid R x lambda x seed of STEP CE-UFMs as ONE batched problem; one row each.

    All problems share ``K = k_maj + k_min``, so the class-level models stack directly
    (different N are handled by the class-level reduction). ``solver="convex"`` ignores seeds.
    """
    opts = SolverOptions.build(options, **solver_kw)
    Rs = [float(r) for r in Rs]
    lambdas = [float(x) for x in lambdas]
    seeds = [int(s) for s in ([0] if opts.solver == "convex" else seeds)]
    grid = [(R, lam, s) for R in Rs for lam in lambdas for s in seeds]
    if not grid:
        raise NCollapseError("the sweep grid is empty; give at least one R and one lambda")
    counts = np.stack([geo.step_counts(k_maj, k_min, R, n_min) for R, _, _ in grid])
    lam = np.array([g[1] for g in grid])
    sd = np.array([g[2] for g in grid])
    sol = solve_ce(counts, lam, bias=bias, d=d, device=device, options=opts, seeds=sd)
    WWt, MtM, WM = sol.WWt(), sol.MtM(), sol.WM()
    rows = []
    for i, (R, lmb, s) in enumerate(grid):
        st = ce_geometry_stats(WWt[i], MtM[i], WM[i], counts[i])
        summ = sol.summary(i)
        row = {
            "R": int(R) if float(R).is_integer() else R,
            "lambda": lmb,
            "seed": s,
            "counts": counts[i].tolist(),
        }
        row.update({k: st[k] for k in st})
        row.update({k: summ[k] for k in ("objective", "iterations", "converged") if k in summ})
        rows.append(row)
    rows_time = sol.time_s
    for r in rows:
        r["batch_time_s"] = rows_time
    return rows


def sweep_mse(
    counts,
    *,
    layers=(1,),
    lambdas=(5e-3,),
    bias: bool = DEEP_LINEAR_BIAS,
    seeds=(0,),
    d: int | None = None,
    global_search: bool = True,
    device=None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> list[dict]:
    """Grid lambda x seed for each depth L (one batched solve per L, since the parameter shapes
    differ with L); one row per problem with the errors against the closed form.

    ``global_search=True`` (default) uses :func:`solve_mse_global` (L-BFGS only); otherwise one
    descent run per problem, which can stop in a local minimum for L >= 2."""
    opts = SolverOptions.build(options, **solver_kw)
    if global_search and opts.solver != "lbfgs":
        raise NCollapseError("global_search uses L-BFGS; pass solver='lbfgs'")
    rows = []
    lambdas = [float(x) for x in lambdas]
    seeds = [int(s) for s in seeds]
    for L in layers:
        grid = [(lam, s) for lam in lambdas for s in seeds]
        lam = np.array([g[0] for g in grid])
        sd = np.array([g[1] for g in grid])
        run = solve_mse_global if global_search else solve_mse
        sol = run(counts, lam, layers=int(L), bias=bias, d=d, device=device, options=opts, seeds=sd)
        for i, (lmb, s) in enumerate(grid):
            rep = mse_report(sol, i)
            rows.append(
                {
                    "layers": int(L),
                    "lambda": lmb,
                    "seed": s,
                    "bias": bias,
                    "t_pred": rep["closed_form"]["t"].tolist(),
                    "t_num": rep["numerics"]["t"].tolist(),
                    "alive_pred": int(np.sum(rep["closed_form"]["t"] > 1e-6)),
                    "alive_num": int(np.sum(np.abs(rep["numerics"]["t"]) > 1e-6)),
                    "at_global_minimum": rep["at_global_minimum"],
                    **rep["errors"],
                    "objective": rep["objective"],
                    "iterations": rep["iterations"],
                    "converged": rep["converged"],
                    "batch_time_s": sol.time_s,
                }
            )
    return rows


__all__ = [
    "ce_geometry_stats",
    "ce_report",
    "mse_global_search",
    "mse_report",
    "mse_spectral_init",
    "solve_mse_global",
    "mse_singular_values",
    "ncmc_frames",
    "ncmc_report",
    "rel_err",
    "solve_ce",
    "solve_mse",
    "solve_ncmc",
    "sweep_ce",
    "sweep_mse",
]
