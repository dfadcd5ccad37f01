"""ncollapse.groups: shot groups by count thresholds, index ranges, helpers."""

from __future__ import annotations

import numpy as np
import pytest

from ncollapse.errors import NCollapseError
from ncollapse.groups import (
    check_groups,
    class_group_names,
    group_mean,
    make_groups,
    parse_int_list,
    range_groups,
    shot_groups,
)


def _lists(g):
    return {k: v.tolist() for k, v in g.items()}


def test_shot_groups_boundaries():
    counts = [500, 101, 100, 20, 19, 1]
    assert _lists(shot_groups(counts)) == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert _lists(shot_groups(counts, many=19, few=2)) == {
        "many": [0, 1, 2, 3],
        "medium": [4],
        "few": [5],
    }
    cifar10 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10-LT rho=100
    g = shot_groups(cifar10, many=100, few=20)  # the standard thresholds: degenerate here
    assert _lists(g) == {"many": list(range(8)), "medium": [8, 9], "few": []}


def test_shot_groups_bad():
    with pytest.raises(NCollapseError, match="not positive"):
        shot_groups([10, 0, 3])
    with pytest.raises(NCollapseError, match="1 <= few <= many"):
        shot_groups([10, 3], many=5, few=10)


def test_range_groups_names_and_partition():
    assert _lists(range_groups(10, (3, 7))) == {
        "head": [0, 1, 2],
        "medium": [3, 4, 5, 6],
        "tail": [7, 8, 9],
    }
    assert _lists(range_groups(4, [2])) == {"head": [0, 1], "tail": [2, 3]}
    g = range_groups(6, [1, 2, 4])
    assert list(g) == ["group0", "group1", "group2", "group3"]
    assert np.concatenate(list(g.values())).tolist() == list(range(6))


@pytest.mark.parametrize(
    "b,match",
    [((0, 3), "outside 1..9"), ((3, 10), "outside 1..9"), ((5, 3), "strictly increasing")],
)
def test_range_groups_bad(b, match):
    with pytest.raises(NCollapseError, match=match):
        range_groups(10, b)


def test_helpers():
    g = make_groups([300, 50, 5], "thresholds")
    assert class_group_names(g, 3) == ["many", "medium", "few"]
    assert _lists(make_groups([1, 1, 1, 1], "ranges", boundaries=[2])) == {
        "head": [0, 1],
        "tail": [2, 3],
    }
    with pytest.raises(NCollapseError, match="needs boundaries"):
        make_groups([1, 2], "ranges")
    with pytest.raises(NCollapseError, match="unknown"):
        make_groups([1, 2], "quantiles")
    assert parse_int_list("3, 7", "--ranges") == [3, 7]
    with pytest.raises(NCollapseError, match="--ranges='a'"):
        parse_int_list("a", "--ranges")
    m = group_mean(
        [1.0, 3.0, np.nan, 4.0], {"a": [0, 1], "b": [2], "c": [1, 3]}, weights=[1, 3, 1, 1]
    )
    assert m == {"a": 2.5, "b": None, "c": 3.25}  # (3*3 + 4*1) / 4
    assert group_mean([1.0, 2.0], {"a": [0, 1]}) == {"a": 1.5}
    with pytest.raises(NCollapseError, match="lists a class twice"):
        check_groups({"a": [1, 1]}, 3)
    assert check_groups({"e": []}, 3)["e"].size == 0


def test_shot_thresholds_one_default_scaled_by_head_size():
    from ncollapse.groups import shot_thresholds

    # standard 100 / 20 up to the ImageNet-LT / Places-LT scale (n_max 1280 / 4980)
    assert shot_thresholds([500, 5]) == (100, 20)
    assert shot_thresholds([4980, 5]) == (100, 20)
    # x10 from n_max = 5000 (CIFAR-10-LT, Fashion-MNIST-LT), x100 from 50000
    assert shot_thresholds([5000, 50]) == (1000, 200)
    assert shot_thresholds([6000, 60]) == (1000, 200)
    assert shot_thresholds([50000, 5]) == (10000, 2000)
    assert shot_thresholds([6000, 60], many=50) == (50, 200)  # an explicit value is kept
    # failed before: the default split of CIFAR-10-LT / Fashion-MNIST-LT (rho=100) was 8 / 2 / 0,
    # while the recipes and the README report 4 / 3 / 3
    fmnist = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    sizes = {k: len(v) for k, v in shot_groups(fmnist).items()}
    assert sizes == {"many": 4, "medium": 3, "few": 3}
    cifar10 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert {k: len(v) for k, v in make_groups(cifar10).items()} == {
        "many": 4,
        "medium": 3,
        "few": 3,
    }


def test_default_minority_rule():
    from ncollapse.groups import default_minority

    assert default_minority({"many": [0, 1], "medium": [2], "few": [3, 4]}) == "few"
    assert default_minority({"head": [0, 1], "tail": [2]}) is None  # one class: no pair to compare
    assert default_minority({"many": [0, 1, 2], "few": []}) is None  # only one non-empty group
    assert default_minority({"many": [0], "medium": [1, 2], "few": []}) == "medium"
