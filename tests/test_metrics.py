"""ncollapse.metrics: closed forms (ETF, SELI, NCMC), streaming/merge invariances, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncollapse.errors import NCollapseError
from ncollapse.geometry import (
    multicenter_frame,
    random_orthonormal,
    seli_factors,
    simplex_etf,
    step_counts,
)
from ncollapse.metrics import (
    NCMetric,
    NCStats,
    SecondPass,
    Statistics,
    compute_all,
    minority_collapse,
    nc1,
    nc1_per_class,
    nc4_agreement,
    ncmc,
    norms_vs_counts,
    second_pass,
    statistics,
    target_distances,
)


def labels_for(counts, seed=0):
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    np.random.default_rng(seed).shuffle(y)
    return y


def noisy(K=5, d=9, counts=(40, 25, 12, 6, 3), seed=0, offset=0.0, spread=1.0):
    rng = np.random.default_rng(seed)
    y = labels_for(counts, seed)
    mu = 3 * rng.normal(size=(K, d)) + offset
    H = mu[y] + spread * rng.normal(size=(len(y), d))
    return H, y


def assert_stats_close(a: Statistics, b: Statistics, rtol=1e-12, atol=1e-12):
    np.testing.assert_array_equal(a.counts, b.counts)
    for name in ("sums", "scatter", "class_ss", "class_scatter", "logit_sums", "nc_mean", "nc_m2",
                 "var_mean", "var_m2"):  # fmt: skip
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=name)


# ------------------------------------------------------------------ closed-form geometries
@pytest.mark.parametrize("mean", ["unweighted", "weighted"])
def test_exactly_collapsed_etf_features(mean):
    counts = [50, 20, 10, 5, 2]
    K, d = 5, 8
    E = simplex_etf(K, d, seed=1)
    y = labels_for(counts)
    shift = np.linspace(-1, 2, d)  # a common offset is removed by centring
    H = 2.5 * E[y] + shift
    W = 0.7 * E
    b = -W @ shift  # the bias undoes the offset, so the classifier is the ETF rule
    st = statistics(H, y, K, batch_size=13)
    res = compute_all(st, W, b, second=second_pass(st, [(H, y)], W, b))
    assert res["nc1"]["nc1"] == pytest.approx(0.0, abs=1e-20)
    assert res["nc1"]["nc1"] >= 0.0
    assert res["nc1"]["cdnv"] == pytest.approx(0.0, abs=1e-20)
    assert res["nc2"]["dist_etf_W"] == pytest.approx(0.0, abs=1e-12)
    assert res["nc2"]["dist_WM"] == pytest.approx(0.0, abs=1e-12)
    assert res["nc4"]["agreement"] == 1.0
    # SELI differs from the ETF under imbalance (K >= 3)
    assert res["nc2"]["dist_seli_W"] > 0.1
    r = compute_all(st, W, mean=mean)
    if mean == "unweighted":
        assert r["nc2"]["dist_etf_M"] == pytest.approx(0.0, abs=1e-12)
        assert r["nc2"]["means"]["equinorm"] == pytest.approx(0.0, abs=1e-12)
        assert r["nc2"]["means"]["equiangularity"] == pytest.approx(0.0, abs=1e-12)
        assert r["nc2"]["means"]["max_angle"] == pytest.approx(0.0, abs=1e-12)
        assert r["nc3"]["self_duality"] == pytest.approx(0.0, abs=1e-7)
        assert r["nc3"]["self_duality_sq"] == pytest.approx(0.0, abs=1e-14)
        assert r["nc2"]["dist_seli_M"] > 0.1
    else:  # the sample-weighted mean is not the ETF's centre under imbalance: a real difference
        assert r["nc2"]["dist_etf_M"] > 0.05
        assert r["nc3"]["self_duality"] > 0.05


def test_seli_closed_form_features():
    counts = [30, 30, 10, 3, 1]
    K = len(counts)
    y = labels_for(counts, seed=2)
    f = seli_factors(y)
    d = K + 3
    Q = random_orthonormal(d, K - 1, seed=3)  # embed the (K-1)-dim factors in R^d
    H = f.H.T @ Q.T
    W = f.W @ Q.T
    st = statistics(H, y, K, batch_size=7)
    sec = second_pass(st, [(H, y)], W)
    res = compute_all(st, W, second=sec)
    for key in ("dist_seli_M", "dist_seli_W", "dist_WM"):
        assert res["nc2"][key] == pytest.approx(0.0, abs=1e-10), key
    assert res["nc2"]["dist_etf_M"] > 0.05
    assert res["nc2"]["dist_etf_W"] > 0.05
    assert res["nc1"]["nc1"] == pytest.approx(0.0, abs=1e-20)
    assert res["nc3"]["seli_duality"] == pytest.approx(0.0, abs=1e-10)
    assert res["nc3"]["self_duality"] > 0.05  # self-duality fails under imbalance
    # features in exactly K-1 dimensions (d < K) give the same numbers
    st2 = statistics(f.H.T, y, K)
    assert target_distances(st2, f.W)["dist_seli_M"] == pytest.approx(0.0, abs=1e-10)


def test_seli_balanced_equals_etf():
    y = labels_for([6, 6, 6, 6])
    f = seli_factors(y)
    st = statistics(f.H.T, y, 4)
    td = target_distances(st, f.W)
    for key in ("dist_etf_M", "dist_seli_M", "dist_etf_W", "dist_seli_W", "dist_WM"):
        assert td[key] == pytest.approx(0.0, abs=1e-10)


def test_seli_step_reference_table():
    """SELI STEP closed forms (Thrampoulidis et al., arXiv 2208.05512, Sec. 3), k=10,
    k_maj=k_min=5, n_min=1, R=10 (unsquared ratios)."""
    counts = step_counts(5, 5, 10, 1)
    y = labels_for(counts, seed=4)
    f = seli_factors(y)
    st = statistics(f.H.T, y, 10)
    nv = norms_vs_counts(st, f.W)
    assert nv["w_norm_ratio_max_min"] == pytest.approx(1.6347, abs=1e-4)
    assert nv["mean_norm_ratio_max_min"] == pytest.approx(0.5923, abs=1e-4)
    mino = minority_collapse(st, range(5, 10), f.W)
    assert mino["classifier_cos"] == pytest.approx(0.0334, abs=1e-4)
    assert mino["mean_cos"] == pytest.approx(-0.1867, abs=1e-4)
    maj = minority_collapse(st, range(5), f.W)
    assert maj["classifier_cos"] == pytest.approx(-0.1440, abs=1e-4)
    assert maj["mean_cos"] == pytest.approx(-0.0697, abs=1e-4)
    # slopes: classifier norms grow with n_c, mean norms shrink
    assert nv["w_norm_loglog_slope"] > 0 > nv["mean_norm_loglog_slope"]
    # equal counts: no ratio, no slope
    y2 = labels_for([4, 4, 4])
    nv2 = norms_vs_counts(statistics(seli_factors(y2).H.T, y2, 3))
    assert nv2["mean_norm_ratio_max_min"] is None and nv2["mean_norm_loglog_slope"] is None


# ---------------------------------------------------------------------- NCMC
def test_ncmc_zero_when_features_on_mean_centers():
    counts = [20, 10, 5]
    frame = multicenter_frame([2, 3, 4], d=16, theta=0.2, seed=0)
    y = labels_for(counts)
    scale = 1 + np.arange(len(y))[:, None] % 3  # any positive scale
    H = scale * frame.mean_centers[y]
    st = statistics(H, y, 3, centers=frame.mean_centers, w0=frame.W0, batch_size=9)
    out = ncmc(st)
    assert out["NC_ave"] == pytest.approx(0.0, abs=1e-14)
    assert out["NC_std"] == pytest.approx(0.0, abs=1e-7)
    # variability = 1 - cos(w̄_k, w_k) = 1 - cos ρ_k (class-weighted by samples)
    ref_var = np.sum(np.asarray(counts) * (1 - frame.cos_rho)) / sum(counts)
    assert out["variability"] == pytest.approx(ref_var, rel=1e-12)
    assert out["variability"] > 0.01


def test_ncmc_known_values():
    K, d = 3, 10
    frame = multicenter_frame([2, 2, 2], d=d, theta=0.3, seed=1)
    cbar = frame.mean_centers / np.linalg.norm(frame.mean_centers, axis=1, keepdims=True)
    # a unit direction orthogonal to every center and W0 row
    Q = np.linalg.qr(np.column_stack([frame.W0.T, frame.V.T, np.eye(d)]))[0]
    perp = Q[:, K + 6]
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, 200)
    y[:K] = np.arange(K)
    phi = rng.uniform(0, 1.0, size=y.size)
    H = np.cos(phi)[:, None] * cbar[y] + np.sin(phi)[:, None] * perp
    H *= rng.uniform(0.5, 2, size=(y.size, 1))
    nc = 2 - 2 * np.cos(phi)  # ‖ĥ − ĉ‖² for unit vectors at angle φ
    var = 1 - np.cos(phi) * (cbar[y] * frame.W0[y]).sum(1)
    st = statistics(H, y, K, centers=frame.mean_centers, w0=frame.W0, batch_size=31)
    out = ncmc(st)
    assert out["NC_ave"] == pytest.approx(nc.mean(), rel=1e-12)
    assert out["NC_std"] == pytest.approx(nc.std(), rel=1e-10)
    assert out["variability"] == pytest.approx(var.mean(), rel=1e-12)
    np.testing.assert_allclose(
        out["NC_ave_per_class"], [nc[y == c].mean() for c in range(K)], rtol=1e-12
    )
    assert ncmc(statistics(H, y, K)) is None


# ------------------------------------------------------------ streaming / merge / order
def _stream(H, y, K, splits, Z=None, **kw):
    acc = NCStats(K, **kw)
    edges = [0, *splits, len(y)]
    for a, b in zip(edges[:-1], edges[1:]):
        acc.update(H[a:b], y[a:b], None if Z is None else Z[a:b])
    return acc


@pytest.mark.parametrize("per_class_scatter", [True, False])
def test_streaming_equals_full_batch_random_splits(per_class_scatter):
    H, y = noisy()
    K = 5
    rng = np.random.default_rng(1)
    Z = H @ rng.normal(size=(9, K))
    centers, w0 = rng.normal(size=(K, 9)), rng.normal(size=(K, 9))  # any nonzero rows will do
    kw = dict(per_class_scatter=per_class_scatter, centers=centers, w0=w0)
    full = _stream(H, y, K, [], Z, **kw).snapshot()
    rng = np.random.default_rng(5)
    for _ in range(4):
        cuts = sorted(rng.choice(np.arange(1, len(y)), size=rng.integers(1, 12), replace=False))
        part = _stream(H, y, K, cuts, Z, **kw).snapshot()
        assert_stats_close(full, part, rtol=1e-11, atol=1e-10)
    # one-sample batches and empty batches are fine too
    acc = NCStats(K, **kw)
    acc.update(H[:0], y[:0], Z[:0])
    for i in range(len(y)):
        acc.update(H[i : i + 1], y[i : i + 1], Z[i : i + 1])
    assert_stats_close(full, acc.snapshot(), rtol=1e-10, atol=1e-10)


def test_invariance_to_sample_order():
    H, y = noisy(seed=1)
    W = np.random.default_rng(2).normal(size=(5, 9))
    perm = np.random.default_rng(3).permutation(len(y))
    st1 = statistics(H, y, 5, batch_size=11)
    st2 = statistics(H[perm], y[perm], 5, batch_size=11)
    assert_stats_close(st1, st2, rtol=1e-11, atol=1e-10)
    r1 = compute_all(st1, W, second=second_pass(st1, [(H, y)], W))
    r2 = compute_all(st2, W, second=second_pass(st2, [(H[perm], y[perm])], W))
    for sec in ("nc1", "nc3", "gnc2"):
        for k, v in r1[sec].items():
            if v is None:
                assert r2[sec][k] is None, k
            else:
                assert r2[sec][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert r1["nc4"] == r2["nc4"]


@pytest.mark.parametrize("per_class_scatter", [True, False])
def test_merge_equals_one_accumulator(per_class_scatter):
    H, y = noisy(seed=2)
    Z = H[:, :5].copy()
    one = _stream(H, y, 5, [30, 60], Z, per_class_scatter=per_class_scatter)
    a = _stream(H[:37], y[:37], 5, [10], Z[:37], per_class_scatter=per_class_scatter)
    b = _stream(H[37:], y[37:], 5, [5, 20], Z[37:], per_class_scatter=per_class_scatter)
    a.merge(b)
    assert_stats_close(one.snapshot(), a.snapshot(), rtol=1e-11, atol=1e-10)
    # merging into an empty accumulator, and an empty one into a full one
    e = NCStats(5, per_class_scatter=per_class_scatter).merge(one)
    e.merge(NCStats(5))
    assert_stats_close(one.snapshot(), e.snapshot())
    # second-pass accumulators merge by plain sums
    st = one.snapshot()
    W = np.eye(5, 9)
    s1 = SecondPass(st, W).update(H[:50], y[:50])
    s2 = SecondPass(st, W).update(H[50:], y[50:])
    whole = second_pass(st, [(H, y)], W)
    merged = s1.merge(s2).result()
    np.testing.assert_array_equal(merged.agree, whole.agree)
    np.testing.assert_allclose(merged.proj_ss["weighted"], whole.proj_ss["weighted"], rtol=1e-12)


def test_stable_with_large_offset_and_tiny_spread():
    """Nearly collapsed features far from the origin: raw second moments would lose every digit."""
    H, y = noisy(spread=1e-4, seed=4)
    ref = nc1(statistics(H, y, 5, batch_size=16))
    shifted = statistics(H + 1e6, y, 5, batch_size=16)
    assert nc1(shifted) == pytest.approx(ref, rel=1e-5)
    # a raw-moment scheme (Σ_W = (XᵀX − Σ_c n_c μ_c μ_cᵀ)/N) loses every digit here
    X = H + 1e6
    mu = np.array([X[y == c].mean(0) for c in range(5)])
    n = np.bincount(y)
    sw_naive = (X.T @ X - (mu.T * n) @ mu) / len(y)
    sw_true = statistics(H, y, 5).scatter / len(y)
    assert np.abs(sw_naive - sw_true).max() > 10 * np.abs(sw_true).max()
    np.testing.assert_allclose(shifted.scatter / len(y), sw_true, rtol=1e-4, atol=1e-12)


def test_state_dict_roundtrip_and_ncmetric():
    H, y = noisy(seed=5)
    W = np.random.default_rng(0).normal(size=(5, 9))
    acc = _stream(H, y, 5, [20])
    acc2 = NCStats(5).load_state_dict(acc.state_dict())
    assert_stats_close(acc.snapshot(), acc2.snapshot(), rtol=0, atol=0)
    acc2.update(H[:3], y[:3])
    assert acc.snapshot().total == len(y)  # the copy is independent
    m = NCMetric(5, W, groups={"head": [0, 1], "tail": [2, 3, 4]}, minority="tail")
    m.update(torch.as_tensor(H[:50], dtype=torch.float32), torch.as_tensor(y[:50]))
    m.update(torch.as_tensor(H[50:], dtype=torch.float32), torch.as_tensor(y[50:]))
    out = m.compute()
    ref = compute_all(
        statistics(H.astype(np.float32), y, 5), W, groups={"head": [0, 1], "tail": [2, 3, 4]},
        minority="tail",
    )  # fmt: skip
    assert out["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-10)
    assert out["minority"]["classes"] == [2, 3, 4]
    assert set(out["groups"]) == {"head", "tail"}
    m.reset()
    with pytest.raises(NCollapseError, match="no samples"):
        m.compute()
    m2 = NCMetric(5).load_state_dict(acc.state_dict())
    assert m2.compute()["data"]["samples"] == len(y)


def test_statistics_is_immutable():
    st = statistics(*noisy())
    with pytest.raises(ValueError):
        st.sums[0, 0] = 1.0
    with pytest.raises(AttributeError):
        st.counts = np.ones(5)


def test_nc1_clipped_nonnegative_and_degenerate():
    K, d = 3, 4
    E = simplex_etf(K, d, seed=0)
    y = labels_for([7, 5, 3])
    st = statistics(E[y] * 1e8 + 1e-3, y, K)
    assert nc1(st) >= 0.0
    # all class means equal: Σ_B = 0, NC1 undefined (NaN), not an error
    st0 = statistics(np.ones((15, d)), y, K)
    assert np.isnan(nc1(st0))


def test_logits_measures():
    H, y = noisy(seed=6)
    W = np.random.default_rng(1).normal(size=(5, 9))
    b = np.arange(5.0)
    Z = H @ W.T + b
    acc = _stream(H, y, 5, [40], Z)
    st = acc.snapshot()
    res = compute_all(st, W, b)
    assert res["logits"]["accuracy"] == pytest.approx(np.mean(Z.argmax(1) == y))
    # column-centred class-mean logits equal W M̃ᵀ, so the distance equals dist_WM (bias removed)
    assert res["logits"]["dist_logits_P"] == pytest.approx(res["nc2"]["dist_WM"], rel=1e-10)
    # NC4 from streamed logits in the second pass equals NC4 from W, b
    sp = SecondPass(st)
    sp.update(H, y, Z)
    assert sp.result().nc4()["agreement"] == nc4_agreement(st, [(H, y)], W, b)


def test_group_views_are_consistent():
    H, y = noisy(seed=7)
    W = np.random.default_rng(1).normal(size=(5, 9))
    st = statistics(H, y, 5, per_class_scatter=True)
    groups = {"many": [0, 1], "few": [2, 3, 4], "none": []}
    res = compute_all(st, W, groups=groups, minority=[3, 4])
    g = res["groups"]
    assert g["none"] == {"classes": [], "n_classes": 0}
    n = st.counts
    pc = np.asarray(res["per_class"]["nc1"])
    assert g["few"]["nc1"] == pytest.approx(np.sum(pc[2:] * n[2:]) / n[2:].sum(), rel=1e-12)
    # the sample-weighted groups recombine into the global NC1
    tot = (
        g["many"]["nc1"] * g["many"]["n_samples"] + g["few"]["nc1"] * g["few"]["n_samples"]
    ) / len(y)
    assert tot == pytest.approx(res["nc1"]["nc1"], rel=1e-10)
    assert g["few"]["classifier_cos"] == pytest.approx(
        minority_collapse(st, [2, 3, 4], W)["classifier_cos"]
    )
    assert res["minority"]["classes"] == [3, 4]
    c34 = W[3] @ W[4] / np.linalg.norm(W[3]) / np.linalg.norm(W[4])
    assert res["minority"]["classifier_cos"] == pytest.approx(c34)


def test_compute_all_is_json_serialisable():
    import json

    from ncollapse.io import to_jsonable

    H, y = noisy(seed=8)
    res = compute_all(statistics(H, y, 5), np.ones((5, 9)))  # identical rows: NaN cosines
    text = json.dumps(to_jsonable(res), allow_nan=False)
    assert '"nc1"' in text


def test_k2_and_d_less_than_k():
    # K = 2: the two centred means are antipodal -> equiangularity 0, max-angle 0
    H, y = noisy(K=2, d=3, counts=(30, 5), seed=9)
    res = compute_all(statistics(H, y, 2))
    assert res["nc2"]["means"]["mean_cos"] == pytest.approx(-1.0)
    assert res["nc2"]["means"]["max_angle"] == pytest.approx(0.0, abs=1e-12)
    assert res["nc1"]["between_rank"] == 1
    # d = 2 < K = 6: Σ_B has rank <= 2
    H, y = noisy(K=6, d=2, counts=(9, 8, 7, 6, 5, 4), seed=10)
    res = compute_all(statistics(H, y, 6))
    assert res["nc1"]["between_rank"] == 2
    assert res["conventions"]["pinv"].startswith("thin SVD")
    assert res["nc1"]["nc1"] > 0


# -------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    H, y = noisy()
    acc = NCStats(5)
    bad = H.copy()
    bad[3, 2] = np.nan
    with pytest.raises(NCollapseError, match=r"features has 1 NaN/inf .* index \(3, 2\)"):
        acc.update(bad, y)
    bad[3, 2] = np.inf
    with pytest.raises(NCollapseError, match="NaN/inf"):
        NCStats(5).update(bad, y)
    with pytest.raises(NCollapseError, match=r"labels\[\d+\]=5 is out of range .* 0\.\.4"):
        NCStats(5).update(H, np.where(y == 0, 5, y))
    with pytest.raises(NCollapseError, match=r"labels\[\d+\]=-1"):
        NCStats(5).update(H, np.where(y == 0, -1, y))
    with pytest.raises(NCollapseError, match="non-integer"):
        NCStats(5).update(H, y + 0.5)
    with pytest.raises(NCollapseError, match="rows but labels have"):
        NCStats(5).update(H, y[:-1])
    with pytest.raises(NCollapseError, match="2-D array"):
        NCStats(5).update(H[0], y[:1])
    with pytest.raises(NCollapseError, match="argmax"):
        NCStats(5).update(H, np.eye(5)[y])
    acc = NCStats(5).update(H, y)
    with pytest.raises(NCollapseError, match="d=4 columns but the statistics have d=9"):
        acc.update(H[:, :4], y)
    with pytest.raises(NCollapseError, match="at least 2 classes"):
        NCStats(1)
    with pytest.raises(NCollapseError, match="logits have shape"):
        NCStats(5).update(H, y, np.zeros((len(y), 4)))
    with pytest.raises(NCollapseError, match="earlier batches had"):
        NCStats(5).update(H, y, np.zeros((len(y), 5))).update(H, y)
    with pytest.raises(NCollapseError, match="centers has shape"):
        NCStats(5, 9, centers=np.ones((5, 8))).update(H, y)
    st = acc.snapshot()
    with pytest.raises(NCollapseError, match=r"W has shape \(9, 5\).*transposed"):
        compute_all(st, np.ones((9, 5)))
    with pytest.raises(NCollapseError, match=r"W has shape \(4, 9\), expected \(K, d\) = \(5, 9\)"):
        compute_all(st, np.ones((4, 9)))
    with pytest.raises(
        NCollapseError, match=r"W has 5 NaN/inf value\(s\), first at index \(0, 0\)"
    ):
        compute_all(st, np.where(np.eye(5, 9) == 1, np.nan, 0.0))
    with pytest.raises(NCollapseError, match=r"b has shape \(4,\)"):
        compute_all(st, np.ones((5, 9)), np.ones(4))
    with pytest.raises(NCollapseError, match="mean='median'"):
        compute_all(st, mean="median")
    with pytest.raises(NCollapseError, match="at least 2 minority"):
        compute_all(st, minority=[1])
    with pytest.raises(NCollapseError, match="minority group 'few'"):
        compute_all(st, minority="few", groups={"many": [0]})
    with pytest.raises(NCollapseError, match="group 'g' contains class 7"):
        compute_all(st, groups={"g": [0, 7]})
    with pytest.raises(NCollapseError, match=r"only class\(es\) \[0\] have samples"):
        compute_all(statistics(H[y == 0], y[y == 0], 5))
    with pytest.raises(NCollapseError, match="per-class scatters"):
        nc1(statistics(H, y, 5, per_class_scatter=False), within="class")
    with pytest.raises(NCollapseError, match="saw different data"):
        nc1_per_class(
            statistics(H, y, 5, per_class_scatter=False), second=second_pass(st, [(H[:10], y[:10])])
        )
    with pytest.raises(NCollapseError, match="measures=.*'nc9'"):
        second_pass(st, [(H, y)], measures=("nc9",))
    with pytest.raises(NCollapseError, match="NC4 needs a classifier"):
        nc4_agreement(st, [(H, y)])
    with pytest.raises(NCollapseError, match="zero vector"):
        NCStats(5, centers=np.eye(5, 9)).update(np.zeros_like(H), y)
    with pytest.raises(NCollapseError, match="no samples seen"):
        NCStats(5).snapshot()
    with pytest.raises(NCollapseError, match="cannot merge accumulators with K=5 and K=4"):
        NCStats(5).merge(NCStats(4))
    with pytest.raises(NCollapseError, match="keeps class_scatter"):
        NCStats(5, per_class_scatter=True).update(H, y).merge(
            NCStats(5, per_class_scatter=False).update(H, y)
        )


def test_failed_update_leaves_state_unchanged():
    H, y = noisy(seed=11)
    acc = NCStats(5).update(H, y)
    before = acc.snapshot()
    bad = H.copy()
    bad[7, 1] = np.inf
    with pytest.raises(NCollapseError, match=r"index \(7, 1\)"):
        acc.update(bad, y)
    assert_stats_close(before, acc.snapshot(), rtol=0, atol=0)
    acc.update(H, y)  # still usable
    assert acc.snapshot().total == 2 * len(y)
    # a first batch with logits that fails leaves no trace of logits either
    fresh = NCStats(5)
    with pytest.raises(NCollapseError, match="NaN/inf"):
        fresh.update(bad, y, np.zeros((len(y), 5)))
    assert fresh.update(H, y).snapshot().logit_sums is None


@pytest.mark.gpu
def test_cuda_matches_cpu():
    H, y = noisy(seed=12)
    W = np.random.default_rng(0).normal(size=(5, 9))
    Hc = torch.as_tensor(H, dtype=torch.float32, device="cuda")
    yc = torch.as_tensor(y, device="cuda")
    acc = NCStats(5).update(Hc[:40], yc[:40]).update(Hc[40:], yc[40:])
    assert acc.device.type == "cuda"
    st = acc.snapshot()
    ref = statistics(H.astype(np.float32), y, 5)
    assert_stats_close(st, ref, rtol=1e-10, atol=1e-10)
    sp = SecondPass(st, W).update(Hc, yc).result()
    np.testing.assert_array_equal(sp.agree, second_pass(ref, [(H.astype(np.float32), y)], W).agree)
