"""CE-UFM with ridge (SELI, arXiv 2208.05512): convex ground truth, factorised solvers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncollapse import geometry as geo
from ncollapse.geometry import zero_threshold
from ncollapse.metrics import gram_distance
from ncollapse.ufm import (
    CERidgeUFM,
    ce_geometry_stats,
    gradient_descent,
    lbfgs,
    solve_ce,
    solve_ce_convex,
    sweep_ce,
)
from ncollapse.ufm.solvers import _Flat

N4 = np.array([10, 10, 1, 1])


def _stats(sol, counts, i):
    return ce_geometry_stats(sol.WWt()[i], sol.MtM()[i], sol.WM()[i], counts)


def test_gram_distance_basics():
    A = np.array([[2.0, -1.0], [-1.0, 2.0]])
    assert gram_distance(A, 3 * A) == pytest.approx(0.0, abs=1e-15)
    assert gram_distance(A, -A) == pytest.approx(2.0)
    assert np.isnan(gram_distance(np.zeros((2, 2)), A))
    # batched against one reference
    out = gram_distance(np.stack([A, -A]), A)
    assert out.shape == (2,) and out[1] == pytest.approx(2.0)


def test_balanced_closed_form_item8():
    """Balanced closed form: Xbar = log(k sqrt(n)/lam - (k-1)) P; ||X||_F 6.903 @1, 26.31 @0.01."""
    k, n = 4, 5
    lams = np.array([1.0, 0.01])
    sol = solve_ce_convex([n] * k, lams)
    P = geo.centering(k)
    a = np.log(k * np.sqrt(n) / lams - (k - 1))
    for i in range(2):
        np.testing.assert_allclose(sol.Xbar[i], a[i] * P, atol=1e-8)
    assert sol.norm_X()[0] == pytest.approx(6.903, abs=1e-3)
    assert sol.norm_X()[1] == pytest.approx(26.31, abs=5e-3)
    # normalised geometry is the ETF for every lambda (W W^T = a sqrt(n) P)
    np.testing.assert_allclose(sol.WWt()[0], a[0] * np.sqrt(n) * P, atol=1e-7)
    np.testing.assert_allclose(sol.MtM()[1], a[1] / np.sqrt(n) * P, atol=1e-7)


def test_zero_solution_iff_lambda_ge_sigma_max_item7():
    thr = zero_threshold(N4)
    assert thr == pytest.approx(np.sqrt(10))  # sigma_max(Zhat) = sqrt(n_maj) for STEP
    Z = geo.sel_matrix(np.repeat(np.arange(4), N4), 4)
    assert thr == pytest.approx(np.linalg.norm(Z, 2))
    facs = np.array([0.999, 1.0, 1.001])
    sol = solve_ce_convex(np.repeat(N4[None], 3, 0), thr * facs)
    nx = sol.norm_X()
    assert nx[0] > 1e-3 and nx[1] < 1e-12 and nx[2] < 1e-12
    # with an unregularised bias the threshold is sigma_max((I - n 1^T/N) D)
    thr_b = zero_threshold(N4, bias=True)
    assert thr_b == pytest.approx(np.linalg.norm(geo.y_hat(N4), 2))
    sb = solve_ce_convex(np.repeat(N4[None], 2, 0), thr_b * np.array([0.99, 1.01]), bias=True)
    assert sb.norm_X()[0] > 1e-3 and sb.norm_X()[1] < 1e-12
    # at X = 0 the optimal bias is log(n/N) up to a constant
    b = sb.b[1] - sb.b[1].mean()
    ref = np.log(N4 / N4.sum())
    np.testing.assert_allclose(b, ref - ref.mean(), atol=1e-8)
    # the factorised problem collapses to the origin too
    fac = lbfgs(CERidgeUFM(N4, 1.01 * thr, d=6), tol=1e-11, history=False)
    assert np.linalg.norm(fac.WM()[0]) < 1e-12


def test_gd_reaches_convex_optimum_item9():
    """Heavy-ball GD on the sample-level (W, H) problem, (10,10,1,1), lam=0.1, lr 0.05."""
    cvx = solve_ce_convex(N4, 0.1)
    m = CERidgeUFM(N4, 0.1, d=8, features="sample")
    sol = gradient_descent(m, lr=0.05, momentum=0.9, tol=1e-9, max_iter=20000, seeds=3)
    assert sol.converged[0]
    assert gram_distance(sol.WWt()[0], cvx.WWt()[0]) < 1e-5
    assert gram_distance(sol.MtM()[0], cvx.MtM()[0]) < 1e-5
    assert sol.objective[0] == pytest.approx(cvx.objective[0], rel=1e-10)
    assert sol.history["nc1"][-1][0] < 1e-12  # NC1 exact at the optimum
    # the history is on a geometric grid and starts at iteration 0
    it = sol.history["iteration"]
    assert it[0] == 0 and np.all(np.diff(it) > 0) and len(it) < 80


@pytest.mark.parametrize("bias", [False, True])
def test_lbfgs_matches_convex_with_split_lambdas(bias):
    counts = np.array([[10, 10, 1, 1], [7, 3, 2, 9], [10, 10, 1, 1]])
    lw, lh = np.array([0.2, 0.05, 1e-3]), np.array([0.05, 0.3, 1e-3])
    cvx = solve_ce_convex(counts, lambda_w=lw, lambda_h=lh, bias=bias)
    m = CERidgeUFM(counts, lambda_w=lw, lambda_h=lh, bias=bias, d=6)
    fac = lbfgs(m, tol=1e-11, seeds=[0, 1, 2])
    assert fac.converged.all()
    np.testing.assert_allclose(fac.objective, cvx.objective, rtol=1e-10)
    for i in range(3):
        assert gram_distance(fac.WWt()[i], cvx.WWt()[i]) < 1e-7
        assert gram_distance(fac.MtM()[i], cvx.MtM()[i]) < 1e-7
        # the scale split between W and H follows (lambda_H/lambda_W)^(1/4)
        np.testing.assert_allclose(np.trace(fac.WWt()[i]), np.trace(cvx.WWt()[i]), rtol=1e-6)
        np.testing.assert_allclose(
            fac.logits()[i] - fac.logits()[i].mean(0),
            cvx.logits()[i] - cvx.logits()[i].mean(0),
            atol=1e-6,
        )
    # explicit convex factors evaluate to the convex objective in the factorised model
    fct = cvx.factors(d=6)
    init = {"W": fct["W"], "G": fct["G"]}
    if bias:
        init["b"] = fct["b"]
    m2 = CERidgeUFM(counts, lambda_w=lw, lambda_h=lh, bias=bias, d=6)
    flat = _Flat(m2.param_specs(), 3)
    p = {k: torch.as_tensor(v) for k, v in init.items()}
    f = m2.objective(p).numpy()
    np.testing.assert_allclose(f, cvx.objective, rtol=1e-10)
    assert flat.P == 4 * 6 + 6 * 4 + (4 if bias else 0)


def test_item10_reference_values():
    lams = [1.0, 0.1, 1e-2]
    sol = solve_ce_convex(np.repeat(N4[None], 3, 0), lams)
    st = [_stats(sol, N4, i) for i in range(3)]
    for s, nx, dz, dw, dm in zip(
        st,
        (8.833, 19.21, 28.62),
        (0.354, 0.143, 0.099),
        (0.351, 0.135, 0.092),
        (1.042, 0.234, 0.153),
    ):
        assert s["norm_X"] == pytest.approx(nx, rel=5e-4)
        assert s["dist_WH_Z"] == pytest.approx(dz, abs=2e-3)
        assert s["dist_W_seli"] == pytest.approx(dw, abs=2e-3)
        assert s["dist_M_seli"] == pytest.approx(dm, abs=2e-3)
    assert st[0]["cos_w_min_min"] == pytest.approx(1.0, abs=1e-9)  # minority collapse at lam=1
    assert st[1]["cos_w_min_min"] == pytest.approx(0.188, abs=2e-3)
    assert st[0]["dist_WH_Z"] > st[1]["dist_WH_Z"] > st[2]["dist_WH_Z"]
    # sum_c w_c = 0 holds exactly at finite lambda, sum_c mu_c does not
    assert st[1]["sum_w"] < 1e-6 and st[1]["sum_mu"] > 0.05


def test_minority_collapse_iff_lambda_ge_sqrt_nmin():
    """Derived [I]: at a collapsed point the gradient has singular pair (u, u), value sqrt(n_min)."""
    counts = np.array([10, 10, 10, 4, 4, 4])
    facs = np.array([0.98, 1.0, 1.02])
    sol = solve_ce_convex(np.repeat(counts[None], 3, 0), 2.0 * facs)
    gaps = [1 - _stats(sol, counts, i)["cos_w_min_min"] for i in range(3)]
    assert gaps[0] > 1e-3 and gaps[1] < 1e-10 and gaps[2] < 1e-10


def test_sweep_ce_batched_grid_matches_individual_solves():
    rows = sweep_ce(k_maj=2, k_min=2, n_min=1, Rs=[1, 5], lambdas=[0.5, 0.05], solver="convex")
    assert [(r["R"], r["lambda"]) for r in rows] == [(1, 0.5), (1, 0.05), (5, 0.5), (5, 0.05)]
    one = solve_ce_convex(geo.step_counts(2, 2, 5, 1), 0.05)
    s = _stats(one, geo.step_counts(2, 2, 5, 1), 0)
    assert rows[3]["dist_WH_Z"] == pytest.approx(s["dist_WH_Z"], abs=1e-9)
    assert rows[3]["counts"] == [5, 5, 1, 1]
    fac = sweep_ce(k_maj=2, k_min=2, Rs=[5], lambdas=[0.05], seeds=[0, 1])
    assert len(fac) == 2
    assert fac[0]["dist_W_seli"] == pytest.approx(s["dist_W_seli"], abs=1e-7)


def test_value_and_grad_matches_autograd():
    for bias, feats in ((False, "class"), (True, "sample")):
        m = CERidgeUFM(
            [[4, 2, 1], [1, 3, 3]],
            [0.3, 0.1],
            bias=bias,
            lambda_b=0.2 if bias else 0.0,
            d=5,
            features=feats,
        )
        flat = _Flat(m.param_specs(), 2)
        p = m.init_params([0, 1], scale=0.8)
        if bias:
            p["b"] = torch.randn(2, 3, dtype=torch.float64)
        X = flat.pack(p).requires_grad_(True)
        f = m.objective(flat.unpack(X))
        (g,) = torch.autograd.grad(f.sum(), X)
        f2, g2 = m.value_and_grad(flat.unpack(X.detach()))
        torch.testing.assert_close(f.detach(), f2, rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(g, flat.pack(g2), rtol=1e-12, atol=1e-13)


def test_lambda_zero_gd_runs_and_lbfgs_refuses():
    from ncollapse.errors import NCollapseError

    m = CERidgeUFM([[2, 2, 1, 1], [10, 10, 1, 1]], 0.0, d=8, features="sample")
    sol = gradient_descent(m, lr=0.5, momentum=0.0, tol=0.0, max_iter=300, seeds=[0, 0])
    d = sol.history["dist_WH_Z"]
    assert d.shape[1] == 2 and np.all(d[-1] < d[5])  # the margin grows, distance shrinks
    # with the default tolerance lambda = 0 still runs max_iter (the gradient vanishes only
    # because the norms diverge), and is not reported as converged
    fast = gradient_descent(CERidgeUFM(N4, 0.0), lr=0.5, max_iter=200)
    assert fast.iterations[0] == 200 and not fast.converged[0]
    with pytest.raises(NCollapseError, match="lambda = 0 has no minimiser"):
        lbfgs(m)
    with pytest.raises(NCollapseError):
        solve_ce_convex(N4, 0.0)


def test_solve_ce_front_end():
    c = solve_ce(N4, 0.1, solver="convex")
    f = solve_ce(N4, 0.1, solver="lbfgs", d=5)
    g = solve_ce(N4, 0.1, solver="gd", lr=0.05, max_iter=20000, tol=1e-9)
    assert gram_distance(f.WWt()[0], c.WWt()[0]) < 1e-8
    assert gram_distance(g.WWt()[0], c.WWt()[0]) < 1e-5
