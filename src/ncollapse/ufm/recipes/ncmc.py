"""``ncollapse ufm reproduce ncmc``: NCMC Loss P with a fixed multi-center frame vs Cor. 3.7.

ncmc-allnc.md §1.3-1.4. Counts (500, 200, 100, 50, 20), f = 4, class-aware (CAL) and average
(AL) center counts, theta in {0.2, 0.5, pi/4, pi/2}, lambda_H in {1e-5, 1e-4, 1e-3}, d = 30. Loss P
with the frame fixed is ``(1/2S)||C H - T||^2 + (lambda_H/2)||H||^2``, ``S = sum_k f_k n_k``;
Cor. 3.7 predicts ``h_k = f_k wbar^(k) / (f_k cos^2 alpha_k + lambda_H S)``: the features collapse
to the MEAN of their class's centers (cosine with ``w_k`` is ``cos rho_k < 1`` unless theta = pi/2),
orthogonal to every other class's centers, with norm ``f_k cos alpha_k / (f_k cos^2 alpha_k +
lambda_H S)``. Numerics: batched L-BFGS on sample-level features (N = 870) and heavy-ball GD.
"""

from __future__ import annotations

import numpy as np

from ncollapse import geometry as geo
from ncollapse.ufm.api import ncmc_frames, ncmc_prediction, ncmc_report, solve_ncmc

from ._report import Report

COUNTS = np.array([500, 200, 100, 50, 20])
F_AVG = 4
D = 30
SRC = "NCMC Cor. 3.7"


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


def run(out_dir=None, *, quick: bool = False, device=None, progress=None) -> dict:
    """Run the NCMC recipe, write the outputs and return the summary (see module docstring)."""
    rep = Report("ncmc", out_dir, quick=quick)
    rep.meta = {
        "objective": "(1/2S)‖C H − T‖² + (λ_H/2)‖H‖², C fixed (F×d unit centers), S = Σ f_k n_k",
        "counts": COUNTS,
        "f": F_AVG,
        "d": D,
        "f_counts_CAL": geo.class_aware_counts(COUNTS, F_AVG),
        "f_counts_AL": geo.al_counts(COUNTS.size, F_AVG),
    }
    grid, frames = _grid(quick)
    lhs = np.array([g["lambda_h"] for g in grid])
    sol = solve_ncmc(
        COUNTS,
        lhs,
        frames=frames,
        features="sample",
        device=device,
        seeds=np.arange(len(grid)),
        tol=1e-11,
        progress=progress,
    )
    rep.timing("lbfgs_sample_grid", sol.time_s)
    reps = [ncmc_report(sol, i) for i in range(len(grid))]
    # featured problem: CAL, theta = 0.2, lambda_H = 1e-4
    i0 = next(
        i
        for i, g in enumerate(grid)
        if g["class_aware"] and g["theta"] == 0.2 and g["lambda_h"] == 1e-4
    )
    r0 = reps[i0]
    sec = "featured: CAL f_k=" + ",".join(map(str, r0["f_counts"])) + ", θ=0.2, λ_H=1e-4"
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
            source="§1.3 cos ρ_k; Remark 3.6",
        )
    # gradient descent on the featured problem
    # step 1/L with L = lambda_max(C^T C)/S + lambda_H, the per-sample curvature
    C0 = np.asarray(frames[i0].centers)
    L0 = np.linalg.eigvalsh(C0.T @ C0).max() / r0["S"] + 1e-4
    gd = solve_ncmc(
        COUNTS,
        1e-4,
        frames=[frames[i0]],
        features="sample",
        solver="gd",
        lr=1.0 / L0,
        momentum=0.9,
        tol=1e-12,
        max_iter=20000,
        device=device,
        progress=progress,
    )
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
    # whole grid
    sec = f"grid: {len(grid)} problems (θ × λ_H × CAL/AL)"
    e = {k: max(r["errors"][k] for r in reps) for k in reps[0]["errors"]}
    rep.check(
        sec,
        "max rel. error of ‖h_k‖ vs f_k cos α_k/(f_k cos²α_k + λ_H S)",
        "all classes",
        0.0,
        e["h_norm_rel"],
        1e-8,
        kind="max",
        source=SRC,
    )
    rep.check(
        sec,
        "max rel. error of h_k vs f_k w̄^(k)/(f_k cos²α_k + λ_H S)",
        "all classes",
        0.0,
        e["h_rel"],
        1e-8,
        kind="max",
        source=SRC,
    )
    rep.check(
        sec,
        "max 1 − cos(h_k, w̄^(k)) (collapse to the centers' mean)",
        "all classes",
        0.0,
        e["cos_wbar_gap"],
        1e-12,
        kind="max",
        source=SRC,
    )
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
        source="§1.3",
    )
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
        source="Remark 3.6",
    )
    nc1 = float(np.max(sol.history["nc1"][-1]))
    rep.check(
        sec,
        "NC1: max within-class spread ‖h_i − μ_y‖²/‖h‖²",
        "sample features",
        0.0,
        nc1,
        1e-14,
        kind="max",
        source="Thm 3.4 (collapse)",
    )
    ridge = max(
        float(
            np.max(
                np.abs(
                    _ridge_solution(fr, COUNTS, g["lambda_h"])
                    - ncmc_prediction(fr, COUNTS, g["lambda_h"])["h"]
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
    rep.table("ncmc_grid", rows)
    # sweeps for the figure (class-level features)
    lam_sweep = np.geomspace(1e-6, 1e-2, 5 if quick else 9)
    fr_cal = ncmc_frames(COUNTS, F_AVG, 0.2, class_aware=True, d=D)[0]
    sw = solve_ncmc(
        COUNTS,
        lam_sweep,
        frames=[fr_cal] * lam_sweep.size,
        device=device,
        seeds=np.arange(lam_sweep.size),
        tol=1e-11,
        progress=progress,
    )
    th_sweep = np.linspace(0.05, np.pi / 2, 4 if quick else 8)
    fr_th = ncmc_frames(COUNTS, F_AVG, th_sweep, class_aware=True, d=D)
    st = solve_ncmc(
        COUNTS,
        1e-4,
        frames=fr_th,
        device=device,
        seeds=np.arange(th_sweep.size),
        tol=1e-11,
        progress=progress,
    )
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
    _figure(rep, fr_cal, lam_sweep, sw, th_sweep, st)
    return rep.write()


def _figure(rep, fr_cal, lam_sweep, sw, th_sweep, st):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80)
    fine = np.geomspace(lam_sweep.min(), lam_sweep.max(), 200)
    S = float((fr_cal.f_counts * COUNTS).sum())
    norms = np.array([ncmc_prediction(fr_cal, COUNTS, lh)["h_norms"] for lh in fine])
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
