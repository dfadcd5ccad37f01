"""Compare every measure with an independent brute-force numpy implementation on small data.

The reference below uses a different code path on purpose: per-sample Python loops for the
scatters, masks for class means, ``np.linalg.pinv`` of the full d x d Σ_B, explicit pair loops.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ncollapse.geometry import centering, etf_gram, seli_class_grams
from ncollapse.metrics import (
    NCStats,
    SecondPass,
    cdnv,
    compute_all,
    nc1,
    nc1_per_class,
    nc1_quotient,
)

# ----------------------------------------------------------------------------- reference


def ref_all(H, y, K, W=None, b=None, mean="weighted", divide_by_k=True):
    N, d = H.shape
    mu = np.zeros((K, d))
    n = np.zeros(K)
    for i in range(N):
        mu[y[i]] += H[i]
        n[y[i]] += 1
    mu /= n[:, None]
    muG = H.mean(0) if mean == "weighted" else mu.mean(0)
    Mt = mu - muG
    Sw = np.zeros((d, d))
    Swc = np.zeros((K, d, d))
    for i in range(N):
        v = H[i] - mu[y[i]]
        Sw += np.outer(v, v)
        Swc[y[i]] += np.outer(v, v)
    Sw /= N
    Swc /= n[:, None, None]
    Sb = np.zeros((d, d))
    for c in range(K):
        Sb += np.outer(Mt[c], Mt[c])
    Sb /= K
    Sbp = np.linalg.pinv(Sb, rcond=1e-8, hermitian=True)
    div = K if divide_by_k else 1
    out = {
        "nc1": np.trace(Sw @ Sbp) / div,
        "nc1_per_class": np.array([np.trace(Swc[c] @ Sbp) / div for c in range(K)]),
        "nc1_class_balanced": np.trace(Swc.mean(0) @ Sbp) / div,
        "quotient": np.trace(Sw) / np.trace(Sb),
    }
    sig = np.array([np.trace(Swc[c]) for c in range(K)])
    pairs = []
    for c, e in itertools.combinations(range(K), 2):
        pairs.append((sig[c] + sig[e]) / (2 * np.sum((mu[c] - mu[e]) ** 2)))
    out["cdnv"] = np.mean(pairs)

    def geom(V):
        norms = np.array([np.sqrt(v @ v) for v in V])
        cos = [V[c] @ V[e] / (norms[c] * norms[e]) for c, e in itertools.combinations(range(K), 2)]
        return {
            "equinorm": np.std(norms) / np.mean(norms),
            "equiangularity": np.std(cos),
            "max_angle": np.mean([abs(x + 1 / (K - 1)) for x in cos]),
            "mean_cos": np.mean(cos),
        }

    out["means"] = geom(Mt)
    G = Mt @ Mt.T
    GW_s, GM_s = seli_class_grams(n.astype(int))
    E = etf_gram(K)

    def dist(A, B):
        return np.sqrt(np.sum((A / np.sqrt(np.sum(A**2)) - B / np.sqrt(np.sum(B**2))) ** 2))

    out["dist_etf_M"] = dist(G, E)
    out["dist_seli_M"] = dist(G, GM_s)
    if W is not None:
        out["classifier"] = geom(W)
        out["dist_etf_W"] = dist(W @ W.T, E)
        out["dist_seli_W"] = dist(W @ W.T, GW_s)
        WM = np.array([[W[c] @ Mt[e] for e in range(K)] for c in range(K)])
        out["dist_WM"] = dist(WM, centering(K))
        out["self_duality"] = np.sqrt(
            np.sum((W / np.sqrt(np.sum(W**2)) - Mt / np.sqrt(np.sum(Mt**2))) ** 2)
        )
        agree = 0
        for i in range(N):
            logit = [W[c] @ H[i] + (0 if b is None else b[c]) for c in range(K)]
            dists = [np.sum((H[i] - mu[c]) ** 2) for c in range(K)]
            agree += int(np.argmax(logit) == np.argmin(dists))
        out["nc4"] = agree / N
    return out


def make_data(K, d, counts, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    rng.shuffle(y)
    mu = 3.0 * rng.normal(size=(K, d))
    H = mu[y] + spread * rng.normal(size=(len(y), d))
    W = mu + rng.normal(size=(K, d))
    b = 0.5 * rng.normal(size=K)
    return H, y, W, b


def run_ours(H, y, K, W, b, per_class_scatter, batch=17):
    acc = NCStats(K, per_class_scatter=per_class_scatter)
    for s in range(0, len(y), batch):
        acc.update(H[s : s + batch], y[s : s + batch])
    st = acc.snapshot()
    sp = SecondPass(st, W, b)
    for s in range(0, len(y), 23):
        sp.update(H[s : s + 23], y[s : s + 23])
    return st, sp.result()


CASES = [
    (5, 8, [40, 25, 12, 6, 3]),  # d > K, imbalanced
    (2, 4, [30, 7]),  # K = 2
    (6, 3, [20, 15, 12, 9, 8, 5]),  # d < K (rank of Σ_B limited by d)
    (4, 4, [10, 10, 10, 10]),  # balanced, d = K
]


@pytest.mark.parametrize("K,d,counts", CASES)
@pytest.mark.parametrize("mean", ["weighted", "unweighted"])
@pytest.mark.parametrize("per_class_scatter", [True, False])
def test_against_bruteforce(K, d, counts, mean, per_class_scatter):
    H, y, W, b = make_data(K, d, counts, seed=K * 10 + d)
    ref = ref_all(H, y, K, W, b, mean=mean)
    st, sec = run_ours(H, y, K, W, b, per_class_scatter)
    res = compute_all(st, W, b, second=sec, mean=mean)
    tol = dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res["nc1"]["nc1"], ref["nc1"], **tol)
    np.testing.assert_allclose(res["nc1"]["nc1_class_balanced"], ref["nc1_class_balanced"], **tol)
    np.testing.assert_allclose(res["per_class"]["nc1"], ref["nc1_per_class"], **tol)
    np.testing.assert_allclose(res["nc1"]["quotient"], ref["quotient"], **tol)
    np.testing.assert_allclose(res["nc1"]["cdnv"], ref["cdnv"], **tol)
    for key in ("equinorm", "equiangularity", "max_angle", "mean_cos"):
        np.testing.assert_allclose(res["nc2"]["means"][key], ref["means"][key], **tol)
        np.testing.assert_allclose(res["nc2"]["classifier"][key], ref["classifier"][key], **tol)
    for key in ("dist_etf_M", "dist_seli_M", "dist_etf_W", "dist_seli_W", "dist_WM"):
        np.testing.assert_allclose(res["nc2"][key], ref[key], **tol)
    np.testing.assert_allclose(res["nc3"]["self_duality"], ref["self_duality"], **tol)
    np.testing.assert_allclose(res["nc3"]["self_duality_sq"], ref["self_duality"] ** 2, **tol)
    np.testing.assert_allclose(res["nc3"]["seli_duality"], ref["dist_WM"], **tol)
    assert res["nc4"]["agreement"] == pytest.approx(ref["nc4"], abs=1e-15)


def test_divide_by_k_and_class_balanced_paths_agree():
    K, d = 5, 7
    H, y, W, b = make_data(K, d, [30, 20, 10, 5, 4], seed=3)
    ref = ref_all(H, y, K, mean="unweighted", divide_by_k=False)
    st1, sec = run_ours(H, y, K, W, b, per_class_scatter=False)
    st2, _ = run_ours(H, y, K, W, b, per_class_scatter=True)
    # no /K
    assert nc1(st1, divide_by_k=False) == pytest.approx(ref["nc1"], rel=1e-10)
    # class-balanced Σ_W from the per-class scatters and from the second-pass projection
    a = nc1(st2, within="class", divide_by_k=False)
    c = nc1(st1, within="class", divide_by_k=False, second=sec)
    assert a == pytest.approx(ref["nc1_class_balanced"], rel=1e-10)
    assert c == pytest.approx(ref["nc1_class_balanced"], rel=1e-10)
    # sample-weighted NC1 is the count-weighted mean of per-class NC1
    per = nc1_per_class(st2)
    assert np.sum(per * st2.counts) / st2.total == pytest.approx(nc1(st2), rel=1e-10)
    assert nc1_quotient(st2, within="class") > 0
    # unbiased CDNV uses 1/(n_c - 1)
    sig = np.array(
        [np.sum((H[y == c] - H[y == c].mean(0)) ** 2) / (np.sum(y == c) - 1) for c in range(K)]
    )
    mu = np.array([H[y == c].mean(0) for c in range(K)])
    ref_u = np.mean(
        [
            (sig[i] + sig[j]) / (2 * np.sum((mu[i] - mu[j]) ** 2))
            for i, j in itertools.combinations(range(K), 2)
        ]
    )
    assert cdnv(st1, unbiased=True) == pytest.approx(ref_u, rel=1e-10)
