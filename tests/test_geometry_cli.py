"""``ncollapse geometry ...`` commands: JSON values match the spec numbers; bad input exits 2."""

import json

import numpy as np
import pytest

from ncollapse.cli import main


def _json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_etf_json(capsys):
    r = _json(capsys, ["geometry", "etf", "--k", "10", "--json"])
    assert r["k"] == 10 and r["d"] == 10
    np.testing.assert_allclose([r["cos_min"], r["cos_max"]], -1 / 9, atol=1e-13)
    np.testing.assert_allclose([r["norm_min"], r["norm_max"]], 1, atol=1e-13)
    assert r["gram_max_abs_error"] < 1e-13
    assert "W" not in r
    r = _json(
        capsys, ["geometry", "etf", "--k", "4", "--d", "3", "--seed", "2", "--matrix", "--json"]
    )
    W = np.array(r["W"])
    assert W.shape == (4, 3)
    np.testing.assert_allclose(W @ W.T, np.array(r["gram"]), atol=1e-13)


def test_etf_table(capsys):
    assert main(["geometry", "etf", "--k", "5", "--matrix"]) == 0
    out = capsys.readouterr().out
    assert "-0.2500" in out and "simplex ETF" in out


def test_seli_json_matches_spec(capsys):
    r = _json(capsys, ["geometry", "seli", "--counts", "10,10,1,1", "--json"])
    np.testing.assert_allclose(np.array(r["G_W"])[0, :2], [2.1674, -0.9948], atol=5e-5)
    np.testing.assert_allclose(np.array(r["G_M"])[2, 3], -0.3934, atol=5e-5)
    np.testing.assert_allclose(np.array(r["WM"]), np.eye(4) - 0.25, atol=1e-12)
    np.testing.assert_allclose(np.array(r["singular_values"]) ** 2, [10, 5.5, 1], atol=1e-12)
    np.testing.assert_allclose(np.array(r["cos_W"])[2, 3], 0.0794, atol=5e-5)


def test_seli_table(capsys):
    assert main(["geometry", "seli", "--counts", "10,10,1,1"]) == 0
    out = capsys.readouterr().out
    assert "2.1674" in out and "0.6066" in out and "G_W" in out


@pytest.mark.parametrize(
    ("R", "row"),
    [
        ("2", [1.1659, 0.8569, -0.0840]),
        ("10", [1.6347, 0.5923, 0.0334]),
        ("100", [2.4013, 0.3399, 0.3380]),
        ("1000", [3.0110, 0.1924, 0.6707]),
    ],
)
def test_step_json_table_rows(capsys, R, row):
    r = _json(capsys, ["geometry", "step", "--k-maj", "5", "--k-min", "5", "--R", R, "--json"])
    got = [r["w_norm_ratio"], r["mu_norm_ratio"], r["cos_w_min_min"]]
    np.testing.assert_allclose(got, row, atol=5e-5)
    assert r["counts"] == [int(R)] * 5 + [1] * 5


def test_step_table(capsys):
    assert main(["geometry", "step", "--k-maj", "5", "--k-min", "5", "--R", "10"]) == 0
    out = capsys.readouterr().out
    assert "1.6347" in out and "0.0334" in out


def test_deep_linear_json_reference(capsys):
    argv = [
        "geometry",
        "deep-linear",
        "--counts",
        "200,100,50,50",
        "--layers",
        "1",
        "--lambda-w",
        "5e-3",
        "--lambda-h",
        "5e-3",
        "--json",
    ]
    r = _json(capsys, argv)
    np.testing.assert_allclose(r["sigma"], [11.9228, 8.3873, 7.0711, 0], atol=5e-5)
    np.testing.assert_allclose(r["t"], [9.9228, 6.3873, 5.0711, 0], atol=5e-5)
    np.testing.assert_allclose(r["w_norms"], [2.6677, 2.4260, 2.0469, 2.0469], atol=5e-5)
    np.testing.assert_allclose(r["mu_norms"], [0.1557, 0.2519, 0.3192, 0.3192], atol=5e-5)
    np.testing.assert_allclose(r["b"], [0.5, 0.25, 0.125, 0.125])
    assert r["threshold"] == pytest.approx(2.0)
    assert r["zeroed"] == [False, False, False, True]
    np.testing.assert_allclose(np.array(r["WM"])[0], [0.4138, -0.4261, -0.4015, -0.4015], atol=5e-5)


def test_deep_linear_no_bias_and_layers(capsys):
    argv = [
        "geometry",
        "deep-linear",
        "--counts",
        "200,100,50,50",
        "--lambda-w",
        "0.02",
        "--lambda-h",
        "0.02",
        "--no-bias",
        "--json",
    ]
    r = _json(capsys, argv)
    np.testing.assert_allclose(np.array(r["logits"]), np.diag([0.4343, 0.2, 0, 0]), atol=5e-5)
    argv = ["geometry", "deep-linear", "--counts", "200,100,50,50", "--layers", "2", "--json"]
    r = _json(capsys, argv)
    assert r["layers"] == 2 and r["stationary_threshold"] < r["threshold"]


def test_deep_linear_table(capsys):
    assert main(["geometry", "deep-linear", "--counts", "200,100,50,50"]) == 0
    out = capsys.readouterr().out
    assert "11.9228" in out and "0.4138" in out and "zeroed" in out


def test_multicenter_json(capsys):
    counts = "5000,2997,1796,1077,645,387,232,139,83,50"
    r = _json(capsys, ["geometry", "multicenter", "--counts", counts, "--f", "20", "--json"])
    assert r["f_counts"] == [2, 3, 4, 5, 7, 11, 17, 28, 46, 77]
    assert r["F"] == 200 and r["d_required"] == 210
    fk = np.array(r["f_counts"])
    th = np.pi / 2 - 0.2  # the default: the paper's 0.2 read from the class direction
    assert r["theta"] == pytest.approx(th, abs=1e-15)
    np.testing.assert_allclose(
        r["cos_alpha"], np.sqrt((np.cos(th) ** 2 + fk * np.sin(th) ** 2) / fk), atol=1e-14
    )
    argv = ["geometry", "multicenter", "--counts", "1,3,3", "--f", "3", "--order", "positional"]
    r = _json(capsys, [*argv, "--json"])  # the paper's worked example reads the counts positionally
    assert r["f_counts"] == [4, 4, 1]
    argv = [
        "geometry",
        "multicenter",
        "--counts",
        "30,10,5",
        "--f",
        "3",
        "--mode",
        "al",
        "--d",
        "16",
        "--theta",
        "0.3",
        "--json",
    ]
    r = _json(capsys, argv)
    assert r["f_counts"] == [3, 3, 3]
    chk = r["frame_check"]
    assert chk["orthonormality_error"] < 1e-13 and chk["same_class_cos_error"] < 1e-13
    assert chk["cos_alpha_error"] < 1e-13 and chk["cross_class_max_abs_cos"] < 1e-13


def test_multicenter_table(capsys):
    assert main(["geometry", "multicenter", "--counts", "1,3,3", "--f", "3", "--d", "12"]) == 0
    out = capsys.readouterr().out
    assert "frame check" in out and "cos α_k" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["geometry", "seli", "--counts", "10,x,1"], "'x' is not a number"),
        (["geometry", "seli", "--counts", "10,0,1"], "not positive"),
        (["geometry", "seli", "--counts", "10,-3"], "not positive"),
        (["geometry", "seli", "--counts", "10,,1"], "comma-separated"),
        (["geometry", "seli", "--counts", "7"], "at least 2"),
        (["geometry", "etf", "--k", "10", "--d", "5"], "d=5"),
        (["geometry", "step", "--k-maj", "5", "--k-min", "5", "--R", "2.5"], "not an integer"),
        (["geometry", "deep-linear", "--counts", "5,5", "--lambda-w", "0"], "lambda_w"),
        (["geometry", "multicenter", "--counts", "50,10", "--f", "3", "--d", "7"], "d >= F+K"),
        (["geometry", "multicenter", "--counts", "50,1.5", "--f", "3"], "not an integer"),
    ],
)
def test_bad_input_exit_2_one_line(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert match in err
