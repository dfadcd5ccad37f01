"""Baselines of the NCMC tables: ARB-Loss, KCL, RBL (rotated ETF) and decoupled cRT / tau-norm /
LWS, each against an independent computation of its paper's formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from ncollapse.errors import NCollapseError
from ncollapse.geometry import etf_gram
from ncollapse.losses import create_loss
from ncollapse.methods import (
    arb_loss,
    decouple,
    decoupled_logits,
    fit_crt,
    fit_lws,
    kcl_loss,
    tau_normalize,
)
from ncollapse.models import ModelOutput, create_head

# --------------------------------------------------------------------------- ARB-Loss


def _arb_loop(z, y, n):
    """-log[e^{z_y} / sum_j (n_j / n_y) e^{z_j}] sample by sample (arXiv 2204.08735, Eq. 9)."""
    out = []
    for i in range(z.shape[0]):
        zi = np.clip(z[i], -30, 30)
        denom = sum(n[j] / n[y[i]] * math.exp(zi[j]) for j in range(z.shape[1]))
        out.append(-math.log(math.exp(zi[y[i]]) / denom))
    return np.array(out)


def test_arb_matches_loop_with_batch_counts():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=g, dtype=torch.float64) * 4
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 1, 0])  # classes 3, 4 absent
    loss = create_loss("arb")(z, y)
    n = np.bincount(y.numpy(), minlength=5).astype(float)
    ref = _arb_loop(z.numpy(), y.numpy(), n).mean()
    assert float(loss) == pytest.approx(ref, rel=1e-12)


def test_arb_global_counts_and_clamp():
    z = torch.tensor([[100.0, -100.0, 0.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1, 2])
    counts = [50, 5, 1]
    loss = create_loss("arb", counts=counts, counts_source="global")(z, y)
    ref = _arb_loop(z.numpy(), y.numpy(), np.array(counts, float)).mean()
    assert float(loss) == pytest.approx(ref, rel=1e-12)


def test_arb_balanced_batch_is_ce():
    z = torch.randn(6, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ce = torch.nn.functional.cross_entropy(z, y)
    assert float(arb_loss(z, y, torch.tensor([2.0, 2, 2])).mean()) == pytest.approx(float(ce))


def test_arb_bad_options():
    with pytest.raises(NCollapseError, match="counts_source"):
        create_loss("arb", counts_source="epoch")
    with pytest.raises(NCollapseError, match="needs the training counts"):
        create_loss("arb", counts_source="global")


# --------------------------------------------------------------------------- KCL


def _kcl_loop(q, keys, key_labels, labels, own, k, t):
    out = []
    for i in range(q.shape[0]):
        logits, pos = [], []
        if own is not None:
            logits.append(q[i] @ own[i] / t)
            pos.append(True)
        taken = 0
        for m in range(keys.shape[0]):
            logits.append(q[i] @ keys[m] / t)
            is_pos = key_labels[m] == labels[i] and taken < k
            taken += key_labels[m] == labels[i]
            pos.append(bool(is_pos))
        logits = np.array(logits)
        logp = logits - np.log(np.exp(logits).sum())
        pos = np.array(pos)
        out.append(-logp[pos].mean())
    return np.array(out)


def test_kcl_matches_loop():
    g = torch.Generator().manual_seed(1)
    q = torch.nn.functional.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=1)
    own = torch.nn.functional.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=1)
    keys = torch.nn.functional.normalize(torch.randn(9, 4, generator=g, dtype=torch.float64), dim=1)
    key_labels = torch.tensor([0, 1, 0, 0, 2, 0, 1, 1, 0])
    labels = torch.tensor([0, 1, 2, 0, 1])
    got = kcl_loss(q, keys, key_labels, labels, own, k=2, temperature=0.1)
    ref = _kcl_loop(
        q.numpy(), keys.numpy(), key_labels.numpy(), labels.numpy(), own.numpy(), 2, 0.1
    )
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)


def test_kcl_registered_loss_trains_features():
    torch.manual_seed(0)
    feats = torch.randn(16, 8, requires_grad=True)
    logits = torch.randn(16, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0] * 4)
    loss = create_loss("kcl", k=2, temperature=0.5)(ModelOutput(logits, feats, feats), y)
    loss.backward()
    assert feats.grad is not None and float(feats.grad.abs().sum()) > 0
    with pytest.raises(NCollapseError, match="k="):
        create_loss("kcl", k=0)


# --------------------------------------------------------------------------- RBL (rotated ETF)


def test_rotated_etf_keeps_the_etf_gram_under_any_rotation():
    head = create_head("rotated_etf", 12, 5, scale=3.0, batchnorm=False)
    with torch.no_grad():  # move the rotation away from the identity
        head.rotation.parametrizations.weight.original.add_(torch.randn(12, 12) * 0.3)
    q = head.rotation_matrix().detach().double()
    assert float((q - torch.eye(12, dtype=torch.float64)).abs().max()) > 0.05
    np.testing.assert_allclose((q @ q.t()).numpy(), np.eye(12), atol=1e-5)
    w = head.classifier_weight().detach().double()
    np.testing.assert_allclose((w @ w.t()).numpy(), 9.0 * etf_gram(5), atol=1e-4)
    h = torch.randn(7, 12)
    out = head(h)
    e = torch.nn.functional.normalize(h, dim=1)
    np.testing.assert_allclose(out.logits.detach(), (e @ w.float().t()).detach(), atol=1e-5)


def test_rotated_etf_rotation_is_trainable():
    head = create_head("rotated_etf", 6, 3, batchnorm=False)
    out = head(torch.randn(4, 6))
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 2, 0])).backward()
    grads = [p.grad for p in head.parameters() if p.requires_grad]
    assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads)


# --------------------------------------------------------------------------- decoupled


def _imbalanced(seed=0, k=3, d=4, counts=(40, 10, 3)):
    rng = np.random.default_rng(seed)
    mus = rng.normal(size=(k, d)) * 1.5
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    h = mus[y] + rng.normal(size=(len(y), d))
    return h, y


def _softmax_ce(z, y):
    z = z - z.max(1, keepdims=True)
    return -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1)))


def test_tau_normalize_closed_form():
    w = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(tau_normalize(w, 1.0).numpy(), [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(tau_normalize(w, 0.0).numpy(), w)
    np.testing.assert_allclose(tau_normalize(w, 0.5).numpy(), w / np.sqrt([[5.0], [2.0]]))


def test_crt_matches_an_independent_solver():
    h, y = _imbalanced()
    k, d, wd = 3, h.shape[1], 1e-2
    n = np.bincount(y)
    sw = 1.0 / (k * n[y])

    def obj(theta):
        W, b = theta[: k * d].reshape(k, d), theta[k * d :]
        return (_softmax_ce(h @ W.T + b, y) * sw).sum() + 0.5 * wd * (W**2).sum()

    ref = minimize(obj, np.zeros(k * d + k), method="BFGS", options={"gtol": 1e-10}).x
    got = fit_crt(h, y, weight_decay=wd)
    np.testing.assert_allclose(got.weight.numpy(), ref[: k * d].reshape(k, d), atol=1e-5)
    np.testing.assert_allclose(got.bias.numpy(), ref[k * d :], atol=1e-5)
    assert got.loss == pytest.approx(obj(ref), rel=1e-8)


def test_lws_matches_an_independent_solver():
    h, y = _imbalanced(1)
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    n = np.bincount(y)
    sw = 1.0 / (3 * n[y])
    base = h @ W.T + b

    def obj(f):
        return (_softmax_ce(base * f, y) * sw).sum()

    ref = minimize(obj, np.ones(3), method="BFGS", options={"gtol": 1e-10}).x
    got = fit_lws(h, y, W, b)
    np.testing.assert_allclose(got.scale.numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(decoupled_logits(h, got).numpy(), base * ref, atol=1e-4)


def test_decoupled_improves_minority_recall():
    h, y = _imbalanced(3, counts=(200, 20, 4))
    plain = fit_crt(h, y, weight_decay=1e-3)
    z = h @ plain.weight.numpy().T + plain.bias.numpy()
    # a classifier fitted without balancing, for contrast
    unb = minimize(
        lambda t: (
            _softmax_ce(h @ t[:12].reshape(3, 4).T + t[12:], y).mean() + 5e-4 * (t[:12] ** 2).sum()
        ),
        np.zeros(15),
        method="BFGS",
    ).x
    zu = h @ unb[:12].reshape(3, 4).T + unb[12:]
    rec = lambda zz: np.mean([(zz[y == c].argmax(1) == c).mean() for c in range(3)])
    assert rec(z) >= rec(zu)


def test_decouple_dispatch_and_errors():
    h, y = _imbalanced()
    assert decouple("crt", h, y).method == "crt"
    with pytest.raises(NCollapseError, match="needs the trained classifier"):
        decouple("lws", h, y)
    with pytest.raises(NCollapseError, match="unknown"):
        decouple("nope", h, y, np.ones((3, 4)))
    with pytest.raises(NCollapseError, match="no training sample"):
        fit_crt(h[y < 2], y[y < 2], num_classes=3)
