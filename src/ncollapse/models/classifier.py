"""Backbone + head = :class:`Classifier`; :func:`build_model` builds one from a config dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.models.backbones import Backbone, create_backbone
from ncollapse.models.heads import Head, create_head
from ncollapse.validation import check_int


class ModelOutput(NamedTuple):
    """What a :class:`Classifier` returns.

    logits        (B, K) classifier outputs
    features      (B, d) backbone output (penultimate features)
    embedding     (B, dim) what the classifier multiplies (after projection / BN / L2)
    fixed_weight  (K, dim) the head's fixed classifier (``etf``/``orthonormal``), else None
    """

    logits: Tensor
    features: Tensor
    embedding: Tensor
    fixed_weight: Tensor | None = None


class Classifier(nn.Module):
    """``forward(x) -> ModelOutput``; ``features(x)`` is the backbone's penultimate output."""

    def __init__(self, backbone: Backbone, head: Head):
        super().__init__()
        if getattr(backbone, "out_dim", None) != head.in_dim:
            raise NCollapseError(
                f"head.in_dim={head.in_dim} does not match backbone.out_dim="
                f"{getattr(backbone, 'out_dim', None)}; build the head with in_dim=backbone.out_dim"
            )
        self.backbone = backbone
        self.head = head
        self.num_classes = head.num_classes

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> ModelOutput:
        f = self.backbone(x)
        out = self.head(f)
        return ModelOutput(out.logits, f, out.embedding, out.fixed_weight)

    def classifier_weight(self) -> Tensor:
        return self.head.classifier_weight()

    def classifier_bias(self) -> Tensor | None:
        return self.head.classifier_bias()


_MODEL_KEYS = ("backbone", "head", "num_classes", "in_channels")


def _named(cfg: Any, key: str, default_name: str | None = None) -> tuple[str, dict]:
    if cfg is None and default_name is not None:
        return default_name, {}
    if isinstance(cfg, str):
        return cfg, {}
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise NCollapseError(
            f"model.{key} must be a mapping with a 'name' key, e.g. {{'name': 'resnet32'}}; "
            f"got {cfg!r}"
        )
    opts = dict(cfg)
    return opts.pop("name"), opts


def build_model(cfg: Mapping[str, Any]) -> Classifier:
    """Build a :class:`Classifier` from a config dict::

        {"backbone": {"name": "resnet32", ...}, "head": {"name": "etf", ...},
         "num_classes": 10, "in_channels": 3}

    ``head`` defaults to ``{"name": "linear"}``, ``in_channels`` to 3; a bare string is accepted
    in place of ``{"name": ...}``. Unknown keys raise NCollapseError listing the valid ones.
    """
    if not isinstance(cfg, Mapping):
        raise NCollapseError(f"model config must be a mapping with keys {', '.join(_MODEL_KEYS)}")
    unknown = [k for k in cfg if k not in _MODEL_KEYS]
    if unknown:
        raise NCollapseError(
            f"unknown model config key {unknown[0]!r}; valid keys: {', '.join(_MODEL_KEYS)}"
        )
    if "backbone" not in cfg or "num_classes" not in cfg:
        raise NCollapseError("model config needs 'backbone' and 'num_classes'")
    k = check_int(cfg["num_classes"], "num_classes", 2)
    c = check_int(cfg.get("in_channels", 3), "in_channels", 1)
    bname, bopts = _named(cfg["backbone"], "backbone")
    hname, hopts = _named(cfg.get("head"), "head", "linear")
    if "in_channels" in bopts:
        raise NCollapseError(
            "set in_channels at the top level of the model config, not inside 'backbone'"
        )
    backbone = create_backbone(bname, in_channels=c, **bopts)
    head = create_head(hname, backbone.out_dim, k, **hopts)
    return Classifier(backbone, head)
