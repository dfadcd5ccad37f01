"""NCMC center counts and multi-center frames (spec ncmc-allnc.md §1.3, §1.6)."""

import numpy as np
import pytest

from ncollapse.errors import NCollapseError
from ncollapse.geometry import (
    al_counts,
    class_aware_counts,
    cos_alpha,
    cos_rho,
    multicenter_frame,
)

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def _ldam_counts(n_max, K, rho):
    return [int(n_max * rho ** (-i / (K - 1))) for i in range(K)]


def test_paper_example_positional():
    np.testing.assert_array_equal(class_aware_counts([1, 3, 3], 3, order="positional"), [4, 4, 1])


def test_cifar10_lt_examples():
    assert _ldam_counts(5000, 10, 100) == CIFAR10_LT_100
    np.testing.assert_array_equal(
        class_aware_counts(CIFAR10_LT_100, 20), [2, 3, 4, 5, 7, 11, 17, 28, 46, 77]
    )
    # spec §1.6 worked values for rho = 200 and rho = 50
    np.testing.assert_array_equal(
        class_aware_counts(_ldam_counts(5000, 10, 200), 20), [2, 2, 3, 4, 5, 9, 15, 27, 48, 85]
    )
    np.testing.assert_array_equal(
        class_aware_counts(_ldam_counts(5000, 10, 50), 20), [3, 4, 5, 6, 9, 13, 19, 29, 44, 68]
    )


def test_cifar100_lt_range_and_width():
    f = class_aware_counts(_ldam_counts(500, 100, 100), 20)
    assert f.sum() == 2000 and f.min() == 2 and f.max() == 88
    assert f.sum() + 100 == 2100  # d >= 2100 for the frame


def _reference_steps(counts, f):
    """Independent literal implementation of the three steps with fractions."""
    from fractions import Fraction

    K, N = len(counts), sum(counts)
    a = [int(Fraction((f - 1) * K * n, N)) + 1 for n in counts]
    r = a[::-1]
    i = 0
    while sum(r) < f * K:
        r[i] += 1
        i += 1
    return r


def test_class_aware_properties_random():
    rng = np.random.default_rng(0)
    for _ in range(300):
        K = int(rng.integers(2, 30))
        f = int(rng.integers(1, 40))
        n = np.sort(rng.integers(1, 5000, size=K))[::-1]
        fk = class_aware_counts(n, f)
        assert fk.sum() == f * K
        assert fk.min() >= 1
        assert fk.tolist() == _reference_steps(n.tolist(), f)
        if f >= 2:
            # head-to-tail input -> non-decreasing center counts, up to the +1 top-up
            assert np.all(np.diff(fk) >= -1)


def test_f1_gives_ones_and_al():
    np.testing.assert_array_equal(class_aware_counts([9, 3, 1], 1), [1, 1, 1])
    np.testing.assert_array_equal(al_counts(4, 20), [20] * 4)
    assert al_counts(3, 2).dtype == np.int64


def test_cos_alpha_and_rho_closed_forms():
    fk = np.array([1, 2, 5, 20, 77])
    th = 0.2
    ca = cos_alpha(fk, th)
    np.testing.assert_allclose(ca, np.sqrt((np.cos(th) ** 2 + fk * np.sin(th) ** 2) / fk))
    np.testing.assert_allclose(ca[0], 1.0)  # a single center is its own mean
    np.testing.assert_allclose(cos_alpha([5], np.pi / 2), 1.0)  # all centers on w_k
    cr = cos_rho(fk, th)
    assert np.all(cr <= 1)
    np.testing.assert_allclose(cos_rho([3], np.pi / 2), 1.0)
    np.testing.assert_allclose(cos_rho([3], 0.0), 0.0)


@pytest.mark.parametrize("theta", [0.0, 0.2, 0.7, np.pi / 2])
def test_frame_geometry(theta):
    fk = class_aware_counts([50, 20, 8, 3], 4)
    K, F = fk.size, int(fk.sum())
    d = F + K + 3
    fr = multicenter_frame(fk, d, theta, seed=5)
    assert fr.W0.shape == (K, d) and fr.V.shape == (F, d) and fr.centers.shape == (F, d)
    Q = np.vstack([fr.W0, fr.V])
    np.testing.assert_allclose(Q @ Q.T, np.eye(K + F), atol=1e-13)
    np.testing.assert_array_equal(fr.center_class, np.repeat(np.arange(K), fk))
    C = fr.centers
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1, atol=1e-13)
    G = C @ C.T
    same = fr.center_class[:, None] == fr.center_class[None, :]
    off = same & ~np.eye(F, dtype=bool)
    np.testing.assert_allclose(G[off], np.sin(theta) ** 2, atol=1e-13)
    np.testing.assert_allclose(G[~same], 0, atol=1e-13)
    # class means of centers and the angles, computed directly from the frame
    for k in range(K):
        Ck = C[fr.center_class == k]
        mean = Ck.mean(axis=0)
        np.testing.assert_allclose(fr.mean_centers[k], mean, atol=1e-14)
        cos_direct = Ck @ mean / np.linalg.norm(mean)
        np.testing.assert_allclose(cos_direct, fr.cos_alpha[k], atol=1e-13)
        np.testing.assert_allclose(
            mean @ fr.W0[k] / np.linalg.norm(mean), fr.cos_rho[k], atol=1e-13
        )
        np.testing.assert_allclose(
            np.linalg.norm(mean) ** 2, np.cos(theta) ** 2 / fk[k] + np.sin(theta) ** 2, atol=1e-13
        )
    np.testing.assert_allclose(fr.cos_alpha, cos_alpha(fk, theta))


def test_frame_seeded_and_to_dict():
    a = multicenter_frame([2, 3], 8, 0.2, seed=1)
    b = multicenter_frame([2, 3], 8, 0.2, seed=1)
    c = multicenter_frame([2, 3], 8, 0.2, seed=2)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert not np.allclose(a.centers, c.centers)
    d = a.to_dict()
    assert d["f_counts"] == [2, 3] and len(d["centers"]) == 5


def test_frame_dimension_error_message():
    with pytest.raises(NCollapseError) as e:
        multicenter_frame(al_counts(10, 20), 209)
    msg = str(e.value)
    assert "d=209" in msg and "d >= F+K = (f+1)K" in msg and "210" in msg
    assert "projection" in msg
    multicenter_frame(al_counts(10, 20), 210)  # exactly enough


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: class_aware_counts([10, 0, 3], 20), r"counts\[1\]=0"),
        (lambda: class_aware_counts([10, -5], 20), r"counts\[1\]=-5"),
        (lambda: class_aware_counts([10], 20), "at least 2"),
        (lambda: class_aware_counts([10, 3], 0), "f=0"),
        (lambda: class_aware_counts([10, 3], 2.5), "f=2.5"),
        (lambda: multicenter_frame([2, 0], 10), r"f_counts\[1\]=0"),
        (lambda: multicenter_frame([2, 3], 10, theta=2.0), "theta"),
        (lambda: cos_alpha([2, 3], -0.1), "theta"),
        (lambda: al_counts(1, 3), "k=1"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(NCollapseError, match=match):
        call()


def test_paper_theta_readings_and_the_one_default():
    """The paper's theta = 0.2 read two ways; NCMC_THETA is the default everywhere a frame is built."""
    import inspect

    from ncollapse.geometry import NCMC_THETA, PAPER_THETA, paper_theta
    from ncollapse.methods.ncmc import MultiCenterHead
    from ncollapse.ufm.api import solve_ncmc

    assert PAPER_THETA == 0.2
    assert paper_theta(0.2, "definition") == 0.2
    assert paper_theta(0.2) == pytest.approx(np.pi / 2 - 0.2, abs=1e-15)
    assert NCMC_THETA == paper_theta(PAPER_THETA)
    # the complement reading puts a center at angle 0.2 from its class direction w_k
    fr = multicenter_frame([2, 3], 8, NCMC_THETA, seed=0)
    ang = np.arccos(np.clip(fr.centers @ fr.W0[fr.center_class].T, -1, 1).diagonal())
    np.testing.assert_allclose(ang, 0.2, atol=1e-12)
    assert inspect.signature(multicenter_frame).parameters["theta"].default == NCMC_THETA
    assert inspect.signature(solve_ncmc).parameters["theta"].default == NCMC_THETA
    head = MultiCenterHead(32, 3, f=2, counts=[30, 10, 5])
    assert head.theta == pytest.approx(NCMC_THETA)
    with pytest.raises(NCollapseError, match=r"reading='other'.*complement"):
        paper_theta(0.2, "other")
    with pytest.raises(NCollapseError, match="within \\[0, pi/2\\]"):
        paper_theta(2.0)


def test_recipes_use_the_default_theta():
    """Every packaged NCMC recipe (Fashion-MNIST and paper mirrors) uses geometry.NCMC_THETA."""
    import yaml

    from ncollapse.geometry import NCMC_THETA
    from ncollapse.recipes import RECIPES_DIR

    seen = 0
    for p in sorted((RECIPES_DIR / "methods").rglob("*.yaml")):
        head = (yaml.safe_load(p.read_text()).get("model") or {}).get("head_args") or {}
        if "theta" in head:
            assert head["theta"] == pytest.approx(NCMC_THETA, abs=1e-9), p.name
            seen += 1
    assert seen >= 3 + 48  # fmnist CAL / AL / Loss P and the 48 paper CAL recipes
