"""Sweep specs: planning, run ids, and one-line errors for bad specs (no training here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ncollapse.cli import main
from ncollapse.errors import NCollapseError
from ncollapse.sweep import config_hash, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[1]
RECIPE = str(REPO / "configs" / "digits_lt_ce.yaml")


def _spec(**kw):
    raw = {"recipe": RECIPE, "set": {"train.epochs": 1}, "seeds": [0, 1]}
    raw.update(kw)
    return raw


def test_runs_are_entries_times_grid_times_seeds():
    spec = parse_spec(
        _spec(
            runs=[{"name": "CE"}, {"name": "LDAM", "loss.name": "ldam", "model.head": "cosine"}],
            grid={"data.rho": [10, 50], "optim.lr": [0.1]},
        )
    )
    assert len(spec.runs) == 2 * 2 * 1 * 2
    r = spec.runs[-1]
    assert r.factors == {"method": "LDAM", "data.rho": 50, "optim.lr": 0.1}
    assert r.config.loss.name == "ldam" and r.config.data.rho == 50.0 and r.config.train.seed == 1
    assert r.config.train.epochs == 1
    # seeds of one setting share a group; different settings do not
    groups = {}
    for run in spec.runs:
        groups.setdefault(run.group_hash, []).append(run.seed)
    assert sorted(map(sorted, groups.values())) == [[0, 1]] * 4


def test_run_id_is_a_hash_of_the_resolved_config():
    a = parse_spec(_spec(grid={"optim.lr": [0.1, 0.05]})).runs
    # the same config reached another way (recipe value vs explicit override) has the same id,
    # and execution-only fields (threads, progress, run dir) do not change it
    b = parse_spec(_spec(set={"train.epochs": 1, "train.threads": 2, "run.out_dir": "x"})).runs
    assert b[0].config.optim.lr == 0.05
    assert b[0].run_id.rsplit("-", 1)[1] == a[2].run_id.rsplit("-", 1)[1]
    assert b[0].run_id.rsplit("-", 1)[1] == config_hash(a[2].config)
    assert a[0].run_id.startswith("digits_lt_ce-lr=0.1-seed0-")
    assert len({r.run_id for r in a}) == 4


def test_recipe_found_relative_to_the_spec_folder(tmp_path):
    # a spec under configs/sweeps/ names recipes relative to the repository
    p = REPO / "configs" / "sweeps" / "digits_demo.yaml"
    spec = load_spec(p)
    assert spec.runs and all(r.config.data.name == "digits" for r in spec.runs)


@pytest.mark.parametrize(
    "raw, message",
    [
        (_spec(grid={"loss.nme": ["ce"]}), "unknown config key 'loss.nme'; valid keys in 'loss'"),
        (_spec(grid={"train.epochs": ["two"]}), "train.epochs='two' must be an integer"),
        (_spec(grid={}), "grid is empty"),
        (_spec(grid={"optim.lr": []}), "grid.optim.lr is an empty list"),
        (_spec(grid={"optim.lr": [0.1, 0.1]}), "duplicate runs"),
        (_spec(runs=[{"name": "a"}, {"name": "a"}]), "duplicate runs"),
        (_spec(seeds=[0, "1"]), "'1' is not an integer"),
        (_spec(seeds=[0, 1.5]), "1.5 is not an integer"),
        (_spec(seeds=[]), "non-empty list of integers"),
        (_spec(seeds=[0, 0]), "repeats a seed"),
        (_spec(gird={"optim.lr": [0.1]}), "unknown spec key 'gird'; valid keys: name, recipe"),
        (
            _spec(recipe="configs/nope.yaml"),
            "config 'configs/nope.yaml' is neither a file nor a packaged recipe",
        ),
        (_spec(grid={"train.seed": [1]}), "is the seed key"),
    ],
)
def test_bad_specs_get_one_line_errors(tmp_path, capsys, raw, message):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(NCollapseError, match=None) as exc:
        load_spec(p)
    assert message in str(exc.value)
    rc = main(["sweep", str(p), "--out", str(tmp_path / "out"), "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing started


def test_bad_spec_cli_process_prints_no_traceback(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(_spec(grid={"loss.nme": ["ce"]})))
    out = subprocess.run(
        [sys.executable, "-m", "ncollapse", "sweep", str(p)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "valid keys in 'loss': name, params" in out.stderr


def test_shipped_sweep_specs_load():
    files = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))
    assert files
    for f in files:
        spec = load_spec(f)
        assert spec.runs
    fm = load_spec(REPO / "configs" / "sweeps" / "fmnist_results.yaml")
    assert len(fm.runs) == 15
    assert {r.factors["method"] for r in fm.runs} == {
        "CE",
        "LDAM-DRW",
        "SETF",
        "CAL (NCMC)",
        "AllNC (reconstr.)",
    }
