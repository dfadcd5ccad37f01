"""`ncollapse measure / export-features / eval RUN_DIR` on a tiny finished run (sklearn digits)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main as cli_main
from ncollapse.config import load_config
from ncollapse.train import Trainer

BASE = [
    "data.name=digits",
    "data.profile=exp",
    "data.rho=10",
    "data.batch_size=64",
    "data.test_batch_size=512",
    "model.backbone=mlp",
    "model.backbone_args={depth: 2, width: 32, batchnorm: false}",
    "model.head=linear",
    "optim.lr=0.05",
    "train.epochs=2",
    "train.progress=false",
    "train.device=cpu",
    "run.tensorboard=false",
    "run.name=tiny",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return Trainer(load_config(None, [*BASE, f"run.out_dir={out}"])).fit().run_dir


def _json(capsys, argv):
    assert cli_main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_export_features_is_read_by_metrics(run_dir, tmp_path, capsys):
    out = tmp_path / "f.npz"
    info = _json(capsys, ["export-features", str(run_dir), "--out", str(out), "--json"])
    assert info["path"] == str(out)
    z = np.load(out)
    man = json.loads((run_dir / "manifest.json").read_text())
    assert z["H"].shape[0] == sum(man["counts"]) == z["y"].shape[0]
    assert np.bincount(z["y"]).tolist() == man["counts"]
    # the linear head: logits = H W^T + b (independent of the model code path)
    np.testing.assert_allclose(z["H"] @ z["W"].T + z["b"], z["logits"], rtol=1e-4, atol=1e-4)
    met = _json(capsys, ["metrics", str(out), "--json"])
    res = _json(capsys, ["measure", str(run_dir), "--json"])
    # two code paths (npz + metrics command, model + measure) agree
    assert res["train"]["nc1"]["nc1"] == pytest.approx(met["nc1"]["nc1"], rel=1e-4)
    assert res["train"]["nc4"]["agreement"] == pytest.approx(met["nc4"]["agreement"], abs=2e-3)
    assert res["train"]["data"]["counts"] == man["counts"]


def test_measure_test_split_and_eval_agree(run_dir, tmp_path, capsys):
    out = tmp_path / "t.npz"
    _json(capsys, ["export-features", str(run_dir), "--split", "test", "--out", str(out), "--json"])
    z = np.load(out)
    acc = float(np.mean(z["logits"].argmax(1) == z["y"]))
    res = _json(capsys, ["measure", str(run_dir), "--split", "test", "--json"])
    assert res["heldout"]["samples"] == len(z["y"])
    assert res["heldout"]["accuracy"] == pytest.approx(acc)
    assert res["scalars"]["test/accuracy"] == pytest.approx(acc)
    ev = _json(capsys, ["eval", str(run_dir), "--json"])
    assert ev["test_acc"] == pytest.approx(acc)
    assert set(ev["group_acc"]) == {"many", "medium", "few"}
    per = np.array([np.mean(z["logits"][z["y"] == c].argmax(1) == c) for c in range(10)])
    np.testing.assert_allclose(ev["per_class_acc"], per)
    counts = np.array(ev["train_counts"])
    few = [c for c in range(10) if counts[c] < ev["thresholds"]["few"]]
    assert ev["groups"]["few"] == few
    # --many/--few override the run's thresholds
    ev2 = _json(capsys, ["eval", str(run_dir), "--json", "--many", "50", "--few", "30"])
    assert ev2["groups"]["many"] == [c for c in range(10) if counts[c] > 50]


def test_tables_plot_and_errors(run_dir, tmp_path, capsys):
    png = tmp_path / "g.png"
    assert cli_main(["measure", str(run_dir), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "SELI" in out and "minority classifiers" in out and png.stat().st_size > 1000
    assert cli_main(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "many" in out and "per class" in out
    assert cli_main(["export-features", str(run_dir)]) == 0
    assert (run_dir / "features-train.npz").is_file()
    capsys.readouterr()
    assert cli_main(["measure", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a run directory" in err and "\n" not in err
    (tmp_path / "config.yaml").write_text("{}")
    assert cli_main(["eval", str(tmp_path)]) == 2
    assert "has no checkpoint.pt" in capsys.readouterr().err


def test_decouple_matches_the_library_on_exported_features(run_dir, tmp_path, capsys):
    """`ncollapse decouple` equals methods.decoupled applied by hand to the exported arrays; the
    'before' column equals `ncollapse eval`; tau=0 leaves the classifier's predictions as they are
    (w / |w|^0 = w, bias dropped as in Kang et al.), and the run folder is not written."""
    import torch

    from ncollapse.methods.decoupled import fit_crt

    before = sorted(p.name for p in run_dir.iterdir())
    tr, te = tmp_path / "tr.npz", tmp_path / "te.npz"
    _json(capsys, ["export-features", str(run_dir), "--out", str(tr), "--json"])
    _json(capsys, ["export-features", str(run_dir), "--split", "test", "--out", str(te), "--json"])
    a, b = np.load(tr), np.load(te)
    res = _json(capsys, ["decouple", str(run_dir), "--method", "crt", "--json"])
    clf = fit_crt(torch.from_numpy(a["H"]), torch.from_numpy(a["y"]), 10, weight_decay=5e-4)
    pred = clf.logits(torch.from_numpy(b["H"])).argmax(1).numpy()
    assert res["after"]["test_acc"] == pytest.approx(float(np.mean(pred == b["y"])))
    ev = _json(capsys, ["eval", str(run_dir), "--json"])
    assert res["before"]["test_acc"] == pytest.approx(ev["test_acc"])
    t0 = _json(capsys, ["decouple", str(run_dir), "--method", "tau_norm", "--tau", "0", "--json"])
    nobias = (b["H"] @ b["W"].T).argmax(1)
    assert t0["after"]["test_acc"] == pytest.approx(float(np.mean(nobias == b["y"])))
    assert cli_main(["decouple", str(run_dir), "--method", "lws"]) == 0
    out = capsys.readouterr().out
    assert "balanced" in out and "lws" in out
    assert sorted(p.name for p in run_dir.iterdir()) == before
