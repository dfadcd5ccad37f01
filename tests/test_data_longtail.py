"""Long-tailed builders (LDAM convention), manifests, samplers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ncollapse.data import (
    LTManifest,
    exp_profile,
    make_long_tailed,
    make_sampler,
    sampler_class_probs,
    step_profile,
)
from ncollapse.errors import NCollapseError

CIFAR10_RHO100 = [
    5000,
    2997,
    1796,
    1077,
    645,
    387,
    232,
    139,
    83,
    50,
]  # LDAM-DRW's get_img_num_per_cls, arXiv:1906.07413 Sec. 4


def ldam_reference(labels, img_max, k, imb_factor, seed):
    """LDAM-DRW's IMBALANCECIFAR procedure, written out with numpy's *global* RNG."""
    img_num = [int(img_max * (imb_factor ** (i / (k - 1.0)))) for i in range(k)]
    np.random.seed(seed)  # noqa: NPY002
    targets = np.array(labels, dtype=np.int64)
    sel = []
    for the_class, n in zip(np.unique(targets), img_num):
        idx = np.where(targets == the_class)[0]
        np.random.shuffle(idx)  # noqa: NPY002
        sel.append(idx[:n])
    return img_num, np.concatenate(sel)


def test_cifar10_rho100_counts_match_spec():
    assert exp_profile(5000, 10, 100).tolist() == CIFAR10_RHO100
    assert exp_profile(5000, 10, tau=0.01).tolist() == CIFAR10_RHO100
    assert (
        int(exp_profile(500, 100, 100).sum()) == 10847
    )  # CIFAR-100-LT, rho=100 (arXiv:1906.07413)
    assert int(exp_profile(5000, 10, 100).sum()) == 12406
    assert int(exp_profile(5000, 10, 50).sum()) == 13996


def test_fashion_mnist_rho100_counts():
    got = exp_profile(6000, 10, 100).tolist()
    assert got == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    # independent closed form with exact rationals away from float ties
    indep = [math.floor(6000 * 100 ** (-i / 9) + 1e-9) for i in range(10)]
    assert got == indep


def test_step_profile():
    assert step_profile(500, 5, 5, 100).tolist() == [500] * 5 + [5] * 5
    assert step_profile(100, 2, 3, 10).tolist() == [100, 100, 10, 10, 10]


def test_selection_matches_ldam_procedure_and_leaves_global_rng_alone():
    labels = np.tile(np.arange(10), 300)  # 300 per class, interleaved like a real dataset
    np.random.seed(123)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    lt = make_long_tailed(labels, rho=100, seed=0)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    counts, ref = ldam_reference(labels, 300, 10, 0.01, 0)
    assert lt.counts.tolist() == counts
    assert np.array_equal(lt.indices, ref)
    assert np.bincount(labels[lt.indices], minlength=10).tolist() == counts
    other = make_long_tailed(labels, rho=100, seed=1)
    assert not np.array_equal(other.indices, lt.indices)
    _, ref1 = ldam_reference(labels, 300, 10, 0.01, 1)
    assert np.array_equal(other.indices, ref1)


def test_tau_only_by_name_and_rho_below_one_rejected():
    labels = np.repeat(np.arange(4), 50)
    a = make_long_tailed(labels, rho=10)
    b = make_long_tailed(labels, tau=0.1)
    assert a.counts.tolist() == b.counts.tolist()
    with pytest.raises(NCollapseError, match="tau=0.01"):
        make_long_tailed(labels, rho=0.01)
    with pytest.raises(NCollapseError, match="not both"):
        make_long_tailed(labels, rho=10, tau=0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rho": 100}, "empty"),  # 50 per class: n_max/rho = 0.5 < 1
        ({"profile": "linear", "rho": 2}, "unknown profile"),
        ({"profile": "step", "rho": 2}, "k_maj"),
        ({"profile": "step", "k_maj": 2, "k_min": 3, "R": 2}, "K=4"),
        ({"counts": [10, 10, 10]}, "K=4"),
        ({"counts": [60, 10, 10, 10]}, "only 50"),
        ({"profile": "exp"}, "rho"),
        ({"rho": 2, "seed": -1}, "seed"),
    ],
)
def test_builder_errors(kwargs, match):
    labels = np.repeat(np.arange(4), 50)
    with pytest.raises(NCollapseError, match=match):
        make_long_tailed(labels, **kwargs)


def test_k1_and_profile_errors():
    with pytest.raises(NCollapseError, match="at least 2 classes"):
        make_long_tailed(np.zeros(20, dtype=int), rho=2)
    with pytest.raises(NCollapseError, match="at least 2 classes"):
        exp_profile(100, 1, 10)
    with pytest.raises(NCollapseError, match="empty"):
        exp_profile(5000, 10, 10000)
    with pytest.raises(NCollapseError, match="empty"):
        step_profile(10, 2, 2, 20)
    with pytest.raises(NCollapseError, match="no samples"):
        make_long_tailed(np.array([0, 0, 2, 2]), rho=1)


def test_step_and_counts_profiles_select_right_numbers():
    labels = np.repeat(np.arange(6), 40)
    st = make_long_tailed(labels, profile="step", k_maj=2, k_min=4, R=8, seed=3)
    assert st.counts.tolist() == [40, 40, 5, 5, 5, 5]
    assert np.bincount(labels[st.indices]).tolist() == [40, 40, 5, 5, 5, 5]
    ct = make_long_tailed(labels, counts=[7, 6, 5, 4, 3, 2])
    assert ct.manifest.profile == "counts"
    assert np.bincount(labels[ct.indices]).tolist() == [7, 6, 5, 4, 3, 2]
    full = make_long_tailed(labels, profile="none")
    assert sorted(full.indices.tolist()) == list(range(240))


def test_manifest_roundtrip_and_exact_rebuild(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(5), 80))
    for kw in (
        {"rho": 20},
        {"tau": 0.05},
        {"profile": "step", "k_maj": 2, "k_min": 3, "R": 4},
        {"counts": [9, 8, 7, 6, 5]},
    ):
        lt = make_long_tailed(labels, seed=7, dataset="toy:train", **kw)
        path = lt.manifest.save(tmp_path / "m.json")
        d = json.loads(path.read_text())
        assert d["counts"] == lt.counts.tolist() and d["seed"] == 7 and d["dataset"] == "toy:train"
        assert "indices" not in d
        m = LTManifest.load(path)
        assert m == lt.manifest
        again = m.rebuild(labels)
        assert np.array_equal(again.indices, lt.indices)
    # with the index list stored
    lt.save_manifest(tmp_path / "mi.json", include_indices=True)
    m = LTManifest.load(tmp_path / "mi.json")
    assert m.indices == lt.indices.tolist()
    assert np.array_equal(m.rebuild(labels).indices, lt.indices)


def test_manifest_detects_other_labels_and_corruption(tmp_path):
    labels = np.repeat(np.arange(3), 30)
    lt = make_long_tailed(labels, rho=3)
    p = lt.manifest.save(tmp_path / "m.json")
    m = LTManifest.load(p)
    with pytest.raises(NCollapseError, match="labels differ"):
        m.rebuild(labels[::-1].copy())
    d = json.loads(p.read_text())
    d["indices_sha256"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(NCollapseError, match="does not match"):
        LTManifest.load(tmp_path / "bad.json").rebuild(labels)
    (tmp_path / "trunc.json").write_text(p.read_text()[:40])
    with pytest.raises(NCollapseError, match="not valid JSON"):
        LTManifest.load(tmp_path / "trunc.json")
    (tmp_path / "other.json").write_text('{"counts": [1, 2]}')
    with pytest.raises(NCollapseError, match="lacks"):
        LTManifest.load(tmp_path / "other.json")
    with pytest.raises(NCollapseError, match="does not exist"):
        LTManifest.load(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------------
# samplers
# ------------------------------------------------------------------------------------------------

COUNTS = np.array([400, 100, 25, 4])


@pytest.mark.parametrize(
    "name,expected",
    [
        ("class-balanced", np.full(4, 0.25)),
        ("square-root", np.sqrt(COUNTS) / np.sqrt(COUNTS).sum()),
        (
            "reversed",
            (COUNTS.max() / COUNTS) / (COUNTS.max() / COUNTS).sum(),
        ),  # BBN: w_k = n_max/n_k
        ("instance", COUNTS / COUNTS.sum()),
    ],
)
def test_sampler_class_frequencies(name, expected):
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(4), COUNTS))
    assert np.allclose(sampler_class_probs(name, COUNTS), expected)
    n = 60000
    s = make_sampler(name, labels, num_samples=n, seed=5)
    idx = s.indices(0)
    assert idx.shape == (n,) and idx.dtype == np.int64
    freq = np.bincount(labels[idx], minlength=4) / n
    tol = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-12
    assert np.all(np.abs(freq - expected) <= tol), (freq, expected)
    # within a class, samples are drawn uniformly: every sample of the 4-image class shows up
    tail = np.flatnonzero(labels == 3)
    assert set(idx[labels[idx] == 3].tolist()) == set(tail.tolist())


def test_instance_sampler_is_a_permutation_and_seeded():
    labels = np.arange(50) % 5
    s = make_sampler("instance", labels, seed=1)
    a, b = s.indices(0), s.indices(1)
    assert sorted(a.tolist()) == list(range(50)) and not np.array_equal(a, b)
    assert np.array_equal(a, make_sampler("instance", labels, seed=1).indices(0))
    assert np.array_equal(make_sampler("instance", labels, shuffle=False).indices(3), np.arange(50))
    s.set_epoch(1)
    assert list(iter(s)) == b.tolist() and len(s) == 50
    cb = make_sampler("balanced", labels, seed=2)
    assert np.array_equal(cb.indices(4), make_sampler("class-balanced", labels, seed=2).indices(4))
    with pytest.raises(NCollapseError, match="unknown sampler"):
        make_sampler("progressive-ish", labels)
