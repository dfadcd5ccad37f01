"""ncollapse.measure: locating the features, the data forms, eval/no-grad/autocast handling, the
measured values against independent computations, held-out NC against the training means, the
theory (ETF, SELI) and the verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import ncollapse
from ncollapse.errors import NCollapseError
from ncollapse.geometry import seli_factors, seli_geometry
from ncollapse.measuring import locate_features
from ncollapse.metrics import NCStats, compute_all, statistics

K, D = 4, 6


def _data(n=(40, 20, 10, 6), d=D, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    mu = 3 * torch.randn(len(n), d, generator=g)
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(n)])
    x = mu[y] + spread * torch.randn(len(y), d, generator=g)
    return x, y


def _linear_model(d=D, k=K, seed=0):
    """Features = the input: ``h = x`` (a Flatten before the classifier)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, k))


def _brute(x, y, W, b, mu):
    """Independent numpy: classifier predictions, nearest-mean predictions, ‖h - μ_y‖²."""
    x, W, b, mu = (np.asarray(a, dtype=np.float64) for a in (x, W, b, mu))
    pred = (x @ W.T + b).argmax(1)
    ncc = ((x[:, None, :] - mu[None]) ** 2).sum(2).argmin(1)
    ss = ((x - mu[y]) ** 2).sum(1)
    return pred, ncc, ss


def test_three_lines_match_direct_computation():
    x, y = _data()
    model = _linear_model()
    res = ncollapse.measure(model, (x, y), progress=False, verbose=False)
    W = model[1].weight.detach().double().numpy()
    b = model[1].bias.detach().double().numpy()
    direct = compute_all(statistics(x, y, K, logits=model(x).detach()), W, b)
    assert res.train["nc1"]["nc1"] == pytest.approx(direct["nc1"]["nc1"], rel=1e-10)
    assert res.train["nc2"]["dist_seli_W"] == pytest.approx(direct["nc2"]["dist_seli_W"], rel=1e-10)
    # NC4 by brute force: classifier argmax vs nearest class mean
    mu = np.stack([x[y == c].double().mean(0).numpy() for c in range(K)])
    pred, ncc, _ = _brute(x, y.numpy(), W, b, mu)
    assert res.train["nc4"]["agreement"] == pytest.approx(np.mean(pred == ncc))
    assert res.train["logits"]["accuracy"] == pytest.approx(np.mean(pred == y.numpy()))
    assert res.layer == "1" and "nn.Linear 6 -> 4" in res.source
    json.dumps(res.to_dict())  # JSON-able


def test_heldout_against_training_means_bruteforce():
    x, y = _data()
    xt, yt = _data(n=(5, 7, 9, 11), seed=1, spread=1.0)
    model = _linear_model()
    res = ncollapse.measure(model, (x, y), test=(xt, yt), progress=False, verbose=False)
    W = model[1].weight.detach().double().numpy()
    b = model[1].bias.detach().double().numpy()
    mu = np.stack([x[y == c].double().mean(0).numpy() for c in range(K)])
    pred, ncc, ss = _brute(xt, yt.numpy(), W, b, mu)
    ho = res.heldout
    assert ho["samples"] == 32 and ho["counts"] == [5, 7, 9, 11]
    assert ho["nc4"] == pytest.approx(np.mean(pred == ncc))
    assert ho["accuracy"] == pytest.approx(np.mean(pred == yt.numpy()))
    assert ho["ncc_accuracy"] == pytest.approx(np.mean(ncc == yt.numpy()))
    mu_c = mu - mu.mean(0)
    tr_b = (mu_c**2).sum() / K
    assert ho["variability"] == pytest.approx(ss.mean() / tr_b, rel=1e-10)
    # the test's own NC1 (around its own means) is also reported
    assert res.test["nc1"]["nc1"] == pytest.approx(
        compute_all(statistics(xt, yt, K), W, b)["nc1"]["nc1"], rel=1e-10
    )
    assert res.scalars()["test/nc4"] == pytest.approx(ho["nc4"])
    assert any(v.startswith("train -> test gap: accuracy") for v in res.verdicts)


def test_absent_test_class_is_reported_not_fatal():
    x, y = _data()
    xt, yt = _data(n=(5, 7, 0, 11), seed=1)
    res = ncollapse.measure(_linear_model(), (x, y), test=(xt, yt), progress=False, verbose=False)
    assert res.heldout["absent_classes"] == [2]
    assert res.test is None  # own-means NC needs every class
    assert np.isnan(res.heldout["per_class"]["accuracy"][2])
    assert "classes absent from the test data: [2]" in res.verdicts[-1]


def test_absent_training_class_is_one_line_error():
    x, y = _data(n=(5, 0, 4, 3))
    with pytest.raises(NCollapseError, match=r"class\(es\) \[1\] do not occur in data"):
        ncollapse.measure(_linear_model(), (x, y), progress=False, verbose=False)


def _seli_model_and_data(counts):
    """Features and classifier exactly at SELI (Thrampoulidis et al. 2022): h_i = H[:, i]."""
    labels = np.repeat(np.arange(len(counts)), counts)
    f = seli_factors(labels)
    k = len(counts)
    model = nn.Sequential(nn.Flatten(), nn.Linear(k - 1, k, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(f.W))
    return model, torch.from_numpy(f.H.T.copy()), torch.from_numpy(labels)


def test_exact_seli_geometry_matches_theory():
    counts = [30, 30, 30, 3, 3, 3]
    model, x, y = _seli_model_and_data(counts)
    res = ncollapse.measure(model, (x, y), progress=False, verbose=False)
    th = seli_geometry(counts)
    nc2 = res.train["nc2"]
    assert nc2["dist_seli_W"] < 1e-8 and nc2["dist_seli_M"] < 1e-8
    assert nc2["dist_etf_W"] == pytest.approx(res.theory["seli"]["dist_etf_W"], abs=1e-8)
    mino = res.train["minority"]
    assert mino["classes"] == [3, 4]  # the ⌈K/3⌉ smallest classes (ties by index)
    pred = th.cos_W[3, 4]
    assert res.theory["seli"]["minority_cos_W"] == pytest.approx(pred)
    assert mino["classifier_cos"] == pytest.approx(pred, abs=1e-8)
    rows = {r[0]: r for r in res.summary_rows()}
    assert rows["|w| head/tail ratio"][1] == pytest.approx(rows["|w| head/tail ratio"][4])
    assert res.train["nc1"]["tr_within"] == pytest.approx(0, abs=1e-12)
    text = "\n".join(res.verdicts)
    assert "features collapsed to their class means" in text
    assert "classifier geometry is closer to SELI" in text
    assert "minority classifiers not collapsed" in text


def test_collapsed_minority_classifiers_verdict():
    counts = [30, 30, 30, 3, 3, 3]
    model, x, y = _seli_model_and_data(counts)
    with torch.no_grad():  # make the minority classifiers nearly identical
        w = model[1].weight
        w[4] = w[3] + 1e-3 * w[4]
        w[5] = w[3] + 1e-3 * w[5]
    res = ncollapse.measure(model, (x, y), minority=[3, 4, 5], progress=False, verbose=False)
    line = next(v for v in res.verdicts if v.startswith("minority classifiers"))
    m = res.train["minority"]["classifier_cos"]
    assert line.startswith("minority classifiers collapsed: mean cosine")
    assert m > 0.99 and f"{m:.2f}"[:3] in line
    assert "SELI predicts" in line


def test_table_str_and_plot(tmp_path):
    x, y = _data()
    xt, yt = _data(seed=2)
    res = ncollapse.measure(_linear_model(), (x, y), test=(xt, yt), progress=False, verbose=False)
    s = str(res)
    for word in ("train", "test", "ETF", "SELI", "NC1", "NC4", "minority classifiers"):
        assert word in s
    fig = res.plot(tmp_path / "nc.png")
    assert (tmp_path / "nc.png").stat().st_size > 1000 and len(fig.axes) >= 3


# ------------------------------------------------------------------------------ locating


class TimmLike(nn.Module):
    """timm's interface: forward_features, forward_head(pre_logits=), get_classifier."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(D, 8)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, K)
        self.decoy = nn.Linear(K, K)  # registered last: the last-Linear rule would pick it

    def forward_features(self, x):
        return torch.relu(self.body(x))

    def forward_head(self, x, pre_logits: bool = False):
        x = self.norm(x)
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_timm_style_uses_forward_head_pre_logits():
    m = TimmLike()
    src = locate_features(m)
    assert src.kind == "timm" and "forward_head(pre_logits=True)" in src.description
    x, y = _data()
    res = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    with torch.no_grad():
        h = m.norm(torch.relu(m.body(x)))
    direct = statistics(h, y, K)
    assert res.train["nc1"]["nc1"] == pytest.approx(compute_all(direct)["nc1"]["nc1"], rel=1e-9)
    assert res.train["data"]["dim"] == 8


class VGGLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(D, 16), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, K))

    def forward(self, x):
        return self.classifier(self.features(x))


class WithAux(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, K)
        self.aux = nn.Linear(K, 2)  # registered after fc, but fc is the named classifier

    def forward(self, x):
        return self.fc(x)


def test_attribute_rules_and_last_linear():
    assert locate_features(VGGLike()).layer == "classifier.2"
    assert locate_features(WithAux()).layer == "fc"
    seq = nn.Sequential(nn.Linear(D, 5), nn.ReLU(), nn.Linear(5, K))
    assert locate_features(seq).layer == "2"


def test_ncollapse_classifier_uses_head_embedding():
    from ncollapse.models import build_model

    m = build_model({"backbone": {"name": "mlp", "in_features": D, "depth": 1, "width": 8},
                     "head": "linear", "num_classes": K})  # fmt: skip
    src = locate_features(m)
    assert src.kind == "ncollapse"
    x, y = _data()
    res = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    with torch.no_grad():
        m.eval()
        out = m(x)
    W = m.classifier_weight().detach().double().numpy()
    direct = compute_all(statistics(out.embedding, y, K, logits=out.logits), W)
    assert res.train["nc1"]["nc1"] == pytest.approx(direct["nc1"]["nc1"], rel=1e-9)


def test_explicit_layer_and_features_callable():
    m = VGGLike()
    x, y = _data()
    # a non-Linear layer: its output, flattened; no classifier -> K must come from somewhere
    res = ncollapse.measure(
        m, (x, y), layer="features", num_classes=K, progress=False, verbose=False
    )
    with torch.no_grad():
        h = m.features(x)
    assert res.train["nc1"]["nc1"] == pytest.approx(
        compute_all(statistics(h, y, K))["nc1"]["nc1"], rel=1e-9
    )
    assert "nc3" not in res.train and "output of `features`" in res.source
    # a Linear by name: its input
    res2 = ncollapse.measure(m, (x, y), layer="classifier.2", progress=False, verbose=False)
    assert res2.layer == "classifier.2" and res2.train["data"]["dim"] == 8
    # a callable; the classifier is used when its width matches
    feat = lambda inp: m.classifier[1](m.classifier[0](m.features(inp)))  # noqa: E731
    res3 = ncollapse.measure(m, (x, y), features=feat, progress=False, verbose=False)
    assert res3.train["data"]["dim"] == 8 and "nc3" in res3.train
    with pytest.raises(NCollapseError, match="did you mean"):
        ncollapse.measure(m, (x, y), layer="clasifier", progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="layer= or features="):
        ncollapse.measure(m, (x, y), layer="fc", features=feat, progress=False, verbose=False)


def test_no_classifier_found_names_the_fix():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(NCollapseError, match="pass layer='name'.*or features=callable"):
        ncollapse.measure(m, (torch.zeros(4, 1, 5, 5), torch.tensor([0, 1, 0, 1])), progress=False)
    with pytest.raises(NCollapseError, match="num_classes=K"):
        ncollapse.measure(m, (torch.zeros(4, 1, 5, 5), torch.tensor([0, 1, 0, 1])), layer="1",
                          progress=False, verbose=False)  # fmt: skip


# ------------------------------------------------------------------------------ data forms


def test_every_data_form_gives_the_same_result():
    from torch.utils.data import DataLoader, TensorDataset

    x, y = _data()
    m = _linear_model()
    ref = ncollapse.measure(m, (x, y), progress=False, verbose=False).train["nc1"]["nc1"]
    ds = TensorDataset(x, y)
    forms = {
        "labels=": dict(data=x, labels=y),
        "numpy": dict(data=(x.numpy(), y.numpy())),
        "DataLoader": dict(data=DataLoader(ds, batch_size=7)),
        "Dataset": dict(data=ds),
        "list": dict(data=[(x[i : i + 9], y[i : i + 9]) for i in range(0, len(y), 9)]),
        "generator": dict(data=((x[i : i + 9], y[i : i + 9]) for i in range(0, len(y), 9))),
        "dicts": dict(
            data=[{"image": x[i : i + 9], "label": y[i : i + 9]} for i in range(0, 76, 9)]
        ),
        "uncached": dict(data=DataLoader(ds, batch_size=7), cache_bytes=0),
    }
    for name, kw in forms.items():
        data = kw.pop("data")
        res = ncollapse.measure(m, data, progress=False, verbose=False, **kw)
        assert res.train["nc1"]["nc1"] == pytest.approx(ref, rel=1e-10), name
        assert "nc4" in res.train, name


def test_one_shot_iterator_that_does_not_fit_the_cache():
    x, y = _data()
    gen = ((x[i : i + 9], y[i : i + 9]) for i in range(0, len(y), 9))
    with pytest.raises(NCollapseError, match="one-shot iterator"):
        ncollapse.measure(_linear_model(), gen, cache_bytes=0, progress=False, verbose=False)


def test_bad_batches_and_labels():
    x, y = _data()
    m = _linear_model()
    with pytest.raises(NCollapseError, match=r"\(inputs, labels\) pair"):
        ncollapse.measure(m, [x], progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="single array"):
        ncollapse.measure(m, x, progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="out of range"):
        ncollapse.measure(m, (x, y + 1), progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="76 inputs but 75 labels"):
        ncollapse.measure(m, x, labels=y[:-1], progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="mean='median' is not valid"):
        ncollapse.measure(m, (x, y), mean="median", progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="minority classes"):
        ncollapse.measure(m, (x, y), minority=[0, 9], progress=False, verbose=False)
    with pytest.raises(NCollapseError, match="not a torch.nn.Module|must be a torch.nn.Module"):
        ncollapse.measure(lambda v: v, (x, y))


# ------------------------------------------------------------------------------ modes


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)
        self.bn = nn.BatchNorm1d(D)
        self.fc = nn.Linear(D, K)

    def forward(self, x):
        return self.fc(self.bn(self.drop(x)))


def test_eval_mode_and_training_flags_restored():
    x, y = _data()
    m = Noisy()
    m.train()
    m.bn.eval()  # a frozen BN stays frozen afterwards
    bn_state = {k: v.clone() for k, v in m.bn.state_dict().items()}
    r1 = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    r2 = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    assert r1.train["nc1"]["nc1"] == r2.train["nc1"]["nc1"]  # no dropout noise: eval mode
    assert m.training and m.drop.training and not m.bn.training
    for k, v in m.bn.state_dict().items():
        assert torch.equal(v, bn_state[k]), k  # running stats untouched


def test_grad_requiring_features_and_no_side_effects():
    x, y = _data()
    m = _linear_model()
    res = ncollapse.measure(m, (x, y), no_grad=False, progress=False, verbose=False)
    ref = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    assert res.train["nc1"]["nc1"] == pytest.approx(ref.train["nc1"]["nc1"], rel=1e-12)
    assert all(p.grad is None for p in m.parameters())


def test_autocast_inside_and_as_option():
    x, y = _data()
    m = _linear_model()
    ref = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outer = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    opt = ncollapse.measure(m, (x, y), autocast=True, progress=False, verbose=False)
    for r in (outer, opt):
        # features are the input (exact); the bf16 logits change at most a few predictions
        assert r.train["nc1"]["nc1"] == pytest.approx(ref.train["nc1"]["nc1"], rel=1e-10)
        assert abs(r.train["logits"]["accuracy"] - ref.train["logits"]["accuracy"]) < 0.05
    with pytest.raises(NCollapseError, match="autocast="):
        ncollapse.measure(m, (x, y), autocast="fp16", progress=False, verbose=False)


def test_says_which_layer_and_shows_progress(capsys):
    x, y = _data()
    ncollapse.measure(_linear_model(), (x, y), test=(x, y), progress=True)
    err = capsys.readouterr().err
    assert "ncollapse.measure: features = input of `1` (nn.Linear 6 -> 4)" in err
    assert "pass 1/3" in err and "pass 2/3" in err and "pass 3/3" in err


def test_counts_override_sets_the_theory():
    x, y = _data()
    res = ncollapse.measure(_linear_model(), (x, y), counts=[100, 10, 10, 1], progress=False,
                            verbose=False)  # fmt: skip
    assert res.theory["seli"]["counts"] == [100, 10, 10, 1]
    assert res.minority == [1, 3]  # the 2 smallest; ties by index
    with pytest.raises(NCollapseError, match="one count per class"):
        ncollapse.measure(_linear_model(), (x, y), counts=[1, 2], progress=False, verbose=False)


def test_ncmc_frame_is_measured():
    import ncollapse.methods  # noqa: F401  (registers the multicenter head)
    from ncollapse.models import build_model

    m = build_model({"backbone": {"name": "mlp", "in_features": D, "depth": 1, "width": 64},
                     "head": {"name": "multicenter", "counts": [40, 20, 10, 6], "f": 2},
                     "num_classes": K})  # fmt: skip
    x, y = _data()
    res = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    assert "ncmc" in res.train and res.train["ncmc"]["NC_ave"] >= 0
    assert any(v.startswith("NCMC:") for v in res.verdicts)
    from ncollapse.geometry import cos_rho

    head = m.head
    fr = res.theory["ncmc"]
    assert fr["f_counts"] == head.f_counts.tolist() and fr["theta"] == head.theta
    np.testing.assert_allclose(fr["cos_rho"], cos_rho(head.f_counts.numpy(), head.theta))
    assert any(v.startswith("NCMC frame:") for v in res.verdicts)
    # independent: NCStats with the head's frame
    from ncollapse.methods import nc_frame

    c, w0 = nc_frame(m)
    with torch.no_grad():
        m.eval()
        emb = m(x).embedding
    acc = NCStats(K, centers=c.detach().double(), w0=w0.detach().double()).update(emb, y)
    assert res.train["ncmc"]["NC_ave"] == pytest.approx(
        compute_all(acc.snapshot())["ncmc"]["NC_ave"], rel=1e-9
    )


def test_explicit_device_cpu():
    x, y = _data()
    m = _linear_model()
    ref = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    for dev in ("cpu", torch.device("cpu")):
        r = ncollapse.measure(m, (x, y), device=dev, progress=False, verbose=False)
        assert r.train["nc1"]["nc1"] == ref.train["nc1"]["nc1"]


@pytest.mark.gpu
def test_cuda_device_and_model_moved_back():
    x, y = _data()
    m = _linear_model()
    ref = ncollapse.measure(m, (x, y), progress=False, verbose=False)
    r = ncollapse.measure(m, (x, y), test=(x, y), device="cuda", progress=False, verbose=False)
    assert next(m.parameters()).device.type == "cpu"  # moved back
    assert r.train["nc1"]["nc1"] == pytest.approx(ref.train["nc1"]["nc1"], rel=1e-5)
    assert r.heldout["nc4"] == pytest.approx(ref.train["nc4"]["agreement"], abs=0.02)
