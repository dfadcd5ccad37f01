"""The HTML report's pieces: theory predictions against closed forms and an independent SELI
factorisation, the recorded Grams against a brute-force computation, SVG axes, coincidence notes,
and the page built from real (tiny) runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ncollapse.config import load_config
from ncollapse.geometry import etf_gram, seli_factors, step_seli_closed_form
from ncollapse.metrics import gram_distance, statistics
from ncollapse.report import etf_reference_row, seli_reference_row
from ncollapse.report.page import build_page, coincident_groups, nc_pass_of
from ncollapse.report.svg import Line, Panel, line_chart, log_ticks, nice_ticks, tick_label
from ncollapse.report.theory import group_cosines, predictions
from ncollapse.report.views import class_grams, load_geometry
from ncollapse.train import Trainer

STEP = dict(k_maj=3, k_min=4, R=10, n_min=2)


def _step_counts():
    return [20] * 3 + [2] * 4


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_seli_predictions_match_step_closed_form():
    p = predictions(_step_counts(), "seli")
    cf = step_seli_closed_form(**STEP)
    # norms relative to the largest: majority classifiers are the largest, minority means are
    assert p.w_norm[0] == pytest.approx(1.0)
    assert p.w_norm[-1] == pytest.approx(1 / cf["w_norm_ratio"], rel=1e-12)
    assert p.mean_norm[-1] == pytest.approx(1.0)
    assert p.mean_norm[0] == pytest.approx(cf["mu_norm_ratio"], rel=1e-12)
    assert group_cosines(p, [3, 4, 5, 6]) == pytest.approx(
        (cf["cos_w_min_min"], cf["cos_mu_min_min"]), rel=1e-10
    )
    assert group_cosines(p, [0]) is None


def test_seli_duality_cosine_matches_factorisation():
    counts = [9, 5, 3, 2, 1]
    f = seli_factors(_labels(counts))
    W, M = f.W, f.M  # W: K x (K-1) rows w_c; M: (K-1) x K columns mu_c (centred by construction)
    cos = np.sum(W * M.T, axis=1) / (np.linalg.norm(W, axis=1) * np.linalg.norm(M, axis=0))
    p = predictions(counts, "seli")
    np.testing.assert_allclose(p.duality_cos, cos, rtol=1e-9)
    assert np.all(p.duality_cos < 1 - 1e-3)  # under imbalance w_c is not parallel to mu_c
    # the self-duality row's closed form against the factors directly
    row = seli_reference_row(counts, {"tail": [2, 3, 4]})
    direct = np.linalg.norm(W / np.linalg.norm(W) - M.T / np.linalg.norm(M))
    assert row["self-duality"] == pytest.approx(direct, rel=1e-9)
    viol = 1 - cos
    assert row["self-duality violation (mean 1-cos)"] == pytest.approx(viol.mean(), rel=1e-9)
    assert row["self-duality violation (worst class)"] == pytest.approx(viol.max(), rel=1e-9)


def test_etf_reference_row():
    counts = _step_counts()
    row = etf_reference_row(counts, {"min": [3, 4, 5, 6]})
    K = len(counts)
    G_W = predictions(counts, "seli").G_W
    assert row["method"] == "ETF theory" and row["dist ETF (W)"] == 0
    assert row["dist SELI (W)"] == pytest.approx(gram_distance(etf_gram(K), G_W))
    assert row["dist SELI (W)"] == pytest.approx(seli_reference_row(counts, {})["dist ETF (W)"])
    assert row["min cos(w,w')"] == pytest.approx(-1 / (K - 1))
    assert row["self-duality"] == 0 and row["self-duality violation (worst class)"] == 0
    p = predictions(counts, "etf")
    assert np.all(p.w_norm == 1) and np.all(p.duality_cos == 1)


def test_class_grams_brute_force():
    rng = np.random.default_rng(0)
    K, d = 4, 6
    y = np.repeat(np.arange(K), [7, 5, 3, 2])
    H = rng.normal(size=(y.size, d)) + 3 * rng.normal(size=(K, d))[y]
    W = rng.normal(size=(K, d))
    G_W, G_M = class_grams(statistics(H, y, K), W)
    means = np.stack([H[y == c].mean(0) for c in range(K)])
    Mt = means - means.mean(0)  # centred at the unweighted mean of the class means
    np.testing.assert_allclose(G_M, Mt @ Mt.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(G_W, W @ W.T, rtol=1e-12)


def test_ticks_and_labels():
    for lo, hi in [(0.55, 0.8), (-0.155, 0.01), (0, 39.3), (1e-3, 2e-3)]:
        t = nice_ticks(lo, hi)
        assert t[0] <= lo and t[-1] >= hi and 3 <= len(t) <= 8
    t = nice_ticks(1, 8, 6, integer=True)
    assert all(float(v).is_integer() for v in t) and t[0] <= 1 and t[-1] >= 8
    assert nice_ticks(1, 3, 6, integer=True) == [1, 2, 3]  # no 1.5 epochs
    assert log_ticks(0.8, 180) == [1, 10, 100]
    assert [tick_label(v, 0.05) for v in (0.55, 0.8)] == ["0.55", "0.80"]
    assert tick_label(0.75, 0.25) == "0.75" and tick_label(100, None) == "100"


def test_line_chart_gaps_and_log_axis():
    ln = Line("a", "A", [1, 2, 3, 4, 5], [1.0, 2.0, None, 4.0, 5.0], "#000", tips=list("abcde"))
    svg = line_chart(Panel("t", "x", "y", [ln]), "c0")
    assert svg.count("<path") == 2 and svg.count("<title>") == 4  # the gap splits the line
    neg = Line("b", "B", [1, 10, 100], [1.0, -1.0, 3.0], "#000", tips=list("xyz"))
    svg = line_chart(Panel("t", "x", "y", [neg], xlog=True, ylog=True), "c1")
    assert svg.count("<title>") == 2  # a non-positive value has no place on a log axis
    assert "no data recorded" in line_chart(Panel("t", "x", "y", []), "c2")


def test_coincident_groups():
    one = np.ones(4)
    groups = coincident_groups({"A": one, "B": one + 1e-5, "C": np.arange(4.0), "D": one * 1.0})
    assert groups == [["A", "B", "D"]]
    assert coincident_groups({"A": one, "C": np.arange(4.0)}) == []


def test_nc_pass_of():
    assert nc_pass_of({"nc_pass": "eval"}, {"train": {"nc_pass": "train"}}) == "eval"
    assert nc_pass_of({}, {"train": {"nc_pass": "train", "mixup_alpha": 0.0}}) == "train"
    assert nc_pass_of({}, {"train": {"nc_pass": "train", "mixup_alpha": 0.2}}) == "eval"
    assert nc_pass_of({}, None) == "train"


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
def three_heads(tmp_path_factory):
    out = tmp_path_factory.mktemp("heads")
    runs = []
    for label, extra in [
        ("CE", ["model.head=linear", "loss.name=ce", "train.nc_pass=eval"]),
        ("cosine", ["model.head=cosine", "loss.name=ldam"]),
        ("ETF", ["model.head=etf", "loss.name=dot_regression"]),
    ]:
        over = [*BASE, "train.epochs=1", *extra, f"run.out_dir={out}", f"run.name={label}"]
        cfg = load_config(None, over)
        runs.append((label, Trainer(cfg).fit().run_dir))
    return runs


def test_trainer_records_grams_and_pass(three_heads):
    (_, ce), (_, cos), _ = three_heads
    last = [json.loads(s) for s in (ce / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["nc_pass"] == "eval"
    assert json.loads((cos / "metrics.jsonl").read_text().splitlines()[-1])["nc_pass"] == "train"
    geo = load_geometry(ce)
    G_W, G_M = np.asarray(geo["G_W"]), np.asarray(geo["G_M"])
    assert geo["epoch"] == last["epoch"] and geo["counts"] == last["nc"]["data"]["counts"]
    assert len(geo["classes"]) == 10
    # the diagonals are the recorded per-class norms squared
    np.testing.assert_allclose(np.sqrt(np.diag(G_W)), last["nc"]["per_class"]["w_norm"], rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(G_M)), last["nc"]["per_class"]["mean_norm"],
                               rtol=1e-9)  # fmt: skip
    assert np.allclose(np.diag(np.asarray(load_geometry(cos)["G_W"])), 1.0)  # cosine head


def _strip(s: str) -> str:
    return re.sub(r"<[^>]+>", " ", s)


def test_page_layout_and_content(three_heads):
    page = build_page(three_heads, "t")
    # measures are rows, methods and theories are columns
    thead = page[page.index('<table class="cmp">') :].split("</thead>")[0]
    for col in ["CE", "cosine", "ETF", "SELI theory", "ETF theory"]:
        assert f">{col}<" in thead
    assert '<th scope="row">NC1' in page and '<th scope="row">dist SELI (W)' in page
    # both NC passes are stated, one per group of methods
    assert "NC pass (eval), CE:" in page and "NC pass (train), cosine, ETF:" in page
    # theory drawn on the per-class and the minority-cosine panels
    per_class = page[page.index('id="fig-per-class"') : page.index('id="minority"')]
    assert per_class.count('data-key="seli"') >= 4 and per_class.count('data-key="etf"') >= 4
    minority = page[page.index('id="fig-minority"') : page.index('id="curves"')]
    assert minority.count('data-key="seli"') >= 3 and minority.count('data-key="etf"') >= 3
    # the cosine head's and the fixed ETF's classifier-norm lines coincide by construction
    assert "coincide by construction" in page and "cosine classifier normalises" in page
    # heatmaps: SELI's and the three measured ones, for W W^T and M^T M
    assert page.count('class="heat"') == 8
    # per-class table: name, count, accuracy, norms, NC1, self-duality for each method
    assert page.count('<table class="pc">') == 3
    pc = _strip(page[page.index('<table class="pc">') :].split("</table>")[0])
    for head in ["class", "n_c", "test acc", "‖w_c‖", "‖μ_c − μ_G‖", "NC1_c", "cos(w_c"]:
        assert head in pc
    # config, manifest and environment in collapsible blocks; everything offline
    assert page.count("<details") >= 7 and "manifest.json" in page and "env.json" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert "<script src" not in page


def test_report_command_writes_new_page(three_heads, tmp_path, capsys):
    from ncollapse.cli import main as cli_main

    out = tmp_path / "r.html"
    args = ["report", *[str(d) for _, d in three_heads], "--html", str(out)]
    assert cli_main(args) == 0
    text = out.read_text()
    assert "SELI theory" in text and 'class="chart"' in text and "data:image/png" not in text


def test_page_for_runs_without_geometry(three_heads, tmp_path):
    """Runs written before geometry.json and nc_pass existed still report: no heatmaps for them
    (and a note), the pass taken from the config."""
    import shutil

    label, src = three_heads[1]
    old = tmp_path / "old"
    shutil.copytree(src, old)
    (old / "geometry.json").unlink()
    recs = [json.loads(s) for s in (old / "metrics.jsonl").read_text().splitlines()]
    for r in recs:
        r.pop("nc_pass")
    (old / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    page = build_page([(label, old)], "t")
    assert "No measured Grams for cosine" in page and page.count('class="heat"') == 2
    assert "NC pass (train), all methods:" in page
