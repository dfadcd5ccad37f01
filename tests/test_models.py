"""Backbones, heads, Classifier and build_model: shapes, gradients, channels_last, parameter
counts (against independent closed-form counts), compile, the head contract and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ncollapse.errors import NCollapseError
from ncollapse.models import (
    Classifier,
    ModelOutput,
    backbone_names,
    backbone_options,
    build_model,
    create_backbone,
    create_head,
    head_names,
    register_backbone,
)
from ncollapse.models.backbones import Backbone

# name, options, input shape (C, H, W), expected out_dim -- small enough to keep the suite fast
BACKBONE_CASES = [
    ("mlp", dict(image_size=8, depth=2, width=16), (3, 8, 8), 16),
    ("mlp", dict(in_features=192, depth=3, width=8, batchnorm=False, bias=False), (3, 8, 8), 8),
    ("liu_mlp6", dict(width=32, image_size=8), (3, 8, 8), 32),
    ("cnn28", dict(width=4), (1, 28, 28), 16),
    ("resnet32", {}, (3, 32, 32), 64),
    ("resnet32", dict(width=8, depth=8), (3, 32, 32), 32),
    ("resnet18", dict(width=8), (3, 32, 32), 64),
    ("resnet50", dict(width=4), (3, 32, 32), 128),
    ("densenet_bc", dict(depth=22, growth=4), (3, 32, 32), None),
]
IDS = [f"{n}-{i}" for i, (n, *_) in enumerate(BACKBONE_CASES)]


def _make(name, opts, shape):
    return create_backbone(name, in_channels=shape[0], **opts)


def test_every_registered_backbone_is_covered():
    public = {n for n in backbone_names() if not n.startswith("_")}
    assert public == {n for n, *_ in BACKBONE_CASES}


@pytest.mark.parametrize("name,opts,shape,dim", BACKBONE_CASES, ids=IDS)
def test_backbone_shapes_and_gradients(name, opts, shape, dim):
    b = _make(name, opts, shape)
    assert isinstance(b, Backbone)
    x = torch.randn(3, *shape)
    f = b.features(x)
    assert f.shape == (3, b.out_dim)
    if dim is not None:
        assert b.out_dim == dim
    torch.testing.assert_close(b(x), f)  # forward is features (batch-stat BN: same output)
    (f**2).sum().backward()
    for pname, p in b.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in b.parameters())


@pytest.mark.parametrize("name,opts,shape,dim", BACKBONE_CASES, ids=IDS)
def test_backbone_channels_last_equivalence(name, opts, shape, dim):
    b = _make(name, opts, shape).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = b(x)
        b_cl = b.to(memory_format=torch.channels_last)
        out = b_cl(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,opts,shape,dim", BACKBONE_CASES, ids=IDS)
def test_backbone_traces_as_one_graph(name, opts, shape, dim):
    """torch.compile can capture the whole forward (fullgraph: no graph breaks)."""
    torch._dynamo.reset()
    b = _make(name, opts, shape).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = b(x)
        out = torch.compile(b, backend="eager", fullgraph=True)(x)
    torch.testing.assert_close(out, ref)


@pytest.mark.slow
def test_inductor_compile_channels_last_train_step():
    """Full inductor compile (C++ codegen, ~40 s on 2 CPU cores) of a tiny model + head."""
    torch._dynamo.reset()
    m = build_model(
        {
            "backbone": {"name": "cnn28", "width": 4},
            "head": {"name": "etf"},
            "num_classes": 3,
            "in_channels": 1,
        }
    ).to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 28, 28).to(memory_format=torch.channels_last)
    ref = m(x)
    out = torch.compile(m)(x)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
    out.logits.sum().backward()
    assert m.head.bn.weight.grad is not None


# ------------------------------------------------------------------ full-size architectures
def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv(cin, cout, k):
    return cin * cout * k * k


def _bn(c):
    return 2 * c


def _cifar_resnet_count(n, w, c_in=3):
    total = _conv(c_in, w, 3) + _bn(w)
    cin = w
    for cout in (w, 2 * w, 4 * w):
        for _ in range(n):  # option-A shortcut has no parameters
            total += _conv(cin, cout, 3) + _bn(cout) + _conv(cout, cout, 3) + _bn(cout)
            cin = cout
    return total


def _resnet_count(layers, bottleneck, w=64, c_in=3):
    total = _conv(c_in, w, 3) + _bn(w)
    cin = w
    exp = 4 if bottleneck else 1
    for i, n in enumerate(layers):
        planes = w * 2**i
        for j in range(n):
            cout = planes * exp
            if bottleneck:
                total += _conv(cin, planes, 1) + _bn(planes) + _conv(planes, planes, 3)
                total += _bn(planes) + _conv(planes, cout, 1) + _bn(cout)
            else:
                total += _conv(cin, planes, 3) + _bn(planes) + _conv(planes, cout, 3) + _bn(cout)
            if (j == 0 and i > 0) or cin != cout:
                total += _conv(cin, cout, 1) + _bn(cout)
            cin = cout
    return total, cin


def _densenet_bc_count(depth, k, reduction=0.5, c_in=3):
    n = (depth - 4) // 6
    c = 2 * k
    total = _conv(c_in, c, 3)
    for b in range(3):
        for _ in range(n):
            total += _bn(c) + _conv(c, 4 * k, 1) + _bn(4 * k) + _conv(4 * k, k, 3)
            c += k
        if b < 2:
            cout = math.floor(c * reduction)
            total += _bn(c) + _conv(c, cout, 1)
            c = cout
    return total + _bn(c), c


def test_resnet32_parameter_count():
    b = create_backbone("resnet32")
    assert _n_params(b) == _cifar_resnet_count(5, 16) == 463_504
    # He et al. 2016 Table 6: ResNet-32 has 0.46M parameters (with the 10-way fc: +650)
    assert abs(_n_params(b) + 64 * 10 + 10 - 0.46e6) < 0.01e6
    wide = create_backbone("resnet32", width=32)
    assert wide.out_dim == 128 and _n_params(wide) == _cifar_resnet_count(5, 32)


def test_resnet18_resnet50_full_size():
    x = torch.randn(2, 3, 32, 32)
    for name, layers, bottleneck, dim in (
        ("resnet18", (2, 2, 2, 2), False, 512),
        ("resnet50", (3, 4, 6, 3), True, 2048),
    ):
        b = create_backbone(name).eval()
        count, out = _resnet_count(layers, bottleneck)
        assert out == dim == b.out_dim
        assert _n_params(b) == count
        with torch.no_grad():
            assert b(x).shape == (2, dim)
    # torchvision's ImageNet ResNet-18 has 11,689,512 parameters; CIFAR stem (3x3 instead of 7x7
    # conv1) and no fc: 11,689,512 - 64*3*(49-9) - 513,000
    assert _resnet_count((2, 2, 2, 2), False)[0] == 11_689_512 - 64 * 3 * 40 - 513_000


def test_densenet_bc_150_is_510d():
    b = create_backbone("densenet_bc").eval()
    assert b.layers_per_block == 24  # floor((150 - 4) / 6)
    count, c = _densenet_bc_count(150, 12)
    assert b.out_dim == c == 510
    assert _n_params(b) == count
    with torch.no_grad():
        assert b(torch.randn(2, 3, 32, 32)).shape == (2, 510)


def test_densenet_bc_100_matches_paper_size():
    b = create_backbone("densenet_bc", depth=100, growth=12)
    count, c = _densenet_bc_count(100, 12)
    assert _n_params(b) == count and b.out_dim == c == 342
    # Huang et al. 2017 Table 2: DenseNet-BC (L=100, k=12) has 0.8M parameters (10-way fc)
    assert abs(_n_params(b) + 342 * 10 + 10 - 0.8e6) < 0.05e6


def test_liu_mlp6_preset_structure():
    b = create_backbone("liu_mlp6", width=24, image_size=4)
    linears = [m for m in b.layers if isinstance(m, nn.Linear)]
    relus = [m for m in b.layers if isinstance(m, nn.ReLU)]
    assert len(linears) == 7 and len(relus) == 6  # 6 ReLU layers + the feature layer
    assert not any(isinstance(m, nn.BatchNorm1d) for m in b.layers)
    assert linears[0].in_features == 3 * 4 * 4 and linears[-1].out_features == 24
    assert isinstance(b.layers[-1], nn.Linear)  # features come from the linear feature layer
    for lin in linears:  # orthogonal init: W W^T = I (wide first layer: W^T W = I on rows)
        w = lin.weight.double()
        g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(g, torch.eye(g.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
    assert backbone_options("liu_mlp6")["width"] == 2048
    assert backbone_options("liu_mlp6")["depth"] == 6


def test_mlp_options():
    b = create_backbone("mlp", in_channels=1, image_size=(4, 5), depth=2, width=6, bias=False)
    lin = [m for m in b.layers if isinstance(m, nn.Linear)]
    assert lin[0].in_features == 20 and all(m.bias is None for m in lin)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in b.layers) == 2
    # Linear -> BN -> ReLU order (SELI MLP)
    assert [type(m) for m in b.layers[:3]] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]


def test_cnn28_any_resolution():
    b = create_backbone("cnn28", in_channels=1, width=2)
    assert b(torch.randn(2, 1, 28, 28)).shape == (2, 8)
    assert create_backbone("cnn28", in_channels=3, width=2)(torch.randn(2, 3, 32, 32)).shape == (
        2,
        8,
    )


def test_bad_backbone_input():
    with pytest.raises(NCollapseError, match="valid backbones: .*resnet32"):
        create_backbone("resnet33")
    with pytest.raises(NCollapseError, match="did you mean 'resnet32'"):
        create_backbone("resnet32x")
    with pytest.raises(NCollapseError, match="unknown option 'widht'.*width=16"):
        create_backbone("resnet32", widht=32)
    with pytest.raises(NCollapseError, match="in_features"):
        create_backbone("mlp")
    with pytest.raises(NCollapseError, match="6n\\+2"):
        create_backbone("resnet32", depth=33)
    with pytest.raises(NCollapseError, match="reduction"):
        create_backbone("densenet_bc", reduction=0)
    with pytest.raises(NCollapseError, match="in_channels"):
        create_backbone("resnet18", in_channels=0)
    with pytest.raises(NCollapseError, match="init"):
        create_backbone("mlp", in_features=4, init="xavier")
    b = create_backbone("mlp", in_features=10, depth=1, width=4)
    with pytest.raises(NCollapseError, match="expects 10 input features.*got 12"):
        b(torch.randn(2, 3, 2, 2))


def test_register_custom_backbone():
    @register_backbone("_test_tiny")
    def tiny(in_channels: int = 3, dim: int = 5):
        class Tiny(Backbone):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(in_channels, dim)
                self.out_dim = dim

            def features(self, x):
                return self.fc(x.mean((2, 3)))

        return Tiny()

    m = build_model({"backbone": {"name": "_test_tiny", "dim": 7}, "num_classes": 3})
    assert m(torch.randn(2, 3, 4, 4)).logits.shape == (2, 3)
    with pytest.raises(NCollapseError, match="already registered"):
        register_backbone("_test_tiny")(lambda in_channels=3: None)


# --------------------------------------------------------------------------------- heads
HEAD_NAMES = ["linear", "cosine", "deep_linear", "etf", "orthonormal"]


def test_every_registered_head_is_covered():
    assert set(HEAD_NAMES) <= set(head_names())


@pytest.mark.parametrize("name", HEAD_NAMES)
@pytest.mark.parametrize("proj", [None, 12])
def test_head_contract(name, proj):
    """logits == embedding @ classifier_weight().T + classifier_bias(), shapes, projection."""
    k, d = 4, 6
    head = create_head(name, d, k, projection_dim=proj)
    h = torch.randn(5, d, requires_grad=True)
    out = head(h)
    dim = d if proj is None else proj
    assert out.logits.shape == (5, k) and out.embedding.shape == (5, dim)
    w, b = head.classifier_weight(), head.classifier_bias()
    assert w.shape == (k, dim)
    ref = out.embedding @ w.T + (0 if b is None else b)
    torch.testing.assert_close(out.logits, ref, rtol=1e-5, atol=1e-6)
    if proj is not None:
        assert isinstance(head.projection, nn.Linear)
        assert (head.projection.in_features, head.projection.out_features) == (d, proj)
    out.logits.square().sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    if proj is not None:
        assert head.projection.weight.grad is not None
    if name in ("etf", "orthonormal"):
        assert out.fixed_weight is head.weight
    else:
        assert out.fixed_weight is None


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_classifier_with_head_traces_as_one_graph(name):
    torch._dynamo.reset()
    m = build_model(
        {
            "backbone": {"name": "mlp", "in_features": 12, "depth": 1, "width": 8},
            "head": {"name": name, "projection_dim": 6},
            "num_classes": 4,
        }
    ).eval()
    x = torch.randn(3, 12)
    with torch.no_grad():
        ref = m(x)
        out = torch.compile(m, backend="eager", fullgraph=True)(x)
    assert type(out) is type(ref)
    torch.testing.assert_close(out.logits, ref.logits)
    torch.testing.assert_close(out.embedding, ref.embedding)


def test_linear_head_bias_option():
    assert create_head("linear", 5, 3).classifier_bias().shape == (3,)
    head = create_head("linear", 5, 3, bias=False)
    assert head.classifier_bias() is None
    h = torch.randn(2, 5)
    torch.testing.assert_close(head(h).logits, h @ head.fc.weight.T)


def test_cosine_head_is_normed_linear():
    head = create_head("cosine", 5, 3)
    h = torch.randn(4, 5).double()
    head = head.double()
    out = head(h)
    w = head.weight.detach().numpy()
    hn = h.numpy()
    for i in range(4):
        for j in range(3):
            cos = hn[i] @ w[j] / (np.linalg.norm(hn[i]) * np.linalg.norm(w[j]))
            assert abs(out.logits[i, j].item() - cos) < 1e-12
    assert out.logits.abs().max() <= 1 + 1e-12
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(4, dtype=torch.float64))


def test_deep_linear_classifier_weight_is_product():
    head = create_head("deep_linear", 6, 3, depth=4, hidden_dim=5, bias=True).double()
    mats = [layer.weight.detach().numpy() for layer in head.layers]
    assert [m.shape for m in mats] == [(5, 6), (5, 5), (5, 5), (3, 5)]
    prod = np.eye(6)
    for m in mats:  # W_L ... W_1 built explicitly left to right
        prod = m @ prod
    np.testing.assert_allclose(head.classifier_weight().detach().numpy(), prod, atol=1e-12)
    assert [layer.bias is None for layer in head.layers] == [True, True, True, False]
    h = torch.randn(7, 6, dtype=torch.float64)
    out = head(h)
    np.testing.assert_allclose(
        out.logits.detach().numpy(),
        h.numpy() @ prod.T + head.layers[-1].bias.detach().numpy(),
        atol=1e-12,
    )
    ins = head.layer_inputs(out.embedding)
    assert len(ins) == 4 and ins[1].shape == (7, 5)
    np.testing.assert_allclose(ins[1].detach().numpy(), h.numpy() @ mats[0].T, atol=1e-12)
    assert create_head("deep_linear", 6, 3).classifier_bias() is None  # bias-free by default


def test_deep_linear_orthogonal_init_and_depth_one():
    head = create_head("deep_linear", 8, 3, depth=3, init="orthogonal")
    w = head.layers[0].weight.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    one = create_head("deep_linear", 8, 3, depth=1)
    assert len(one.layers) == 1 and one.classifier_weight().shape == (3, 8)


@pytest.mark.parametrize("k,d", [(4, 6), (10, 9), (3, 64)])
def test_etf_head_gram_and_fixed_buffer(k, d):
    head = create_head("etf", d, k, seed=3)
    m = head.weight.double()
    gram = m @ m.T
    ref = k / (k - 1) * (torch.eye(k, dtype=torch.float64) - torch.ones(k, k) / k)
    torch.testing.assert_close(gram, ref, atol=1e-6, rtol=0)
    assert "weight" in dict(head.named_buffers())
    assert "weight" not in dict(head.named_parameters())
    assert not head.weight.requires_grad
    assert "weight" in head.state_dict()
    before = head.weight.clone()
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    out = head(torch.randn(8, d))
    torch.nn.functional.cross_entropy(out.logits, torch.arange(8) % k).backward()
    opt.step()
    assert torch.equal(head.weight, before)  # never trained
    assert head.bn.weight.grad is not None  # BatchNorm1d is trained
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(8), rtol=0, atol=1e-6)
    # same seed -> same matrix (resume-safe); different seed -> different
    assert torch.equal(create_head("etf", d, k, seed=3).weight, head.weight)
    assert not torch.equal(create_head("etf", d, k, seed=4).weight, head.weight)


def test_etf_head_embedding_is_bn_then_l2():
    head = create_head("etf", 5, 3).eval()
    with torch.no_grad():
        head.bn.running_mean.copy_(torch.arange(5.0))
        head.bn.running_var.fill_(4.0)
        h = torch.randn(2, 5)
        out = head(h)
    z = (h - torch.arange(5.0)) / math.sqrt(4.0 + head.bn.eps)
    torch.testing.assert_close(out.embedding, z / z.norm(dim=1, keepdim=True))


def test_orthonormal_head():
    head = create_head("orthonormal", 7, 4, seed=1)
    w = head.weight.double()
    torch.testing.assert_close(w @ w.T, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)
    assert "weight" not in dict(head.named_parameters())
    raw = create_head("orthonormal", 7, 4, batchnorm=False, normalize=False)
    h = torch.randn(3, 7)
    torch.testing.assert_close(raw(h).embedding, h)
    torch.testing.assert_close(raw(h).logits, h @ raw.weight.T)


def test_bad_head_input():
    with pytest.raises(NCollapseError, match="valid heads: .*etf"):
        create_head("eft", 4, 3)
    with pytest.raises(NCollapseError, match="projection_dim >= 9"):
        create_head("etf", 4, 10)
    with pytest.raises(NCollapseError, match="projection_dim >= 10"):
        create_head("orthonormal", 9, 10)
    assert create_head("orthonormal", 9, 10, projection_dim=16).weight.shape == (10, 16)
    with pytest.raises(NCollapseError, match="num_classes"):
        create_head("linear", 4, 1)
    with pytest.raises(NCollapseError, match="unknown option 'depht'.*depth=3"):
        create_head("deep_linear", 4, 3, depht=2)


# --------------------------------------------------------------------- Classifier / config
def test_classifier_output_and_features():
    m = build_model(
        {"backbone": {"name": "resnet32", "width": 4, "depth": 8}, "head": "etf", "num_classes": 5}
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    out = m(x)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 5) and out.features.shape == (2, 16)
    torch.testing.assert_close(out.features, m.features(x))
    torch.testing.assert_close(out.embedding, m.head(out.features).embedding)
    assert out.fixed_weight.shape == (5, 16)
    torch.testing.assert_close(m.classifier_weight(), m.head.weight)


def test_build_model_defaults_and_errors():
    m = build_model({"backbone": {"name": "mlp", "in_features": 4, "depth": 1}, "num_classes": 3})
    assert m.head.__class__.__name__ == "LinearHead" and m.num_classes == 3
    with pytest.raises(NCollapseError, match="valid keys: backbone, head, num_classes"):
        build_model({"backbone": "resnet32", "num_clases": 3})
    with pytest.raises(NCollapseError, match="top level"):
        build_model({"backbone": {"name": "resnet32", "in_channels": 1}, "num_classes": 3})
    with pytest.raises(NCollapseError, match="'name'"):
        build_model({"backbone": {"width": 3}, "num_classes": 3})
    with pytest.raises(NCollapseError, match="num_classes"):
        build_model({"backbone": "resnet32"})
    with pytest.raises(NCollapseError, match="in_dim"):
        Classifier(create_backbone("resnet32"), create_head("linear", 32, 3))
