"""NC-diagnostic entries (``ncmc-nc-curves``, ``allnc-minority-collapse``): the closed-form
prediction against an independent computation, the checks on synthetic records, the smoke runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.geometry import NCMC_THETA, center_counts, multicenter_frame
from ncollapse.reproduce.diagnostics import (
    _minority_checks,
    minority_final,
    ncmc_curves,
    predicted_variability,
)
from ncollapse.reproduce.report import Report

COUNTS = [600, 300, 120, 50, 20]


def _record(theta, mode="cal", f=4, history=None):
    return {
        "counts": COUNTS,
        "config": {"model": {"head_args": {"f": f, "theta": theta, "mode": mode}}},
        "history": history or [],
    }


@pytest.mark.parametrize("theta", [0.2, 0.7, NCMC_THETA])
@pytest.mark.parametrize("mode", ["cal", "al"])
def test_predicted_variability_matches_the_frame(theta, mode):
    """Σ n_k (1 − cos ρ_k) / N from the closed form equals the angle measured on a built frame:
    features at the normalised mean of their class's centers, cosine with w_k."""
    n = np.asarray(COUNTS, dtype=float)
    fk = center_counts(mode, n.size, 4, counts=n)
    fr = multicenter_frame(fk, int(fk.sum()) + n.size + 3, theta, seed=1)
    h = fr.mean_centers / np.linalg.norm(fr.mean_centers, axis=1, keepdims=True)
    cos = np.sum(h * fr.W0, axis=1)  # W0 rows are unit
    direct = float(np.sum(n * (1 - cos)) / n.sum())
    assert predicted_variability(_record(theta, mode)) == pytest.approx(direct, abs=1e-12)


def test_predicted_variability_default_theta_and_readings():
    # theta missing from the config: the head's default (NCMC_THETA) is what ran
    rec = _record(None)
    assert predicted_variability(rec) == pytest.approx(predicted_variability(_record(NCMC_THETA)))
    # Def. 3.2's 0.2 keeps features far from w_k; the complement reading puts them close
    assert predicted_variability(_record(0.2)) > 0.5 > 0.05 > predicted_variability(rec)


def test_ncmc_curves_reads_the_logged_measures():
    hist = [
        {
            "epoch": 0,
            "balanced_acc": 0.5,
            "nc": {"ncmc": {"NC_ave": 1.0, "NC_std": 0.5, "variability": 0.9}},
        },  # fmt: skip
        {"epoch": 1, "balanced_acc": 0.6},  # an epoch without NC is skipped
        {
            "epoch": 2,
            "balanced_acc": 0.7,
            "nc": {"ncmc": {"NC_ave": 0.2, "NC_std": 0.1, "variability": 0.8}},
        },  # fmt: skip
    ]
    c = ncmc_curves({"history": hist})
    np.testing.assert_array_equal(c["epoch"], [0, 2])
    np.testing.assert_array_equal(c["NC_ave"], [1.0, 0.2])
    np.testing.assert_array_equal(c["balanced_acc"], [0.5, 0.7])


def _nc(many_mean, few_mean, many_w, few_w, dual, nc1, sd):
    return {"nc": {
        "groups": {"many": {"classes": [0, 1], "mean_cos": many_mean, "classifier_cos": many_w},
                   "few": {"classes": [3, 4], "mean_cos": few_mean, "classifier_cos": few_w}},
        "per_class": {"duality_cos": dual},
        "nc1": {"nc1": nc1}, "nc3": {"self_duality": sd}}}  # fmt: skip


def test_minority_final_and_checks_decide(tmp_path):
    ce = minority_final({"counts": COUNTS, "history": [
        _nc(-0.25, 0.6, -0.2, 0.5, [0.9, 0.9, 0.5, 0.3, 0.1], 1.5, 0.8)]})  # fmt: skip
    assert ce["few_duality_cos"] == pytest.approx(0.2) and ce["many_duality_cos"] == 0.9
    setf = minority_final({"counts": COUNTS, "history": [
        _nc(-0.25, 0.3, -0.25, -0.25, [0.8, 0.8, 0.5, 0.4, 0.2], 1.2, 1.0)]})  # fmt: skip
    allnc = minority_final({"counts": COUNTS, "history": [
        _nc(-0.25, -0.1, -0.25, -0.2, [0.9] * 5, 0.9, 0.5)]})  # fmt: skip
    rep = Report("m", tmp_path)
    _minority_checks(rep, {"CE": ce, "SETF": setf, "AllNC (reconstr.)": allnc})
    assert all(r["ok"] for r in rep.rows) and len(rep.rows) == 10
    rep = Report("m", tmp_path)  # AllNC no better than SETF on the minority means: fails
    worse = {**allnc, "few_mean_cos": 0.4}
    _minority_checks(rep, {"CE": ce, "SETF": setf, "AllNC (reconstr.)": worse})
    bad = [r["setting"] for r in rep.rows if not r["ok"]]
    assert bad == ["AllNC vs SETF"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["ncmc-nc-curves", "allnc-minority-collapse"])
def test_smoke_scale_end_to_end(entry, tmp_path, capsys):
    rc = main(["reproduce", entry, "--scale", "smoke", "--out", str(tmp_path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and summary["rows"] > 0
    md = (tmp_path / "predictions.md").read_text()
    assert "**Claim:**" in md and ".png" in md and "not comparable" in md
    assert any(tmp_path.glob("*.png"))
