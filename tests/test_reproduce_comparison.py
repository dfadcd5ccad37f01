"""The NCMC / AllNC comparison entry: its summary over seeds and its smoke scale end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.reproduce import get_reproduction
from ncollapse.reproduce.comparison import comparison_spec, summarise


def _rec(method, seed, acc, groups):
    return {
        "factors": {"method": method},
        "seed": seed,
        "history": [{"test_acc": 0.0, "balanced_acc": 0.0}, {"test_acc": acc, "balanced_acc": acc,
                                                             "group_acc": groups}],
    }  # fmt: skip


def test_summary_is_mean_and_population_std_over_seeds_in_percent():
    recs = [
        _rec("CE", 0, 0.70, {"many": 0.9, "medium": 0.6, "few": 0.5}),
        _rec("CE", 1, 0.74, {"many": 0.92, "medium": 0.58, "few": 0.7}),
        _rec("CAL (NCMC)", 0, 0.8, {"head": 0.9, "medium": 0.7, "tail": None}),
    ]
    s = summarise(recs)
    m, sd, n = s["CE"]["balanced_acc"]
    assert (m, n) == (pytest.approx(72.0), 2) and sd == pytest.approx(2.0)
    assert s["CE"]["few"][0] == pytest.approx(60.0) and s["CE"]["few"][1] == pytest.approx(10.0)
    # index-range groups (smoke) map onto many / few; a missing group is NaN, not 0
    assert s["CAL (NCMC)"]["many"][0] == pytest.approx(90.0)
    assert np.isnan(s["CAL (NCMC)"]["few"][0]) and s["CAL (NCMC)"]["few"][2] == 0


def test_scales_name_the_packaged_recipes():
    here, scaled = comparison_spec("here")
    assert [r["name"] for r in here["runs"]][:3] == ["CE", "LDAM-DRW", "SETF"]
    assert here["seeds"] == [0, 1, 2] and "three seeds" in scaled
    paper, _ = comparison_spec("paper")
    assert all(r["recipe"].startswith("methods/paper/cifar10_resnet50_") for r in paper["runs"])
    assert "AllNC" in get_reproduction("ncmc-allnc-comparison").claim


@pytest.mark.slow
def test_smoke_scale_end_to_end(tmp_path, capsys):
    rc = main(["reproduce", "ncmc-allnc-comparison", "--scale", "smoke", "--out", str(tmp_path),
               "--json"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and summary["rows"] == 8
    md = (tmp_path / "predictions.md").read_text()
    assert "not comparable" in md and "AllNC > LDAM-DRW" in md
    rows = (tmp_path / "accuracy.csv").read_text().splitlines()
    assert len(rows) == 6  # header + five methods


def test_posthoc_runs_are_scored_by_their_adjusted_predictions():
    rec = _rec("RBL + PLA", 0, 0.86, {"many": 0.9, "medium": 0.8, "few": 0.9})
    rec["history"][-1]["posthoc_acc"] = {"test_acc": 0.78, "balanced_acc": 0.78,
                                         "group_acc": {"many": 0.64, "medium": 0.8, "few": 0.95}}  # fmt: skip
    assert summarise([rec])["RBL + PLA"]["balanced_acc"][0] == pytest.approx(86.0)
    rec["config"] = {"eval": {"posthoc_tau": 1.0}}
    s = summarise([rec])["RBL + PLA"]
    assert s["balanced_acc"][0] == pytest.approx(78.0) and s["few"][0] == pytest.approx(95.0)
