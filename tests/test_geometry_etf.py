"""Simplex ETF, centering matrix and seeded orthonormal embeddings (ncollapse.geometry.etf)."""

import numpy as np
import pytest

from ncollapse.errors import NCollapseError
from ncollapse.geometry import (
    centering,
    etf_gram,
    helmert_basis,
    random_orthonormal,
    simplex_etf,
)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_centering_is_symmetric_idempotent_projector(k):
    P = centering(k)
    assert P.dtype == np.float64
    np.testing.assert_allclose(P, P.T, atol=0)
    np.testing.assert_allclose(P @ P, P, atol=1e-15)
    np.testing.assert_allclose(P @ np.ones(k), 0, atol=1e-15)
    assert np.isclose(np.trace(P), k - 1)


@pytest.mark.parametrize("k", [2, 3, 5, 10, 100])
def test_etf_gram_entries(k):
    G = etf_gram(k)
    np.testing.assert_allclose(np.diag(G), 1.0, atol=1e-14)
    off = G[~np.eye(k, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (k - 1), atol=1e-14)
    ev = np.linalg.eigvalsh(G)
    # eigenvalues: 0 once, k/(k-1) with multiplicity k-1
    np.testing.assert_allclose(ev[0], 0, atol=1e-12)
    np.testing.assert_allclose(ev[1:], k / (k - 1), atol=1e-12)


def test_helmert_basis_is_orthonormal_complement_of_ones():
    for k in (2, 3, 6):
        B = helmert_basis(k)
        np.testing.assert_allclose(B.T @ B, np.eye(k - 1), atol=1e-14)
        np.testing.assert_allclose(B @ B.T, centering(k), atol=1e-14)
        np.testing.assert_allclose(B.sum(axis=0), 0, atol=1e-14)


@pytest.mark.parametrize(("d", "m"), [(5, 5), (10, 3), (64, 20)])
def test_random_orthonormal(d, m):
    Q = random_orthonormal(d, m, seed=3)
    assert Q.shape == (d, m)
    np.testing.assert_allclose(Q.T @ Q, np.eye(m), atol=1e-13)
    np.testing.assert_array_equal(Q, random_orthonormal(d, m, seed=3))
    assert not np.allclose(Q, random_orthonormal(d, m, seed=4))


def test_random_orthonormal_sign_fixed_qr():
    # Q R = G with diag(R) > 0: Q^T G is upper triangular with positive diagonal
    d, m, seed = 7, 4, 11
    G = np.random.default_rng(seed).standard_normal((d, m))
    Q = random_orthonormal(d, m, seed=seed)
    R = Q.T @ G
    np.testing.assert_allclose(np.tril(R, -1), 0, atol=1e-12)
    assert np.all(np.diag(R) > 0)
    np.testing.assert_allclose(Q @ R, G, atol=1e-12)


def test_random_orthonormal_too_many_columns():
    with pytest.raises(NCollapseError, match="m=5.*d=3"):
        random_orthonormal(3, 5)


@pytest.mark.parametrize(("k", "d"), [(2, None), (2, 1), (3, 2), (10, None), (10, 9), (10, 64)])
@pytest.mark.parametrize("seed", [0, 1, None])
def test_simplex_etf_gram_norms_cosines(k, d, seed):
    W = simplex_etf(k, d, seed=seed)
    assert W.shape == (k, k if d is None else d)
    assert W.dtype == np.float64
    np.testing.assert_allclose(W @ W.T, etf_gram(k), atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-13)
    np.testing.assert_allclose(W.sum(axis=0), 0, atol=1e-13)
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    C = Wn @ Wn.T
    np.testing.assert_allclose(C[~np.eye(k, dtype=bool)], -1 / (k - 1), atol=1e-13)
    assert np.linalg.matrix_rank(W) == k - 1


def test_simplex_etf_k2_antipodal():
    W = simplex_etf(2, 5, seed=2)
    np.testing.assert_allclose(W[0], -W[1], atol=1e-15)


def test_simplex_etf_seeds():
    np.testing.assert_array_equal(simplex_etf(5, 8, seed=1), simplex_etf(5, 8, seed=1))
    assert not np.allclose(simplex_etf(5, 8, seed=1), simplex_etf(5, 8, seed=2))
    # canonical embedding: zero outside the first k-1 coordinates
    W = simplex_etf(5, 8, seed=None)
    np.testing.assert_array_equal(W[:, 4:], 0)
    np.testing.assert_allclose(W[:, :4], np.sqrt(5 / 4) * helmert_basis(5), atol=1e-15)


def test_simplex_etf_d_too_small_names_d_k_and_fix():
    with pytest.raises(NCollapseError) as e:
        simplex_etf(10, 8)
    msg = str(e.value)
    assert "d=8" in msg and "k=10" in msg and "d >= 9" in msg


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "x"])
def test_simplex_etf_bad_k(bad):
    with pytest.raises(NCollapseError):
        simplex_etf(bad)
    with pytest.raises(NCollapseError):
        etf_gram(bad)
