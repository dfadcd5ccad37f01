"""Run reports (tables, mean ± std over seeds, HTML) and the demo command on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ncollapse.cli import main as cli_main
from ncollapse.config import load_config
from ncollapse.report import (
    comparison_rows,
    markdown_table,
    run_summary,
    seli_reference_row,
    write_html_report,
)
from ncollapse.train import Trainer

BASE = [
    "data.name=digits",
    "data.rho=10",
    "data.batch_size=64",
    "model.backbone=mlp",
    "model.backbone_args={depth: 1, width: 32}",
    "train.epochs=2",
    "train.progress=false",
    "run.tensorboard=false",
    "eval.groups=ranges",
    "eval.ranges=[3,7]",
]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    dirs = []
    for seed in (0, 1):
        cfg = load_config(None, [*BASE, f"train.seed={seed}", f"run.out_dir={out}",
                                 f"run.name=ce-seed{seed}"])  # fmt: skip
        dirs.append(Trainer(cfg).fit().run_dir)
    return out, dirs


def test_rows_aggregate_seeds(two_seeds):
    _, dirs = two_seeds
    rows = comparison_rows([("CE", dirs[0]), ("CE", dirs[1])])
    assert len(rows) == 1 and rows[0]["n_runs"] == 2
    finals = [json.loads((d / "metrics.jsonl").read_text().splitlines()[-1]) for d in dirs]
    accs = [f["test_acc"] for f in finals]
    assert rows[0]["overall acc"] == pytest.approx(np.mean(accs))
    assert rows[0]["overall acc std"] == pytest.approx(np.std(accs))
    s = run_summary(finals[0])
    for key in ["head acc", "tail acc", "NC1", "dist SELI (W)", "tail cos(w,w')",
                "self-duality violation (mean 1-cos)"]:  # fmt: skip
        assert key in s
    md = markdown_table(rows)
    assert md.splitlines()[0].startswith("| method | overall acc")
    assert " ± " in md


def test_seli_reference_row():
    bal = seli_reference_row([5, 5, 5, 5], {"all": [0, 1, 2, 3]})
    assert bal["dist ETF (W)"] == pytest.approx(0, abs=1e-12)
    assert bal["all cos(w,w')"] == pytest.approx(-1 / 3)
    # STEP k=10, R=10, n_min=1: minority classifier cosine 0.0334 (Thrampoulidis et al.,
    # arXiv:2208.05512, closed form of the STEP SELI; ncollapse.geometry.step_seli_closed_form)
    counts = [10] * 5 + [1] * 5
    row = seli_reference_row(counts, {"min": list(range(5, 10))})
    assert row["min cos(w,w')"] == pytest.approx(0.0334, abs=5e-5)
    assert row["dist ETF (W)"] > 0.05


def test_html_report_and_cli(two_seeds, tmp_path, capsys):
    out, dirs = two_seeds
    page = write_html_report([("CE", d) for d in dirs], tmp_path / "r.html", title="t")
    text = page.read_text()
    # inline SVG charts (no PNGs, no scripts from elsewhere); measures as rows of one table
    assert text.count('<svg class="chart"') >= 12 and '<table class="cmp">' in text
    assert "<script src" not in text and '<th scope="row">NC1' in text
    assert cli_main(["report", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in res["rows"]] == ["ce"] and res["rows"][0]["n_runs"] == 2
    assert cli_main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err


def test_demo_falls_back_to_mnist5k(monkeypatch):
    from ncollapse.commands import demo

    monkeypatch.setattr("ncollapse.data.dataset_info", lambda name: {"available": False})
    name, note = demo._pick_dataset(None)
    assert name == "mnist5k" and "apt-get install -y dataset-fashion-mnist" in note
    assert demo._pick_dataset("digits") == ("digits", None)


def test_demo_end_to_end_on_digits(tmp_path, capsys):
    rc = cli_main(["demo", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path),
                   "--configs", str(Path(__file__).parents[1] / "configs"), "--json"])  # fmt: skip
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["CE", "LDAM-DRW", "SETF (ETF + DR)", "SELI theory"]
    assert Path(res["report"]).is_file()
    # the demo measures NC in a clean eval-mode pass by default, and the page says so
    runs = sorted((tmp_path / "runs").iterdir())
    assert all(
        json.loads((d / "metrics.jsonl").read_text().splitlines()[-1])["nc_pass"] == "eval"
        for d in runs
    )
    assert "NC pass (eval), all methods:" in Path(res["report"]).read_text()
    assert all(r["overall acc"] is not None for r in res["rows"][:3])
