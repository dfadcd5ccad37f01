"""Batched == sequential, bad input, CLI, and the recipes in quick mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ncollapse import geometry as geo
from ncollapse.cli import main
from ncollapse.errors import NCollapseError
from ncollapse.ufm import (
    CERidgeUFM,
    DeepLinearMSEUFM,
    NCMCLossP,
    geometric_grid,
    gradient_descent,
    lbfgs,
    ncmc_frames,
    solve_ce_convex,
    solve_mse,
)
from ncollapse.reproduce import UFM_COMMANDS, run_reproduction


def run_recipe(name, out_dir, **kw):
    """The recipe behind ``ncollapse ufm reproduce NAME`` (catalogue id ``NAME-ufm``)."""
    return run_reproduction(UFM_COMMANDS[name], out_dir, **kw)


COUNTS = np.stack([geo.step_counts(2, 2, R, 1) for R in (1, 3, 10)])
LAMS = np.array([0.5, 0.05, 1e-3])


def test_batched_equals_sequential_lbfgs_and_gd():
    m = CERidgeUFM(COUNTS, LAMS, d=6)
    batch = lbfgs(m, tol=1e-11, seeds=[4, 5, 6])
    for i in range(3):
        one = lbfgs(CERidgeUFM(COUNTS[i], LAMS[i], d=6), tol=1e-11, seeds=4 + i)
        for k in ("W", "G"):
            np.testing.assert_allclose(batch.params[k][i], one.params[k][0], atol=1e-8)
        assert batch.iterations[i] == one.iterations[0]
    ms = CERidgeUFM(COUNTS, LAMS, d=6, features="sample")  # different N: padded columns
    gb = gradient_descent(ms, lr=0.05, tol=1e-8, max_iter=3000, seeds=[1, 2, 3])
    for i in (0, 2):
        n_i = int(COUNTS[i].sum())
        one = gradient_descent(
            CERidgeUFM(COUNTS[i], LAMS[i], d=6, features="sample"),
            lr=0.05,
            tol=1e-8,
            max_iter=3000,
            seeds=1 + i,
        )
        np.testing.assert_allclose(gb.params["G"][i][:, :n_i], one.params["G"][0], atol=1e-10)
        assert np.all(gb.params["G"][i][:, n_i:] == 0)  # padding stays exactly zero
        assert gb.iterations[i] == one.iterations[0]


def test_batched_equals_sequential_convex_and_mse():
    cb = solve_ce_convex(COUNTS, LAMS, bias=True)
    for i in range(3):
        c1 = solve_ce_convex(COUNTS[i], LAMS[i], bias=True)
        np.testing.assert_allclose(cb.V[i], c1.V[0], atol=1e-9)
    mb = solve_mse(COUNTS, LAMS * 0.01, layers=2, bias=True, d=5, seeds=[0, 1, 2])
    m1 = solve_mse(COUNTS[1], LAMS[1] * 0.01, layers=2, bias=True, d=5, seeds=1)
    np.testing.assert_allclose(mb.WWt()[1], m1.WWt()[0], atol=1e-8)


def test_take_and_history_columns():
    m = CERidgeUFM(COUNTS, LAMS, d=5)
    sol = lbfgs(m, seeds=[0, 1, 2])
    sub = sol.take([2, 0])
    np.testing.assert_array_equal(sub.model.counts_np, COUNTS[[2, 0]])
    np.testing.assert_array_equal(sub.params["W"], sol.params["W"][[2, 0]])
    assert sub.history["dist_WH_Z"].shape[1] == 2
    assert {"iteration", "time_s", "objective", "grad_norm", "norm_X"} <= set(sol.history)
    g = sorted(geometric_grid(100, 1.25))
    assert g[:5] == [0, 1, 2, 3, 4] and g[-1] <= 100 and len(g) < 30


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: solve_ce_convex([10, 10, 1, 1], -0.1), "lambda"),
        (lambda: solve_ce_convex([10, 10, 1, 1], 0.0), "lambda"),
        (lambda: CERidgeUFM([10, 10, 1, 1], 0.1, d=3), "d=3 is too small"),
        (lambda: CERidgeUFM([10, 0, 1, 1], 0.1), "not positive"),
        (lambda: CERidgeUFM([10, 10, 1, 1], lambda_w=0.1, lambda_h=0.0), "both"),
        (lambda: CERidgeUFM([10, 10, 1, 1], 0.1, lambda_h=0.1), "not both"),
        (lambda: CERidgeUFM([10, 10, 1, 1], 0.1, lambda_b=0.1), "bias"),
        (lambda: CERidgeUFM([[1, 2], [3, 4]], [0.1, 0.2, 0.3]), "batch sizes"),
        (lambda: CERidgeUFM([1, 2], 0.1, features="pixels"), "features"),
        (lambda: DeepLinearMSEUFM([5, 5], 0.0), "lambda"),
        (lambda: DeepLinearMSEUFM([5, 5], 0.1, layers=0), "layers"),
        (lambda: DeepLinearMSEUFM([5, 5], 0.1, d=1), "too small"),
        (lambda: solve_mse([5, 5], 0.1, solver="convex"), "convex"),
        (lambda: ncmc_frames([5, 5], 3, 0.2, d=4), "too small"),
        (lambda: NCMCLossP([5, 5], ncmc_frames([5, 5], 2, 0.2), 0.0), "lambda_h"),
        (lambda: NCMCLossP([5, 5, 5], ncmc_frames([5, 5], 2, 0.2), 0.1), "classes"),
        (lambda: gradient_descent(CERidgeUFM([2, 1], 0.1), lr=-1), "lr"),
    ],
)
def test_bad_input_raises_clear_error(call, match):
    with pytest.raises(NCollapseError, match=match):
        call()


def test_cuda_request_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(NCollapseError, match="CUDA is not available"):
        CERidgeUFM([2, 1], 0.1, device="cuda")


@pytest.mark.gpu
def test_cuda_matches_cpu():
    c = solve_ce_convex(COUNTS, LAMS, device="cuda")
    h = solve_ce_convex(COUNTS, LAMS)
    np.testing.assert_allclose(c.V, h.V, atol=1e-8)
    g = lbfgs(CERidgeUFM(COUNTS, LAMS, d=6, device="cuda"), seeds=[0, 1, 2])
    np.testing.assert_allclose(
        g.WWt(), lbfgs(CERidgeUFM(COUNTS, LAMS, d=6), seeds=[0, 1, 2]).WWt(), atol=1e-7
    )


# ------------------------------------------------------------------------------------- CLI
def test_cli_solve_json(capsys):
    rc = main(
        ["ufm", "solve", "--model", "ce", "--counts", "10,10,1,1", "--lambda", "0.1", "--json"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and out["vs_convex"]["dist_WWt"] < 1e-8
    assert out["geometry"]["dist_WH_Z"] == pytest.approx(0.143, abs=2e-3)
    rc = main(
        [
            "ufm",
            "solve",
            "--model",
            "mse",
            "--counts",
            "200,100,50,50",
            "--lambda",
            "5e-3",
            "--layers",
            "2",
            "--bias",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["at_global_minimum"] and out["errors"]["WM_rel"] < 1e-8
    rc = main(
        [
            "ufm",
            "solve",
            "--model",
            "ncmc",
            "--counts",
            "30,10,5",
            "--lambda",
            "1e-3",
            "--f",
            "2",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["errors"]["h_norm_rel"] < 1e-8


def test_cli_tables_and_sweep(capsys):
    assert (
        main(
            [
                "ufm",
                "solve",
                "--model",
                "ce",
                "--counts",
                "5,5,1",
                "--lambda",
                "0.2",
                "--solver",
                "convex",
            ]
        )
        == 0
    )
    assert "dist_W_seli" in capsys.readouterr().out
    rc = main(
        [
            "ufm",
            "sweep",
            "--model",
            "ce",
            "--counts-step",
            "2,2",
            "--lambdas",
            "1,0.1",
            "--R",
            "1,4",
            "--solver",
            "convex",
            "--json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rc == 0 and len(rows) == 4 and rows[2]["counts"] == [4, 4, 1, 1]


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["--model", "ce", "--counts", "10,10,1,1", "--lambda", "0.1", "--layers", "2"],
            "--layers applies to --model mse only",
        ),
        (["--model", "ce", "--counts", "10,10,0,1", "--lambda", "0.1"], "not positive"),
        (["--model", "ce", "--counts", "10,10,1,1", "--lambda", "-1"], "lambda"),
        (["--model", "ce", "--counts", "10,10,1,1", "--lambda", "0.1", "--d", "2"], "too small"),
        (
            ["--model", "mse", "--counts", "10,10", "--lambda", "0.1", "--solver", "convex"],
            "convex",
        ),
        (["--model", "ncmc", "--counts", "10,10", "--lambda", "0.1", "--bias"], "--bias"),
    ],
)
def test_cli_bad_input_exit_2(capsys, argv, match):
    rc = main(["ufm", "solve", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and match in err and err.count("\n") == 1


# --------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", ["seli", "liu", "ncmc"])
def test_recipes_quick(tmp_path, name):
    out = tmp_path / name
    summary = run_recipe(name, out, quick=True)
    assert summary["all_ok"], summary
    assert summary["rows"] >= 5
    for f in ("results.json", "predictions.md", "predictions.csv", f"ufm_{name}.png"):
        assert (out / f).exists(), f
    res = json.loads((out / "results.json").read_text())
    assert all(r["ok"] for r in res["rows"])
    assert "| prediction | numerics | error | tol | ok |" in (out / "predictions.md").read_text()


def test_cli_reproduce_quick(tmp_path, capsys):
    rc = main(["ufm", "reproduce", "ncmc", "--quick", "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["all_ok"] and out["failed"] == 0
