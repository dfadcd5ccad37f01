"""Every loss against its paper's formula, computed independently with explicit numpy loops
(float64), plus DRW switching, metadata and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ncollapse.errors import NCollapseError
from ncollapse.losses import (
    LossFn,
    batch_length_scale,
    check_loss_head,
    class_balanced_weights,
    create_loss,
    loss_info,
    loss_names,
    loss_options,
    posthoc_logit_adjust,
    register_loss,
)
from ncollapse.models import ModelOutput, build_model

COUNTS = [50, 20, 8, 3]
K = len(COUNTS)


def _data(b=7, k=K, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, k, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, k, (b,), generator=g)
    y[:k] = torch.arange(k)  # every class present
    return z, y


def _log_softmax_np(z):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        m = max(z[i])
        lse = m + math.log(sum(math.exp(v - m) for v in z[i]))
        out[i] = z[i] - lse
    return out


def _cb_weights_loop(counts, beta):
    w = [(1 - beta) / (1 - beta**n) for n in counts]
    s = sum(w)
    return [wi * len(counts) / s for wi in w]


def _weighted(per, y, w, mode):
    if w is None:
        return sum(per) / len(per)
    num = sum(w[t] * p for t, p in zip(y, per))
    den = sum(w[t] for t in y) if mode == "weighted_mean" else len(per)
    return num / den


def test_registered_losses():
    assert set(loss_names()) >= {
        "ce",
        "focal",
        "ldam",
        "logit_adjusted",
        "balanced_softmax",
        "dot_regression",
        "mse",
    }


# ----------------------------------------------------------------------------------- CE
def test_ce_matches_formula():
    z, y = _data()
    lp = _log_softmax_np(z.numpy())
    ref = -sum(lp[i, y[i]] for i in range(len(y))) / len(y)
    loss = create_loss("ce")(z, y)
    assert abs(loss.item() - ref) < 1e-12
    # accepts a ModelOutput too
    out = ModelOutput(z, z, z)
    assert abs(create_loss("ce", counts=COUNTS)(out, y).item() - ref) < 1e-12


def test_class_balanced_weights():
    for beta in (0.9, 0.99, 0.9999):
        w = class_balanced_weights(COUNTS, beta)
        np.testing.assert_allclose(w, _cb_weights_loop(COUNTS, beta), rtol=1e-12)
        assert abs(w.sum() - K) < 1e-12
        assert np.all(np.diff(w) > 0)  # rarer classes weigh more
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 0.0), np.ones(K))
    with pytest.raises(NCollapseError, match="beta"):
        class_balanced_weights(COUNTS, 1.0)


@pytest.mark.parametrize("mode", ["weighted_mean", "mean"])
def test_ce_class_balanced(mode):
    z, y = _data()
    beta = 0.99
    lp = _log_softmax_np(z.numpy())
    per = [-lp[i, y[i]] for i in range(len(y))]
    w = _cb_weights_loop(COUNTS, beta)
    ref = _weighted(per, y.tolist(), w, mode)
    loss = create_loss("ce", counts=COUNTS, beta=beta, weight_reduction=mode)
    assert abs(loss(z, y).item() - ref) < 1e-12
    if mode == "weighted_mean":  # = PyTorch's weighted cross_entropy
        tw = torch.tensor(w, dtype=torch.float64)
        assert abs(torch.nn.functional.cross_entropy(z, y, weight=tw).item() - ref) < 1e-12


# -------------------------------------------------------------------------------- focal
def test_focal_matches_formula_and_gamma0_is_ce():
    z, y = _data()
    lp = _log_softmax_np(z.numpy())
    for gamma in (0.5, 2.0):
        per = [-((1 - math.exp(lp[i, y[i]])) ** gamma) * lp[i, y[i]] for i in range(len(y))]
        assert abs(create_loss("focal", gamma=gamma)(z, y).item() - np.mean(per)) < 1e-12
        w = _cb_weights_loop(COUNTS, 0.999)
        ref = _weighted(per, y.tolist(), w, "weighted_mean")
        got = create_loss("focal", counts=COUNTS, gamma=gamma, beta=0.999)(z, y).item()
        assert abs(got - ref) < 1e-12
    zr = z.clone().requires_grad_(True)
    zc = z.clone().requires_grad_(True)
    f0 = create_loss("focal", gamma=0.0)(zr, y)
    ce = create_loss("ce")(zc, y)
    assert abs(f0.item() - ce.item()) < 1e-14
    f0.backward()
    ce.backward()
    torch.testing.assert_close(zr.grad, zc.grad)


# --------------------------------------------------------------------------------- LDAM
def test_ldam_margins():
    loss = create_loss("ldam", counts=COUNTS)
    m = loss.margins.double().numpy()
    assert abs(m.max() - 0.5) < 1e-7 and np.argmax(m) == K - 1  # rarest class
    c = m * np.asarray(COUNTS, float) ** 0.25  # m_j n_j^{1/4} is constant
    np.testing.assert_allclose(c, c[0], rtol=1e-6)
    assert abs(c[0] - 0.5 * min(COUNTS) ** 0.25) < 1e-5
    assert loss.s == 30.0 and loss.beta == 0.9999
    m2 = create_loss("ldam", counts=COUNTS, max_m=0.3).margins
    assert abs(m2.max().item() - 0.3) < 1e-7


def _ldam_ref(x, y, counts, s, max_m, w=None):
    inv = [n**-0.25 for n in counts]
    m = [max_m * v / max(inv) for v in inv]
    adj = x.copy()
    for i in range(len(y)):
        adj[i, y[i]] -= m[y[i]]
    lp = _log_softmax_np(s * adj)
    per = [-lp[i, y[i]] for i in range(len(y))]
    return _weighted(per, list(y), w, "weighted_mean")


def test_ldam_loss_value_and_gradient():
    z, y = _data()
    x = torch.tanh(z).requires_grad_(True)  # cosine-like logits in [-1, 1]
    loss_fn = create_loss("ldam", counts=COUNTS, drw=False, beta=None)
    loss = loss_fn(x, y)
    ref = _ldam_ref(x.detach().numpy(), y.tolist(), COUNTS, 30.0, 0.5)
    assert abs(loss.item() - ref) < 1e-10
    loss.backward()
    # d/dx of mean CE(s (x - m e_y)) = s (softmax(s(x - m e_y)) - onehot) / B
    xn = x.detach().numpy()
    inv = np.asarray(COUNTS, float) ** -0.25
    m = 0.5 * inv / inv.max()
    g = np.zeros_like(xn)
    for i in range(len(y)):
        a = 30.0 * xn[i].copy()
        a[y[i]] -= 30.0 * m[y[i]]
        p = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        p[y[i]] -= 1
        g[i] = 30.0 * p / len(y)
    np.testing.assert_allclose(x.grad.numpy(), g, atol=1e-12)


def test_ldam_drw_switches_at_epoch():
    z, y = _data()
    x = torch.tanh(z)
    xn, yl = x.numpy(), y.tolist()
    loss_fn = create_loss("ldam", counts=COUNTS)
    w = _cb_weights_loop(COUNTS, 0.9999)
    plain = _ldam_ref(xn, yl, COUNTS, 30.0, 0.5)
    weighted = _ldam_ref(xn, yl, COUNTS, 30.0, 0.5, w)
    assert abs(plain - weighted) > 1e-3
    for epoch, expect in ((0, plain), (159, plain), (160, weighted), (199, weighted)):
        loss_fn.set_epoch(epoch, 200)
        assert abs(loss_fn(x, y).item() - expect) < 1e-10, epoch
    assert loss_fn.drw_start() == 160
    np.testing.assert_allclose(loss_fn.active_weights().numpy(), w, rtol=1e-6)
    loss_fn.set_epoch(7, 10)  # short runs: floor(0.8 T)
    assert loss_fn.drw_start() == 8 and loss_fn.active_weights() is None
    loss_fn.set_epoch(8, 10)
    assert loss_fn.active_weights() is not None
    fixed = create_loss("ldam", counts=COUNTS, drw_epoch=3)
    fixed.set_epoch(2, 200)
    assert fixed.active_weights() is None
    fixed.set_epoch(3, 200)
    assert abs(fixed(x, y).item() - weighted) < 1e-10
    fresh = create_loss("ldam", counts=COUNTS)  # no set_epoch yet: epoch 0, recipe T = 200
    assert fresh.drw_start() == 160 and fresh.active_weights() is None


def test_ce_drw():
    z, y = _data()
    loss_fn = create_loss("ce", counts=COUNTS, beta=0.9999, drw=True, drw_epoch=2)
    loss_fn.set_epoch(1, 5)
    assert abs(loss_fn(z, y).item() - create_loss("ce")(z, y).item()) < 1e-12
    loss_fn.set_epoch(2, 5)
    ref = create_loss("ce", counts=COUNTS, beta=0.9999)(z, y).item()
    assert abs(loss_fn(z, y).item() - ref) < 1e-12


# ------------------------------------------------------------ logit adjustment, balanced softmax
def test_logit_adjusted_matches_formula():
    z, y = _data()
    n = np.asarray(COUNTS, float)
    for tau in (0.5, 1.0, 2.0):
        adj = z.numpy() + tau * np.log(n / n.sum())
        lp = _log_softmax_np(adj)
        ref = -np.mean([lp[i, y[i]] for i in range(len(y))])
        got = create_loss("logit_adjusted", counts=COUNTS, tau=tau)(z, y).item()
        assert abs(got - ref) < 1e-12
    la0 = create_loss("logit_adjusted", counts=COUNTS, tau=0.0)(z, y)
    assert abs(la0.item() - create_loss("ce")(z, y).item()) < 1e-12


def test_balanced_softmax_matches_formula():
    z, y = _data()
    zn = z.numpy()
    per = []
    for i in range(len(y)):  # p_y = n_y e^{z_y} / sum_j n_j e^{z_j}
        num = COUNTS[y[i]] * math.exp(zn[i, y[i]])
        den = sum(COUNTS[j] * math.exp(zn[i, j]) for j in range(K))
        per.append(-math.log(num / den))
    bs = create_loss("balanced_softmax", counts=COUNTS)(z, y).item()
    assert abs(bs - np.mean(per)) < 1e-12
    ce_shifted = create_loss("ce")(z + torch.log(torch.tensor(COUNTS, dtype=z.dtype)), y).item()
    assert abs(bs - ce_shifted) < 1e-12
    la = create_loss("logit_adjusted", counts=COUNTS, tau=1.0)(z, y).item()
    assert abs(bs - la) < 1e-12  # log n and log pi differ by a constant per row


def test_posthoc_logit_adjust():
    z, _ = _data()
    n = np.asarray(COUNTS, float)
    for tau in (0.0, 1.0, 1.5):
        ref = z.numpy() - tau * np.log(n / n.sum())
        out = posthoc_logit_adjust(z, COUNTS, tau=tau)
        assert isinstance(out, torch.Tensor) and out.dtype == z.dtype
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
        np.testing.assert_allclose(posthoc_logit_adjust(z.numpy(), COUNTS, tau), ref, atol=1e-12)
    # equal logits -> the rarest class wins after adjustment
    assert posthoc_logit_adjust(torch.zeros(1, K), COUNTS).argmax().item() == K - 1
    with pytest.raises(NCollapseError, match="classes"):
        posthoc_logit_adjust(torch.zeros(2, 3), COUNTS)


# ----------------------------------------------------------------------------------- MSE
def test_mse_conventions():
    z, y = _data()
    zn = z.numpy()
    sq = 0.0
    for i in range(len(y)):
        for j in range(K):
            sq += (zn[i, j] - (1.0 if j == y[i] else 0.0)) ** 2
    mean = create_loss("mse")(z, y).item()
    half = create_loss("mse", reduction="half_sum")(z, y).item()
    assert abs(mean - sq / (len(y) * K)) < 1e-12
    assert abs(half - sq / (2 * len(y))) < 1e-12
    assert abs(half / mean - K / 2) < 1e-10
    assert (
        abs(mean - torch.nn.functional.mse_loss(z, torch.eye(K, dtype=z.dtype)[y]).item()) < 1e-12
    )


# ------------------------------------------------------------------------- dot regression
def _ew_loop(y, k):
    b = len(y)
    present = sorted(set(y))
    gamma = b / len(present)
    return [math.sqrt(gamma / y.count(c)) if c in present else 1.0 for c in range(k)]


def test_batch_length_scale():
    y = [0, 0, 0, 1, 3, 3]
    ew = batch_length_scale(torch.tensor(y), 5)
    np.testing.assert_allclose(ew.numpy(), _ew_loop(y, 5), rtol=1e-6)
    # gamma = 6/3 = 2: class 0 (3 samples) sqrt(2/3), class 1 sqrt(2), class 3 1, absent 1
    np.testing.assert_allclose(ew.numpy(), [math.sqrt(2 / 3), math.sqrt(2), 1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize("rescale", [True, False])
def test_dot_regression_value_and_gradient(rescale):
    g = torch.Generator().manual_seed(1)
    b, d = 6, 5
    m = torch.randn(K, d, generator=g, dtype=torch.float64)
    m = m / m.norm(dim=1, keepdim=True)
    e = (torch.randn(b, d, generator=g, dtype=torch.float64) * 1.7).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 1, 3, 3])
    out = ModelOutput(e @ m.T, e, e, m)
    loss = create_loss("dot_regression", rescale=rescale)(out, y)
    en, mn, yl = e.detach().numpy(), m.numpy(), y.tolist()
    ew = _ew_loop(yl, K) if rescale else [1.0] * K
    total, grad = 0.0, np.zeros_like(en)
    for i in range(b):
        w = ew[yl[i]] * mn[yl[i]]
        c = math.sqrt(sum(v * v for v in en[i]))
        wl = math.sqrt(sum(v * v for v in w))
        r = float(en[i] @ w) - wl * c
        total += 0.5 * r * r / c
        grad[i] = r * w / c / b  # |e| treated as a constant (detached)
    assert abs(loss.item() - total / b) < 1e-12
    loss.backward()
    np.testing.assert_allclose(e.grad.numpy(), grad, atol=1e-12)


def test_dot_regression_reg_lam_and_minimum():
    g = torch.Generator().manual_seed(2)
    m = torch.randn(K, 4, generator=g, dtype=torch.float64)
    m = m / m.norm(dim=1, keepdim=True)
    y = torch.tensor([0, 1, 2, 3])
    e = m[y].clone()  # features already on their (balanced batch -> E_w = 1) targets
    out = ModelOutput(e @ m.T, e, e, m)
    assert create_loss("dot_regression")(out, y).item() < 1e-14
    with_reg = create_loss("dot_regression", reg_lam=0.01)(out, y).item()
    assert abs(with_reg - 0.01 * 1.0) < 1e-12  # + reg_lam * mean |e|


def test_dot_regression_end_to_end_with_etf_head():
    model = build_model(
        {
            "backbone": {"name": "mlp", "in_features": 12, "depth": 1, "width": 8},
            "head": {"name": "etf"},
            "num_classes": K,
        }
    )
    x = torch.randn(6, 12)
    y = torch.tensor([0, 1, 2, 3, 0, 0])
    loss = create_loss("dot_regression", counts=COUNTS)(model(x), y)
    loss.backward()
    assert model.backbone.layers[0].weight.grad.abs().sum() > 0
    assert model.head.bn.weight.grad is not None
    assert not model.head.weight.requires_grad
    with pytest.raises(NCollapseError, match="fixed classifier.*'etf'"):
        create_loss("dot_regression")(torch.randn(6, K), y)
    lin = build_model({"backbone": {"name": "mlp", "in_features": 12}, "num_classes": K})
    with pytest.raises(NCollapseError, match="fixed classifier"):
        create_loss("dot_regression")(lin(x), y)


# ------------------------------------------------------------------------ epochs, metadata
def test_set_epoch_default_noop_and_state():
    for name in loss_names():
        fn = create_loss(name, counts=COUNTS)
        assert isinstance(fn, LossFn)
        fn.set_epoch(3, 10)
        fn.set_epoch(4)
    ce = create_loss("ce")
    z, y = _data()
    before = ce(z, y).item()
    ce.set_epoch(199, 200)
    assert ce(z, y).item() == before


def test_loss_head_metadata():
    assert loss_info("ldam")["heads"] == ("cosine",)
    assert loss_info("dot_regression")["heads"] == ("etf", "orthonormal")
    assert loss_info("ce")["heads"] is None and not loss_info("ce")["needs_counts"]
    for name in ("ldam", "logit_adjusted", "balanced_softmax"):
        assert loss_info(name)["needs_counts"]
    assert create_loss("ldam", counts=COUNTS).required_head == ("cosine",)
    assert create_loss("ce").required_head is None
    check_loss_head("ldam", "cosine")
    check_loss_head("dot_regression", "orthonormal")
    check_loss_head("ce", "etf")
    with pytest.raises(NCollapseError, match="loss 'ldam' needs head 'cosine', got head 'linear'"):
        check_loss_head("ldam", "linear")
    with pytest.raises(NCollapseError, match="'etf' or 'orthonormal'"):
        check_loss_head("dot_regression", "linear")
    assert loss_options("ldam")["s"] == 30.0 and loss_options("ldam")["max_m"] == 0.5


def test_register_custom_loss():
    @register_loss("_test_zero", summary="always 0")
    class Zero(LossFn):
        def forward(self, output, target):
            z = self._logits(output)
            self._check(z, target)
            return z.sum() * 0

    z, y = _data()
    assert create_loss("_test_zero")(z, y).item() == 0.0
    assert loss_info("_test_zero")["heads"] is None


def test_int32_targets_and_low_precision_logits():
    z, y = _data()
    for name in loss_names():
        if name.startswith("_") or name == "dot_regression":
            continue
        fn = create_loss(name, counts=COUNTS)
        if hasattr(fn, "bind") or getattr(fn, "needs_model_output", False):
            continue  # model-bound / feature losses (ncollapse.methods) need a ModelOutput
        assert fn(z, y.int()).item() == fn(z, y).item()
        low = fn(z.bfloat16(), y)
        assert low.dtype == torch.float32  # computed in fp32 after the upcast
        assert abs(low.item() - fn(z.bfloat16().double(), y).item()) < 1e-5


# ------------------------------------------------------------------------------ bad input
def test_bad_loss_input():
    z, y = _data()
    with pytest.raises(NCollapseError, match="valid losses: .*ldam"):
        create_loss("ldma")
    with pytest.raises(NCollapseError, match="unknown option 'gama'.*gamma=2.0"):
        create_loss("focal", gama=1.0)
    for name in ("ldam", "logit_adjusted", "balanced_softmax"):
        with pytest.raises(NCollapseError, match="counts"):
            create_loss(name)
    with pytest.raises(NCollapseError, match="counts"):
        create_loss("ce", beta=0.99)
    with pytest.raises(NCollapseError, match="not positive"):
        create_loss("ldam", counts=[5, 0, 1])
    loss = create_loss("ce", counts=COUNTS)
    with pytest.raises(NCollapseError, match="class 4, outside \\[0, 3\\]"):
        loss(z, torch.tensor([0, 1, 2, 4, 0, 0, 0]))
    with pytest.raises(NCollapseError, match="class -1"):
        loss(z, torch.tensor([0, 1, 2, -1, 0, 0, 0]))
    with pytest.raises(NCollapseError, match="LongTensor"):
        loss(z, y.double())
    with pytest.raises(NCollapseError, match="batch size"):
        loss(z, y[:3])
    with pytest.raises(NCollapseError, match="counts has 4"):
        loss(torch.randn(7, 5), y)
    with pytest.raises(NCollapseError, match="ModelOutput"):
        loss([1, 2], y)
    with pytest.raises(NCollapseError, match="reduction"):
        create_loss("mse", reduction="sum")
    with pytest.raises(NCollapseError, match="weight_reduction"):
        create_loss("ce", weight_reduction="sum")
    with pytest.raises(NCollapseError, match="gamma"):
        create_loss("focal", gamma=-1)
    with pytest.raises(NCollapseError, match="drw_epoch"):
        create_loss("ldam", counts=COUNTS, drw_epoch=-1)
