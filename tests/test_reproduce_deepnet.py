"""Deep-network reproduction entries (SELI, Liu Figs. 1-4): the theory lines they draw, the
centring of the recorded Grams, and the smoke scale end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.geometry import deep_linear_ufm, seli_class_grams, step_seli_closed_form
from ncollapse.metrics.grams import centre_grams, class_grams
from ncollapse.reproduce import get_reproduction, reproductions
from ncollapse.reproduce.deepnet import liu_curves, seli_curves, seli_theory


def _record(counts, means, W, cfg=None, epochs=2, bias=None):
    g = class_grams(means, W)
    nc2 = {k: 0.0 for k in ("dist_seli_W", "dist_etf_W", "dist_seli_M", "dist_etf_M", "dist_WM")}
    nc = {"nc1": {"nc1": 0.1}, "nc2": nc2, "grams": g}
    if bias is not None:
        nc["per_class"] = {"bias": list(bias)}
    hist = [{"epoch": e, "train_acc": 1.0, "nc": nc} for e in range(epochs)]
    return {"counts": list(counts), "history": hist, "config": cfg or {}}


def _sqrt_psd(G):
    w, V = np.linalg.eigh(G)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def test_centre_grams_recovers_centred_means():
    rng = np.random.default_rng(0)
    counts = np.array([5, 3, 2])
    M = rng.normal(size=(3, 4))  # rows = class means
    W = rng.normal(size=(3, 4))
    g = class_grams(M, W)
    for mean, p in (("weighted", counts / counts.sum()), ("unweighted", np.full(3, 1 / 3))):
        Mc = M - p @ M
        cg = centre_grams(g, counts, mean)
        np.testing.assert_allclose(cg["MtM"], Mc @ Mc.T, atol=1e-12)
        np.testing.assert_allclose(cg["WM"], W @ Mc.T, atol=1e-12)
    np.testing.assert_allclose(centre_grams(g, counts, "none")["MtM"], M @ M.T, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("depth", [1, 3])
def test_liu_curves_are_zero_at_the_closed_form_minimizer(bias, depth):
    counts = [40, 40, 20, 10]
    wd = 1e-3
    th = deep_linear_ufm(counts, depth, wd, wd, bias)
    # factors of the minimizer with R = I (d = K): M (d x K) columns = class means
    Dinv = np.diag(1 / np.sqrt(counts))
    M = np.diag(th.h_singular_values) @ th.V.T @ Dinv
    W = th.U @ np.diag(th.w_singular_values)
    shift = np.array([0.3, -1.0, 2.0, 0.5]) if bias else 0.0  # absorbed by the bias
    cfg = {"model": {"head_args": {"depth": depth, "bias": bias}}, "optim": {"weight_decay": wd}}
    # the network's own bias: b + W mu_G must be the minimizer's n / N (mu_G = shift here, the
    # minimizer's features having zero weighted mean)
    b = th.b - W @ (shift * np.ones(len(counts))) if bias else None
    cur = liu_curves(_record(counts, (M.T + shift), W, cfg, bias=b))
    for k in ("nc2_W", "nc2_M", "nc3"):
        np.testing.assert_allclose(cur[k], 0.0, atol=1e-6)
    np.testing.assert_array_equal(cur["alive"], cur["alive_theory"])
    if bias:
        np.testing.assert_allclose(cur["bias_err"], 0.0, atol=1e-9)
        wrong = liu_curves(_record(counts, (M.T + shift), W, cfg, bias=th.b))
        assert wrong["bias_err"][-1] > 1e-3  # the bias that ignores W mu_G is measured as off
    # and a perturbed geometry is measured as away from it
    cur2 = liu_curves(_record(counts, M.T * np.array([[1], [1], [1], [3.0]]), W, cfg))
    assert cur2["nc2_M"][-1] > 0.05


def test_seli_curves_match_the_step_closed_form():
    counts = np.array([50] * 3 + [5] * 3)
    GW, GM = seli_class_grams(counts)  # centred at the unweighted mean
    W, M = _sqrt_psd(GW), _sqrt_psd(GM)
    cur = seli_curves(_record(counts, M + 7.0, W))  # an offset: centring must remove it
    th = step_seli_closed_form(3, 3, 10, 5)
    assert seli_theory(counts)["w_norm_ratio"] == pytest.approx(th["w_norm_ratio"])
    np.testing.assert_allclose(cur["w_norm_ratio"], th["w_norm_ratio"], rtol=1e-9)
    np.testing.assert_allclose(cur["mu_norm_ratio"], th["mu_norm_ratio"], rtol=1e-9)
    np.testing.assert_allclose(cur["cos_w_min"], th["cos_w_min_min"], atol=1e-9)
    np.testing.assert_allclose(cur["cos_mu_min"], th["cos_mu_min_min"], atol=1e-9)


def test_catalogue_lists_the_deepnet_entries(capsys):
    ids = {e.id for e in reproductions()}
    assert {"seli-deepnet", "liu-fig1", "liu-fig2", "liu-fig3", "liu-fig4"} <= ids
    assert main(["reproduce", "list", "--json"]) == 0
    listed = {e["id"]: e for e in json.loads(capsys.readouterr().out)}
    assert listed["liu-fig3"]["scales"] == "smoke, here, paper"
    assert "bias" in get_reproduction("liu-fig1").claim


def test_unknown_entry_is_one_line(capsys):
    assert main(["reproduce", "seli-deepnett", "--scale", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seli-deepnet" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["seli-deepnet", "liu-fig1", "liu-fig2", "liu-fig3", "liu-fig4"])
def test_smoke_scale_end_to_end(entry, tmp_path, capsys):
    rc = main(["reproduce", entry, "--scale", "smoke", "--out", str(tmp_path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and summary["scale"] == "smoke" and summary["rows"] > 0
    md = (tmp_path / "predictions.md").read_text()
    assert "**Claim:**" in md and "not comparable" in md
    assert (tmp_path / "curves.png").stat().st_size > 1000
    if entry not in ("seli-deepnet", "liu-fig3"):
        return
    # a second invocation resumes: every run is finished, nothing is retrained
    rc2 = main(["reproduce", entry, "--scale", "smoke", "--out", str(tmp_path), "--json"])
    assert json.loads(capsys.readouterr().out)["rows"] == summary["rows"] and rc2 == rc


def test_recorded_verdicts_fill_in_for_missing_outputs(tmp_path, monkeypatch):
    """A fresh install lists the recorded verdict; a local results.json wins over it."""
    import json

    from ncollapse.reproduce import catalogue

    monkeypatch.setattr(catalogue, "RECORDED", tmp_path / "recorded.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps({"summary": {"all_ok": False, "passed": 3, "failed": 2, "rows": 5}})
    )
    rec = catalogue.record_verdicts({"seli-deepnet": (out, "here")}, "2026-12-04")
    assert rec["seli-deepnet"]["verdict"] == "does not hold (2 of 5 fail)"
    e = catalogue.get_reproduction("seli-deepnet")
    e = catalogue.Reproduction(**{**e.__dict__, "out_dir": str(tmp_path / "absent")})
    assert e.last_verdict() == "does not hold (2 of 5 fail) [here, recorded 2026-12-04]"
    assert e.last_verdict(tmp_path / "absent") == "not run"
    e2 = catalogue.Reproduction(**{**e.__dict__, "out_dir": str(out)})
    assert e2.last_verdict() == "does not hold (2 of 5 fail)"
