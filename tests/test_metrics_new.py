"""Issue 13: NCMetric on grad-requiring features, absent classes, held-out NC against the training
means, GNC2 / UNC3 / NC5 / CDNV exponent against brute force, and the pseudo-inverse cut-off flag.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ncollapse.errors import NCollapseError
from ncollapse.geometry import simplex_etf
from ncollapse.metrics import (
    NCMetric,
    SecondPass,
    cdnv,
    compute_all,
    hyperspherical_uniformity,
    nc1,
    ood_orthogonality,
    pinv_report,
    statistics,
    uniform_duality,
)


def data(K=5, d=9, n=60, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    mu = scale * rng.normal(size=(K, d))
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    H = mu[y] + rng.normal(size=(n, d))
    W = mu - mu.mean(0) + 0.5 * rng.normal(size=(K, d))
    b = 0.1 * rng.normal(size=K)
    return H, y, W, b


# ----------------------------------------------------------------------- NCMetric fixes
def test_ncmetric_accepts_features_that_require_grad():
    H, y, W, b = data()
    feats = torch.tensor(H, requires_grad=True) * 1.0  # non-leaf, requires grad
    m = NCMetric(5, W, b)
    m.update(feats, torch.as_tensor(y), logits=feats @ torch.as_tensor(W).T)
    sp = m.second_pass()
    sp.update(feats, torch.as_tensor(y))
    res = m.compute(second=sp.result())
    ref = compute_all(statistics(H, y, 5), W, b)
    assert res["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-12)
    assert res["nc4"]["agreement"] is not None


def test_absent_class_is_reported_not_an_error():
    H, y, W, b = data(K=5)
    keep = y != 2
    st = statistics(H[keep], y[keep], 5)
    res = compute_all(st, W, b, groups={"a": [0, 1, 2], "b": [3, 4]}, minority=[2, 3, 4])
    assert res["data"]["absent_classes"] == [2]
    assert res["data"]["classes_measured"] == 4
    assert any("no samples" in w for w in res["warnings"])
    assert res["per_class"]["nc1"][2] is None and res["per_class"]["count"][2] == 0
    assert res["groups"]["a"]["classes"] == [0, 1, 2]
    # the same as measuring the 4 present classes relabelled 0..3
    relabel = np.array([0, 1, -1, 2, 3])
    ref = compute_all(statistics(H[keep], relabel[y[keep]], 4), W[[0, 1, 3, 4]], b[[0, 1, 3, 4]])
    for sec in ("nc1", "nc3"):
        for key in ("nc1", "cdnv", "quotient", "self_duality"):
            if key in ref[sec]:
                assert res[sec][key] == pytest.approx(ref[sec][key], rel=1e-12), key
    assert res["per_class"]["nc1"][3] == pytest.approx(ref["per_class"]["nc1"][2], rel=1e-12)
    # NCMetric over data missing a class, and a second pass over it
    m = NCMetric(5, W, b)
    m.update(H[keep], y[keep])
    sp = m.second_pass()
    sp.update(H[keep], y[keep])
    out = m.compute(second=sp.result())
    assert out["data"]["absent_classes"] == [2] and out["per_class"]["nc4"][2] is None


def test_held_out_second_pass_against_training_means():
    H, y, W, b = data(K=4, d=7, n=80, seed=1)
    Ht, yt, _, _ = data(K=4, d=7, n=37, seed=2)  # other data: counts differ
    st = statistics(H, y, 4)
    res = SecondPass(st, W, b).update(Ht, yt).result()
    assert not res.same_data
    # brute force: test samples around the TRAINING means, against the training Σ_B†
    mu = np.stack([H[y == c].mean(0) for c in range(4)])
    Mt = mu - mu.mean(0)
    P = np.linalg.pinv(Mt.T @ Mt / 4, rcond=1e-10, hermitian=True)
    Xc = Ht - mu[yt]
    per_sample = np.einsum("ij,jk,ik->i", Xc, P, Xc)
    assert res.nc1() == pytest.approx(per_sample.mean() / 4, rel=1e-10)
    per = np.array([per_sample[yt == c].mean() / 4 for c in range(4)])
    np.testing.assert_allclose(res.nc1_per_class(), per, rtol=1e-10)
    pred = np.argmax(Ht @ W.T + b, 1)
    ncc = np.argmin(((Ht[:, None] - mu[None]) ** 2).sum(-1), 1)
    assert res.nc4()["agreement"] == pytest.approx(np.mean(pred == ncc), abs=0)
    out = compute_all(st, W, b, second=res)
    assert "nc4" not in out  # the training NC4 is not replaced by the held-out one
    ho = out["held_out"]
    assert ho["nc1"] == pytest.approx(per_sample.mean() / 4, rel=1e-10)
    assert ho["nc1_gap"] == pytest.approx(ho["nc1"] - out["nc1"]["nc1"], rel=1e-12)
    assert ho["nc4"] == pytest.approx(np.mean(pred == ncc), abs=0)
    # a held-out class missing from the training data: left out of NCC and NC1, flagged
    st3 = statistics(H[y != 3], y[y != 3], 4)
    r3 = SecondPass(st3, W, b).update(Ht, yt).result()
    assert r3.absent == (3,) and np.isnan(r3.nc1_per_class()[3])
    assert np.isfinite(r3.nc1())


# ------------------------------------------------------------------------- new measures
def test_cdnv_distance_exponent_against_brute_force():
    H, y, _, _ = data(K=4, d=6, seed=3)
    st = statistics(H, y, 4)
    mu = [H[y == c].mean(0) for c in range(4)]
    var = [np.mean(np.sum((H[y == c] - mu[c]) ** 2, 1)) for c in range(4)]
    for p in (1.0, 2.0, 0.5):
        vals = [
            (var[i] + var[j]) / (2 * np.sum((mu[i] - mu[j]) ** 2) ** p)
            for i, j in itertools.combinations(range(4), 2)
        ]
        assert cdnv(st, dist_exp=p) == pytest.approx(np.mean(vals), rel=1e-12)
    assert compute_all(st, cdnv_dist_exp=2.0)["nc1"]["cdnv"] == pytest.approx(
        cdnv(st, dist_exp=2.0), rel=1e-14
    )
    with pytest.raises(NCollapseError, match="dist_exp"):
        cdnv(st, dist_exp=0)


def test_hyperspherical_uniformity_against_brute_force():
    H, y, _, _ = data(K=5, d=8, seed=4)
    st = statistics(H, y, 5)
    mu = np.stack([H[y == c].mean(0) for c in range(5)])
    x = mu - mu.mean(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = np.array([np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(5), 2)])
    s = 8 - 2
    for kernel, v in (("distance", dist), ("log", np.log(1 / dist)), ("riesz", dist ** (-s))):
        got = hyperspherical_uniformity(st, kernel)
        assert got["mean"] == pytest.approx(v.mean(), rel=1e-12), kernel
        assert got["var"] == pytest.approx(v.var(), rel=1e-10), kernel
    # a simplex ETF is perfectly uniform: every kernel has zero variance
    E = simplex_etf(6, 10, seed=0)
    yE = np.repeat(np.arange(6), 3)
    stE = statistics(5 * E[yE] + 1.0, yE, 6)
    for kernel in ("distance", "log", "riesz"):
        assert hyperspherical_uniformity(stE, kernel)["var"] == pytest.approx(0, abs=1e-20)
    res = compute_all(st)
    assert res["gnc2"]["log"]["var"] == pytest.approx(np.log(1 / dist).var(), rel=1e-10)
    with pytest.raises(NCollapseError, match="kernel='gauss'"):
        hyperspherical_uniformity(st, "gauss")


def test_uniform_duality_against_brute_force():
    H, y, W, _ = data(K=5, d=8, seed=5)
    st = statistics(H, y, 5)
    mu = np.stack([H[y == c].mean(0) for c in range(5)])
    Mt = mu - mu.mean(0)
    dot = np.array([W[c] @ Mt[c] for c in range(5)])
    cos = np.array([dot[c] / np.linalg.norm(W[c]) / np.linalg.norm(Mt[c]) for c in range(5)])
    got = uniform_duality(st, W)
    assert got["dot_var"] == pytest.approx(dot.var(), rel=1e-12)
    assert got["cos_var"] == pytest.approx(cos.var(), rel=1e-10)
    assert got["cos_cv"] == pytest.approx(cos.std() / abs(cos.mean()), rel=1e-10)
    # W proportional to the centred means: every cosine is 1, UNC3 variance 0
    assert uniform_duality(st, 2 * Mt)["cos_var"] == pytest.approx(0, abs=1e-24)
    assert compute_all(st, W)["nc3"]["unc3_dot_var"] == pytest.approx(dot.var(), rel=1e-12)


def test_nc5_ood_orthogonality_against_brute_force():
    H, y, _, _ = data(K=4, d=10, seed=6)
    st = statistics(H, y, 4)
    rng = np.random.default_rng(7)
    ood = rng.normal(size=(30, 10)) + 2.0
    mu = np.stack([H[y == c].mean(0) for c in range(4)])
    mg = mu.mean(0)
    v = ood.mean(0) - mg
    ref = np.mean([abs(np.dot(m - mg, v)) / np.linalg.norm(m - mg) / np.linalg.norm(v) for m in mu])
    assert ood_orthogonality(st, ood)["nc5"] == pytest.approx(ref, rel=1e-12)
    assert ood_orthogonality(st, ood.mean(0))["nc5"] == pytest.approx(ref, rel=1e-12)
    assert ood_orthogonality(st, statistics(ood, np.zeros(30, int), 2))["nc5"] == pytest.approx(
        ref, rel=1e-12
    )
    assert compute_all(st, ood=ood)["nc5"] == pytest.approx(ref, rel=1e-12)
    # OOD mean orthogonal to every centred class mean: NC5 = 0
    E = simplex_etf(3, 5, seed=1)  # rows span a 2-D subspace of R^5
    yE = np.repeat(np.arange(3), 2)
    stE = statistics(E[yE], yE, 3)
    null = np.linalg.svd(E)[2][-1]
    assert ood_orthogonality(stE, 3 * null + E.mean(0))["nc5"] == pytest.approx(0, abs=1e-12)
    with pytest.raises(NCollapseError, match="ood has shape"):
        ood_orthogonality(st, np.ones(3))


# ------------------------------------------------------------------- pseudo-inverse cut-off
def built_case():
    """Class means with one real direction of Σ_B at λ/λ_max ≈ 1.3e-12 and within-class scatter
    along it (the case of issue 13)."""
    rng = np.random.default_rng(8)
    K, d = 4, 6
    mu = np.zeros((K, d))
    mu[:, 0] = [3, -3, 3, -3]
    mu[:, 1] = [3, 3, -3, -3]
    mu[:, 2] = 3 * np.sqrt(1.3e-12) * np.array([1, -1, -1, 1])
    y = np.repeat(np.arange(K), 50)
    noise = rng.normal(size=(len(y), d))
    noise -= np.stack([noise[y == c].mean(0) for c in range(K)])[y]  # class means exact
    return mu[y] + noise, y, K


def test_pinv_cutoff_dropping_a_real_direction_is_flagged():
    H, y, K = built_case()
    st = statistics(H, y, K)
    rep = pinv_report(st)
    assert rep["dropped"] == 1 and rep["structural_rank"] == 3
    assert rep["max_dropped_ratio"] == pytest.approx(1.3e-12, rel=1e-3)
    res = compute_all(st)
    assert res["nc1"]["pinv_dropped"] == 1
    assert any("dropped 1 direction" in w for w in res["warnings"])
    # the truth (brute force with no cut-off below the real direction) is 1e11 times larger
    mu = np.stack([H[y == c].mean(0) for c in range(K)])
    Mt = mu - mu.mean(0)
    Xc = H - mu[y]
    true = np.trace(Xc.T @ Xc / len(y) @ np.linalg.pinv(Mt.T @ Mt / K, rcond=1e-14)) / K
    assert true / res["nc1"]["nc1"] > 1e9
    assert nc1(st, rtol=1e-14) == pytest.approx(true, rel=1e-3)
    assert compute_all(st, rtol=1e-14)["nc1"]["pinv_dropped"] == 0
    assert compute_all(st, rtol=1e-14)["warnings"] == []


@pytest.mark.parametrize("mean", ["unweighted", "weighted"])
def test_between_rank_is_k_minus_1_for_both_means(mean):
    H, y, _, _ = data(K=5, d=9)
    res = compute_all(statistics(H, y, 5), mean=mean)
    assert res["nc1"]["between_rank"] == 4
    assert res["nc1"]["pinv_dropped"] == 0 and res["warnings"] == []
