"""Liu's L-layer deep-linear MSE UFM: closed-form global minimizer (spec seli-liu-metrics §2.2,
§3.2, §5 items 12-16)."""

import numpy as np
import pytest
from scipy.optimize import brentq, minimize, minimize_scalar

from ncollapse.errors import NCollapseError
from ncollapse.geometry import (
    deep_linear_ufm,
    global_threshold,
    one_hot,
    random_orthonormal,
    scalar_objective,
    shrinkage,
    stationary_threshold,
    step_counts,
    y_hat,
)

REF_COUNTS = [200, 100, 50, 50]


# ------------------------------------------------------------------- §5 item 13: spectrum of Ŷ
def test_y_hat_definition_and_gram():
    n = np.array([7.0, 3.0, 2.0])
    N = n.sum()
    D = np.diag(np.sqrt(n))
    Yh = y_hat(n)
    np.testing.assert_allclose(Yh, (np.eye(3) - np.outer(n, np.ones(3)) / N) @ D, atol=1e-15)
    np.testing.assert_allclose(Yh @ Yh.T, np.diag(n) - np.outer(n, n) / N, atol=1e-13)
    np.testing.assert_allclose(np.ones(3) @ Yh, 0, atol=1e-14)
    np.testing.assert_allclose(Yh @ np.sqrt(n), 0, atol=1e-13)


def test_y_hat_spectrum_zero_and_interlacing():
    rng = np.random.default_rng(0)
    for _ in range(500):
        k = int(rng.integers(2, 10))
        n = rng.integers(1, 300, size=k)
        s2 = np.sort(np.linalg.svd(y_hat(n), compute_uv=False) ** 2)
        ns = np.sort(n).astype(float)
        tol = 1e-9 * ns[-1]
        assert abs(s2[0]) < tol
        # 0 = s_0 and n_(i) <= s_i <= n_(i+1) (sorted counts, rank-one downdate of diag(n))
        assert np.all(s2[1:] >= ns[:-1] - tol) and np.all(s2[1:] <= ns[1:] + tol)


@pytest.mark.parametrize(
    ("k_maj", "k_min", "R", "n_min"), [(2, 2, 10, 1), (3, 5, 4, 2), (5, 5, 100, 1)]
)
def test_y_hat_step_spectrum(k_maj, k_min, R, n_min):
    n = step_counts(k_maj, k_min, R, n_min)
    N, k, n_maj = n.sum(), n.size, R * n_min
    expect = sorted([n_maj] * (k_maj - 1) + [n_min] * (k_min - 1) + [k * n_maj * n_min / N, 0.0])
    got = np.sort(np.linalg.svd(y_hat(n), compute_uv=False) ** 2)
    np.testing.assert_allclose(got, expect, atol=1e-10 * n_maj)


def test_y_hat_step_reference():
    got = np.sort(np.linalg.svd(y_hat([10, 10, 1, 1]), compute_uv=False) ** 2)
    np.testing.assert_allclose(got, [0, 1, 1.8182, 10], atol=5e-5)


# ------------------------------------------------------------------- §5 item 14: shrinkage rule
def test_thresholds_reference_values():
    # N = 400, c = 0.02 (spec §2.2(3))
    np.testing.assert_allclose(
        [global_threshold(400, 0.02, L) for L in (2, 3, 6)], [9.514, 9.524, 10.321], atol=5e-4
    )
    np.testing.assert_allclose(
        [stationary_threshold(400, 0.02, L) for L in (2, 3, 6)], [8.35, 7.56, 6.63], atol=5e-3
    )
    assert global_threshold(400, 0.02, 1) == pytest.approx(8.0)
    assert stationary_threshold(400, 0.02, 1) == pytest.approx(8.0)


@pytest.mark.parametrize("L", [2, 3, 6])
def test_jump_at_global_threshold(L):
    N, c = 400, 0.02
    s_star = global_threshold(N, c, L)
    t_hi = shrinkage([s_star * (1 + 1e-10)], N, c, L)[0]
    t_lo = shrinkage([s_star * (1 - 1e-10)], N, c, L)[0]
    assert t_lo == 0
    np.testing.assert_allclose(t_hi, (L - 1) / L * s_star, rtol=1e-4)
    # at σ*, t=0 and t=((L-1)/L)σ* have the same objective and the latter is stationary
    t_j = (L - 1) / L * s_star
    np.testing.assert_allclose(
        scalar_objective(t_j, s_star, N, c, L), scalar_objective(0.0, s_star, N, c, L), rtol=1e-12
    )
    np.testing.assert_allclose(s_star - t_j, N * c * t_j ** (-(L - 1) / (L + 1)), rtol=1e-12)


@pytest.mark.parametrize("L", [2, 3, 6])
def test_band_between_stationary_and_global_threshold_is_zero(L):
    N, c = 400, 0.02
    s_stat, s_star = stationary_threshold(N, c, L), global_threshold(N, c, L)
    assert s_stat < s_star
    sigma = 0.5 * (s_stat + s_star)
    # a positive stationary point exists (Dang's "largest root") but t = 0 is the global minimizer
    g = lambda t: sigma - t - N * c * t ** (-(L - 1) / (L + 1))
    a = (L - 1) / (L + 1)
    tau = (a * N * c) ** (1 / (a + 1))
    assert g(tau) > 0
    root = brentq(g, tau, sigma)
    assert scalar_objective(root, sigma, N, c, L) > scalar_objective(0.0, sigma, N, c, L)
    assert shrinkage([sigma], N, c, L)[0] == 0


def _brute_force_argmin(sigma, N, c, L):
    ts = np.linspace(0, sigma, 20001)
    f = scalar_objective(ts, sigma, N, c, L)
    i = int(np.argmin(f))
    best_t, best_f = ts[i], f[i]
    if i > 0:
        lo, hi = ts[max(i - 1, 0)], ts[min(i + 1, ts.size - 1)]
        r = minimize_scalar(
            lambda t: scalar_objective(t, sigma, N, c, L),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12},
        )
        if r.fun <= best_f:
            best_t, best_f = r.x, r.fun
    return best_t, best_f


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_shrinkage_is_argmin_of_scalar_objective(L):
    rng = np.random.default_rng(L)
    N = 400
    for c in (0.005, 0.02):
        s_star = global_threshold(N, c, L)
        sigmas = np.concatenate([rng.uniform(0.1, 3 * s_star, 25), [s_star * 0.97, s_star * 1.03]])
        t = shrinkage(sigmas, N, c, L)
        for s, ti in zip(sigmas, t):
            tb, fb = _brute_force_argmin(s, N, c, L)
            f_ours = scalar_objective(ti, s, N, c, L)
            assert f_ours <= fb + 1e-12, (L, c, s)
            np.testing.assert_allclose(ti, tb, atol=1e-5 * max(1.0, s))
            assert (ti > 0) == (s > s_star)


def test_shrinkage_L1_soft_threshold_and_vectorised():
    sig = np.array([[0.5, 2.0], [3.0, 10.0]])
    t = shrinkage(sig, 100, 0.02, 1)
    assert t.shape == (2, 2)
    np.testing.assert_allclose(t, np.maximum(sig - 2.0, 0), atol=0)


# ------------------------------------------------------------------- §5 item 16: reference numbers
def test_reference_with_bias_L1():
    sol = deep_linear_ufm(REF_COUNTS, layers=1, lambda_w=5e-3, lambda_h=5e-3, bias=True)
    np.testing.assert_allclose(sol.sigma, [11.9228, 8.3873, 7.0711, 0], atol=5e-5)
    np.testing.assert_allclose(sol.t, [9.9228, 6.3873, 5.0711, 0], atol=5e-5)
    ref = np.array(
        [
            [0.4138, -0.4261, -0.4015, -0.4015],
            [-0.2131, 0.6023, -0.1761, -0.1761],
            [-0.1004, -0.0881, 0.6474, -0.0697],
            [-0.1004, -0.0881, -0.0697, 0.6474],
        ]
    )
    np.testing.assert_allclose(sol.WM, ref, atol=5e-5)
    np.testing.assert_allclose(sol.logits - sol.b[:, None], ref, atol=5e-5)
    np.testing.assert_allclose(sol.w_norms, [2.6677, 2.4260, 2.0469, 2.0469], atol=5e-5)
    np.testing.assert_allclose(sol.mu_norms, [0.1557, 0.2519, 0.3192, 0.3192], atol=5e-5)
    np.testing.assert_allclose(sol.b, [0.5, 0.25, 0.125, 0.125], atol=1e-15)
    assert sol.threshold == pytest.approx(2.0)
    np.testing.assert_array_equal(sol.zeroed, [False, False, False, True])


def test_reference_bias_free_lambda_002():
    sol = deep_linear_ufm(REF_COUNTS, layers=1, lambda_w=0.02, lambda_h=0.02, bias=False)
    np.testing.assert_allclose(sol.logits, np.diag([0.4343, 0.2, 0, 0]), atol=5e-5)
    np.testing.assert_array_equal(sol.zeroed, [False, False, True, True])
    np.testing.assert_array_equal(sol.b, 0)


def test_minority_collapse_L1_lambda_002_with_bias():
    sol = deep_linear_ufm(REF_COUNTS, layers=1, lambda_w=0.02, lambda_h=0.02, bias=True)
    # N sqrt(λ_W λ_H) = 8 > sqrt(50): the minority-difference direction is killed
    np.testing.assert_allclose(sol.logits[:, 2], sol.logits[:, 3], atol=1e-12)
    np.testing.assert_allclose(sol.logits[2], sol.logits[3], atol=1e-12)
    cos34 = sol.MtM[2, 3] / np.sqrt(sol.MtM[2, 2] * sol.MtM[3, 3])
    np.testing.assert_allclose(cos34, 1.0, atol=1e-12)


# ------------------------------------------------------------------- factor self-consistency
def _explicit_factors(sol, d, seed=0):
    """Layer matrices W_L..W_1, features H and bias from the closed form (spec §2.2(4))."""
    n = sol.counts
    K, L = n.size, sol.layers
    Rs = [random_orthonormal(d, K, seed=seed + l) for l in range(L)]  # R_0 .. R_{L-1}
    s = sol.layer_singular_values
    layers = [Rs[l] @ np.diag(s) @ Rs[l - 1].T for l in range(1, L)]  # W_1 .. W_{L-1}
    W_L = sol.U @ np.diag(s) @ Rs[L - 1].T
    Ws = layers + [W_L]  # W_1, ..., W_L
    M = Rs[0] @ np.diag(sol.h_singular_values) @ sol.V.T @ np.diag(1 / np.sqrt(n))
    y = np.repeat(np.arange(K), n)
    Y = one_hot(y, K)
    H = M @ Y
    return Ws, H, M, Y


def _objective_and_grads(Ws, H, b, Y, lw, lh):
    import torch

    Wt = [torch.tensor(W, requires_grad=True) for W in Ws]
    Ht = torch.tensor(H, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    N = Y.shape[1]
    prod = Wt[0]
    for W in Wt[1:]:
        prod = W @ prod
    R = prod @ Ht + bt[:, None] - torch.tensor(Y)
    f = (R**2).sum() / (2 * N) + lw / 2 * sum((W**2).sum() for W in Wt) + lh / 2 * (Ht**2).sum()
    f.backward()
    return float(f.detach()), [W.grad.numpy() for W in Wt], Ht.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize(
    ("L", "lam", "bias"),
    [
        (1, 5e-3, True),
        (2, 5e-3, True),
        (3, 3e-3, True),
        (2, 1e-3, False),
        (3, 5e-3, False),
        (6, 5e-4, True),
    ],
)
def test_factors_reproduce_grams_and_are_stationary(L, lam, bias):
    sol = deep_linear_ufm(REF_COUNTS, layers=L, lambda_w=lam, lambda_h=2 * lam, bias=bias)
    Ws, H, M, Y = _explicit_factors(sol, d=6)
    W = Ws[0]
    for Wl in Ws[1:]:
        W = Wl @ W
    np.testing.assert_allclose(W @ W.T, sol.WWt, atol=1e-12)
    np.testing.assert_allclose(M.T @ M, sol.MtM, atol=1e-12)
    np.testing.assert_allclose(W @ M, sol.WM, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), sol.w_norms, atol=1e-12)
    for Wl in Ws:  # every layer has singular values sqrt(c/λ_W) t^(1/(L+1))
        sv = np.sort(np.linalg.svd(Wl, compute_uv=False))[::-1][: sol.counts.size]
        np.testing.assert_allclose(sv, np.sort(sol.layer_singular_values)[::-1], atol=1e-12)
    # U^T W has orthogonal rows with norms w_i; M D V has orthogonal columns with norms h_i
    UW = sol.U.T @ W
    np.testing.assert_allclose(UW @ UW.T, np.diag(sol.w_singular_values**2), atol=1e-12)
    MDV = M @ np.diag(np.sqrt(sol.counts)) @ sol.V
    np.testing.assert_allclose(MDV.T @ MDV, np.diag(sol.h_singular_values**2), atol=1e-12)
    # w_i h_i = t_i
    np.testing.assert_allclose(sol.w_singular_values * sol.h_singular_values, sol.t, atol=1e-12)
    # gradient of the full objective vanishes at the closed form (a stationary point)
    _, gW, gH, gb = _objective_and_grads(Ws, H, sol.b, Y, sol.lambda_w, sol.lambda_h)
    for g in gW:
        assert np.abs(g).max() < 1e-12
    assert np.abs(gH).max() < 1e-12
    if bias:
        assert np.abs(gb).max() < 1e-12


def test_bias_centering_item12():
    sol = deep_linear_ufm(REF_COUNTS, layers=2, lambda_w=5e-3, lambda_h=5e-3, bias=True)
    n = np.asarray(REF_COUNTS, float)
    np.testing.assert_allclose(sol.b, n / n.sum(), atol=1e-15)
    _, H, M, Y = _explicit_factors(sol, d=5)
    # sample-weighted global feature mean vanishes; NC1: H = M Y
    np.testing.assert_allclose(H.mean(axis=1), 0, atol=1e-14)
    np.testing.assert_allclose(sol.MtM @ n, 0, atol=1e-14)
    np.testing.assert_allclose(sol.U[:, -1] * np.sign(sol.U[0, -1]), 0.5, atol=1e-12)  # 1/sqrt(K)
    np.testing.assert_allclose(sol.V[:, -1], np.sqrt(n) / np.linalg.norm(np.sqrt(n)), atol=1e-12)


# ------------------------------------------------------------------- §5 item 15: bias-free
def _dang_x(n_k, N, lw, lh, M):
    """Dang's x: largest real root of b/n_k = M x^{M-1}/(x^M+1)^2, b = M N (N λ_W^M λ_H)^{1/M}."""
    b = M * N * (N * lw**M * lh) ** (1.0 / M)
    g = lambda x: M * x ** (M - 1) / (x**M + 1) ** 2 - b / n_k
    xs = np.linspace(1e-9, 1e3, 200001)
    gv = g(xs)
    idx = np.flatnonzero(np.sign(gv[:-1]) != np.sign(gv[1:]))
    if idx.size == 0:
        return 0.0
    i = idx[-1]
    return brentq(g, xs[i], xs[i + 1], xtol=1e-15)


@pytest.mark.parametrize("L", [1, 2, 3, 6])
@pytest.mark.parametrize("lam", [5e-4, 5e-3])
def test_bias_free_orthogonal_and_dang_logit(L, lam):
    n = np.asarray(REF_COUNTS)
    N = n.sum()
    sol = deep_linear_ufm(n, layers=L, lambda_w=lam, lambda_h=lam, bias=False)
    np.testing.assert_allclose(sol.MtM, np.diag(np.diag(sol.MtM)), atol=1e-15)
    np.testing.assert_allclose(sol.WWt, np.diag(np.diag(sol.WWt)), atol=1e-15)
    np.testing.assert_allclose(sol.sigma, np.sqrt(n), atol=1e-15)
    np.testing.assert_array_equal(sol.zeroed, np.sqrt(n) <= sol.threshold)
    for k in range(n.size):
        if sol.zeroed[k]:
            assert sol.w_norms[k] == 0 and sol.mu_norms[k] == 0
            continue
        x = _dang_x(n[k], N, lam, lam, L)
        np.testing.assert_allclose(sol.WM[k, k], x**L / (x**L + 1), atol=1e-8)


def test_bias_free_classes_below_threshold_zeroed():
    # λ chosen so that sqrt(50) < σ* < sqrt(100) for L = 3
    sol = deep_linear_ufm(REF_COUNTS, layers=3, lambda_w=0.017, lambda_h=0.017, bias=False)
    assert np.sqrt(50) < sol.threshold < np.sqrt(100)
    np.testing.assert_array_equal(sol.zeroed, [False, False, True, True])
    np.testing.assert_array_equal(sol.WWt[2:, :], 0)
    assert np.all(sol.w_norms[:2] > 0)


def test_bias_free_dang_largest_root_pitfall():
    # a class in the band σ_stat < sqrt(n_k) < σ*: Dang's largest root is positive, global is 0
    L, lam = 2, 7.2e-3
    n = np.array([400, 20, 20])
    N = n.sum()
    c = lam
    s_stat, s_star = stationary_threshold(N, c, L), global_threshold(N, c, L)
    assert s_stat < np.sqrt(20) < s_star
    sol = deep_linear_ufm(n, layers=L, lambda_w=lam, lambda_h=lam, bias=False)
    assert sol.zeroed[1] and sol.zeroed[2] and not sol.zeroed[0]
    assert _dang_x(20, N, lam, lam, L) > 0


# ------------------------------------------------------------------- independent optimisation
def test_grams_match_lbfgs_on_factorised_problem_L2():
    n = np.array([20, 10, 5, 5])
    K, N, d, L = n.size, int(n.sum()), 6, 2
    lw = lh = 0.033  # σ(Ŷ) = (3.770, 2.652, 2.236, 0), σ* = 2.463: one direction zeroed
    sol = deep_linear_ufm(n, layers=L, lambda_w=lw, lambda_h=lh, bias=True)
    np.testing.assert_array_equal(sol.zeroed, [False, False, True, True])
    Y = one_hot(np.repeat(np.arange(K), n), K)
    shapes = [(d, d), (K, d), (d, N), (K,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(x):
        out, i = [], 0
        for s, z in zip(shapes, sizes):
            out.append(x[i : i + z].reshape(s))
            i += z
        return out

    def fg(x):
        W1, W2, H, b = unpack(x)
        W = W2 @ W1
        R = (W @ H + b[:, None] - Y) / N
        f = (
            0.5 * N * np.sum(R * R)
            + lw / 2 * (np.sum(W1**2) + np.sum(W2**2))
            + lh / 2 * np.sum(H**2)
        )
        g = [W2.T @ R @ H.T + lw * W1, R @ (W1 @ H).T + lw * W2, W.T @ R + lh * H, R.sum(axis=1)]
        return f, np.concatenate([a.ravel() for a in g])

    best = None
    # non-convex for L >= 2 (t = 0 is always a local minimum, and so is a positive root in the
    # band σ_stat < σ < σ*): a few restarts from O(1) initialisations, keep the best objective
    for seed in range(8):
        x0 = np.random.default_rng(seed).standard_normal(sum(sizes))
        r = minimize(
            fg,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 20000, "maxfun": 40000, "ftol": 1e-16, "gtol": 1e-13},
        )
        if best is None or r.fun < best.fun:
            best = r
    Ws, H0, _, _ = _explicit_factors(sol, d)
    f_closed, *_ = _objective_and_grads(Ws, H0, sol.b, Y, lw, lh)
    assert f_closed <= best.fun + 1e-12  # the closed form is at least as good as any local search
    W1, W2, H, b = unpack(best.x)
    W = W2 @ W1
    M = H @ Y.T / n
    np.testing.assert_allclose(best.fun, f_closed, rtol=1e-10)
    np.testing.assert_allclose(W @ W.T, sol.WWt, atol=1e-6)
    np.testing.assert_allclose(M.T @ M, sol.MtM, atol=1e-6)
    np.testing.assert_allclose(W @ M, sol.WM, atol=1e-6)
    np.testing.assert_allclose(b, sol.b, atol=1e-6)
    np.testing.assert_allclose(H, M @ Y, atol=1e-6)


# ------------------------------------------------------------------- API / bad input
def test_to_dict_is_json_ready():
    import json

    d = deep_linear_ufm(REF_COUNTS).to_dict()
    json.dumps(d)
    assert d["zeroed"] == [False, False, False, True]
    for key in (
        "counts",
        "layers",
        "bias",
        "lambda_w",
        "lambda_h",
        "c",
        "sigma",
        "U",
        "V",
        "t",
        "threshold",
        "zeroed",
        "WWt",
        "MtM",
        "WM",
        "b",
        "logits",
        "w_norms",
        "mu_norms",
        "layer_singular_values",
    ):
        assert key in d


def test_sign_convention_deterministic():
    sol = deep_linear_ufm([9, 5, 3, 2])
    for i in range(3):
        j = int(np.argmax(np.abs(sol.U[:, i])))
        assert sol.U[j, i] > 0
    np.testing.assert_allclose(
        y_hat([9, 5, 3, 2]), sol.U @ np.diag(sol.sigma) @ sol.V.T, atol=1e-13
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"counts": [10, 0, 3]}, r"counts\[1\]=0"),
        ({"counts": [10, -1]}, r"counts\[1\]=-1"),
        ({"counts": [10]}, "at least 2"),
        ({"counts": [10, 5], "lambda_w": 0}, "lambda_w=0"),
        ({"counts": [10, 5], "lambda_h": -1e-3}, "lambda_h"),
        ({"counts": [10, 5], "layers": 0}, "layers=0"),
    ],
)
def test_deep_linear_bad_input(kwargs, match):
    with pytest.raises(NCollapseError, match=match):
        deep_linear_ufm(**kwargs)


def test_threshold_bad_input():
    with pytest.raises(NCollapseError):
        global_threshold(0, 0.1, 2)
    with pytest.raises(NCollapseError):
        shrinkage([-1.0], 10, 0.1, 2)
