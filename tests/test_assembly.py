"""One decision, one place: each decision the trainer and the commands share is made by one
library function (issue 9). Each test here failed on the code before the assembly layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.errors import NCollapseError


def _json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


# ------------------------------------------------------------------ NCMC class-aware center counts
def test_ncmc_counts_same_in_training_head_and_command(capsys):
    import ncollapse.methods as M
    from ncollapse.models import create_head

    counts = [20, 50, 100, 200, 500]
    r = _json(capsys, ["geometry", "multicenter", "--counts", "20,50,100,200,500", "--f", "4",
                       "--json"])  # fmt: skip
    head = create_head("multicenter", 64, 5, mode="cal", f=4, counts=counts)
    trained = M.center_counts("cal", 5, 4, counts=counts).tolist()
    assert r["f_counts"] == trained == [9, 4, 3, 2, 2]
    assert np.bincount(head.center_class.cpu().numpy()).tolist() == trained


def test_ncmc_rank_rule_is_monotone_in_class_size():
    from ncollapse.geometry import class_aware_counts

    n = np.array([10, 600, 30, 300, 60, 120])
    fk = class_aware_counts(n, 5)
    assert fk.sum() == 30
    # a smaller class never gets fewer centers than a larger one (GCR, NCMC Sec. 3.1)
    for i in range(n.size):
        for j in range(n.size):
            if n[i] < n[j]:
                assert fk[i] >= fk[j], (n[i], fk[i], n[j], fk[j])
    assert fk.tolist() == [13, 2, 7, 2, 3, 3]
    # the positional reading (the paper's worked example) is still available by name
    assert class_aware_counts([1, 3, 3], 3, order="positional").tolist() == [4, 4, 1]
    with pytest.raises(NCollapseError, match="order='size' is unknown"):
        class_aware_counts(n, 5, order="size")


def test_ncmc_rank_rule_ignores_class_numbering():
    from ncollapse.geometry import class_aware_counts

    rng = np.random.default_rng(1)
    n = rng.integers(1, 1000, size=12)
    perm = rng.permutation(12)
    assert class_aware_counts(n[perm], 7).tolist() == class_aware_counts(n, 7)[perm].tolist()


# ------------------------------------------------------------------------------ long-tail profile
def test_long_tail_profile_one_rule():
    from ncollapse.assembly import long_tail_profile

    assert long_tail_profile(rho=100) == "exp"
    assert long_tail_profile(tau=0.01) == "exp"
    assert long_tail_profile(counts=[5, 3]) == "counts"
    assert long_tail_profile(k_maj=5) == "step"
    assert long_tail_profile() == "none"
    assert long_tail_profile("STEP", rho=100) == "step"  # explicit wins
    with pytest.raises(NCollapseError, match="unknown profile 'zipf'"):
        long_tail_profile("zipf")


def test_trainer_and_data_command_build_the_same_subset(tmp_path, capsys):
    from ncollapse.assembly import long_tailed_subset
    from ncollapse.config import load_config
    from ncollapse.data import load_dataset
    from ncollapse.train.trainer import _build_train_data

    cfg = load_config(None, ["data.name=digits", "data.rho=10", "data.seed=2"])
    _, _, idx, counts, man = _build_train_data(cfg)
    r = _json(capsys, ["data", "show", "digits", "--rho", "10", "--seed", "2", "--no-plot",
                       "--out", str(tmp_path), "--json"])  # fmt: skip
    assert counts.tolist() == r["counts"]
    assert man["indices_sha256"] == r["indices_sha256"]
    ds = load_dataset("digits")
    idx2, counts2, _ = long_tailed_subset(ds.labels, ds.num_classes, rho=10, seed=2)
    assert idx.tolist() == idx2.tolist()


# ------------------------------------------------------------------------------ groups, measures
def test_trainer_groups_follow_the_one_shot_default(tmp_path):
    from ncollapse.assembly import class_groups
    from ncollapse.config import load_config
    from ncollapse.groups import shot_groups

    cfg = load_config(None, [])
    counts = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    got = {k: v.tolist() for k, v in class_groups(counts, cfg.eval).items()}
    assert got == {k: v.tolist() for k, v in shot_groups(counts).items()}
    assert [len(v) for v in got.values()] == [4, 3, 3]
    with pytest.raises(NCollapseError, match=r"eval.groups=ranges needs eval.ranges"):
        class_groups(counts, groups="ranges")


def test_trainer_measures_apply_the_metrics_command_minority_rule():
    # failed before: the trainer's compute_all had no minority section, `ncollapse metrics` had one
    import torch

    from ncollapse.assembly import nc_measures
    from ncollapse.commands.metrics import run_metrics
    from ncollapse.groups import range_groups
    from ncollapse.metrics import NCStats

    rng = np.random.default_rng(0)
    K, d = 6, 8
    y = np.repeat(np.arange(K), [40, 30, 20, 10, 6, 4])
    H = rng.normal(size=(y.size, d)) + 3 * np.eye(K, d)[y]
    W = rng.normal(size=(K, d))
    acc = NCStats(K, dim=d)
    acc.update(H, y)

    class Head:
        def classifier_weight(self):
            return torch.as_tensor(W)

        def classifier_bias(self):
            return None

    groups = range_groups(K, [2, 4])
    trainer = nc_measures(acc.snapshot(), Head(), groups)
    cli = run_metrics({"H": H, "y": y, "W": W}, ranges="2,4")
    assert trainer["minority"]["classes"] == cli["minority"]["classes"] == [4, 5]
    assert trainer["minority"]["mean_cos"] == pytest.approx(cli["minority"]["mean_cos"], rel=1e-12)
    assert trainer["nc1"]["nc1"] == pytest.approx(cli["nc1"]["nc1"], rel=1e-12)


# ------------------------------------------------------------------------------ device, imports
def test_device_decision():
    from ncollapse.assembly import process_backend, resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert process_backend("cpu") == "cpu"
    with pytest.raises(NCollapseError, match="is not a device"):
        resolve_device("tpu7")


def test_imports_key_registers_user_components(tmp_path, monkeypatch):
    from ncollapse.config import load_config
    from ncollapse.train import Trainer

    (tmp_path / "my_nc_plugin.py").write_text(
        "from ncollapse.losses import register_loss\n"
        "from ncollapse.losses.classification import CrossEntropyLoss\n"
        "@register_loss('my_ce')\n"
        "def my_ce(counts=None):\n"
        "    return CrossEntropyLoss()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    over = ["imports=[my_nc_plugin]", "data.name=digits", "data.rho=10", "loss.name=my_ce",
            "model.backbone=mlp", "model.backbone_args={depth: 1, width: 8}", "train.epochs=1",
            "train.progress=false", "run.tensorboard=false", f"run.out_dir={tmp_path}",
            "eval.groups=ranges", "eval.ranges=[3,7]"]  # fmt: skip
    res = Trainer(load_config(None, over)).fit()
    assert res.epochs_done == 1
    with pytest.raises(NCollapseError, match="imports: cannot import module 'no_such_mod_x'"):
        Trainer(load_config(None, [*over, "imports=[no_such_mod_x]"]))


# ------------------------------------------------------------------------------ legends
def test_every_number_metrics_prints_is_explained(tmp_path, capsys):
    from ncollapse.commands.metrics import LEGEND

    rng = np.random.default_rng(0)
    K, d = 5, 8
    y = np.repeat(np.arange(K), [30, 20, 10, 6, 4])
    H = rng.normal(size=(y.size, d)) + 2 * np.eye(K, d)[y]
    W, b = rng.normal(size=(K, d)), rng.normal(size=K)
    path = tmp_path / "f.npz"
    np.savez(path, H=H, y=y, W=W, b=b, logits=H @ W.T + b, centers=rng.normal(size=(K, d)),
             W0=rng.normal(size=(K, d)))  # fmt: skip
    res = _json(capsys, ["metrics", str(path), "--ranges", "2,4", "--json"])
    printed = set()
    for sec in ("nc1", "nc3", "nc4", "logits", "ncmc", "norms"):
        printed |= set(res[sec])
    printed |= set(res["nc2"]["means"]) | {k for k in res["nc2"] if k.startswith("dist")}
    printed |= {"mean_cos", "classifier_cos"}  # minority table
    for g in res["groups"].values():
        printed |= {k for k, v in g.items() if v is not None and k != "classes"}
    printed |= {"|mu_c|", "|w_c|", "cos(w,mu)", "b_c", "sigma2", "NC1_c", "CDNV_c", "acc",
                "NC4_c", "NC_ave"}  # fmt: skip
    missing = sorted(printed - set(LEGEND))
    assert not missing, missing
    assert main(["metrics", str(path), "--per-class"]) == 0
    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    out = capsys.readouterr().out
    assert "printed quantities" in out and "cdnv" in out and "default_minority" in out


def test_geometry_tables_explain_their_keys(capsys):
    from ncollapse.commands.geometry import ETF_KEYS, FRAME_KEYS

    assert main(["geometry", "etf", "--k", "4"]) == 0
    out = capsys.readouterr().out
    assert "meaning" in out and "the ETF's pairwise cosine" in out
    r = _json(capsys, ["geometry", "etf", "--k", "4", "--json"])
    assert set(r) - {"gram"} <= set(ETF_KEYS)
    r = _json(capsys, ["geometry", "multicenter", "--counts", "9,3,1", "--f", "2", "--d", "12",
                       "--json"])  # fmt: skip
    assert set(r["frame_check"]) <= set(FRAME_KEYS)
    with pytest.raises(SystemExit):
        main(["geometry", "step", "--help"])
    assert "cos_w_min_min" in capsys.readouterr().out
