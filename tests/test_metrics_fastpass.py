"""Issue 14: the metric pass on float32 input keeps float64 accuracy (near-collapse set), NC4
decisions from float32 products are exactly the float64 ones, the second pass computes only what
was asked, and chunking keeps memory flat without changing the statistics."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import ncollapse.metrics.stats as stats_mod
from ncollapse.metrics import NCStats, SecondPass, compute_all, statistics


def near_collapse(n=3000, d=48, k=10, seed=0, spread=1e-3, norm=100.0):
    """float32 features: class means of norm ``norm``, within-class spread ``spread``."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(k, d))
    mu = norm * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    H = (mu[y] + spread / np.sqrt(d) * rng.normal(size=(n, d))).astype(np.float32)
    mc = mu - mu.mean(0)
    W = mc / np.linalg.norm(mc, axis=1).mean() + 0.3 / np.sqrt(d) * rng.normal(size=(k, d))
    b = 0.1 * rng.normal(size=k)
    return H, y, W, b


def brute_force(H, y, W, b, k):
    """float64 textbook computation on the float32 values (numpy, per-sample loops avoided only
    where the formula is a plain sum)."""
    X = H.astype(np.float64)
    n = np.bincount(y, minlength=k).astype(float)
    mu = np.stack([X[y == c].mean(0) for c in range(k)])
    Xc = X - mu[y]
    Sw = Xc.T @ Xc / len(y)
    Mt = mu - mu.mean(0)
    Sb = Mt.T @ Mt / k
    P = np.linalg.pinv(Sb, rcond=1e-10, hermitian=True)
    per = np.array([np.trace(Xc[y == c].T @ Xc[y == c] / n[c] @ P) / k for c in range(k)])
    ss = np.array([np.sum(Xc[y == c] ** 2) for c in range(k)])
    pred = np.argmax(X @ W.T + b, 1)
    ncc = np.argmin(((X[:, None, :] - mu[None]) ** 2).sum(-1), 1)
    iu = np.triu_indices(k, 1)
    d2 = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    var = ss / n
    np.fill_diagonal(d2, np.inf)
    return {
        "nc1": np.trace(Sw @ P) / k,
        "nc1_class_balanced": per.mean(),
        "tr_within": ss.sum() / len(y),
        "cdnv": ((var[:, None] + var[None]) / (2 * d2))[iu].mean(),
        "nc4": np.mean(pred == ncc),
    }


def ours(r):
    return {
        "nc1": r["nc1"]["nc1"],
        "nc1_class_balanced": r["nc1"]["nc1_class_balanced"],
        "tr_within": r["nc1"]["tr_within"],
        "cdnv": r["nc1"]["cdnv"],
        "nc4": r["nc4"]["agreement"],
    }


@pytest.mark.parametrize("mode", ["fast", "scatter"])
def test_near_collapse_float32_input_has_float64_accuracy(mode):
    k = 10
    H, y, W, b = near_collapse(k=k)
    ref = brute_force(H, y, W, b, k)
    acc = NCStats(k, scatter=(mode == "scatter"), per_class_scatter=False)
    for s in range(0, len(y), 700):
        acc.update(torch.from_numpy(H[s : s + 700]), y[s : s + 700])
    st = acc.snapshot()
    sp = SecondPass(st, W, b, measures=("nc1", "nc4"))
    for s in range(0, len(y), 700):
        sp.update(torch.from_numpy(H[s : s + 700]), y[s : s + 700])
    got = ours(compute_all(st, W, b, second=sp.result()))
    for key, v in ref.items():
        assert got[key] == pytest.approx(v, rel=1e-9), key
    # the straightforward float32 computation is far off on this set (so the test can fail)
    Xc32 = H - np.stack([H[y == c].mean(0) for c in range(k)])[y]
    tr32 = float(np.sum(Xc32.astype(np.float32) ** 2, dtype=np.float32) / len(y))
    assert abs(tr32 - ref["tr_within"]) / ref["tr_within"] > 1e-6


def test_nc4_float32_decisions_equal_float64_near_ties():
    """Rows built so that two classifier scores differ by ~1e-9 relative: float32 products alone
    cannot order them, the rounding bound flags them and float64 decides."""
    rng = np.random.default_rng(4)
    k, d = 4, 64
    W = rng.normal(size=(k, d))
    b = np.zeros(k)
    mu = 5 * rng.normal(size=(k, d))
    y = np.repeat(np.arange(k), 200)
    H = mu[y] + rng.normal(size=(len(y), d))
    # move every row onto the hyperplane where classes 0 and 1 tie, then off it by ±1e-9 relative
    w01 = W[0] - W[1]
    t = (H @ w01) / (w01 @ w01)
    eps = 1e-9 * np.sign(rng.normal(size=len(y))) * np.linalg.norm(H, axis=1) / np.linalg.norm(w01)
    H = H - (t - eps / np.linalg.norm(w01))[:, None] * w01
    W[2:] *= 0.01  # classes 0 and 1 are the top two everywhere
    st = statistics(H, y, k)
    sp = SecondPass(st, W, b, measures=("nc4",))
    sp.update(H, y)
    res = sp.result()
    pred = np.argmax(H @ W.T + b, 1)
    mus = st.means
    ncc = np.argmin(((H[:, None, :] - mus[None]) ** 2).sum(-1), 1)
    expect = np.bincount(y[pred == ncc], minlength=k)
    assert res.rechecked >= len(y) // 2
    np.testing.assert_array_equal(res.agree, expect)
    # float32 alone gets a different count here: the recheck matters
    p32 = np.argmax(H.astype(np.float32) @ W.T.astype(np.float32), 1)
    assert (p32 != pred).any()


def test_second_pass_computes_only_what_was_asked():
    H, y, W, b = near_collapse(n=600, d=16, k=5)
    st = statistics(H, y, 5)
    only4 = SecondPass(st, W, b, measures=("nc4",))
    only1 = SecondPass(st, W, b, measures="nc1")
    both = SecondPass(st, W, b)
    for sp in (only4, only1, both):
        sp.update(H, y)
    r4, r1, rb = only4.result(), only1.result(), both.result()
    assert r4.proj_ss is None and r4.agree is not None
    assert r1.agree is None and r1.proj_ss is not None
    np.testing.assert_array_equal(r4.agree, rb.agree)
    np.testing.assert_allclose(r1.proj_ss["weighted"], rb.proj_ss["weighted"], rtol=1e-13)
    assert only4.cost == {"float64_cols": 0, "float32_cols": 10}
    assert only1.cost == {"float64_cols": 4, "float32_cols": 0}
    assert both.cost == {"float64_cols": 4, "float32_cols": 5}


def test_nc1_from_second_pass_without_scatter_equals_scatter_nc1():
    H, y, W, b = near_collapse(n=800, d=20, k=6, spread=1.0, norm=3.0)
    st_s = statistics(H, y, 6, per_class_scatter=False)
    st_f = statistics(H, y, 6, per_class_scatter=False, scatter=False)
    assert st_f.scatter is None
    res = SecondPass(st_f, W, b).update(H, y).result()
    for mean in ("unweighted", "weighted"):
        a = compute_all(st_s, W, b, mean=mean)["nc1"]["nc1"]
        f = compute_all(st_f, W, b, mean=mean, second=res)["nc1"]["nc1"]
        assert f == pytest.approx(a, rel=1e-12)
    r = compute_all(st_f, W, b)
    assert r["nc1"]["nc1"] is None and any("NC1 not computed" in w for w in r["warnings"])


def test_chunking_is_invisible(monkeypatch):
    H, y, W, b = near_collapse(n=500, d=12, k=4, spread=1.0, norm=3.0)
    one = statistics(H, y, 4, batch_size=500)
    sp1 = SecondPass(one, W, b).update(H, y).result()
    monkeypatch.setattr(stats_mod, "CHUNK_ROWS", 37)
    sp_mod = sys.modules["ncollapse.metrics.second_pass"]  # the package re-exports a function
    monkeypatch.setattr(sp_mod, "CHUNK_ROWS", 37)
    many = statistics(H, y, 4, batch_size=500)
    np.testing.assert_allclose(many.scatter, one.scatter, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(many.class_ss, one.class_ss, rtol=1e-12)
    sp2 = SecondPass(one, W, b).update(H, y).result()
    np.testing.assert_array_equal(sp2.agree, sp1.agree)
    np.testing.assert_allclose(sp2.proj_ss["unweighted"], sp1.proj_ss["unweighted"], rtol=1e-12)
    # a bad row in a later chunk leaves the state unchanged
    acc = NCStats(4).update(H[:100], y[:100])
    before = acc.snapshot()
    bad = H.copy()
    bad[400, 3] = np.nan
    with pytest.raises(Exception, match="NaN"):
        acc.update(bad, y)
    np.testing.assert_array_equal(acc.snapshot().sums, before.sums)


def test_dsyrk_scatter_matches_gemm():
    rng = np.random.default_rng(0)
    xc = torch.from_numpy(rng.normal(size=(300, 17)))
    S = torch.zeros(17, 17, dtype=torch.float64)
    stats_mod._add_gram(S, xc)
    np.testing.assert_allclose(S.numpy(), (xc.T @ xc).numpy(), rtol=1e-13, atol=1e-12)
    assert torch.equal(S, S.T)
