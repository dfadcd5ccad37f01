"""SEL matrix, SELI factors, class-level closed forms and STEP formulas.

Spec seli-liu-metrics.md §1.3-1.5 and §5 items 1-6.
"""

import numpy as np
import pytest

from ncollapse.errors import NCollapseError
from ncollapse.geometry import (
    centering,
    etf_gram,
    one_hot,
    sel_matrix,
    seli_class_grams,
    seli_factors,
    seli_geometry,
    step_counts,
    step_seli_closed_form,
)


def _random_counts(rng, kmax=9, nmax=60):
    k = int(rng.integers(2, kmax + 1))
    return rng.integers(1, nmax + 1, size=k)


def _labels(counts, rng=None):
    y = np.repeat(np.arange(len(counts)), counts)
    if rng is not None:
        y = rng.permutation(y)
    return y


# ------------------------------------------------------------------------------ §5 item 1
def test_sel_matrix_columns_and_rank():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = _random_counts(rng)
        k = n.size
        y = _labels(n, rng)
        Z = sel_matrix(y)
        assert Z.shape == (k, y.size)
        expected = np.eye(k)[:, y] - 1.0 / k
        np.testing.assert_allclose(Z, expected, atol=1e-15)
        assert np.linalg.matrix_rank(Z) == k - 1
        sv2 = np.linalg.svd(Z, compute_uv=False) ** 2
        P = centering(k)
        ev = np.sort(np.linalg.eigvalsh(P @ np.diag(n.astype(float)) @ P))[::-1]
        np.testing.assert_allclose(sv2[: k - 1], ev[: k - 1], atol=1e-10 * n.max())
        # nonzero eigenvalues lie in [n_min, n_max] (Cauchy interlacing)
        assert ev[k - 2] >= n.min() - 1e-9 and ev[0] <= n.max() + 1e-9


# ------------------------------------------------------------------------------ §5 item 2
@pytest.mark.parametrize("seed", range(6))
def test_seli_factors_match_class_level_closed_forms(seed):
    rng = np.random.default_rng(100 + seed)
    n = _random_counts(rng)
    k = n.size
    y = _labels(n, rng)
    f = seli_factors(y)
    G_W, G_M = seli_class_grams(n)
    P = centering(k)
    Y = one_hot(y, k)
    tol = 1e-12 * max(1.0, np.sqrt(n.max()))
    assert f.W.shape == (k, k - 1) and f.H.shape == (k - 1, y.size) and f.M.shape == (k - 1, k)
    np.testing.assert_allclose(f.W @ f.H, sel_matrix(y), atol=tol)
    np.testing.assert_allclose(f.W @ f.W.T, G_W, atol=tol)
    np.testing.assert_allclose(f.M.T @ f.M, G_M, atol=tol)
    np.testing.assert_allclose(f.W @ f.M, P, atol=tol)
    np.testing.assert_allclose(f.H, f.M @ Y, atol=tol)  # NC1: h_i = mu_{y_i}
    np.testing.assert_allclose(f.W.T, f.M @ G_W, atol=tol)  # duality W^T = M G_W
    np.testing.assert_allclose(f.M, f.W.T @ G_M, atol=tol)  # M = W^T G_M
    np.testing.assert_allclose(G_W @ G_M, P, atol=tol)
    np.testing.assert_allclose(f.W.sum(axis=0), 0, atol=tol)
    np.testing.assert_allclose(f.M.sum(axis=1), 0, atol=tol)
    np.testing.assert_array_equal(f.counts, n)


def test_seli_class_grams_are_matrix_square_roots():
    rng = np.random.default_rng(7)
    for _ in range(10):
        n = _random_counts(rng, kmax=12, nmax=5000)
        k = n.size
        P = centering(k)
        A = P @ np.diag(n.astype(float)) @ P
        G_W, G_M = seli_class_grams(n)
        np.testing.assert_allclose(G_W @ G_W, A, atol=1e-9 * n.max())
        # Moore-Penrose conditions for G_M^2 = A^+
        Ap = G_M @ G_M
        np.testing.assert_allclose(Ap, np.linalg.pinv(A), atol=1e-10)
        np.testing.assert_allclose(G_W @ G_M, P, atol=1e-10)
        assert np.all(np.linalg.eigvalsh(G_W) > -1e-10)
        assert np.all(np.linalg.eigvalsh(G_M) > -1e-12)


def test_seli_factors_label_order_invariance_and_k():
    n = np.array([7, 3, 1])
    y = _labels(n)
    perm = np.random.default_rng(1).permutation(y.size)
    f1, f2 = seli_factors(y), seli_factors(y[perm])
    np.testing.assert_allclose(f1.M.T @ f1.M, f2.M.T @ f2.M, atol=1e-12)
    np.testing.assert_allclose(f1.W @ f1.W.T, f2.W @ f2.W.T, atol=1e-12)
    assert np.all(np.diff(f1.singular_values) <= 1e-12)
    with pytest.raises(NCollapseError, match="labels contain 2 >= k=2"):
        seli_factors(y, k=2)
    with pytest.raises(NCollapseError, match="counts"):
        seli_factors(y, k=4)  # class 3 has no sample


# ------------------------------------------------------------------------------ §5 item 3
def test_margins_are_one_and_gm_offdiagonal_negative():
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        n = np.exp(rng.uniform(0, np.log(8000), size=k)).round().astype(int) + 1
        g = seli_geometry(n)
        off = g.G_M[~np.eye(k, dtype=bool)]
        assert np.all(off < 0), n
    y = _labels([5, 2, 1, 1])
    Z = sel_matrix(y)
    for i, yi in enumerate(y):
        margins = Z[yi, i] - np.delete(Z[:, i], yi)
        np.testing.assert_allclose(margins, 1.0, atol=1e-15)


# ------------------------------------------------------------------------------ §5 item 4
@pytest.mark.parametrize(("k", "n"), [(2, 1), (3, 4), (10, 25)])
def test_balanced_reduces_to_etf(k, n):
    g = seli_geometry([n] * k)
    P = centering(k)
    np.testing.assert_allclose(g.G_W, np.sqrt(n) * P, atol=1e-12)
    np.testing.assert_allclose(g.G_M, P / np.sqrt(n), atol=1e-12)
    np.testing.assert_allclose(g.cos_W, etf_gram(k), atol=1e-12)
    np.testing.assert_allclose(g.cos_M, etf_gram(k), atol=1e-12)
    np.testing.assert_allclose(g.WM, P, atol=1e-12)


@pytest.mark.parametrize("n", [(3, 1), (1, 1), (1000, 1), (2, 17)])
def test_binary_case_antipodal_equal_norms(n):
    g = seli_geometry(n)
    np.testing.assert_allclose(g.w_norms[0], g.w_norms[1], rtol=1e-12)
    np.testing.assert_allclose(g.mu_norms[0], g.mu_norms[1], rtol=1e-12)
    np.testing.assert_allclose(g.cos_W[0, 1], -1, atol=1e-12)
    np.testing.assert_allclose(g.cos_M[0, 1], -1, atol=1e-12)
    # P D_n P = (N/4) J with J = [[1,-1],[-1,1]], J^2 = 2J  ->  G_W = sqrt(N/2)/2 J
    s = np.sqrt(sum(n) / 2)
    np.testing.assert_allclose(g.G_W, s / 2 * np.array([[1, -1], [-1, 1]]), atol=1e-12)


def test_binary_reference_value():
    g = seli_geometry([3, 1])
    np.testing.assert_allclose(g.G_W, 0.7071 * np.array([[1, -1], [-1, 1]]), atol=1e-4)


# ------------------------------------------------------------------------------ §5 item 5
# spec §1.5 reference table, k = 10, k_maj = k_min = 5, n_min = 1
SELI_TABLE = {
    1: [1, 1, -0.1111, -0.1111, -0.1111, -0.1111, -0.1111, -0.1111],
    2: [1.1659, 0.8569, -0.0840, -0.1279, -0.1139, -0.1342, -0.0923, -0.1081],
    5: [1.4199, 0.6960, -0.0275, -0.1397, -0.1253, -0.1659, -0.0763, -0.0967],
    10: [1.6347, 0.5923, 0.0334, -0.1440, -0.1387, -0.1867, -0.0697, -0.0854],
    20: [1.8631, 0.5024, 0.1103, -0.1462, -0.1547, -0.2036, -0.0661, -0.0739],
    50: [2.1730, 0.4027, 0.2337, -0.1476, -0.1781, -0.2198, -0.0638, -0.0600],
    100: [2.4013, 0.3399, 0.3380, -0.1480, -0.1959, -0.2284, -0.0630, -0.0509],
    1000: [3.0110, 0.1924, 0.6707, -0.1484, -0.2446, -0.2431, -0.0623, -0.0289],
}
TABLE_KEYS = [
    "w_norm_ratio",
    "mu_norm_ratio",
    "cos_w_min_min",
    "cos_w_maj_maj",
    "cos_w_maj_min",
    "cos_mu_min_min",
    "cos_mu_maj_maj",
    "cos_mu_maj_min",
]


@pytest.mark.parametrize("R", sorted(SELI_TABLE))
def test_step_table_k10(R):
    cf = step_seli_closed_form(5, 5, R)
    got = [cf[key] for key in TABLE_KEYS]
    np.testing.assert_allclose(got, SELI_TABLE[R], atol=5e-5)


def _from_geometry(g, k_maj):
    """Extract the STEP quantities from a full SELI geometry (classes 0..k_maj-1 are majorities)."""
    a, b = 0, k_maj  # one majority, one minority
    out = {
        "w_maj_sq": g.G_W[a, a],
        "w_min_sq": g.G_W[b, b],
        "w_maj_min": g.G_W[a, b],
        "mu_maj_sq": g.G_M[a, a],
        "mu_min_sq": g.G_M[b, b],
        "mu_maj_min": g.G_M[a, b],
        "w_norm_ratio": g.w_norms[a] / g.w_norms[b],
        "mu_norm_ratio": g.mu_norms[a] / g.mu_norms[b],
        "cos_w_maj_min": g.cos_W[a, b],
        "cos_mu_maj_min": g.cos_M[a, b],
    }
    if k_maj >= 2:
        out |= {"w_maj_maj": g.G_W[0, 1], "cos_w_maj_maj": g.cos_W[0, 1]}
        out |= {"mu_maj_maj": g.G_M[0, 1], "cos_mu_maj_maj": g.cos_M[0, 1]}
    if g.counts.size - k_maj >= 2:
        out |= {"w_min_min": g.G_W[b, b + 1], "cos_w_min_min": g.cos_W[b, b + 1]}
        out |= {"mu_min_min": g.G_M[b, b + 1], "cos_mu_min_min": g.cos_M[b, b + 1]}
    return out


@pytest.mark.parametrize(
    ("k_maj", "k_min", "R", "n_min"),
    [
        (5, 5, 10, 1),
        (2, 2, 10, 1),
        (3, 7, 4, 2),
        (7, 3, 2.5, 2),
        (1, 4, 30, 1),
        (4, 1, 9, 3),
        (2, 6, 1000, 1),
        (1, 1, 5, 1),
    ],
)
def test_step_closed_form_matches_numeric_geometry(k_maj, k_min, R, n_min):
    cf = step_seli_closed_form(k_maj, k_min, R, n_min)
    g = seli_geometry(step_counts(k_maj, k_min, R, n_min))
    num = _from_geometry(g, k_maj)
    for key, v in num.items():
        np.testing.assert_allclose(cf[key], v, atol=1e-10, err_msg=key)
    if k_maj == 1:
        assert np.isnan(cf["cos_w_maj_maj"]) and np.isnan(cf["w_maj_maj"])
    if k_min == 1:
        assert np.isnan(cf["cos_mu_min_min"])


def test_step_k4_reference_matrices():
    G_W_ref = np.array(
        [
            [2.1674, -0.9948, -0.5863, -0.5863],
            [-0.9948, 2.1674, -0.5863, -0.5863],
            [-0.5863, -0.5863, 1.0863, 0.0863],
            [-0.5863, -0.5863, 0.0863, 1.0863],
        ]
    )
    G_M_ref = np.array(
        [
            [0.2647, -0.0515, -0.1066, -0.1066],
            [-0.0515, 0.2647, -0.1066, -0.1066],
            [-0.1066, -0.1066, 0.6066, -0.3934],
            [-0.1066, -0.1066, -0.3934, 0.6066],
        ]
    )
    g = seli_geometry([10, 10, 1, 1])
    np.testing.assert_allclose(g.G_W, G_W_ref, atol=5e-5)
    np.testing.assert_allclose(g.G_M, G_M_ref, atol=5e-5)
    cf = step_seli_closed_form(2, 2, 10)
    np.testing.assert_allclose(cf["w_maj_sq"], np.sqrt(10) / 2 + np.sqrt(5.5) / 4, atol=1e-14)
    np.testing.assert_allclose(cf["w_maj_min"], -np.sqrt(5.5) / 4, atol=1e-14)
    # spec §1.6 SELI row: ‖w_maj‖/‖w_min‖ = 1.4125, cos(w_min, w_min') = 0.0794
    np.testing.assert_allclose(cf["w_norm_ratio"], 1.4125, atol=5e-5)
    np.testing.assert_allclose(cf["cos_w_min_min"], 0.0794, atol=5e-5)


@pytest.mark.parametrize("k", [4, 6, 10, 20])
def test_minority_cosine_sign_change_at_R7(k):
    h = k // 2
    cos = lambda R: step_seli_closed_form(h, h, R)["cos_w_min_min"]
    assert cos(6) < 0 < cos(8)
    assert abs(cos(7)) < 1e-14
    for R in (2, 5, 7, 10, 100):
        expect = (R - 7) / (R - 7 + 2 * k * (2 + np.sqrt((R + 1) / 2)))
        np.testing.assert_allclose(cos(R), expect, atol=1e-14)
        # Implicit_geometry's squared-norm form at rho = 1/2, n_min = 1
        w_maj_sq = np.sqrt(R) * (1 - 2 / k) + np.sqrt((R + 1) / 2) / k
        np.testing.assert_allclose(step_seli_closed_form(h, h, R)["w_maj_sq"], w_maj_sq, atol=1e-13)


def test_step_large_R_limits():
    k = 10
    cf = step_seli_closed_form(5, 5, 1e12)
    np.testing.assert_allclose(cf["w_norm_ratio_sq"], np.sqrt(2) * (k - 2) + 1, rtol=1e-4)
    np.testing.assert_allclose(
        cf["cos_mu_maj_maj"], (np.sqrt(2) - 2) / (k - 2 + np.sqrt(2)), atol=1e-5
    )
    np.testing.assert_allclose(cf["cos_mu_min_min"], -1 / (5 - 1), atol=1e-5)
    assert cf["cos_w_min_min"] < 1


# ------------------------------------------------------------------------------ §5 item 6
@pytest.mark.parametrize(
    ("k_maj", "k_min", "R", "n_min"), [(2, 2, 10, 1), (5, 5, 3, 4), (3, 6, 7, 2)]
)
def test_step_spectrum(k_maj, k_min, R, n_min):
    g = seli_geometry(step_counts(k_maj, k_min, R, n_min))
    n_maj = R * n_min
    lam = (k_min * n_maj + k_maj * n_min) / (k_maj + k_min)
    expect = sorted([n_maj] * (k_maj - 1) + [n_min] * (k_min - 1) + [lam], reverse=True)
    np.testing.assert_allclose(g.singular_values**2, expect, atol=1e-10)
    assert step_seli_closed_form(k_maj, k_min, R, n_min)["lambda_mix"] == pytest.approx(lam)


def test_step_spectrum_reference():
    g = seli_geometry([10, 10, 1, 1])
    np.testing.assert_allclose(g.singular_values**2, [10, 5.5, 1], atol=1e-12)


# ------------------------------------------------------------------------------ misc / bad input
def test_seli_geometry_to_dict_and_consistency():
    g = seli_geometry([4, 2, 1])
    d = g.to_dict()
    assert set(d) >= {"counts", "G_W", "G_M", "WM", "singular_values", "w_norms", "mu_norms"}
    assert isinstance(d["G_W"][0][0], float)
    np.testing.assert_allclose(np.diag(g.cos_W), 1, atol=1e-14)
    np.testing.assert_allclose(g.w_norms**2, np.diag(g.G_W), atol=1e-14)


def test_step_counts():
    np.testing.assert_array_equal(step_counts(2, 3, 10), [10, 10, 1, 1, 1])
    np.testing.assert_array_equal(step_counts(1, 1, 2.5, 2), [5, 2])
    assert step_counts(2, 2, 4).dtype == np.int64


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5, 5, 2.5, 1), "not an integer"),
        ((5, 5, 0.5, 1), "R=0.5 must be >= 1"),
        ((0, 5, 2, 1), "k_maj"),
        ((5, 0, 2, 1), "k_min"),
        ((5, 5, 2, 0), "n_min"),
        ((5, 5, -2, 1), "R"),
    ],
)
def test_step_bad_input(args, match):
    with pytest.raises(NCollapseError, match=match):
        step_counts(*args)
    with pytest.raises(NCollapseError, match=match):
        step_seli_closed_form(*args)


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ([10, 0, 1], r"counts\[1\]=0"),
        ([10, -2], r"counts\[1\]=-2"),
        ([5], "at least 2"),
        ([1.5, 2], "not an integer"),
    ],
)
def test_seli_bad_counts(counts, match):
    with pytest.raises(NCollapseError, match=match):
        seli_geometry(counts)
    with pytest.raises(NCollapseError, match=match):
        seli_class_grams(counts)


def test_bad_labels():
    with pytest.raises(NCollapseError, match="< 0"):
        sel_matrix([0, 1, -1])
    with pytest.raises(NCollapseError, match=">= k=2"):
        sel_matrix([0, 1, 2], k=2)
    with pytest.raises(NCollapseError, match="non-integer"):
        sel_matrix([0, 1.5])
