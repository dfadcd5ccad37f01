"""`ncollapse metrics FILE.npz`: JSON values on a written file, tables, and bad files (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.metrics import compute_all, second_pass, statistics


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    counts = [150, 120, 60, 30, 12, 6]
    K, d = len(counts), 10
    y = np.repeat(np.arange(K), counts)
    mu = 3 * rng.normal(size=(K, d))
    H = mu[y] + rng.normal(size=(len(y), d))
    W = mu + 0.5 * rng.normal(size=(K, d))
    b = 0.1 * rng.normal(size=K)
    path = tmp_path / "feat.npz"
    np.savez(path, H=H.astype(np.float32), y=y, W=W, b=b)
    return path, H.astype(np.float32), y, W, b


def _run(capsys, *argv):
    rc = main(["metrics", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_json_matches_library(npz, capsys):
    path, H, y, W, b = npz
    rc, out, _ = _run(capsys, path, "--json", "--batch-size", "100")
    assert rc == 0
    res = json.loads(out)
    st = statistics(H, y, 6)
    ref = compute_all(st, W, b, second=second_pass(st, [(H, y)], W, b))
    assert res["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-10)
    assert res["nc1"]["nc1_class_balanced"] == pytest.approx(ref["nc1"]["nc1_class_balanced"])
    assert res["nc2"]["dist_seli_W"] == pytest.approx(ref["nc2"]["dist_seli_W"], rel=1e-10)
    assert res["nc4"]["agreement"] == pytest.approx(ref["nc4"]["agreement"])
    # default groups: shot thresholds (>100, 20..100, <20); default minority: the few-shot group
    assert res["groups_mode"] == "thresholds"
    assert res["groups"]["many"]["classes"] == [0, 1]
    assert res["groups"]["medium"]["classes"] == [2, 3]
    assert res["groups"]["few"]["classes"] == [4, 5]
    assert res["minority"]["classes"] == [4, 5]
    assert res["conventions"]["mean"] == "unweighted"
    assert len(res["per_class"]["nc1"]) == 6


def test_cli_ranges_mean_minority(npz, capsys):
    path, H, y, W, b = npz
    rc, out, _ = _run(
        capsys, path, "--ranges", "2,4", "--mean", "weighted", "--minority", "3,4,5", "--json"
    )
    assert rc == 0
    res = json.loads(out)
    assert res["groups_mode"] == "ranges"
    assert {k: v["classes"] for k, v in res["groups"].items()} == {
        "head": [0, 1],
        "medium": [2, 3],
        "tail": [4, 5],
    }
    assert res["minority"]["classes"] == [3, 4, 5]
    ref = compute_all(statistics(H, y, 6), W, b, mean="weighted")
    assert res["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-10)
    rc, out, _ = _run(capsys, path, "--no-k", "--json")
    assert json.loads(out)["nc1"]["nc1"] == pytest.approx(
        6 * compute_all(statistics(H, y, 6))["nc1"]["nc1"]
    )


def test_cli_tables(npz, capsys):
    path, *_ = npz
    rc, out, _ = _run(capsys, path, "--per-class")
    assert rc == 0
    for title in ("NC1", "NC2", "NC3", "NC4", "per group", "per class: norms", "minority"):
        assert title in out


def test_cli_without_classifier(tmp_path, capsys):
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), [5, 4, 3])
    path = tmp_path / "h.npz"
    np.savez(path, H=rng.normal(size=(12, 4)), y=y)
    rc, out, _ = _run(capsys, path, "--json")
    res = json.loads(out)
    assert rc == 0 and "nc3" not in res and "nc4" not in res
    assert res["groups"]["few"]["classes"] == [0, 1, 2]


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"H": np.zeros((4, 2))}, "has no array 'y' (it has: H); the file must contain H"),
        ({"y": np.zeros(4, int)}, "has no array 'H'"),
        ({"H": np.zeros((4, 2)), "y": np.arange(3)}, "features have 4 rows but labels have 3"),
        ({"H": np.full((4, 2), np.nan), "y": np.array([0, 1, 0, 1])}, "NaN/inf"),
        ({"H": np.ones((4, 2)), "y": np.array([0, 1, 0, 1]), "W": np.ones((2, 3))}, "W has shape"),
        (
            {"H": np.ones((4, 2)), "y": np.array([0, 1, 0, 5]), "W": np.ones((2, 2))},
            "labels[3]=5 is out of range",
        ),
    ],
)
def test_cli_bad_npz_exit_2(tmp_path, capsys, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    rc, out, err = _run(capsys, path)
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert match in err


def test_cli_unreadable_files(tmp_path, capsys):
    rc, _, err = _run(capsys, tmp_path / "missing.npz")
    assert rc == 2 and "does not exist" in err and "H (N x d features)" in err
    txt = tmp_path / "text.npz"
    txt.write_text("not a zip")
    rc, _, err = _run(capsys, txt)
    assert rc == 2 and "not an .npz (zip) archive" in err and err.count("\n") == 1
    trunc = tmp_path / "trunc.npz"
    np.savez(trunc, H=np.ones((50, 3)), y=np.zeros(50, int))
    trunc.write_bytes(trunc.read_bytes()[:200])
    rc, _, err = _run(capsys, trunc)
    assert rc == 2 and err.count("\n") == 1 and "trunc.npz" in err
    good = tmp_path / "g.npz"
    np.savez(good, H=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    rc, _, err = _run(capsys, good, "--ranges", "1,x")
    assert rc == 2 and "--ranges='1,x'" in err
    rc, _, err = _run(capsys, good, "--ranges", "5")
    assert rc == 2 and "range boundary 5 is outside 1..1" in err
