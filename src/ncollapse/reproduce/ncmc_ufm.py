"""Reproduction ``ncmc-ufm``: NCMC Loss P with a fixed multi-center frame against Cor. 3.7.

Paper: Yan, Qian, Peng, Luo, Zhu & Li, "Neural Collapse to Multiple Centers for Imbalanced
Data", NeurIPS 2024 (OpenReview RJEC9fZ9Ma), §3.2 eq. (P), Thm 3.4, Cor. 3.7, Remark 3.6. Loss P
with the frame fixed is ``(1/2S)||C H - T||^2 + (lambda_H/2)||H||^2``, ``S = sum_k f_k n_k``;
Cor. 3.7 (:func:`ncollapse.geometry.loss_p_features`) predicts ``h_k = f_k wbar^(k) / (f_k
cos^2 alpha_k + lambda_H S)``: the features collapse to the MEAN of their class's centers (their
cosine with ``w_k`` is ``cos rho_k < 1`` unless theta = pi/2; Remark 3.6), orthogonal to every
other class's centers, with norm ``f_k cos alpha_k / (f_k cos^2 alpha_k + lambda_H S)``.

Counts (500, 200, 100, 50, 20), f = 4, class-aware (CAL) and average (AL) center counts,
theta in {0.2, 0.5, pi/4, pi/2}, lambda_H in {1e-5, 1e-4, 1e-3}, d = 30; numerics: batched
L-BFGS on sample-level features (N = 870) and heavy-ball GD. Checks, one function each (command:
``ncollapse ufm reproduce ncmc``):

* :func:`cor37_featured_problem` -- CAL, theta = 0.2, lambda_H = 1e-4: every ``||h_k||`` and
  ``cos(h_k, w_k) = cos rho_k``;
* :func:`cor37_by_gradient_descent` -- the same problem by heavy-ball GD;
* :func:`cor37_whole_grid` -- norms, features, collapse to ``wbar^(k)``, orthogonality to other
  classes and ``cos rho_k`` over the 24-problem grid;
* :func:`remark36_not_aligned_with_w_k` -- for theta < pi/2 the features do not align with w_k;
* :func:`thm34_within_class_collapse` -- NC1 at the optimum (sample features);
* :func:`cor37_equals_ridge_regression` -- the formula against a direct ridge solve;
* :func:`cor37_lambda_and_theta_sweeps` -- the sweeps drawn in the figure.
"""

from __future__ import annotations

import numpy as np

from ncollapse import geometry as geo
from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.report import Report
from ncollapse.ufm.api import ncmc_frames, ncmc_report, solve_ncmc
from ncollapse.ufm.solvers import SolverOptions

PAPER = "Yan et al., Neural Collapse to Multiple Centers for Imbalanced Data, NeurIPS 2024"
COUNTS = np.array([500, 200, 100, 50, 20])
F_AVG = 4
D = 30
SRC = "NeurIPS 2024 Cor. 3.7"
SRC_RHO = "NeurIPS 2024 Def. 3.2 (cos ρ_k) and Remark 3.6"
FEATURED = {"class_aware": True, "theta": 0.2, "lambda_h": 1e-4}


def _grid(quick):
    thetas = [0.2, np.pi / 2] if quick else [0.2, 0.5, np.pi / 4, np.pi / 2]
    lhs = [1e-4] if quick else [1e-5, 1e-4, 1e-3]
    grid, frames = [], []
    for lh in lhs:
        for cal in (True, False):
            frs = ncmc_frames(COUNTS, F_AVG, thetas, class_aware=cal, d=D, seed=0)
            for th, fr in zip(thetas, frs):
                grid.append({"lambda_h": lh, "class_aware": cal, "theta": float(th)})
                frames.append(fr)
    return grid, frames


def _ridge_solution(frame, counts, lh):
    """Independent check of Cor. 3.7: per-class ridge regression ``(C^T C + lambda S I)^{-1} C^T t_k``."""
    C = np.asarray(frame.centers)
    fk = np.asarray(frame.f_counts, float)
    S = float((fk * counts).sum())
    A = C.T @ C + lh * S * np.eye(C.shape[1])
    T = np.zeros((C.shape[0], counts.size))
    T[np.arange(C.shape[0]), frame.center_class] = 1.0
    return np.linalg.solve(A, C.T @ T)  # (d, K)


def solve_grid(grid, frames, device, progress):
    """L-BFGS on sample features for every (lambda_H, CAL/AL, theta) problem, one batch."""
    lhs = np.array([g["lambda_h"] for g in grid])
    opts = SolverOptions(tol=1e-11, seeds=np.arange(len(grid)), progress=progress)
    return solve_ncmc(COUNTS, lhs, frames=frames, features="sample", device=device, options=opts)


def cor37_featured_problem(rep: Report, r0: dict, sec: str) -> None:
    """Every ||h_k|| and cos(h_k, w_k) of the featured problem against Cor. 3.7 / cos rho_k."""
    for k in range(COUNTS.size):
        rep.check(
            sec,
            f"‖h_{k + 1}‖ (n={COUNTS[k]}, f_k={r0['f_counts'][k]})",
            "L-BFGS",
            r0["prediction"]["h_norms"][k],
            r0["numerics"]["h_norms"][k],
            1e-8,
            kind="rel",
            source=SRC,
        )
    for k in range(COUNTS.size):
        rep.check(
            sec,
            f"cos(h_{k + 1}, w_{k + 1}) = cos ρ_k (≠ 1)",
            "L-BFGS",
            r0["prediction"]["cos_h_w0"][k],
            r0["numerics"]["cos_h_w0"][k],
            1e-8,
            source=SRC_RHO,
        )


def cor37_by_gradient_descent(rep: Report, frame, S: float, sec: str, device, progress) -> None:
    """Heavy-ball GD with step 1/L, L = lambda_max(C^T C)/S + lambda_H (per-sample curvature)."""
    C0 = np.asarray(frame.centers)
    lh = FEATURED["lambda_h"]
    L0 = np.linalg.eigvalsh(C0.T @ C0).max() / S + lh
    opts = SolverOptions(
        solver="gd", lr=1.0 / L0, momentum=0.9, tol=1e-12, max_iter=20000, progress=progress
    )
    gd = solve_ncmc(COUNTS, lh, frames=[frame], features="sample", device=device, options=opts)
    rg = ncmc_report(gd, 0)
    rep.timing("gd_featured", gd.time_s)
    rep.check(
        sec,
        "GD (heavy ball, lr 1/L): max rel. error of ‖h_k‖",
        f"{int(gd.iterations[0])} steps",
        0.0,
        rg["errors"]["h_norm_rel"],
        1e-8,
        kind="max",
        source=SRC,
    )


def cor37_whole_grid(rep: Report, reps: list, sec: str) -> None:
    """Worst errors over the grid: norms, features, collapse to wbar, orthogonality, cos rho."""
    e = {k: max(r["errors"][k] for r in reps) for k in reps[0]["errors"]}
    for key, quantity, tol, src in (
        ("h_norm_rel", "max rel. error of ‖h_k‖ vs f_k cos α_k/(f_k cos²α_k + λ_H S)", 1e-8, SRC),
        ("h_rel", "max rel. error of h_k vs f_k w̄^(k)/(f_k cos²α_k + λ_H S)", 1e-8, SRC),
        ("cos_wbar_gap", "max 1 − cos(h_k, w̄^(k)) (collapse to the centers' mean)", 1e-12, SRC),
    ):
        rep.check(sec, quantity, "all classes", 0.0, e[key], tol, kind="max", source=src)
    rep.check(
        sec,
        "max |cos(h_k, w_j^(k'))|, k' ≠ k (orthogonal to other classes)",
        "all",
        0.0,
        e["cross_class_abs"],
        1e-8,
        kind="max",
        source=SRC,
    )
    rep.check(
        sec,
        "max |cos(h_k, w_k) − cos ρ_k|",
        "all classes",
        0.0,
        e["cos_w0_abs"],
        1e-8,
        kind="max",
        source="NeurIPS 2024 Def. 3.2 (cos ρ_k)",
    )


def remark36_not_aligned_with_w_k(rep: Report, reps: list, grid: list, sec: str) -> None:
    """For theta < pi/2 every class's features keep an angle to w_k (cos rho_k < 1)."""
    gap = min(
        float(np.min(1 - r["numerics"]["cos_h_w0"])) for r, g in zip(reps, grid) if g["theta"] < 1.5
    )
    rep.check(
        sec,
        "features do NOT align with w_k: min 1 − cos(h_k, w_k)",
        "θ < π/2",
        "> 0",
        gap,
        1e-3,
        kind="min",
        source="NeurIPS 2024 Remark 3.6",
    )


def thm34_within_class_collapse(rep: Report, sol, sec: str) -> None:
    """NC1: the within-class spread of the sample features vanishes at the optimum."""
    rep.check(
        sec,
        "NC1: max within-class spread ‖h_i − μ_y‖²/‖h‖²",
        "sample features",
        0.0,
        float(np.max(sol.history["nc1"][-1])),
        1e-14,
        kind="max",
        source="NeurIPS 2024 Thm 3.4 (collapse)",
    )


def cor37_equals_ridge_regression(rep: Report, frames, grid, sec: str) -> None:
    """The Cor. 3.7 formula against an independent per-class ridge solve."""
    ridge = max(
        float(
            np.max(
                np.abs(
                    _ridge_solution(fr, COUNTS, g["lambda_h"])
                    - geo.loss_p_features(fr, COUNTS, g["lambda_h"])["h"]
                )
            )
        )
        for fr, g in zip(frames, grid)
    )
    rep.check(
        sec,
        "Cor. 3.7 formula vs direct ridge solve (C^TC + λ_H S I)⁻¹C^T t_k",
        "all",
        0.0,
        ridge,
        1e-12,
        kind="max",
        source="[I] independent linear algebra",
    )


def _grid_table(grid, reps) -> list[dict]:
    rows = []
    for g, r in zip(grid, reps):
        for k in range(COUNTS.size):
            rows.append(
                {
                    **g,
                    "class": k,
                    "n": int(COUNTS[k]),
                    "f_k": int(r["f_counts"][k]),
                    "S": r["S"],
                    "h_norm_pred": r["prediction"]["h_norms"][k],
                    "h_norm_num": r["numerics"]["h_norms"][k],
                    "cos_h_wbar": r["numerics"]["cos_h_wbar"][k],
                    "cos_h_w0_pred": r["prediction"]["cos_h_w0"][k],
                    "cos_h_w0_num": r["numerics"]["cos_h_w0"][k],
                }
            )
    return rows


def cor37_lambda_and_theta_sweeps(rep: Report, quick: bool, device, progress):
    """Class-level sweeps over lambda_H (CAL, theta = 0.2) and theta (lambda_H = 1e-4)."""
    lam_sweep = np.geomspace(1e-6, 1e-2, 5 if quick else 9)
    fr_cal = ncmc_frames(COUNTS, F_AVG, 0.2, class_aware=True, d=D)[0]
    opts = SolverOptions(tol=1e-11, seeds=np.arange(lam_sweep.size), progress=progress)
    sw = solve_ncmc(
        COUNTS, lam_sweep, frames=[fr_cal] * lam_sweep.size, device=device, options=opts
    )
    th_sweep = np.linspace(0.05, np.pi / 2, 4 if quick else 8)
    fr_th = ncmc_frames(COUNTS, F_AVG, th_sweep, class_aware=True, d=D)
    opts = SolverOptions(tol=1e-11, seeds=np.arange(th_sweep.size), progress=progress)
    st = solve_ncmc(COUNTS, 1e-4, frames=fr_th, device=device, options=opts)
    rep.timing("figure_sweeps", sw.time_s + st.time_s)
    worst = max(
        max(ncmc_report(s, i)["errors"]["h_norm_rel"] for i in range(s.B)) for s in (sw, st)
    )
    rep.check(
        "sweeps (figure)",
        "max rel. error of ‖h_k‖ over the λ_H and θ sweeps",
        f"{lam_sweep.size} λ_H + {th_sweep.size} θ",
        0.0,
        worst,
        1e-8,
        kind="max",
        source=SRC,
    )
    return fr_cal, lam_sweep, sw, th_sweep, st


@register_reproduction(
    "ncmc-ufm",
    paper=PAPER,
    claim="With a fixed multi-center frame, Loss P collapses each class's features onto the mean "
    "of that class's centers (not onto w_k), orthogonal to the other classes, with the norm "
    "of Cor. 3.7.",
    command="ncollapse ufm reproduce ncmc",
    out_dir="outputs/ufm/ncmc",
)
def reproduce_ncmc_ufm(out_dir=None, *, quick: bool = False, device=None, progress=None) -> dict:
    """Run every check (module docstring), write the outputs and return the summary."""
    rep = Report("ncmc", out_dir, quick=quick)
    rep.meta = {
        "paper": PAPER,
        "objective": "(1/2S)‖C H − T‖² + (λ_H/2)‖H‖², C fixed (F×d unit centers), S = Σ f_k n_k",
        "counts": COUNTS,
        "f": F_AVG,
        "d": D,
        "f_counts_CAL": geo.class_aware_counts(COUNTS, F_AVG),
        "f_counts_AL": geo.al_counts(COUNTS.size, F_AVG),
    }
    grid, frames = _grid(quick)
    sol = solve_grid(grid, frames, device, progress)
    rep.timing("lbfgs_sample_grid", sol.time_s)
    reps = [ncmc_report(sol, i) for i in range(len(grid))]
    i0 = next(i for i, g in enumerate(grid) if all(g[k] == v for k, v in FEATURED.items()))
    r0 = reps[i0]
    sec = "featured: CAL f_k=" + ",".join(map(str, r0["f_counts"])) + ", θ=0.2, λ_H=1e-4"
    cor37_featured_problem(rep, r0, sec)
    cor37_by_gradient_descent(rep, frames[i0], r0["S"], sec, device, progress)
    sec = f"grid: {len(grid)} problems (θ × λ_H × CAL/AL)"
    cor37_whole_grid(rep, reps, sec)
    remark36_not_aligned_with_w_k(rep, reps, grid, sec)
    thm34_within_class_collapse(rep, sol, sec)
    cor37_equals_ridge_regression(rep, frames, grid, sec)
    rep.table("ncmc_grid", _grid_table(grid, reps))
    figure_feature_norms_and_angles(
        rep, *cor37_lambda_and_theta_sweeps(rep, quick, device, progress)
    )
    return rep.write()


def figure_feature_norms_and_angles(rep, fr_cal, lam_sweep, sw, th_sweep, st):
    """Left: ||h_k|| against lambda_H S; right: cos(h_k, w_k) against theta (lines: Cor. 3.7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80)
    fine = np.geomspace(lam_sweep.min(), lam_sweep.max(), 200)
    S = float((fr_cal.f_counts * COUNTS).sum())
    norms = np.array([geo.loss_p_features(fr_cal, COUNTS, lh)["h_norms"] for lh in fine])
    num = np.array([ncmc_report(sw, i)["numerics"]["h_norms"] for i in range(sw.B)])
    for k in range(COUNTS.size):
        (line,) = ax[0].plot(
            fine * S, norms[:, k], "-", label=f"n={COUNTS[k]}, f_k={fr_cal.f_counts[k]}"
        )
        ax[0].plot(lam_sweep * S, num[:, k], "o", color=line.get_color(), ms=4)
    ax[0].set_xscale("log")
    ax[0].set_xlabel("λ_H · S")
    ax[0].set_ylabel("‖h_k‖ (lines: Cor. 3.7, dots: L-BFGS)")
    ax[0].set_title("CAL, θ = 0.2: feature norms")
    ax[0].legend(fontsize=7)
    thf = np.linspace(0.01, np.pi / 2, 200)
    num_t = np.array([ncmc_report(st, i)["numerics"]["cos_h_w0"] for i in range(st.B)])
    for k in range(COUNTS.size):
        pred = [geo.cos_rho(fr_cal.f_counts, t)[k] for t in thf]
        (line,) = ax[1].plot(thf, pred, "-", label=f"f_k={fr_cal.f_counts[k]}")
        ax[1].plot(th_sweep, num_t[:, k], "o", color=line.get_color(), ms=4)
    ax[1].set_xlabel("θ (rad)")
    ax[1].set_ylabel("cos(h_k, w_k)")
    ax[1].set_title("features align with w̄^(k), not w_k: cos = cos ρ_k")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    rep.figure("ufm_ncmc", fig)
