"""Reproduction ``liu-ufm``: the deep-linear MSE UFM reaches Liu's closed-form global minimizer.

Paper: Haixia Liu, "The Exploration of Neural Collapse under Imbalanced Data", arXiv 2411.17278
(L-extended UFM with a bias, MSE loss); the bias-free case is Dang et al., ICML 2023. Its abstract
claims: features collapse to their class means (NC1); the geometry lives in the left singular
vectors of the classifier product and the right ones of the class means times ``D``; some of
those directions collapse to zero and the others are orthogonal, decided by the singular values of
``Yhat = (I - n 1^T/N) D``. The minimizer used here (:func:`ncollapse.geometry.deep_linear_ufm`,
per-singular-value shrinkage) is this project's reconstruction of that model; the worked
reference numbers are independent computations, not numbers printed in the paper.

Counts (200, 100, 50, 50), ``lambda_W = lambda_H = lambda``, d = 8, unregularised bias. Checks,
one function each (command: ``ncollapse ufm reproduce liu``):

* :func:`worked_reference_L1` -- L = 1: sigma(Yhat), class-mean logits, norms, soft threshold;
  minority collapse at lambda = 0.02 with a bias; the bias-free diagonal logits.
* :func:`grams_match_closed_form` -- L-BFGS (sample features) reaches ``W W^T``, ``M^T M``,
  ``W M``, ``b = n/N``, centred features and NC1 = 0 for L = 1, 2, 3, 6, with and without bias.
* :func:`thresholds_and_jumps` -- directions vanish as lambda crosses ``lambda_i*``
  (:func:`ncollapse.geometry.lambda_star`); for L >= 2 the top direction jumps from
  ``((L-1)/L) sigma*`` to 0. Numerics use :func:`~ncollapse.ufm.api.solve_mse_global` (random +
  spectral start and rank-deflation restarts, all batched): for L >= 2 a single descent can stop
  in a local minimum.
"""

from __future__ import annotations

import numpy as np

from ncollapse import geometry as geo
from ncollapse.metrics import gram_cosines
from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.report import Report
from ncollapse.ufm.api import mse_report, solve_mse_global

PAPER = "Liu, The Exploration of Neural Collapse under Imbalanced Data (arXiv 2411.17278)"
COUNTS = np.array([200, 100, 50, 50])
D = 8
SRC_REF = "worked example of Liu's minimizer (arXiv 2411.17278); value: independent computation"
SRC_COLLAPSE = "arXiv 2411.17278 abstract: directions of small σ(Ŷ) collapse to zero"
SRC_DANG = "bias-free minimizer (Dang et al., ICML 2023): W M = diag(t_c/√n_c)"
SRC_GRAMS = "arXiv 2411.17278: global minimizer Grams (geometry.deep_linear_ufm)"
SRC_BIAS = "arXiv 2411.17278: b = n/N and centred features at the minimizer"
SRC_NC1 = "arXiv 2411.17278 abstract: features collapse to class means (NC1)"
SRC_THRESH = "arXiv 2411.17278: per-singular-value shrinkage and its threshold σ*"


def _distinct_sigmas(counts, bias):
    cf = geo.deep_linear_ufm(counts, 1, 1e-3, 1e-3, bias=bias)
    s = np.unique(np.round(cf.sigma[cf.sigma > 1e-9], 10))[::-1]
    return s


def worked_reference_L1(rep: Report, device, progress):
    """L = 1 reference numbers, minority collapse with a bias, the bias-free diagonal logits."""
    sec = "1 reference numbers"
    sol = solve_mse_global(
        np.stack([COUNTS] * 2),
        [5e-3, 0.02],
        layers=1,
        bias=True,
        d=D,
        device=device,
        progress=progress,
    )
    r = mse_report(sol, 0)
    cf = geo.deep_linear_ufm(COUNTS, 1, 5e-3, 5e-3, bias=True)
    sig_ref = np.array([11.9228, 8.3873, 7.0711, 0.0])
    rep.check(
        sec,
        "σ(Ŷ)",
        "counts (200,100,50,50)",
        "11.9228, 8.3873, 7.0711, 0",
        ", ".join(f"{v:.4f}" for v in cf.sigma),
        kind="bool",
        ok=bool(np.max(np.abs(cf.sigma - sig_ref)) < 1e-4),
        source=SRC_REF,
    )
    logits_ref = np.array(
        [
            [0.4138, -0.4261, -0.4015, -0.4015],
            [-0.2131, 0.6023, -0.1761, -0.1761],
            [-0.1004, -0.0881, 0.6474, -0.0697],
            [-0.1004, -0.0881, -0.0697, 0.6474],
        ]
    )
    WM = sol.WM()[0]
    setting = "L=1, λ=5e-3, bias"
    rep.check(
        sec,
        "class-mean logits − bias (max entry error)",
        setting,
        "reference matrix",
        float(np.max(np.abs(WM - logits_ref))),
        1e-4,
        kind="max",
        source=SRC_REF,
    )
    w = np.sqrt(np.diag(sol.WWt()[0]))
    mu = np.sqrt(np.diag(sol.MtM()[0]))
    for k in range(4):
        rep.check(
            sec,
            f"‖w_{k + 1}‖",
            setting,
            [2.6677, 2.4260, 2.0469, 2.0469][k],
            w[k],
            1e-4,
            source=SRC_REF,
        )
    for k in range(4):
        rep.check(
            sec,
            f"‖μ_{k + 1}‖",
            setting,
            [0.1557, 0.2519, 0.3192, 0.3192][k],
            mu[k],
            1e-4,
            source=SRC_REF,
        )
    rep.check(
        sec,
        "t = σ − N·√(λ_Wλ_H) (soft threshold)",
        setting,
        "9.9228, 6.3873, 5.0711, 0",
        ", ".join(f"{v:.4f}" for v in r["numerics"]["t"]),
        kind="bool",
        ok=bool(np.max(np.abs(r["numerics"]["t"] - np.maximum(sig_ref - 2, 0))) < 1e-4),
        source=SRC_REF,
    )
    # minority collapse at lambda = 0.02 with bias: sigma_3 = 7.07 < N lambda = 8
    cos = gram_cosines(sol.MtM()[1])
    rep.check(
        sec,
        "1 − cos(μ_3, μ_4) (minority collapse)",
        "L=1, λ=0.02, bias",
        0.0,
        1.0 - cos[2, 3],
        1e-9,
        kind="max",
        source=SRC_COLLAPSE,
    )
    lg = sol.logits()[1]
    rep.check(
        sec,
        "‖logits col 3 − col 4‖ (identical)",
        "L=1, λ=0.02, bias",
        0.0,
        float(np.linalg.norm(lg[:, 2] - lg[:, 3])),
        1e-9,
        kind="max",
        source=SRC_COLLAPSE,
    )
    nb = solve_mse_global(COUNTS, 0.02, layers=1, bias=False, d=D, device=device, progress=progress)
    diag_ref = np.diag([0.4343, 0.2, 0.0, 0.0])
    rep.check(
        sec,
        "class-mean logits = diag(0.4343, 0.2, 0, 0) (max error)",
        "L=1, λ=0.02, bias-free",
        "diag(0.4343, 0.2, 0, 0)",
        float(np.max(np.abs(nb.WM()[0] - diag_ref))),
        1e-4,
        kind="max",
        source=SRC_DANG,
    )
    rep.timing("part1", sol.time_s + nb.time_s)


def grams_match_closed_form(rep: Report, quick: bool, device, progress):
    """L-BFGS on sample features reaches the closed-form Grams, b = n/N, centring and NC1."""
    sec = "2 Grams after L-BFGS vs closed form"
    Ls = [1, 2] if quick else [1, 2, 3, 6]
    from ncollapse.metrics import nc1, statistics

    rows = []
    y = np.repeat(np.arange(4), COUNTS)
    for bias in (True,) if quick else (True, False):
        for L in Ls:
            sol = solve_mse_global(
                COUNTS,
                5e-3,
                layers=L,
                bias=bias,
                d=D,
                features="sample",
                device=device,
                seeds=L,
                progress=progress,
            )
            rep.timing(f"part2_L{L}_{'bias' if bias else 'nobias'}", sol.time_s)
            r = mse_report(sol, 0)
            e = r["errors"]
            setting = f"L={L}, λ=5e-3, {'bias' if bias else 'no bias'}"
            worst = max(e["WWt_rel"], e["MtM_rel"], e["WM_rel"])
            rep.check(
                sec,
                "max rel. error of WWᵀ, MᵀM, WM",
                setting,
                0.0,
                worst,
                1e-8,
                kind="max",
                source=SRC_GRAMS,
            )
            if bias:
                rep.check(
                    sec,
                    "b = n/N (max abs error)",
                    setting,
                    0.0,
                    e["b_abs"],
                    1e-8,
                    kind="max",
                    source=SRC_BIAS,
                )
                H = sol.extracted["H"][0]
                hg = np.linalg.norm(H.mean(1)) / np.mean(np.linalg.norm(H, axis=0))
                rep.check(
                    sec,
                    "weighted feature mean ‖h_G‖/mean‖h_i‖",
                    setting,
                    0.0,
                    hg,
                    1e-8,
                    kind="max",
                    source=SRC_BIAS,
                )
            v = nc1(statistics(sol.extracted["H"][0].T, y, 4))
            rep.check(
                sec,
                "NC1 = tr(Σ_W Σ_B†)/K",
                setting,
                0.0,
                v,
                1e-12,
                kind="max",
                source=SRC_NC1,
            )
            rows.append(
                {
                    "layers": L,
                    "bias": bias,
                    **e,
                    "nc1": v,
                    "random_start_reached_global": bool(sol.info["random_start_ok"][0]),
                    "iterations": int(sol.iterations[0]),
                }
            )
    rep.table("liu_grams", rows)


def thresholds_and_jumps(rep: Report, quick: bool, device, progress):
    """Alive directions across lambda_i*, t over a lambda grid, and the jump for L >= 2."""
    sec = "3 thresholds and jumps"
    N = float(COUNTS.sum())
    Ls = [2] if quick else [1, 2, 3, 6]
    curves = {}
    rows = []
    for bias in (True, False):
        sig = _distinct_sigmas(COUNTS, bias)
        for L in Ls:
            stars = np.atleast_1d(geo.lambda_star(sig, N, L))
            # check the inversion against geometry.global_threshold
            for s, ls in zip(sig, stars):
                assert abs(geo.global_threshold(N, ls, L) - s) < 1e-9 * s
            near = np.concatenate([stars * 0.97, stars * 1.03])
            jump = stars[0] * np.array([1 - 1e-3, 1 + 1e-3])
            sweep = np.geomspace(stars.min() * 0.5, stars.max() * 1.5, 4 if quick else 10)
            lams = np.concatenate([near, jump, sweep])
            sol = solve_mse_global(
                np.repeat(COUNTS[None], lams.size, 0),
                lams,
                layers=L,
                bias=bias,
                d=D,
                device=device,
                seeds=np.arange(lams.size),
                progress=progress,
            )
            rep.timing(f"part3_L{L}_{'bias' if bias else 'nobias'}", sol.time_s)
            reps = [mse_report(sol, i) for i in range(lams.size)]
            t_pred = np.array([r["closed_form"]["t"] for r in reps])
            t_num = np.array([r["numerics"]["t"] for r in reps])
            tag = "bias" if bias else "no bias"
            err = np.max(np.abs(t_num - t_pred), axis=1)
            alive_p = (t_pred > 1e-6).sum(1)
            alive_n = (np.abs(t_num) > 1e-6).sum(1)
            k = near.size
            rep.check(
                sec,
                "alive directions at λ = 0.97·λ_i*, 1.03·λ_i*",
                f"L={L}, {tag}",
                " ".join(map(str, alive_p[:k])),
                " ".join(map(str, alive_n[:k])),
                kind="bool",
                ok=bool(np.all(alive_p[:k] == alive_n[:k])),
                source=SRC_THRESH,
            )
            rep.check(
                sec,
                "max |t_num − t_pred| over the λ grid",
                f"L={L}, {tag}, {lams.size} λ",
                0.0,
                float(err.max()),
                1e-7,
                kind="max",
                source=SRC_GRAMS,
            )
            if L >= 2:
                s1 = sig[0]
                rep.check(
                    sec,
                    "jump: t_1 just below λ_1* → ((L−1)/L)·σ*",
                    f"L={L}, {tag}, λ=(1−1e-3)λ_1*",
                    (L - 1) / L * s1,
                    t_num[k, 0],
                    2e-3 * s1,
                    kind="abs",
                    source=SRC_THRESH,
                )
                rep.check(
                    sec,
                    "jump: t_1 = 0 just above λ_1*",
                    f"L={L}, {tag}, λ=(1+1e-3)λ_1*",
                    0.0,
                    abs(t_num[k + 1, 0]),
                    1e-8,
                    kind="max",
                    source=SRC_THRESH,
                )
            curves[(L, bias)] = {
                "lams": lams[k + 2 :],
                "t_num": t_num[k + 2 :],
                "stars": stars,
                "sigma": sig,
            }
            for i, lam in enumerate(lams):
                rows.append(
                    {
                        "layers": L,
                        "bias": bias,
                        "lambda": float(lam),
                        "t_pred": t_pred[i].tolist(),
                        "t_num": t_num[i].tolist(),
                        "err": float(err[i]),
                        "rank": int(sol.info["rank"][i]),
                        "random_start_ok": bool(sol.info["random_start_ok"][i]),
                    }
                )
            ok_rs = sol.info["random_start_ok"]
            rep.meta.setdefault("random_start_reached_global", {})[f"L={L}, {tag}"] = (
                f"{int(ok_rs.sum())}/{ok_rs.size}"
            )
    rep.table("liu_thresholds", rows)
    return curves


def figure_singular_values(rep: Report, curves):
    """t_i against lambda: closed-form lines, numerical dots, lambda_i* marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    Ls = sorted({L for L, _ in curves})
    fig, ax = plt.subplots(2, len(Ls), figsize=(3.2 * len(Ls), 6), dpi=80, squeeze=False)
    N = float(COUNTS.sum())
    for j, L in enumerate(Ls):
        for i, bias in enumerate((True, False)):
            c = curves[(L, bias)]
            a = ax[i, j]
            fine = np.geomspace(c["lams"].min(), c["lams"].max(), 300)
            cf_sig = geo.deep_linear_ufm(COUNTS, 1, 1e-3, 1e-3, bias=bias).sigma
            for s in np.unique(np.round(cf_sig[cf_sig > 1e-9], 10)):
                tt = [float(geo.shrinkage(s, N, lam, L)) for lam in fine]
                a.plot(fine, tt, "-", lw=1)
            for q in range(c["t_num"].shape[1]):
                a.plot(c["lams"], np.abs(c["t_num"][:, q]), "k.", ms=4)
            for ls in c["stars"]:
                a.axvline(ls, color="gray", lw=0.5, ls=":")
            a.set_xscale("log")
            a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            a.tick_params(labelsize=7)
            a.set_title(f"L={L}, {'bias' if bias else 'no bias'}", fontsize=9)
            if j == 0:
                a.set_ylabel("t_i (lines: closed form, dots: numerics)", fontsize=7)
            if i == 1:
                a.set_xlabel("λ = λ_W = λ_H")
    fig.suptitle(
        "Liu deep-linear UFM, counts (200,100,50,50): singular values t_i of W·M·D vs λ",
        fontsize=10,
    )
    fig.tight_layout()
    rep.figure("ufm_liu", fig)


@register_reproduction(
    "liu-ufm",
    paper=PAPER,
    claim="The global minimizer of the L-layer deep-linear MSE UFM (with or without a bias) "
    "shrinks each singular value of the label matrix separately: some directions collapse to "
    "zero, the others are orthogonal, and features collapse to their class means.",
    command="ncollapse ufm reproduce liu",
    out_dir="outputs/ufm/liu",
)
def reproduce_liu_ufm(out_dir=None, *, quick: bool = False, device=None, progress=None) -> dict:
    """Run every check (module docstring), write the outputs and return the summary."""
    rep = Report("liu", out_dir, quick=quick)
    rep.meta = {
        "paper": PAPER,
        "objective": "(1/2N)‖W_L⋯W_1 H + b1ᵀ − Y‖² + (λ/2)Σ‖W_l‖² + (λ/2)‖H‖² (bias unregularised)",
        "counts": COUNTS,
        "d": D,
        "numerics": "solve_mse_global: random + spectral start, rank-deflation restarts, L-BFGS",
    }
    worked_reference_L1(rep, device, progress)
    grams_match_closed_form(rep, quick, device, progress)
    curves = thresholds_and_jumps(rep, quick, device, progress)
    figure_singular_values(rep, curves)
    return rep.write()
