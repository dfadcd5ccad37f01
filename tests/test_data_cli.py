"""`ncollapse data list|show` through ncollapse.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_fixtures import write_cifar10
from ncollapse.cli import main
from ncollapse.data import LTManifest, exp_profile, load_dataset

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("NCOLLAPSE_DATA", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def test_show_json_writes_plot_and_manifest(tmp_path, capsys):
    out = tmp_path / "o"
    r = _json(
        capsys,
        ["data", "show", "mnist5k", "--rho", "10", "--seed", "3", "--out", str(out), "--json"],
    )
    assert r["counts"] == exp_profile(400, 10, 10).tolist()
    assert r["profile"] == "exp" and r["params"]["rho"] == 10 and r["seed"] == 3
    c = np.array(r["counts"])
    assert c.tolist() == [400, 309, 239, 185, 143, 111, 86, 66, 51, 40]
    assert r["group_sizes"] == {"many": 6, "medium": 4, "few": 0}
    assert r["groups"]["medium"] == [6, 7, 8, 9]
    assert sum(r["group_sizes"].values()) == 10
    png = Path(r["files"]["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 150_000
    man = LTManifest.load(r["files"]["manifest"])
    sub = man.rebuild(load_dataset("mnist5k").labels)
    assert sub.manifest.indices_sha256 == r["indices_sha256"]


def test_show_table_step_and_ranges(tmp_path, capsys):
    write_cifar10(tmp_path / "c", per_batch=20)
    rc = main(
        [
            "data",
            "show",
            "cifar10",
            "--data-root",
            str(tmp_path / "c"),
            "--profile",
            "step",
            "--k-maj",
            "4",
            "--rho",
            "5",
            "--ranges",
            "3,7",
            "--many",
            "5",
            "--few",
            "3",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    # 10 per class -> step keeps 4 x 10 (> 5: many) and 6 x 2 (< 3: few)
    assert "many 4, medium 0, few 6" in out and "N=52" in out
    assert "index-range groups: head 3, medium 4, tail 3" in out
    assert "automobile" in out and "wrote plot" in out


def test_show_without_rho_is_the_full_split(tmp_path, capsys):
    r = _json(capsys, ["data", "show", "digits", "--out", str(tmp_path), "--no-plot", "--json"])
    assert r["profile"] == "none" and r["counts"] == r["source_counts"] and "plot" not in r["files"]


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)",
)
def test_show_fashion_mnist_rho100(tmp_path, capsys):
    r = _json(
        capsys, ["data", "show", "fashion-mnist", "--rho", "100", "--out", str(tmp_path), "--json"]
    )
    assert r["counts"] == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    # the one shot-threshold default (groups.shot_thresholds) scales to 1000 / 200 at this head
    # size, the split the recipes and the README report (was 8 / 2 / 0 under 100 / 20)
    assert r["group_sizes"] == {"many": 4, "medium": 3, "few": 3} and r["n_total"] == 14886
    assert r["shot_thresholds"] == {"many": 1000, "few": 200}


def test_list_json(capsys):
    r = _json(capsys, ["data", "list", "--json"])
    by = {d["name"]: d for d in r}
    assert by["mnist5k"]["available"] and by["digits"]["available"] and by["mnist1d"]["available"]
    assert (
        by["cifar10"]["available"] is False
        and "cifar-10-python.tar.gz" in by["cifar10"]["how_to_get"]
    )
    assert by["fashion-mnist"]["available"] == (FASHION / "train-labels-idx1-ubyte.gz").is_file()
    rc = main(["data", "list"])
    assert rc == 0 and "fashion-mnist" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["data", "show", "mnist5k", "--rho", "0.01"], "tau=0.01"),
        (["data", "show", "mnist5k", "--rho", "1000"], "empty"),
        (["data", "show", "mnist5k", "--profile", "zipf", "--rho", "3"], "unknown profile"),
        (["data", "show", "nosuchset"], "unknown dataset"),
        (["data", "show", "cifar10", "--rho", "10"], "cifar10 (train) not found"),
        (["data", "show", "mnist5k", "--counts", "5,x"], "comma-separated"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, match, capsys, tmp_path):
    rc = main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err
    assert "Traceback" not in err
    assert not list(Path(tmp_path).glob("*.png"))
