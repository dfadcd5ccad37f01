"""AllNC reconstruction (loss ``allnc``): every component against explicit loops, switches and
zero weights give exactly the base loss, the EMA class-mean memory for absent classes."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import ncollapse.methods as M
from ncollapse.errors import NCollapseError
from ncollapse.losses import create_loss
from ncollapse.models import ModelOutput, build_model

COUNTS = [40, 20, 8, 3]
K = len(COUNTS)
D = 6


class _Clf:
    """Stands in for a model: only ``classifier_weight()`` is read by P2P."""

    def __init__(self, w):
        self.w = w

    def classifier_weight(self):
        return self.w


def _batch(y, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(len(y), D, generator=g, dtype=torch.float64)
    w = torch.randn(K, D, generator=g, dtype=torch.float64)
    y = torch.tensor(y)
    return e, w, y


def _output(e, w):
    e = e.detach().clone().requires_grad_(True)
    return ModelOutput(e @ w.t(), e, e), e


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def _means_loop(z, y):
    out = {}
    for k in sorted(set(y)):
        rows = [z[i] for i in range(len(y)) if y[i] == k]
        out[k] = [sum(c) / len(rows) for c in zip(*rows, strict=True)]
    return out


def _hycon_loop(z, y, means, T, s):
    """means: {class: unnormalised mean}; softmax over the classes in ``means``."""
    mu = {k: _unit(m) for k, m in means.items()}
    proto = 0.0
    for i in range(len(y)):
        den = sum(math.exp(_dot(z[i], mu[k]) / T) for k in mu)
        proto += -math.log(math.exp(_dot(z[i], mu[y[i]]) / T) / den)
    proto /= len(y)
    sup, anchors = 0.0, 0
    for i in range(len(y)):
        pos = [p for p in range(len(y)) if p != i and y[p] == y[i]]
        if not pos:
            continue
        den = sum(math.exp(_dot(z[i], z[a]) / T) for a in range(len(y)) if a != i)
        sup += -sum(math.log(math.exp(_dot(z[i], z[p]) / T) / den) for p in pos) / len(pos)
        anchors += 1
    return proto + s * (sup / anchors if anchors else 0.0)


def _p2p_loop(means, w, T):
    mu = {k: _unit(m) for k, m in means.items()}
    wh = [_unit(r) for r in w]
    V = sorted(mu)
    a = b = 0.0
    for k in V:
        den = sum(math.exp(_dot(mu[k], wh[j]) / T) for j in range(len(wh)))
        a += -math.log(math.exp(_dot(mu[k], wh[k]) / T) / den)
        den = sum(math.exp(_dot(wh[k], mu[j]) / T) for j in V)
        b += -math.log(math.exp(_dot(wh[k], mu[k]) / T) / den)
    return a / len(V) + b / len(V)


def _z(e):
    return [_unit(r) for r in e.tolist()]


# --------------------------------------------------------------------------- exact base loss
@pytest.mark.parametrize("base", ["ce", "balanced_softmax"])
@pytest.mark.parametrize(
    "opts",
    [
        dict(hycon=False, p2p=False),
        dict(lambda_hycon=0.0, lambda_p2p=0.0),
        dict(hycon=True, lambda_hycon=0.0, p2p=False),
        dict(hycon=False, p2p=True, lambda_p2p=0.0),
    ],
)
def test_switches_off_or_zero_weights_give_exactly_the_base_loss(base, opts):
    e, w, y = _batch([0, 1, 2, 3, 0, 1, 0])
    loss_fn = create_loss("allnc", counts=COUNTS, base=base, **opts).bind(_Clf(w))
    ref = create_loss(base, counts=COUNTS)
    out, e1 = _output(e, w)
    out2, e2 = _output(e, w)
    got, want = loss_fn(out, y), ref(out2, y)
    assert torch.equal(got, want)
    got.backward()
    want.backward()
    assert torch.equal(e1.grad, e2.grad)
    assert loss_fn.memory() is None  # nothing computed, nothing remembered


def test_each_component_changes_the_loss_only_when_enabled_and_adds_up():
    e, w, y = _batch([0, 1, 2, 3, 0, 1, 2, 0])  # every class present: no memory dependence
    base = create_loss("ce")(ModelOutput(e @ w.t(), e, e), y)

    def total(**kw):
        return create_loss("allnc", **kw).bind(_Clf(w))(ModelOutput(e @ w.t(), e, e), y)

    h = total(p2p=False) - base
    p = total(hycon=False) - base
    assert h.abs() > 1e-3 and p.abs() > 1e-3
    assert torch.allclose(total() - base, h + p, atol=1e-12)
    assert torch.allclose(total(p2p=False, lambda_hycon=2.5) - base, 2.5 * h, atol=1e-12)
    assert torch.allclose(total(hycon=False, lambda_p2p=0.3) - base, 0.3 * p, atol=1e-12)


# --------------------------------------------------------------------------- against loops
@pytest.mark.parametrize("supcon_weight", [0.0, 0.7])
def test_hycon_against_loops_with_an_absent_class(supcon_weight):
    yl = [0, 1, 2, 0, 1, 0, 2]  # class 3 absent and never seen: left out of the softmax
    e, w, y = _batch(yl, seed=1)
    T = 0.5
    loss_fn = create_loss(
        "allnc", p2p=False, hycon_temperature=T, supcon_weight=supcon_weight, lambda_hycon=1.0
    )
    out, _ = _output(e, w)
    got = (loss_fn(out, y) - create_loss("ce")(out, y)).item()
    z = _z(e)
    want = _hycon_loop(z, yl, _means_loop(z, yl), T, supcon_weight)
    assert got == pytest.approx(want, rel=1e-10)
    assert loss_fn.last["hycon"].item() == pytest.approx(want, rel=1e-10)


def test_p2p_against_loops_bound_model_and_branch_classifier():
    yl = [0, 1, 2, 3, 3, 1]
    e, w, y = _batch(yl, seed=2)
    T = 0.3
    z = _z(e)
    want = _p2p_loop(_means_loop(z, yl), w.tolist(), T)
    loss_fn = create_loss("allnc", hycon=False, p2p_temperature=T).bind(_Clf(w))
    out, _ = _output(e, w)
    assert (loss_fn(out, y) - create_loss("ce")(out, y)).item() == pytest.approx(want, rel=1e-10)
    # an output carrying its own classifier (GBBN branch) takes precedence over the bound model
    unbound = create_loss("allnc", hycon=False, p2p_temperature=T)
    bo = M.branch_output(e @ w.t(), e, e, w, "conventional")
    assert (unbound(bo, y) - create_loss("ce")(bo, y)).item() == pytest.approx(want, rel=1e-10)


def test_p2p_with_a_real_model_and_gradients_reach_the_classifier():
    model = build_model({"backbone": {"name": "mlp", "in_features": 5, "depth": 1, "width": 8},
                         "num_classes": K})  # fmt: skip
    loss_fn = create_loss("allnc", counts=COUNTS, hycon=False).bind(model)
    x, y = torch.randn(12, 5), torch.tensor([0, 1, 2, 3] * 3)
    loss_fn(model(x), y).backward()
    g_with = model.head.fc.weight.grad.clone()
    model.zero_grad()
    create_loss("ce")(model(x), y).backward()
    assert not torch.allclose(g_with, model.head.fc.weight.grad)


# --------------------------------------------------------------------------- EMA memory
def test_ema_memory_for_absent_classes():
    T, m = 0.4, 0.8
    loss_fn = create_loss("allnc", p2p=False, supcon_weight=0.0, hycon_temperature=T, momentum=m)
    y1 = [0, 1, 2, 0, 2]
    e1, w, t1 = _batch(y1, seed=3)
    loss_fn(ModelOutput(e1 @ w.t(), e1, e1), t1)
    mem, seen = loss_fn.memory()
    b1 = _means_loop(_z(e1), y1)
    assert seen.tolist() == [True, True, True, False]
    for k in (0, 1, 2):
        assert torch.allclose(mem[k], torch.tensor(b1[k], dtype=torch.float64), atol=1e-12)
    assert torch.equal(mem[3], torch.zeros(D, dtype=torch.float64))

    y2 = [0, 1, 1, 0]  # class 2 absent -> its mean comes from the memory; class 3 never seen
    e2, _, t2 = _batch(y2, seed=4)
    got = loss_fn(ModelOutput(e2 @ w.t(), e2, e2), t2) - create_loss("ce")(
        ModelOutput(e2 @ w.t(), e2, e2), t2
    )
    z2 = _z(e2)
    b2 = _means_loop(z2, y2)
    means = {0: b2[0], 1: b2[1], 2: b1[2]}  # present: batch means; absent: memory
    assert got.item() == pytest.approx(_hycon_loop(z2, y2, means, T, 0.0), rel=1e-10)
    mem2, seen2 = loss_fn.memory()
    for k in (0, 1):
        want = [m * a + (1 - m) * b for a, b in zip(b1[k], b2[k], strict=True)]
        assert torch.allclose(mem2[k], torch.tensor(want, dtype=torch.float64), atol=1e-12)
    assert torch.equal(mem2[2], mem[2]) and seen2.tolist() == [True, True, True, False]

    # evaluation (no_grad) never updates the memory
    before = loss_fn.memory()[0].clone()
    with torch.no_grad():
        loss_fn(ModelOutput(e1 @ w.t(), e1, e1), t1)
    assert torch.equal(loss_fn.memory()[0], before)


def test_memory_only_means_and_per_branch_memories():
    T, m = 0.4, 0.5
    loss_fn = create_loss(
        "allnc", p2p=False, supcon_weight=0.0, hycon_temperature=T, momentum=m, batch_means=False
    )
    y = [0, 1, 2, 3, 0]
    e1, w, t = _batch(y, seed=5)
    e2, _, _ = _batch(y, seed=6)
    loss_fn(ModelOutput(e1 @ w.t(), e1, e1), t)
    got = loss_fn(ModelOutput(e2 @ w.t(), e2, e2), t) - create_loss("ce")(
        ModelOutput(e2 @ w.t(), e2, e2), t
    )
    b1, b2 = _means_loop(_z(e1), y), _means_loop(_z(e2), y)
    means = {k: [m * a + (1 - m) * b for a, b in zip(b1[k], b2[k], strict=True)] for k in b1}
    assert got.item() == pytest.approx(_hycon_loop(_z(e2), y, means, T, 0.0), rel=1e-10)
    # branch outputs keep separate memories
    br = create_loss("allnc", p2p=False)
    br(M.branch_output(e1 @ w.t(), e1, e1, w, "conventional"), t)
    br(M.branch_output(e2 @ w.t(), e2, e2, w, "rebalancing"), t)
    assert torch.allclose(br.memory("conventional")[0][0], torch.tensor(b1[0], dtype=torch.float64))
    assert torch.allclose(br.memory("rebalancing")[0][0], torch.tensor(b2[0], dtype=torch.float64))


# --------------------------------------------------------------------------- mixup, errors
def test_mixup_path_through_standard_method():
    model = build_model({"backbone": {"name": "mlp", "in_features": 5, "depth": 1, "width": 8},
                         "num_classes": K})  # fmt: skip
    model.eval()
    loss_fn = create_loss("allnc", counts=COUNTS, base="balanced_softmax").bind(model)
    twin = copy.deepcopy(loss_fn).bind(model)
    x, y = torch.randn(10, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 0])
    st = M.create_method().step(model, loss_fn, x, y, mixup_alpha=1.0,
                                generator=torch.Generator().manual_seed(2))  # fmt: skip
    from ncollapse.data import mixup

    xm, ya, yb, lam = mixup(x, y, 1.0, torch.Generator().manual_seed(2))
    out = model(xm)
    want = lam * twin(out, ya) + (1 - lam) * twin(out, yb)
    assert torch.allclose(st.loss, want)


def test_bad_input():
    e, w, y = _batch([0, 1, 2, 3])
    with pytest.raises(NCollapseError, match="bind"):
        create_loss("allnc", hycon=False)(ModelOutput(e @ w.t(), e, e), y)
    with pytest.raises(NCollapseError, match="K x d classifier"):
        create_loss("allnc", hycon=False).bind(_Clf(w[:, :3]))(ModelOutput(e @ w.t(), e, e), y)
    with pytest.raises(NCollapseError, match="itself"):
        create_loss("allnc", base="allnc")
    with pytest.raises(NCollapseError, match="unknown option"):
        create_loss("allnc", lambda_hycn=1.0)
    with pytest.raises(NCollapseError, match="momentum"):
        create_loss("allnc", momentum=1.0)
    with pytest.raises(NCollapseError, match="hycon_temperature"):
        create_loss("allnc", hycon_temperature=0)
    assert create_loss("allnc", counts=COUNTS, base="ldam").required_head == ("cosine",)


def test_set_epoch_reaches_the_base_loss():
    loss_fn = create_loss("allnc", counts=COUNTS, base="ce",
                          base_params={"beta": 0.9999, "drw": True, "drw_epoch": 3})  # fmt: skip
    loss_fn.set_epoch(2, 5)
    assert loss_fn.base.active_weights() is None
    loss_fn.set_epoch(3, 5)
    assert loss_fn.base.active_weights() is not None


def test_memory_travels_in_the_state_dict():
    e, w, y = _batch([0, 1, 2, 0])
    a = create_loss("allnc", p2p=False)
    a(ModelOutput(e @ w.t(), e, e), y)
    b = create_loss("allnc", p2p=False)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.memory()[0], a.memory()[0]) and torch.equal(b.memory()[1], a.memory()[1])
    e2, _, y2 = _batch([0, 3, 3, 1], seed=9)
    out = ModelOutput(e2 @ w.t(), e2, e2)
    assert torch.equal(a(out, y2), b(out, y2))
