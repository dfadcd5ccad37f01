"""Issue 9 / 16 in the UFM lab: closed forms in geometry, one set of Gram measures, SolverOptions,
one deep-linear bias default, the reproduction catalogue, --tol checks and memory checks."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from ncollapse import geometry as geo
from ncollapse import metrics
from ncollapse.cli import main
from ncollapse.errors import NCollapseError, check_memory, format_bytes
from ncollapse.ufm import (
    CERidgeUFM,
    DeepLinearMSEUFM,
    SolverOptions,
    gradient_descent,
    lbfgs,
    solve_ce,
    solve_ce_convex,
    solve_mse,
)

N4 = np.array([10, 10, 1, 1])


# --------------------------------------------------------------------- closed forms in geometry
def test_zero_threshold_in_geometry_batched_and_exact():
    assert geo.zero_threshold(N4) == pytest.approx(np.sqrt(10))
    both = geo.zero_threshold(np.stack([N4, [5, 5, 5, 5]]))
    np.testing.assert_allclose(both, [np.sqrt(10), np.sqrt(5)])
    # independent: the operator norm of the sample-level SEL matrix
    Z = geo.sel_matrix(np.repeat(np.arange(4), N4), 4)
    assert geo.zero_threshold(N4) == pytest.approx(np.linalg.norm(Z, 2), rel=1e-12)
    assert geo.zero_threshold(N4, bias=True) == pytest.approx(np.linalg.norm(geo.y_hat(N4), 2))


def test_minority_collapse_threshold_matches_convex_optimum():
    counts = np.array([10, 10, 10, 4, 4, 4])
    thr = geo.minority_collapse_threshold(counts)
    assert thr == pytest.approx(2.0)
    sol = solve_ce_convex(np.repeat(counts[None], 2, 0), thr * np.array([0.97, 1.03]))
    cos = [metrics.gram_cosines(sol.WWt()[i])[3, 4] for i in range(2)]
    assert 1 - cos[0] > 1e-3 and 1 - cos[1] < 1e-10
    with pytest.raises(NCollapseError, match="two classes"):
        geo.minority_collapse_threshold([10, 5, 1])


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_lambda_star_inverts_global_threshold(L):
    sig = np.array([11.9228, 8.3873, 7.0711])
    lam = geo.lambda_star(sig, 400.0, L)
    assert lam.shape == (3,) and np.all(np.diff(lam) < 0)
    for s, ls in zip(sig, lam):
        assert geo.global_threshold(400.0, ls, L) == pytest.approx(s, rel=1e-12)
    assert isinstance(geo.lambda_star(8.0, 400.0, L), float)
    with pytest.raises(NCollapseError):
        geo.lambda_star(0.0, 400.0, L)


def test_loss_p_features_checks_class_count():
    fr = geo.multicenter_frame(geo.class_aware_counts([30, 10, 5], 2), 12, 0.3, 0)
    with pytest.raises(NCollapseError, match="classes"):
        geo.loss_p_features(fr, [30, 10], 1e-3)
    out = geo.loss_p_features(fr, [30, 10, 5], 1e-3)
    np.testing.assert_allclose(np.linalg.norm(out["h"], axis=0), out["h_norms"], rtol=1e-12)


# ------------------------------------------------------------------- one set of Gram measures
def test_ufm_has_no_measures_of_its_own():
    assert importlib.util.find_spec("ncollapse.ufm.measures") is None
    assert importlib.util.find_spec("ncollapse.ufm.recipes") is None
    import ncollapse.ufm as ufm

    with pytest.warns(DeprecationWarning, match="moved to ncollapse.metrics.gram_distance"):
        assert ufm.gram_distance is metrics.gram_distance
    with pytest.warns(DeprecationWarning, match="loss_p_features"):
        assert ufm.ncmc_prediction is geo.loss_p_features
    with pytest.raises(AttributeError):
        ufm.no_such_name  # noqa: B018


def test_zero_matrix_rule_gram_distance_and_cosines():
    """One rule: a zero matrix (or vector) has no direction -> NaN, never 0, 1 or 2."""
    A = np.array([[2.0, -1.0], [-1.0, 2.0]])
    Z = np.zeros((2, 2))
    assert np.isnan(metrics.gram_distance(Z, A)) and np.isnan(metrics.gram_distance(A, Z))
    assert np.isnan(metrics.gram_distance(Z, Z))
    out = metrics.gram_distance(np.stack([A, Z, -A]), A)  # batched: NaN only where zero
    assert out.shape == (3,) and out[0] == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(out[1]) and out[2] == pytest.approx(2.0)
    tiny = 1e-200 * A  # small but not zero: a direction exists
    assert metrics.gram_distance(tiny, A) == pytest.approx(0.0, abs=1e-15)
    # cosines from a Gram agree with cosines of the rows; a zero vector gives NaN in both
    V = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 1.0, -1.0], [2.0, 0.0, 4.0]])
    c_rows = metrics.cosine_matrix(V)
    c_gram = metrics.gram_cosines(V @ V.T)
    np.testing.assert_allclose(c_gram, c_rows, atol=1e-15)
    assert np.isnan(c_gram[1]).all() and np.isnan(c_gram[:, 1]).all()
    assert c_gram[0, 3] == pytest.approx(1.0, abs=1e-15)  # parallel rows
    assert np.nanmax(metrics.gram_cosines(np.array([[1.0, 1.0 + 1e-15], [1.0, 1.0]]))) <= 1.0


# ------------------------------------------------------------------------------ SolverOptions
def test_solver_options_equal_legacy_keywords():
    m = CERidgeUFM(np.stack([N4, [7, 3, 2, 9]]), [0.1, 0.05], d=5)
    old = lbfgs(m, tol=1e-11, seeds=[3, 4], history=False)
    new = lbfgs(m, SolverOptions(tol=1e-11, seeds=[3, 4], history=False))
    np.testing.assert_array_equal(old.params["W"], new.params["W"])
    g_old = gradient_descent(m, lr=0.1, momentum=0.5, max_iter=50, seeds=1)
    g_new = gradient_descent(
        m, SolverOptions(solver="gd", lr=0.1, momentum=0.5, max_iter=50, seeds=1)
    )
    np.testing.assert_array_equal(g_old.params["G"], g_new.params["G"])
    # keywords override the options object
    a = solve_ce(N4, 0.1, options=SolverOptions(max_iter=3), max_iter=500)
    assert a.converged[0] and a.iterations[0] > 3
    c = solve_ce(N4, 0.1, options=SolverOptions(solver="convex"))
    assert metrics.gram_distance(a.WWt()[0], c.WWt()[0]) < 1e-8


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"tol": -1}, "tol=-1"),
        ({"tol": float("nan")}, "tol"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"lr": 0.1}, "solver='gd' only"),
        ({"solver": "gd", "lr": -1}, "lr=-1"),
        ({"solver": "gd", "momentum": 1.0}, "momentum"),
        ({"solver": "newton"}, "not one of"),
        ({"memory": 0}, "memory"),
    ],
)
def test_solver_options_validate(kw, match):
    with pytest.raises(NCollapseError, match=match):
        SolverOptions(**kw)


def test_solver_options_unknown_keyword_and_convex_tol():
    with pytest.raises(TypeError, match="unknown solver option"):
        solve_ce(N4, 0.1, tolerance=1e-3)
    with pytest.raises(NCollapseError, match="tol"):
        solve_ce_convex(N4, 0.1, tol=-1.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "--model", "ce", "--counts", "10,10,1,1", "--lambda", "0.1", "--tol", "-1"],
        [
            "solve",
            "--model",
            "ce",
            "--counts",
            "10,10,1,1",
            "--lambda",
            "0.1",
            "--solver",
            "convex",
            "--tol",
            "-1",
        ],
        ["solve", "--model", "mse", "--counts", "20,10", "--lambda", "0.01", "--tol", "-1"],
        ["solve", "--model", "ce", "--counts", "10,10,1,1", "--lambda", "0.1", "--max-iter", "0"],
        ["sweep", "--model", "ce", "--counts-step", "2,2", "--lambdas", "0.1", "--tol", "-1"],
    ],
)
def test_cli_negative_tol_is_one_line_error(capsys, argv):
    """Issue 16: ``ufm solve --tol -1`` ran to the iteration cap; now a one-line error, exit 2."""
    rc = main(["ufm", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "tol" in err or "max_iter" in err


# ----------------------------------------------------------------- one deep-linear bias default
def test_deep_linear_bias_default_is_one_value():
    assert DeepLinearMSEUFM([20, 10], 0.01).bias is geo.DEEP_LINEAR_BIAS
    assert geo.deep_linear_ufm([20, 10]).bias is geo.DEEP_LINEAR_BIAS
    assert solve_mse([20, 10], 0.01, max_iter=3).model.bias is geo.DEEP_LINEAR_BIAS


@pytest.mark.parametrize("flag", [[], ["--bias"], ["--no-bias"]])
def test_same_arguments_same_deep_linear_model(capsys, flag):
    """Issue 9: ``geometry deep-linear`` and ``ufm solve --model mse`` read the same default."""
    args = [
        "--counts",
        "200,100,50,50",
        "--layers",
        "2",
        "--lambda-w",
        "5e-3",
        "--lambda-h",
        "5e-3",
    ]
    assert main(["geometry", "deep-linear", *args, *flag, "--json"]) == 0
    cf = json.loads(capsys.readouterr().out)
    assert main(["ufm", "solve", "--model", "mse", *args, *flag, "--json"]) == 0
    num = json.loads(capsys.readouterr().out)
    assert cf["bias"] == num["bias"] == (flag != ["--no-bias"])
    np.testing.assert_allclose(num["WM"], cf["WM"], atol=1e-7)
    np.testing.assert_allclose(num["numerics"]["b"], cf["b"], atol=1e-7)


def test_bias_flag_still_refused_for_ncmc(capsys):
    rc = main(
        ["ufm", "solve", "--model", "ncmc", "--counts", "10,10", "--lambda", "0.1", "--no-bias"]
    )
    assert rc == 2 and "--bias" in capsys.readouterr().err


# --------------------------------------------------------------------------------- memory checks
def test_check_memory_message():
    check_memory(10, "a tiny request", "nothing to do", available=100)
    with pytest.raises(NCollapseError) as exc:
        check_memory(2 * 1024**4, "the request", "lower --x", available=1024**3)
    msg = str(exc.value)
    assert msg == "the request needs 2 TiB of memory, more than the 1 GiB available; lower --x"
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"


SIXTY_K = ",".join(["1"] * 60_000)


@pytest.mark.parametrize(
    "argv, fix",
    [
        (
            ["ufm", "solve", "--model", "ce", "--counts", SIXTY_K, "--lambda", "0.1"],
            "fewer classes",
        ),
        (
            [
                "ufm",
                "solve",
                "--model",
                "ce",
                "--counts",
                SIXTY_K,
                "--lambda",
                "0.1",
                "--solver",
                "convex",
            ],
            "fewer classes",
        ),
        (["ufm", "solve", "--model", "mse", "--counts", SIXTY_K, "--lambda", "0.1"], "--d"),
        (["geometry", "seli", "--counts", SIXTY_K], "fewer classes"),
        (["geometry", "deep-linear", "--counts", SIXTY_K], "fewer classes"),
    ],
)
def test_sixty_thousand_classes_refused_before_allocating(capsys, monkeypatch, argv, fix):
    """Issue 16: SELI / deep-linear / UFM with 60,000 classes asked for terabytes."""
    monkeypatch.setenv("NCOLLAPSE_MAX_MEMORY", "4e9")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "K=60000" in err and "of memory, more than the 3.73 GiB available" in err
    assert fix in err


def test_solver_memory_check_counts_lbfgs_history(monkeypatch):
    """The model fits, but L-BFGS's 2m history vectors do not: refused before the solve."""
    m = CERidgeUFM(np.full(300, 5), 0.1, d=300)
    monkeypatch.setenv("NCOLLAPSE_MAX_MEMORY", str(8 * 2 * 300 * 300 * 20))
    with pytest.raises(NCollapseError, match="parameters each.*--d"):
        lbfgs(m, max_iter=1)
    gradient_descent(m, max_iter=1)  # fewer vectors: fits


# ------------------------------------------------------------------------ reproduction catalogue
def test_catalogue_entries_and_verdict(tmp_path):
    from ncollapse.reproduce import UFM_COMMANDS, get_reproduction, reproductions, run_reproduction

    ids = [e.id for e in reproductions()]
    ufm_ids = ["liu-ufm", "ncmc-ufm", "seli-ufm"]
    assert [i for i in ids if i.endswith("-ufm")] == ufm_ids
    assert set(UFM_COMMANDS.values()) == set(ufm_ids)
    for e in reproductions():
        d = e.to_dict()
        paper_only = e.id in ("ncmc-table2", "ncmc-table5")  # backbone tables: no here scale
        assert d["claim"].endswith(".") and d["paper"] and d["runnable_here"] is not paper_only
        assert d["recipe"].startswith("ncollapse.reproduce.")
    with pytest.raises(NCollapseError, match="did you mean 'seli-ufm'"):
        get_reproduction("seli-uf")
    e = get_reproduction("ncmc-ufm")
    assert e.last_verdict(tmp_path) == "not run"
    summary = run_reproduction("ncmc-ufm", tmp_path, quick=True)
    assert e.last_verdict(tmp_path) == f"holds ({summary['passed']}/{summary['rows']}) (quick)"
