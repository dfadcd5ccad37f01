"""Backbones: networks that map an input batch to penultimate features ``(B, out_dim)``.

Every backbone is a :class:`Backbone`: ``features(x)`` returns the penultimate features,
``forward`` is ``features`` and ``out_dim`` is the feature width. The classifier lives in a
separate head (:mod:`ncollapse.models.heads`), so NC statistics can be collected on exactly the
features the head sees.

Registered names (see ``docs/models.md``):

==============  =============================================================================
``mlp``         flatten -> depth x [Linear(bias?) -> BatchNorm1d? -> ReLU] (-> Linear feature layer)
``liu_mlp6``    Dang et al. / Liu preset: 6 x [Linear -> ReLU], width 2048, orthogonal init, plus a
                Linear(width, width) feature layer (no BatchNorm)
``cnn28``       small VGG-style CNN for 28x28 inputs (3 stages, global average pool), 4*width-d
``resnet32``    CIFAR ResNet-(6n+2) of He et al. 2016, option-A (zero-pad) shortcuts, stages
                w/2w/4w (w=16 -> 64-d, w=32 -> the 128-d CIFAR-100 variant of SETF)
``resnet18``    ResNet-18, CIFAR stem (3x3 stride-1 conv, no max-pool), 512-d
``resnet50``    ResNet-50 (bottleneck, stride on the 3x3 conv), CIFAR stem, 2048-d
``densenet_bc`` DenseNet-BC (bottleneck + compression), 3 dense blocks; depth 150, growth 12,
                reduction 0.5 -> 510-d
==============  =============================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.registry import Registry
from ncollapse.validation import check_choice, check_int

BACKBONES = Registry("backbone", reserved=("in_channels",))


def register_backbone(name: str):
    """Decorator registering ``factory(in_channels=3, **options) -> Backbone`` under ``name``."""
    return BACKBONES.register(name)


def create_backbone(name: str, in_channels: int = 3, **kwargs) -> Backbone:
    """Build the backbone registered as ``name`` (unknown names/options raise NCollapseError)."""
    in_channels = check_int(in_channels, "in_channels", 1)
    from ncollapse.models.external import ensure_registered  # timm:NAME / torchvision:NAME

    ensure_registered(name)
    return BACKBONES.create(name, in_channels=in_channels, **kwargs)


def backbone_names() -> list[str]:
    return BACKBONES.names()


def backbone_options(name: str) -> dict:
    """Options of backbone ``name`` and their defaults."""
    return BACKBONES.options(name)


class Backbone(nn.Module):
    """Base class: ``features(x) -> (B, out_dim)``; ``forward`` is ``features``."""

    out_dim: int

    def features(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def _init_conv_bn(module: nn.Module) -> None:
    """He (fan-out) normal init for convolutions, BN weight 1 / bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------- MLP
class MLP(Backbone):
    """Flatten, then ``depth`` blocks ``Linear(bias) -> [BatchNorm1d] -> ReLU``.

    Block order Linear -> BN -> ReLU follows the SELI deep-net MLP (bias-free Linear + BN + ReLU).
    ``feature_layer=True`` appends ``Linear(width, width, bias=True)`` without activation; its
    output is the feature (the "intermediate layer" of Dang et al.'s MLP). ``init="orthogonal"``
    initialises every Linear weight with ``nn.init.orthogonal_`` (biases zero).
    """

    def __init__(
        self,
        in_features: int,
        depth: int = 6,
        width: int = 512,
        batchnorm: bool = True,
        bias: bool = True,
        init: str = "default",
        feature_layer: bool = False,
    ):
        super().__init__()
        in_features = check_int(in_features, "in_features", 1)
        depth = check_int(depth, "depth", 1)
        width = check_int(width, "width", 1)
        check_choice(init, "init", ("default", "orthogonal"))
        layers: list[nn.Module] = []
        d = in_features
        for _ in range(depth):
            layers.append(nn.Linear(d, width, bias=bool(bias)))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU(inplace=True))
            d = width
        if feature_layer:
            layers.append(nn.Linear(width, width, bias=True))
        self.layers = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_dim = width
        if init == "orthogonal":
            for m in self.layers:
                if isinstance(m, nn.Linear):
                    nn.init.orthogonal_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.in_features:
            raise NCollapseError(
                f"MLP expects {self.in_features} input features per sample, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)}); set in_features or image_size to match the data"
            )
        return self.layers(x)


def _mlp_in_features(in_channels: int, in_features, image_size) -> int:
    if in_features is not None:
        return check_int(in_features, "in_features", 1)
    if image_size is None:
        raise NCollapseError(
            "the MLP backbone needs its input size: pass in_features=C*H*W (e.g. 784 for 1x28x28) "
            "or image_size=28 / image_size=[H, W]"
        )
    if isinstance(image_size, int | float):
        image_size = (image_size, image_size)
    h, w = (check_int(s, "image_size", 1) for s in image_size)
    return in_channels * h * w


@register_backbone("mlp")
def mlp(
    in_channels: int = 3,
    in_features: int | None = None,
    image_size: int | Sequence[int] | None = None,
    depth: int = 6,
    width: int = 512,
    batchnorm: bool = True,
    bias: bool = True,
    init: str = "default",
    feature_layer: bool = False,
) -> MLP:
    """MLP with configurable depth, width, BatchNorm and bias; give ``in_features`` or
    ``image_size``."""
    return MLP(
        _mlp_in_features(in_channels, in_features, image_size),
        depth=depth,
        width=width,
        batchnorm=batchnorm,
        bias=bias,
        init=init,
        feature_layer=feature_layer,
    )


@register_backbone("liu_mlp6")
def liu_mlp6(
    in_channels: int = 3,
    in_features: int | None = None,
    image_size: int | Sequence[int] | None = 32,
    width: int = 2048,
    depth: int = 6,
    batchnorm: bool = False,
    bias: bool = True,
) -> MLP:
    """Dang et al. (ICML 2023) / Liu (2024) MLP: 6 x [Linear -> ReLU] of width 2048, orthogonal
    init, then a ``Linear(width, width, bias=True)`` feature layer. Pair it with the
    ``deep_linear`` head (``bias=False`` for the bias-free case). Default input 3x32x32 (3072)."""
    return MLP(
        _mlp_in_features(in_channels, in_features, image_size),
        depth=depth,
        width=width,
        batchnorm=batchnorm,
        bias=bias,
        init="orthogonal",
        feature_layer=True,
    )


# --------------------------------------------------------------------------------------- CNN
def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class CNN28(Backbone):
    """Small CNN for 28x28 inputs: [conv-BN-ReLU]x2 (w) -> maxpool -> [..]x2 (2w) -> maxpool ->
    conv-BN-ReLU (4w) -> global average pool. Output ``4*width`` features (128 for width 32).
    Any input size works (global pooling); 28x28 gives 7x7 maps before pooling."""

    def __init__(self, in_channels: int = 3, width: int = 32):
        super().__init__()
        w = check_int(width, "width", 1)
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, w),
            *_conv_bn_relu(w, w),
            nn.MaxPool2d(2),
            *_conv_bn_relu(w, 2 * w),
            *_conv_bn_relu(2 * w, 2 * w),
            nn.MaxPool2d(2),
            *_conv_bn_relu(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_dim = 4 * w
        _init_conv_bn(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)


@register_backbone("cnn28")
def cnn28(in_channels: int = 3, width: int = 32) -> CNN28:
    """Small CNN for 28x28 (e.g. Fashion-MNIST: pass ``in_channels=1``); ``4*width``-d features."""
    return CNN28(in_channels, width)


# ------------------------------------------------------------------------- CIFAR ResNet (6n+2)
class _BlockA(nn.Module):
    """Basic residual block with the parameter-free option-A shortcut (subsample + zero-pad)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.extra = cout - cin

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.stride != 1:
            short = short[:, :, :: self.stride, :: self.stride]
        if self.extra:
            lo = self.extra // 2
            short = F.pad(short, (0, 0, 0, 0, lo, self.extra - lo))
        return F.relu(out + short)


class CifarResNet(Backbone):
    """ResNet-(6n+2) for 32x32 inputs (He et al. 2016, Sec. 4.2): 3x3 conv (w) then three stages
    of n basic blocks with w, 2w, 4w channels (strides 1, 2, 2), option-A shortcuts, global
    average pool. ``depth=32, width=16`` is the LDAM/SETF ResNet-32 (64-d, ~0.46M parameters);
    ``width=32`` is SETF's ``resnet32_fe_c100`` (128-d)."""

    def __init__(self, in_channels: int = 3, depth: int = 32, width: int = 16):
        super().__init__()
        depth = check_int(depth, "depth", 8)
        if (depth - 2) % 6:
            raise NCollapseError(f"depth={depth} is not 6n+2; use 20, 32, 44, 56 or 110")
        n = (depth - 2) // 6
        w = check_int(width, "width", 1)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)
        )
        blocks: list[nn.Module] = []
        cin = w
        for stage, cout in enumerate((w, 2 * w, 4 * w)):
            for i in range(n):
                blocks.append(_BlockA(cin, cout, 2 if (i == 0 and stage > 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = 4 * w
        _init_conv_bn(self)

    def features(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


@register_backbone("resnet32")
def resnet32(in_channels: int = 3, width: int = 16, depth: int = 32) -> CifarResNet:
    """CIFAR ResNet-32 (option-A shortcuts); ``width=32`` gives the 128-d CIFAR-100 variant."""
    return CifarResNet(in_channels, depth=depth, width=width)


# ----------------------------------------------------------------- ResNet-18/50 (CIFAR stem)
class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _projection(cin, cout, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _projection(cin, cout, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _projection(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(Backbone):
    """ResNet with the CIFAR stem: 3x3 stride-1 conv (no max-pool), four stages of width
    w, 2w, 4w, 8w (strides 1, 2, 2, 2), projection (1x1 conv + BN) shortcuts, global average pool.
    Output ``8*w*expansion`` features (512 for ResNet-18, 2048 for ResNet-50 at w=64)."""

    def __init__(
        self,
        block: type[_Basic] | type[_Bottleneck],
        layers: Sequence[int],
        in_channels: int = 3,
        width: int = 64,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        w = check_int(width, "width", 1)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)
        )
        stages: list[nn.Module] = []
        cin = w
        for i, n in enumerate(layers):
            planes = w * 2**i
            for j in range(n):
                stages.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.out_dim = cin
        _init_conv_bn(self)
        if zero_init_residual:
            for b in self.stages:
                nn.init.zeros_(b.last_bn().weight)

    def features(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


@register_backbone("resnet18")
def resnet18(in_channels: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool); 512-d at width 64."""
    return ResNet(_Basic, (2, 2, 2, 2), in_channels, width, zero_init_residual)


@register_backbone("resnet50")
def resnet50(in_channels: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 with the CIFAR stem; 2048-d at width 64."""
    return ResNet(_Bottleneck, (3, 4, 6, 3), in_channels, width, zero_init_residual)


# ------------------------------------------------------------------------------ DenseNet-BC
class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) (bottleneck) or BN-ReLU-Conv3x3(k); output is the
    input concatenated with the k new channels."""

    def __init__(self, cin: int, growth: int, bottleneck: bool):
        super().__init__()
        mods: list[nn.Module] = []
        c = cin
        if bottleneck:
            mods += [nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, 4 * growth, 1, bias=False)]
            c = 4 * growth
        mods += [nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, growth, 3, 1, 1, bias=False)]
        self.body = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet(Backbone):
    """DenseNet for 32x32 inputs (Huang et al. 2017): 3x3 conv to 2k channels (16 without
    bottleneck), three dense blocks of ``n`` layers joined by transitions
    BN-ReLU-Conv1x1(floor(c * reduction))-AvgPool2, final BN-ReLU, global average pool.

    ``n = floor((depth - 4) / 6)`` with bottleneck (``/3`` without): depth 150 is not of the form
    6n+4, and like the common DenseNet3 implementation used by SETF/NCMC we truncate, so
    DenseNet-BC(150, 12, 0.5) has 24 layers per block and 510 output features."""

    def __init__(
        self,
        in_channels: int = 3,
        depth: int = 150,
        growth: int = 12,
        reduction: float = 0.5,
        bottleneck: bool = True,
    ):
        super().__init__()
        depth = check_int(depth, "depth", 10 if bottleneck else 7)
        k = check_int(growth, "growth", 1)
        if not (0 < float(reduction) <= 1):
            raise NCollapseError(f"reduction={reduction!r} must be in (0, 1]; DenseNet-BC uses 0.5")
        n = (depth - 4) // (6 if bottleneck else 3)
        c = 2 * k if bottleneck else 16
        mods: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, 1, 1, bias=False)]
        for b in range(3):
            for _ in range(n):
                mods.append(_DenseLayer(c, k, bottleneck))
                c += k
            if b < 2:
                cout = int(math.floor(c * float(reduction)))
                mods += [
                    nn.BatchNorm2d(c),
                    nn.ReLU(True),
                    nn.Conv2d(c, cout, 1, bias=False),
                    nn.AvgPool2d(2),
                ]
                c = cout
        mods += [nn.BatchNorm2d(c), nn.ReLU(True)]
        self.body = nn.Sequential(*mods)
        self.layers_per_block = n
        self.out_dim = c
        _init_conv_bn(self)

    def features(self, x: Tensor) -> Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1)


@register_backbone("densenet_bc")
def densenet_bc(
    in_channels: int = 3,
    depth: int = 150,
    growth: int = 12,
    reduction: float = 0.5,
    bottleneck: bool = True,
) -> DenseNet:
    """DenseNet-BC; defaults (150, 12, 0.5, bottleneck) give the 510-d SETF/NCMC DenseNet."""
    return DenseNet(in_channels, depth, growth, reduction, bottleneck)
