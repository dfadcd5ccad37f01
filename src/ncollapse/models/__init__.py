"""Backbones, heads and the :class:`Classifier` that joins them (registries by name).

>>> from ncollapse.models import build_model
>>> model = build_model({"backbone": {"name": "resnet32"}, "head": {"name": "etf"},
...                      "num_classes": 10})

See ``docs/models.md`` for the table of names and options.
"""

from ncollapse.models.backbones import (
    BACKBONES,
    CNN28,
    MLP,
    Backbone,
    CifarResNet,
    DenseNet,
    ResNet,
    backbone_names,
    backbone_options,
    create_backbone,
    register_backbone,
)
from ncollapse.models.classifier import Classifier, ModelOutput, build_model
from ncollapse.models.heads import (
    HEADS,
    CosineHead,
    DeepLinearHead,
    ETFHead,
    Head,
    HeadOutput,
    LinearHead,
    OrthonormalHead,
    create_head,
    head_names,
    head_options,
    register_head,
)
from ncollapse.registry import Registry

__all__ = [
    "BACKBONES",
    "CNN28",
    "HEADS",
    "MLP",
    "Backbone",
    "CifarResNet",
    "Classifier",
    "CosineHead",
    "DeepLinearHead",
    "DenseNet",
    "ETFHead",
    "Head",
    "HeadOutput",
    "LinearHead",
    "ModelOutput",
    "OrthonormalHead",
    "Registry",
    "ResNet",
    "backbone_names",
    "backbone_options",
    "build_model",
    "create_backbone",
    "create_head",
    "head_names",
    "head_options",
    "register_backbone",
    "register_head",
]
