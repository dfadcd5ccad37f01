"""GBBN method and bilateral head: α schedules, mixed logits and loss, test-time α, mixup,
the method registry and protocol errors; a short GBBN + AllNC run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ncollapse.methods as M
from ncollapse.errors import NCollapseError
from ncollapse.losses import create_loss
from ncollapse.models import build_model

K = 4
COUNTS = [60, 24, 10, 4]


def _model(**head):
    torch.manual_seed(0)
    return build_model({
        "backbone": {"name": "mlp", "in_features": 6, "depth": 1, "width": 12},
        "head": {"name": "bilateral", **head},
        "num_classes": K,
    })  # fmt: skip


def _xy(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, K, (n,), generator=g)


@pytest.mark.parametrize(
    "schedule,p,want",
    [
        ("parabolic", 0.0, 1.0), ("parabolic", 0.5, 0.75), ("parabolic", 1.0, 0.0),
        ("linear", 0.25, 0.75), ("cosine", 0.5, math.cos(math.pi / 4)), ("cosine", 1.0, 0.0),
        ("power", 0.5, 1 - 0.5**3), ("constant", 0.9, 0.3),
    ],
)  # fmt: skip
def test_alpha_schedules(schedule, p, want):
    method = M.create_method("gbbn", schedule=schedule, power=3.0, alpha=0.3)
    assert method.alpha_at(p) == pytest.approx(want, abs=1e-12)
    assert M.alpha_schedule(p, schedule, 3.0, 0.3) == pytest.approx(want, abs=1e-12)


def test_alpha_schedule_bad_input():
    with pytest.raises(NCollapseError, match="schedule"):
        M.create_method("gbbn", schedule="quadratic")
    with pytest.raises(NCollapseError, match=r"\[0, 1\]"):
        M.alpha_schedule(1.5)
    with pytest.raises(NCollapseError, match="test_alpha"):
        M.create_method("gbbn", test_alpha=2)


def test_bilateral_head_contract_and_test_alpha():
    model = _model(test_alpha=0.3)
    model.eval()
    head = model.head
    x, _ = _xy(5, 0)
    with torch.no_grad():
        out = model(x)
        h = model.backbone(x)
        z_c = head.classifiers[0](torch.relu(head.branches[0][0](h)))
        z_r = head.classifiers[1](torch.relu(head.branches[1][0](h)))
    assert torch.allclose(out.logits, 0.3 * z_c + 0.7 * z_r, atol=1e-6)
    W, b = head.classifier_weight(), head.classifier_bias()
    assert W.shape == (K, 24) and out.embedding.shape == (5, 24) and head.dim == 24
    assert torch.allclose(out.logits, out.embedding @ W.t() + b, atol=1e-6)
    assert torch.allclose(M.create_method("gbbn").predict_logits(model, x), out.logits)
    with torch.no_grad():
        half = M.create_method("gbbn", test_alpha=0.5).predict_logits(model, x)
    assert torch.allclose(half, 0.5 * z_c + 0.5 * z_r, atol=1e-6)
    shared = _model(branch_layer=False, bias=False)
    assert shared.head.width == 12 and shared.head.classifier_bias() is None


@pytest.mark.parametrize("joint", [True, False])
def test_gbbn_step_mixes_logits_and_losses(joint):
    model = _model()
    model.eval()  # deterministic BatchNorm for the comparison
    loss_fn = create_loss("ce")
    (x, y), (xr, yr) = _xy(8, 1), _xy(8, 2)
    method = M.create_method("gbbn", joint_forward=joint)
    st = method.step(model, loss_fn, x, y, (xr, yr), progress=0.4)
    a = 1 - 0.4**2
    head = model.head
    with torch.no_grad():
        e_c = torch.relu(head.branches[0][0](model.backbone(x)))
        e_r = torch.relu(head.branches[1][0](model.backbone(xr)))
        z = a * head.classifiers[0](e_c) + (1 - a) * head.classifiers[1](e_r)
        want = a * F.cross_entropy(z, y) + (1 - a) * F.cross_entropy(z, yr)
        view = model(x)
    assert torch.allclose(st.loss, want, atol=1e-6)
    # the returned output is the test-time view of the instance batch, labelled y
    assert torch.equal(st.y, y) and st.y_b is None
    assert torch.allclose(st.output.logits, view.logits, atol=1e-6)
    assert torch.allclose(st.output.embedding, view.embedding, atol=1e-6)
    st.loss.backward()
    assert all(p.grad is not None for p in head.classifiers.parameters())


def test_gbbn_alpha_extremes_are_single_branch_losses():
    model = _model()
    model.eval()
    (x, y), (xr, yr) = _xy(8, 3), _xy(8, 4)
    method = M.create_method("gbbn")
    head = model.head
    with torch.no_grad():
        zc = head.classifiers[0](torch.relu(head.branches[0][0](model.backbone(x))))
        zr = head.classifiers[1](torch.relu(head.branches[1][0](model.backbone(xr))))
    start = method.step(model, create_loss("ce"), x, y, (xr, yr), progress=0.0).loss
    end = method.step(model, create_loss("ce"), x, y, (xr, yr), progress=1.0).loss
    assert torch.allclose(start, F.cross_entropy(zc, y), atol=1e-6)
    assert torch.allclose(end, F.cross_entropy(zr, yr), atol=1e-6)


def test_gbbn_mixup_path():
    model = _model()
    model.eval()
    (x, y), (xr, yr) = _xy(8, 5), _xy(8, 6)
    method = M.create_method("gbbn", schedule="linear")
    st = method.step(model, create_loss("ce"), x, y, (xr, yr), progress=0.5, mixup_alpha=1.0,
                     generator=torch.Generator().manual_seed(9))  # fmt: skip
    from ncollapse.data import mixup

    g = torch.Generator().manual_seed(9)
    xc, ya, yb, lc = mixup(x, y, 1.0, g)
    xrm, ra, rb, lr = mixup(xr, yr, 1.0, g)
    head = model.head
    with torch.no_grad():
        z = 0.5 * head.classifiers[0](torch.relu(head.branches[0][0](model.backbone(xc)))) + (
            0.5 * head.classifiers[1](torch.relu(head.branches[1][0](model.backbone(xrm))))
        )

    def ce(t):
        return F.cross_entropy(z, t)

    want = 0.5 * (lc * ce(ya) + (1 - lc) * ce(yb)) + 0.5 * (lr * ce(ra) + (1 - lr) * ce(rb))
    assert torch.allclose(st.loss, want, atol=1e-6)
    assert st.lam == lc and torch.equal(st.y_b, yb)


def test_method_registry_and_protocol():
    assert {"standard", "gbbn"} <= set(M.method_names())
    std = M.create_method("standard")
    assert std.aux_sampler is None and std.required_head is None
    g = M.create_method("gbbn", sampler="reverse")
    assert g.aux_sampler == "reversed" and g.describe()["schedule"] == "parabolic"
    g.check_head("bilateral")
    with pytest.raises(NCollapseError, match="model.head=bilateral"):
        g.check_head("linear")
    with pytest.raises(NCollapseError, match="unknown method"):
        M.create_method("bbn2")
    with pytest.raises(NCollapseError, match="unknown option"):
        M.create_method("gbbn", shedule="linear")
    x, y = _xy(4, 0)
    with pytest.raises(NCollapseError, match="second batch"):
        g.step(_model(), create_loss("ce"), x, y, None, 0.1)
    lin = build_model({"backbone": {"name": "mlp", "in_features": 6, "depth": 1, "width": 8},
                       "num_classes": K})  # fmt: skip
    with pytest.raises(NCollapseError, match="bilateral"):
        g.step(lin, create_loss("ce"), x, y, (x, y), 0.1)
    with pytest.raises(NCollapseError, match="progress"):
        g.step(_model(), create_loss("ce"), x, y, (x, y), 1.7)


def test_gbbn_with_allnc_trains_and_keeps_branch_memories():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    means = torch.randn(K, 6, generator=g) * 2
    y_all = torch.cat([torch.full((n,), k) for k, n in enumerate(COUNTS)])
    x_all = means[y_all] + 0.4 * torch.randn(len(y_all), 6, generator=g)
    model = _model(branch_dim=16)
    loss_fn = create_loss("allnc", counts=COUNTS, base="ce").bind(model)
    method = M.create_method("gbbn")
    from ncollapse.data import make_sampler

    rev = make_sampler("reversed", y_all.numpy(), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    steps = 60
    for s in range(steps):
        model.train()
        i = torch.randint(0, len(y_all), (16,), generator=g)
        j = torch.as_tensor(rev.indices(s)[:16])
        st = method.step(model, loss_fn, x_all[i], y_all[i], (x_all[j], y_all[j]), s / steps)
        opt.zero_grad()
        st.loss.backward()
        opt.step()
        losses.append(st.loss.item())
    assert sum(losses[-10:]) < sum(losses[:10])
    assert loss_fn.memory("conventional") is not None and loss_fn.memory("rebalancing") is not None
    model.eval()
    with torch.no_grad():
        acc = (method.predict_logits(model, x_all).argmax(1) == y_all).double().mean().item()
    assert acc > 0.8
