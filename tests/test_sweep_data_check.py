"""A sweep whose data set is missing stops before any run with the one error that says where it
looked and how to get the files (not one failed run per grid point)."""

from __future__ import annotations

import pytest

from ncollapse.errors import DataNotFoundError
from ncollapse.sweep import parse_spec, run_sweep


def test_missing_data_fails_once_before_any_run(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    raw = {
        "name": "svhn-grid",
        "set": {"data.name": "svhn", "data.root": str(empty), "run.tensorboard": False},
        "runs": [
            {"name": "CE", "recipe": "fmnist_lt_ce"},
            {"name": "SETF", "recipe": "fmnist_lt_setf"},
        ],
        "seeds": [0, 1],
    }
    spec = parse_spec(raw, out_dir=tmp_path / "sweep")
    with pytest.raises(
        DataNotFoundError, match=r"svhn \(train\) not found.*train_32x32\.mat.*never downloads"
    ):
        run_sweep(spec, workers=1, bar=False)
    assert not (tmp_path / "sweep" / "runs").exists() or not any(
        (tmp_path / "sweep" / "runs").iterdir()
    )


def test_present_data_passes_the_check(tmp_path):
    from ncollapse.data import require_dataset

    assert require_dataset("digits").name == "digits.csv.gz"  # packaged with scikit-learn
    with pytest.raises(DataNotFoundError, match="svhn"):
        require_dataset("svhn", tmp_path)
