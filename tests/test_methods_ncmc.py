"""NCMC head, losses, prediction rules and a tiny CAL training run, against hand computations
(explicit loops in float64) and the paper's closed forms (spec ncmc-allnc.md §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ncollapse.methods as M
from ncollapse.errors import NCollapseError
from ncollapse.geometry import class_aware_counts
from ncollapse.losses import check_loss_head, create_loss, loss_info
from ncollapse.metrics import NCStats, compute_all
from ncollapse.models import ModelOutput, build_model, create_head, head_options

COUNTS = [300, 120, 40, 12]
K = len(COUNTS)


def _head(**kw):
    opts = dict(f=3, theta=0.3, counts=COUNTS, seed=1)
    opts.update(kw)
    return create_head("multicenter", opts.pop("in_dim", 24), K, **opts)


def _out(e, k=K):
    e = e.detach().clone().requires_grad_(True)
    return ModelOutput(torch.zeros(e.shape[0], k, dtype=e.dtype), e, e), e


# --------------------------------------------------------------------------- frame and counts
def test_frame_geometry_orthogonality_and_same_class_cosine():
    theta = 0.3
    head = _head(theta=theta)
    W0 = head.W0.double()
    C, cls = head.centers.double(), head.center_class
    assert torch.allclose(W0 @ W0.t(), torch.eye(K, dtype=torch.float64), atol=1e-6)
    # recover V from the centers: v = (c - sin θ w_k) / cos θ; [V; W0] is orthonormal
    V = (C - math.sin(theta) * W0[cls]) / math.cos(theta)
    Q = torch.cat([V, W0])
    assert torch.allclose(Q @ Q.t(), torch.eye(Q.shape[0], dtype=torch.float64), atol=1e-6)
    G = C @ C.t()
    F_ = C.shape[0]
    for i in range(F_):
        for j in range(F_):
            if i == j:
                want = 1.0
            elif cls[i] == cls[j]:
                want = math.sin(theta) ** 2
            else:
                want = 0.0
            assert abs(G[i, j].item() - want) < 1e-6
    # class-mean centers and cos α_k = cos∠(w̄, w_j)
    for k in range(K):
        wbar = C[cls == k].mean(0)
        assert torch.allclose(head.mean_centers[k].double(), wbar, atol=1e-6)
        fk = int((cls == k).sum())
        ca = math.sqrt((math.cos(theta) ** 2 + fk * math.sin(theta) ** 2) / fk)
        assert abs(head.cos_alpha[k].item() - ca) < 1e-6
        assert abs((wbar @ C[cls == k][0] / wbar.norm()).item() - ca) < 1e-6


def test_class_aware_counts_paper_example_and_cifar10():
    assert class_aware_counts([1, 3, 3], 3, order="positional").tolist() == [
        4,
        4,
        1,
    ]  # the paper's example (§3.5)
    n = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert class_aware_counts(n, 20).tolist() == [2, 3, 4, 5, 7, 11, 17, 28, 46, 77]


def test_center_counts_modes_and_class_order():
    n = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    want = [2, 3, 4, 5, 7, 11, 17, 28, 46, 77]
    assert M.center_counts("cal", 10, 20, counts=n).tolist() == want
    perm = np.random.default_rng(0).permutation(10)
    got = M.center_counts("cal", 10, 20, counts=n[perm])
    assert got.tolist() == np.asarray(want)[perm].tolist()  # follows the class, not the position
    assert M.center_counts("al", 4, 5).tolist() == [5, 5, 5, 5]
    assert M.center_counts("custom", 3, 1, f_counts=[1, 2, 4]).tolist() == [1, 2, 4]
    with pytest.raises(NCollapseError, match="needs the training class counts"):
        M.center_counts("cal", 4, 3)
    with pytest.raises(NCollapseError, match="only used with mode='custom'"):
        M.center_counts("al", 3, 2, f_counts=[1, 2, 3])


def test_head_needs_counts_flag_and_dimension_error():
    assert M.head_needs_counts("multicenter") is True
    assert M.head_needs_counts("linear") is False
    assert "counts" in head_options("multicenter")
    with pytest.raises(NCollapseError) as exc:
        create_head("multicenter", 128, 10, f=20, mode="al")
    msg = str(exc.value)
    assert "F + K = 200 + 10 = 210" in msg and "projection_dim=256" in msg
    head = create_head("multicenter", 128, 10, f=20, mode="al", projection_dim=256)
    assert head.centers.shape == (200, 256) and head.W0.shape == (10, 256)


# --------------------------------------------------------------------------- prediction rules
def test_paper_rule_is_bn_l2_then_w0():
    head = _head()
    h = torch.randn(9, 24, dtype=torch.float32)
    head.train()
    out = head(h)
    mu, var = h.mean(0), h.var(0, unbiased=False)
    bn = (h - mu) / torch.sqrt(var + head.bn.eps) * head.bn.weight + head.bn.bias
    e = bn / bn.norm(dim=1, keepdim=True)
    assert torch.allclose(out.logits, e @ head.W0.t(), atol=1e-5)
    assert torch.allclose(out.embedding, bn, atol=1e-5)  # pre-normalisation embedding
    assert torch.equal(out.fixed_weight, head.W0)
    # the argmax of embedding @ W0^T equals the prediction (positive per-row rescaling)
    assert torch.equal((out.embedding @ head.W0.t()).argmax(1), out.logits.argmax(1))
    head2 = _head(embedding="normalized")
    head2.load_state_dict(head.state_dict())
    assert torch.allclose(head2(h).embedding, e, atol=1e-5)


def test_gcr_rule_against_brute_force():
    head = _head(rule="gcr", f=4, in_dim=40)
    head.eval()
    h = torch.randn(13, 40)
    with torch.no_grad():
        out = head(h)
        u = head.pre_norm(h).double()
    C, cls = head.centers.double(), head.center_class.tolist()
    for i in range(h.shape[0]):
        e = u[i] / u[i].norm()
        scores = []
        for k in range(K):
            best = -math.inf
            for j in range(C.shape[0]):
                if cls[j] == k:
                    best = max(best, float(C[j] @ e))
            scores.append(best)
        assert np.allclose(out.logits[i].double().numpy(), scores, atol=1e-5)
        assert int(out.logits[i].argmax()) == int(np.argmax(scores))
    with torch.no_grad():
        assert torch.allclose(head.gcr_logits(head.pre_norm(h)), out.logits)


# --------------------------------------------------------------------------- cosine loss
def _cosine_loop(e, y, C, cls, cos_alpha, lam, weighted=True, reduction="sum"):
    e = e.detach().double().numpy()
    C = C.double().numpy()
    B = e.shape[0]
    total = 0.0
    for i in range(B):
        nrm = math.sqrt(sum(v * v for v in e[i]))
        term = 0.0
        for j in range(C.shape[0]):
            if cls[j] == y[i]:
                c = float(C[j] @ e[i]) / nrm
                term += (c - 1.0) ** 2
        beta = cos_alpha[y[i]] if weighted else 1.0
        total += beta * term / B
        r = (nrm - 1.0) ** 2
        total += lam * (r if reduction == "sum" else r / B)
    return total


@pytest.mark.parametrize("mode", ["al", "cal"])
@pytest.mark.parametrize("weighted,reduction", [(True, "sum"), (False, "mean")])
def test_cosine_loss_value_against_loops(mode, weighted, reduction):
    head = _head(mode=mode)
    lam = 0.01
    loss_fn = create_loss(
        "ncmc_cosine", counts=COUNTS, lam=lam, weighted=weighted, norm_reduction=reduction
    ).bind(head)
    g = torch.Generator().manual_seed(3)
    e = torch.randn(7, 24, generator=g, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 2, 3, 3, 2, 0])
    out, _ = _out(e)
    got = loss_fn(out, y).item()
    want = _cosine_loop(
        e, y.tolist(), head.centers, head.center_class.tolist(), head.cos_alpha.double().tolist(),
        lam, weighted, reduction,
    )  # fmt: skip
    assert got == pytest.approx(want, rel=1e-10)


def test_cosine_loss_gradient_against_hand_formula():
    head = _head()
    lam = 0.02
    loss_fn = create_loss("ncmc_cosine", counts=COUNTS, lam=lam).bind(head)
    e0 = torch.randn(5, 24, dtype=torch.float64) * 1.5
    y = torch.tensor([0, 1, 2, 3, 1])
    out, e = _out(e0)
    loss_fn(out, y).backward()
    C = head.centers.double()
    cls = head.center_class.tolist()
    ca = head.cos_alpha.double()
    B = 5
    for i in range(B):
        u = e0[i]
        nrm = u.norm()
        uh = u / nrm
        grad = torch.zeros_like(u)
        for j in range(C.shape[0]):
            if cls[j] == int(y[i]):
                c = C[j] @ uh
                # d/du (c - 1)^2 = -(2/|u|) (1 - c) (w - c û)
                grad += -(2 / nrm) * (1 - c) * (C[j] - c * uh)
        grad = grad * ca[y[i]] / B + lam * 2 * (nrm - 1) * uh
        assert torch.allclose(e.grad[i], grad, atol=1e-6)


def test_cosine_loss_zero_at_collapse_norm_one():
    """Features on w̄^(k)/‖w̄‖ with unit norm: every center has cosine cos α_k, loss is
    Σ_i (1/B) cos α_k f_k (cos α_k − 1)² (no norm penalty)."""
    head = _head()
    loss_fn = create_loss("ncmc_cosine", counts=COUNTS).bind(head)
    y = torch.arange(K)
    mc = head.mean_centers.double()
    e = mc / mc.norm(dim=1, keepdim=True)
    out, _ = _out(e)
    fk, ca = head.f_counts.double(), head.cos_alpha.double()
    want = float((ca * fk * (ca - 1) ** 2).sum() / K)
    assert loss_fn(out, y).item() == pytest.approx(want, rel=1e-6)


def test_losses_need_binding_and_the_multicenter_head():
    loss_fn = create_loss("ncmc_cosine", counts=COUNTS)
    out, _ = _out(torch.randn(3, 24, dtype=torch.float64))
    with pytest.raises(NCollapseError, match="bind"):
        loss_fn(out, torch.tensor([0, 1, 2]))
    lin = build_model({"backbone": {"name": "mlp", "in_features": 4, "depth": 1, "width": 8},
                       "num_classes": K})  # fmt: skip
    with pytest.raises(NCollapseError, match="multicenter"):
        loss_fn.bind(lin)
    with pytest.raises(NCollapseError, match="head decides"):
        create_loss("ncmc_cosine", counts=COUNTS, mode="al").bind(_head(mode="cal"))
    assert loss_info("ncmc_cosine")["heads"] == ("multicenter",)
    with pytest.raises(NCollapseError):
        check_loss_head("loss_p", "linear")


# --------------------------------------------------------------------------- Loss P
def test_loss_p_value_against_loops():
    head = _head()
    lam_h = 0.03
    loss_fn = create_loss("loss_p", counts=COUNTS, feature_decay=lam_h).bind(head)
    e = torch.randn(6, 24, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 2, 3, 3])
    out, _ = _out(e)
    C, cls = head.centers.double().numpy(), head.center_class.tolist()
    fk = head.f_counts.tolist()
    en = e.numpy()
    S = sum(fk[int(c)] for c in y)
    reg, dec = 0.0, 0.0
    for i in range(6):
        for j in range(C.shape[0]):
            t = 1.0 if cls[j] == int(y[i]) else 0.0
            reg += (float(C[j] @ en[i]) - t) ** 2
        dec += float(en[i] @ en[i])
    want = reg / (2 * S) + lam_h / 2 * dec
    assert loss_fn(out, y).item() == pytest.approx(want, rel=1e-10)
    # scale="dataset": S = Σ_k f_k n_k
    ds = create_loss("loss_p", counts=COUNTS, scale="dataset").bind(head)
    S_all = sum(f * n for f, n in zip(fk, COUNTS, strict=True))
    assert ds(out, y).item() == pytest.approx(reg / (2 * S_all), rel=1e-10)
    with pytest.raises(NCollapseError, match="scale='batch'"):
        create_loss("loss_p", scale="dataset")


def test_loss_p_minimiser_is_corollary_3_7():
    """Loss P on a batch is a convex quadratic in the features; its stationary point (= global
    minimiser) is Cor. 3.7: h_k = ‖h_k‖ w̄^(k)/‖w̄^(k)‖,
    ‖h_k‖ = f_k cos α_k / (f_k cos²α_k + λ_H S)."""
    head = create_head("multicenter", 12, 3, mode="custom", f_counts=[1, 2, 4], theta=0.4)
    lam_h = 0.05
    loss_fn = create_loss("loss_p", feature_decay=lam_h).bind(head)
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    fk = np.array([1, 2, 4])
    S = float(fk[y.numpy()].sum())
    ca = head.cos_alpha.double().numpy()
    norms = fk * ca / (fk * ca**2 + lam_h * S)
    mc = head.mean_centers.double()
    mc = mc / mc.norm(dim=1, keepdim=True)
    H = torch.stack([norms[k] * mc[k] for k in y.tolist()]).requires_grad_(True)

    def loss_at(h):
        return loss_fn(ModelOutput(torch.zeros(6, 3), h, h), y)

    loss = loss_at(H)
    (grad,) = torch.autograd.grad(loss, H)
    assert grad.abs().max().item() < 1e-6  # float32 frame buffers
    g = torch.Generator().manual_seed(0)
    for _ in range(5):  # any perturbation increases the loss
        d = torch.randn(6, 12, generator=g, dtype=torch.float64) * 1e-2
        assert loss_at(H.detach() + d).item() > loss.item()
    # the same directions with unit norm are not stationary (the norm matters)
    Hu = (H / H.norm(dim=1, keepdim=True)).detach().requires_grad_(True)
    (g_unit,) = torch.autograd.grad(loss_at(Hu), Hu)
    assert g_unit.abs().max().item() > 1e-3


# --------------------------------------------------------------------------- mixup + metrics
@pytest.mark.parametrize("name", ["ncmc_cosine", "loss_p"])
def test_mixup_path_through_standard_method(name):
    torch.manual_seed(0)
    model = build_model({
        "backbone": {"name": "mlp", "in_features": 6, "depth": 1, "width": 16},
        "head": {"name": "multicenter", "f": 2, "counts": COUNTS, "projection_dim": 20},
        "num_classes": K,
    })  # fmt: skip
    loss_fn = create_loss(name, counts=COUNTS).bind(model)
    model.eval()
    x, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    method = M.create_method("standard")
    st = method.step(
        model, loss_fn, x, y, mixup_alpha=1.0, generator=torch.Generator().manual_seed(5)
    )
    from ncollapse.data import mixup

    xm, ya, yb, lam = mixup(x, y, 1.0, torch.Generator().manual_seed(5))
    out = model(xm)
    want = lam * loss_fn(out, ya) + (1 - lam) * loss_fn(out, yb)
    assert st.lam == lam and 0 < lam < 1 and torch.equal(st.y_b, yb)
    assert torch.allclose(st.loss, want)
    plain = method.step(model, loss_fn, x, y)
    assert plain.y_b is None and torch.allclose(plain.loss, loss_fn(model(x), y))


def test_nc_centers_feed_ncstats():
    head = _head()
    centers, w0 = head.nc_centers()
    assert centers.shape == (K, 24) and torch.equal(w0, head.W0)
    model = build_model({
        "backbone": {"name": "mlp", "in_features": 5, "depth": 1, "width": 24},
        "head": {"name": "multicenter", "f": 3, "theta": 0.3, "counts": COUNTS},
        "num_classes": K,
    })  # fmt: skip
    c2, w2 = M.nc_frame(model)
    # features exactly on the normalised class-mean centers -> NC_ave = 0
    y = torch.arange(K).repeat(3)
    stats = NCStats(K, 24, centers=c2, w0=w2).update(c2[y] * 3.0, y)
    nc = compute_all(stats.snapshot())["ncmc"]
    assert nc["NC_ave"] == pytest.approx(0.0, abs=1e-10)
    # variability = 1 - cos(w̄^(k), w_k) = 1 - cos ρ_k, averaged
    want = float(np.mean(1 - np.asarray([_cos_rho(head, k) for k in y.tolist()])))
    assert nc["variability"] == pytest.approx(want, abs=1e-6)
    assert M.nc_frame(
        build_model(
            {
                "backbone": {"name": "mlp", "in_features": 3, "depth": 1, "width": 4},
                "num_classes": K,
            }
        )
    ) == (None, None)


def _cos_rho(head, k):
    fk = int(head.f_counts[k])
    th = head.theta
    return math.sqrt(fk) * math.sin(th) / math.sqrt(math.cos(th) ** 2 + fk * math.sin(th) ** 2)


# --------------------------------------------------------------------------- training
def _blobs(counts, dim=10, seed=0, spread=0.35):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(len(counts), dim, generator=g) * 1.5
    xs, ys = [], []
    for k, n in enumerate(counts):
        xs.append(means[k] + spread * torch.randn(n, dim, generator=g))
        ys.append(torch.full((n,), k))
    return torch.cat(xs), torch.cat(ys)


def _nc_ave(model, x, y):
    model.eval()
    with torch.no_grad():
        emb = model(x).embedding
    centers, w0 = M.nc_frame(model)
    stats = NCStats(model.num_classes, emb.shape[1], centers=centers, w0=w0).update(emb, y)
    return compute_all(stats.snapshot())["ncmc"]["NC_ave"]


def test_cal_training_drives_nc_ave_down():
    torch.manual_seed(0)
    counts = [160, 64, 24, 10]
    x, y = _blobs(counts)
    model = build_model({
        "backbone": {"name": "mlp", "in_features": 10, "depth": 2, "width": 48},
        "head": {"name": "multicenter", "f": 4, "theta": 0.2, "counts": counts, "mode": "cal"},
        "num_classes": 4,
    })  # fmt: skip
    # a = floor(12 n / 258) + 1 = (8, 3, 2, 1); reversed (1, 2, 3, 8) + 1 on the first two
    assert model.head.f_counts.tolist() == [2, 3, 3, 8]
    loss_fn = create_loss("ncmc_cosine", counts=counts).bind(model)
    before = _nc_ave(model, x, y)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    method = M.create_method("standard")
    for _ in range(120):
        model.train()
        idx = torch.randint(0, x.shape[0], (64,), generator=g)
        st = method.step(model, loss_fn, x[idx], y[idx])
        opt.zero_grad()
        st.loss.backward()
        opt.step()
    after = _nc_ave(model, x, y)
    assert before > 0.5
    assert after < 0.1 * before, (before, after)
    model.eval()
    with torch.no_grad():
        acc = (model(x).logits.argmax(1) == y).double().mean().item()
    assert acc > 0.95
