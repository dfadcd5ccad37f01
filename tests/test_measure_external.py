"""timm:/torchvision: backbones by name and local pretrained weights.

PyPI's torchvision wheels on the test machine are CUDA builds that do not import next to the CPU
torch, and timm needs torchvision, so these tests register small stand-ins with the same interface
(``timm.create_model(name, pretrained=, num_classes=0, in_chans=)``, ``num_features``,
``torchvision.models.get_model(name, weights=None)`` with an ``fc`` classifier) in ``sys.modules``.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

import ncollapse
from ncollapse.errors import NCollapseError
from ncollapse.models import BACKBONES, build_model, create_backbone
from ncollapse.models.external import ExternalBackbone, load_pretrained


class _TinyTimm(nn.Module):
    def __init__(self, in_chans=3, num_classes=1000, width=8):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, width, 3, padding=1)
        self.num_features = width
        self.fc = nn.Linear(width, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x):
        return torch.relu(self.conv(x))

    def forward_head(self, x, pre_logits=False):
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class _TinyTV(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.fc = nn.Linear(5, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture
def fake_libs(monkeypatch):
    calls = []
    timm = types.ModuleType("timm")

    def create_model(name, pretrained=False, num_classes=1000, in_chans=3, **kw):
        calls.append(("timm", name, pretrained, num_classes, in_chans))
        if name != "tiny":
            raise RuntimeError(f"Unknown model ({name})")
        return _TinyTimm(in_chans, num_classes, **kw)

    timm.create_model = create_model
    tv = types.ModuleType("torchvision")
    tvm = types.ModuleType("torchvision.models")

    def get_model(name, weights=None, **kw):
        calls.append(("torchvision", name, weights))
        if name != "tiny":
            raise ValueError(f"Unknown model {name}")
        return _TinyTV(**kw)

    tvm.get_model = get_model
    tv.models = tvm
    monkeypatch.setitem(sys.modules, "timm", timm)
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tvm)
    yield calls
    for name in ("timm:tiny", "torchvision:tiny", "timm:nope"):
        BACKBONES._factories.pop(name, None)
        BACKBONES._meta.pop(name, None)


def test_backbones_by_name_never_download(fake_libs):
    bb = create_backbone("timm:tiny", in_channels=1)
    assert isinstance(bb, ExternalBackbone) and bb.out_dim == 8
    assert bb(torch.zeros(2, 1, 4, 4)).shape == (2, 8)
    tv = create_backbone("torchvision:tiny")
    assert tv.out_dim == 5 and isinstance(tv.net.fc, nn.Identity)
    assert ("timm", "tiny", False, 0, 1) in fake_libs and ("torchvision", "tiny", None) in fake_libs
    model = build_model({"backbone": "timm:tiny", "num_classes": 3, "in_channels": 3})
    assert model(torch.zeros(2, 3, 4, 4)).logits.shape == (2, 3)
    with pytest.raises(NCollapseError, match="downloading weights is disabled"):
        create_backbone("timm:tiny", pretrained=True)
    with pytest.raises(NCollapseError, match="Unknown model"):
        create_backbone("timm:nope")
    with pytest.raises(NCollapseError, match="3 input channels"):
        create_backbone("torchvision:tiny", in_channels=1)


def test_missing_library_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(NCollapseError, match="needs timm.*pip install timm"):
        create_backbone("timm:resnet18")


def test_pretrained_from_local_file(fake_libs, tmp_path):
    src = _TinyTimm(3, 10)
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}},
               tmp_path / "w.pth")  # fmt: skip
    bb = create_backbone("timm:tiny", pretrained=str(tmp_path / "w.pth"))
    assert torch.equal(bb.net.conv.weight, src.conv.weight)  # fc.* ignored (no classifier here)
    info = load_pretrained(bb, tmp_path / "w.pth")
    assert info["ignored"] == ["fc.bias", "fc.weight"]
    with pytest.raises(NCollapseError, match="not found.*nothing is downloaded"):
        load_pretrained(bb, tmp_path / "absent.pt")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(NCollapseError, match="lacks 1 weight"):
        load_pretrained(bb, tmp_path / "bad.pt")
    torch.save({"conv.weight": torch.zeros(1), "conv.bias": torch.zeros(8)}, tmp_path / "shape.pt")
    with pytest.raises(NCollapseError, match="has shape"):
        load_pretrained(bb, tmp_path / "shape.pt")


def test_model_pretrained_config_key_reaches_the_trainer(tmp_path):
    """model.pretrained loads a built-in backbone's weights (saved from another model)."""
    from ncollapse.config import load_config
    from ncollapse.train import Trainer

    donor = build_model({"backbone": {"name": "mlp", "in_features": 64, "depth": 2, "width": 32,
                                      "batchnorm": False}, "num_classes": 10})  # fmt: skip
    torch.save({"model": donor.state_dict()}, tmp_path / "donor.pt")
    cfg = load_config(None, [
        "data.name=digits", "model.backbone=mlp", "train.device=cpu", "train.progress=false",
        "model.backbone_args={depth: 2, width: 32, batchnorm: false}", "run.tensorboard=false",
        f"model.pretrained={tmp_path / 'donor.pt'}", f"run.out_dir={tmp_path}",
    ])  # fmt: skip
    tr = Trainer(cfg)
    for (k, v), (k2, v2) in zip(tr.model.backbone.state_dict().items(),
                                donor.backbone.state_dict().items()):  # fmt: skip
        assert k == k2 and torch.equal(v, v2)


def test_measure_on_a_timm_by_name_model(fake_libs):
    """The stand-in timm model with its classifier: measure uses forward_head(pre_logits=True)."""
    net = sys.modules["timm"].create_model("tiny", num_classes=3)
    x = torch.randn(12, 3, 4, 4)
    y = torch.arange(12) % 3
    res = ncollapse.measure(net, (x, y), progress=False, verbose=False)
    assert "timm-style" in res.source and res.train["data"]["dim"] == 8
