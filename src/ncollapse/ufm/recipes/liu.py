"""``ncollapse ufm reproduce liu``: deep-linear MSE UFM numerics against Liu's closed form.

Spec seli-liu-metrics.md §2.2 and §5 items 12-16. Counts (200, 100, 50, 50), ``lambda_W =
lambda_H = lambda``, d = 8; the bias (when on) is unregularised.

1. Reference numbers (§2.2(8), item 16): L = 1, lambda = 5e-3 with bias; L = 1, lambda = 0.02
   bias-free; minority collapse at L = 1, lambda = 0.02 with bias.
2. Grams after L-BFGS (sample-level features) against the closed form for L = 1, 2, 3, 6, with and
   without bias (items 12-14): ``W W^T``, ``M^T M``, ``W M``, ``b = n/N``, weighted feature mean 0,
   NC1 = 0.
3. Thresholds: directions vanish as lambda crosses ``lambda_i*`` (``sigma*(lambda_i*) =
   sigma_i``); for L >= 2 the top direction jumps from ``((L-1)/L) sigma*`` to 0 (item 14).
   Numerics for 2-3 use :func:`~ncollapse.ufm.api.solve_mse_global` (random + spectral start and
   rank-deflation restarts, all batched): for L >= 2 a single descent can stop in a local minimum.
"""

from __future__ import annotations

import numpy as np

from ncollapse import geometry as geo
from ncollapse.ufm.api import mse_report, solve_mse_global
from ncollapse.ufm.measures import gram_cosines

from ._report import Report

COUNTS = np.array([200, 100, 50, 50])
D = 8
SRC = "spec §2.2"


def lambda_star(sigma: float, N: float, L: int) -> float:
    """``lambda`` (with ``lambda_W = lambda_H``) at which the global threshold equals ``sigma``.

    ``c = lambda``; ``L = 1``: ``sigma* = N c``; ``L >= 2``: ``sigma* = [N c L kappa]^{(L+1)/(2L)}``
    with ``kappa = (L/(L-1))^{(L-1)/(L+1)}``, so ``lambda* = sigma^{2L/(L+1)} / (N L kappa)``.
    """
    if L == 1:
        return sigma / N
    kappa = (L / (L - 1.0)) ** ((L - 1.0) / (L + 1.0))
    return sigma ** (2.0 * L / (L + 1.0)) / (N * L * kappa)


def _distinct_sigmas(counts, bias):
    cf = geo.deep_linear_ufm(counts, 1, 1e-3, 1e-3, bias=bias)
    s = np.unique(np.round(cf.sigma[cf.sigma > 1e-9], 10))[::-1]
    return s


def _part1(rep: Report, device, progress):
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
        source="spec §2.2(8)",
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
        "spec matrix",
        float(np.max(np.abs(WM - logits_ref))),
        1e-4,
        kind="max",
        source="spec §2.2(8)",
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
            source="spec §2.2(8)",
        )
    for k in range(4):
        rep.check(
            sec,
            f"‖μ_{k + 1}‖",
            setting,
            [0.1557, 0.2519, 0.3192, 0.3192][k],
            mu[k],
            1e-4,
            source="spec §2.2(8)",
        )
    rep.check(
        sec,
        "t = σ − N·√(λ_Wλ_H) (soft threshold)",
        setting,
        "9.9228, 6.3873, 5.0711, 0",
        ", ".join(f"{v:.4f}" for v in r["numerics"]["t"]),
        kind="bool",
        ok=bool(np.max(np.abs(r["numerics"]["t"] - np.maximum(sig_ref - 2, 0))) < 1e-4),
        source="spec §2.2(8)",
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
        source="spec §2.2(7)",
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
        source="spec §2.2(7)",
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
        source="spec §5 item 16",
    )
    rep.timing("part1", sol.time_s + nb.time_s)


def _part2(rep: Report, quick: bool, device, progress):
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
                source="spec §5 item 14",
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
                    source="spec §5 item 12",
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
                    source="spec §5 item 12",
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
                source="spec §2.2(5)",
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


def _part3(rep: Report, quick: bool, device, progress):
    sec = "3 thresholds and jumps"
    N = float(COUNTS.sum())
    Ls = [2] if quick else [1, 2, 3, 6]
    curves = {}
    rows = []
    for bias in (True, False):
        sig = _distinct_sigmas(COUNTS, bias)
        for L in Ls:
            stars = np.array([lambda_star(s, N, L) for s in sig])
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
                source="spec §2.2(3)",
            )
            rep.check(
                sec,
                "max |t_num − t_pred| over the λ grid",
                f"L={L}, {tag}, {lams.size} λ",
                0.0,
                float(err.max()),
                1e-7,
                kind="max",
                source="spec §5 item 14",
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
                    source="spec §2.2(3)",
                )
                rep.check(
                    sec,
                    "jump: t_1 = 0 just above λ_1*",
                    f"L={L}, {tag}, λ=(1+1e-3)λ_1*",
                    0.0,
                    abs(t_num[k + 1, 0]),
                    1e-8,
                    kind="max",
                    source="spec §2.2(3)",
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


def _figure(rep: Report, curves):
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


def run(out_dir=None, *, quick: bool = False, device=None, progress=None) -> dict:
    """Run every part, write the outputs and return the summary (see module docstring)."""
    rep = Report("liu", out_dir, quick=quick)
    rep.meta = {
        "objective": "(1/2N)‖W_L⋯W_1 H + b1ᵀ − Y‖² + (λ/2)Σ‖W_l‖² + (λ/2)‖H‖² (bias unregularised)",
        "counts": COUNTS,
        "d": D,
        "numerics": "solve_mse_global: random + spectral start, rank-deflation restarts, L-BFGS",
    }
    _part1(rep, device, progress)
    _part2(rep, quick, device, progress)
    curves = _part3(rep, quick, device, progress)
    _figure(rep, curves)
    return rep.write()
