"""Deep-linear MSE UFM (Liu, arXiv 2411.17278) and NCMC Loss P (Yan et al. 2024, Cor. 3.7)."""

from __future__ import annotations

import numpy as np
import pytest

from ncollapse import geometry as geo
from ncollapse.geometry import loss_p_features as ncmc_prediction
from ncollapse.metrics import gram_cosines
from ncollapse.ufm import (
    DeepLinearMSEUFM,
    lbfgs,
    mse_report,
    ncmc_frames,
    ncmc_report,
    solve_mse,
    solve_mse_global,
    solve_ncmc,
    sweep_mse,
)

COUNTS = np.array([200, 100, 50, 50])


@pytest.mark.parametrize("bias", [True, False])
def test_liu_grams_match_closed_form_items_12_14(bias):
    """L-BFGS on the factorised problem (L = 1, 2, 3, 6) reaches Liu's Grams to <= 1e-8.

    For L >= 2 a single random start can stop in a local minimum (the origin of every direction
    is one), so the numerics use the batched multi-start + rank-deflation search."""
    for L in (1, 2, 3, 6):
        sol = solve_mse_global(COUNTS, 5e-3, layers=L, bias=bias, d=8, seeds=L)
        if L == 1:  # L = 1 is benign: the random start alone is already optimal
            assert sol.info["random_start_ok"][0]
        r = mse_report(sol, 0)
        e = r["errors"]
        assert r["at_global_minimum"], (L, bias, e)
        assert max(e["WWt_rel"], e["MtM_rel"], e["WM_rel"]) < 1e-8, (L, bias, e)
        assert e["b_abs"] < 1e-8
        cf = geo.deep_linear_ufm(COUNTS, L, 5e-3, 5e-3, bias=bias)
        if bias:
            np.testing.assert_allclose(sol.extracted["b"][0], COUNTS / COUNTS.sum(), atol=1e-8)
        # the objective equals the sum of the per-direction scalar objectives
        f = np.sum(geo.scalar_objective(cf.t, cf.sigma, 400.0, cf.c, L))
        assert sol.objective[0] == pytest.approx(f, rel=1e-10)


def test_liu_sample_features_nc1_and_centering():
    sol = solve_mse(COUNTS, 5e-3, layers=2, bias=True, d=8, features="sample", init_scale=1.0)
    H = sol.extracted["H"][0]  # (d, N)
    assert np.linalg.norm(H.mean(1)) < 1e-8 * np.linalg.norm(H, axis=0).mean()  # item 12
    assert sol.history["nc1"][-1][0] < 1e-14
    assert mse_report(sol, 0)["errors"]["MtM_rel"] < 1e-8


def test_liu_reference_numbers_item16():
    sol = solve_mse(COUNTS, 5e-3, layers=1, bias=True, d=8)
    ref = np.array(
        [
            [0.4138, -0.4261, -0.4015, -0.4015],
            [-0.2131, 0.6023, -0.1761, -0.1761],
            [-0.1004, -0.0881, 0.6474, -0.0697],
            [-0.1004, -0.0881, -0.0697, 0.6474],
        ]
    )
    np.testing.assert_allclose(sol.WM()[0], ref, atol=1e-4)
    np.testing.assert_allclose(
        np.sqrt(np.diag(sol.WWt()[0])), [2.6677, 2.4260, 2.0469, 2.0469], atol=1e-4
    )
    np.testing.assert_allclose(
        np.sqrt(np.diag(sol.MtM()[0])), [0.1557, 0.2519, 0.3192, 0.3192], atol=1e-4
    )
    nb = solve_mse(COUNTS, 0.02, layers=1, bias=False, d=8)
    np.testing.assert_allclose(nb.WM()[0], np.diag([0.4343, 0.2, 0.0, 0.0]), atol=1e-4)
    # item 15: bias-free -> orthogonal class means; classifier rows of classes with
    # sqrt(n_c) <= N sqrt(lambda_W lambda_H) = 8 are exactly zero; logit = Dang's x/(x+1) form
    MtM = nb.MtM()[0]
    assert np.max(np.abs(MtM - np.diag(np.diag(MtM)))) < 1e-10
    np.testing.assert_allclose(np.diag(nb.WWt()[0])[2:], 0.0, atol=1e-12)
    t = np.maximum(np.sqrt(COUNTS) - 400 * 0.02, 0.0)
    np.testing.assert_allclose(np.diag(nb.WM()[0]), t / np.sqrt(COUNTS), atol=1e-8)
    # minority collapse with bias at lambda = 0.02 (sigma_3 = 7.07 < N lambda = 8)
    mc = solve_mse(COUNTS, 0.02, layers=1, bias=True, d=8)
    assert gram_cosines(mc.MtM()[0])[2, 3] == pytest.approx(1.0, abs=1e-9)


def test_global_search_escapes_local_minimum():
    """L = 2 with bias at lambda = 0.02: sigma_2 = 8.387 lies in (sigma_stat, sigma*) = (8.35, 9.51)
    so a non-zero local minimum coexists with the global t_2 = 0."""
    lam = 0.02
    cf = geo.deep_linear_ufm(COUNTS, 2, lam, lam, bias=True)
    assert geo.stationary_threshold(400, lam, 2) < cf.sigma[1] < cf.threshold
    plain = solve_mse(
        np.repeat(COUNTS[None], 3, 0),
        lam,
        layers=2,
        bias=True,
        d=8,
        init_scale=1.0,
        seeds=[0, 1, 2],
    )
    reps = [mse_report(plain, i) for i in range(3)]
    assert not all(r["at_global_minimum"] for r in reps)  # at least one start is stuck
    glob = solve_mse_global(
        np.repeat(COUNTS[None], 3, 0), lam, layers=2, bias=True, d=8, seeds=[0, 1, 2]
    )
    for i in range(3):
        r = mse_report(glob, i)
        assert r["at_global_minimum"] and r["errors"]["t_abs"] < 1e-7
    assert glob.info["rank"].tolist() == [1, 1, 1]


def test_thresholds_and_jump():
    """Directions vanish across lambda_i*; for L = 3 the top one jumps from ~(2/3) sigma*."""
    N, L = 400.0, 3
    sig = geo.deep_linear_ufm(COUNTS, 1, 1e-3, 1e-3, bias=True).sigma[0]
    kappa = (L / (L - 1)) ** ((L - 1) / (L + 1))
    lam_star = sig ** (2 * L / (L + 1)) / (N * L * kappa)
    assert geo.global_threshold(N, lam_star, L) == pytest.approx(sig, rel=1e-12)
    lams = lam_star * np.array([1 - 1e-3, 1 + 1e-3])
    sol = solve_mse_global(
        np.repeat(COUNTS[None], 2, 0), lams, layers=L, bias=True, d=8, seeds=[0, 1]
    )
    r0, r1 = mse_report(sol, 0), mse_report(sol, 1)
    assert r0["numerics"]["t"][0] == pytest.approx((L - 1) / L * sig, rel=2e-3)
    assert r0["errors"]["t_abs"] < 1e-7
    assert np.max(np.abs(r1["numerics"]["t"])) < 1e-8


def test_sweep_mse_rows():
    rows = sweep_mse(COUNTS, layers=[1, 2], lambdas=[5e-3, 1e-2], bias=True, d=8)
    assert len(rows) == 4 and all(r["at_global_minimum"] for r in rows)
    assert all(r["alive_pred"] == r["alive_num"] for r in rows)


def test_deep_linear_model_product_order():
    m = DeepLinearMSEUFM([3, 2], 0.1, layers=3, d=4)
    p = m.init_params(0)
    W = m.product(p).numpy()[0]
    ref = p["W3"].numpy()[0] @ p["W2"].numpy()[0] @ p["W1"].numpy()[0]
    np.testing.assert_allclose(W, ref, rtol=1e-14)


def test_ncmc_loss_p_matches_cor37():
    counts = np.array([30, 10, 5])
    frames = ncmc_frames(counts, 2, [0.3, np.pi / 2], class_aware=True, d=12)
    fk = frames[0].f_counts
    assert fk.tolist() == geo.class_aware_counts(counts, 2).tolist()
    sol = solve_ncmc(
        counts, [1e-3, 1e-2], frames=frames, features="sample", seeds=[0, 1], tol=1e-12
    )
    for i in range(2):
        r = ncmc_report(sol, i)
        e = r["errors"]
        assert e["h_norm_rel"] < 1e-8 and e["h_rel"] < 1e-8
        assert e["cos_wbar_gap"] < 1e-12 and e["cross_class_abs"] < 1e-8
        assert e["cos_w0_abs"] < 1e-8
    # independent check of Cor. 3.7: ridge regression per class
    fr = frames[0]
    C = fr.centers
    S = float((fk * counts).sum())
    T = np.zeros((C.shape[0], 3))
    T[np.arange(C.shape[0]), fr.center_class] = 1
    h = np.linalg.solve(C.T @ C + 1e-3 * S * np.eye(C.shape[1]), C.T @ T)
    np.testing.assert_allclose(ncmc_prediction(fr, counts, 1e-3)["h"], h, atol=1e-13)
    np.testing.assert_allclose(sol.extracted["M"][0], h, atol=1e-8)
    # features align with the mean of the class's centers, NOT with w_k (theta < pi/2)
    r0 = ncmc_report(sol, 0)
    assert np.all(r0["numerics"]["cos_h_w0"] < 0.9)
    r1 = ncmc_report(sol, 1)  # theta = pi/2: centers collapse onto w_k
    np.testing.assert_allclose(r1["numerics"]["cos_h_w0"], 1.0, atol=1e-10)
    assert sol.history["nc1"][-1].max() < 1e-14


def test_ncmc_gd_and_al_counts():
    counts = np.array([20, 5])
    fr = ncmc_frames(counts, 3, 0.5, class_aware=False)  # AL: f_k = 3, d = F + K = 8
    assert fr[0].f_counts.tolist() == [3, 3] and fr[0].centers.shape == (6, 8)
    sol = solve_ncmc(
        counts, 1e-3, frames=fr, solver="gd", lr=5.0, momentum=0.9, tol=1e-12, max_iter=20000
    )
    assert ncmc_report(sol, 0)["errors"]["h_norm_rel"] < 1e-8


def test_lbfgs_directly_on_model():
    m = DeepLinearMSEUFM(COUNTS, lambda_w=2e-3, lambda_h=8e-3, layers=1, bias=True, d=6)
    sol = lbfgs(m, tol=1e-11)
    cf = geo.deep_linear_ufm(COUNTS, 1, 2e-3, 8e-3, bias=True)
    np.testing.assert_allclose(sol.WWt()[0], cf.WWt, atol=1e-8)
    np.testing.assert_allclose(sol.MtM()[0], cf.MtM, atol=1e-9)
