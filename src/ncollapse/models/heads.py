"""Heads: the classifier on top of backbone features.

A head maps features ``h`` (B x in_dim) to :class:`HeadOutput` ``(logits, embedding,
fixed_weight)``:

* ``embedding`` is exactly the vector the classifier multiplies, after the optional trainable
  projection and any BatchNorm / L2 normalisation, so ``logits = embedding @ W.T + b`` with
  ``W = head.classifier_weight()`` and ``b = head.classifier_bias()`` (up to float rounding);
* ``fixed_weight`` is the head's fixed (non-trainable) K x dim classifier for heads that have one
  (``etf``, ``orthonormal``), else ``None``; losses that regress onto a fixed classifier
  (dot regression) read it from there.

Every head takes ``projection_dim``: a trainable ``Linear(in_dim, projection_dim)`` applied first
(e.g. to reach the d >= K needed by a fixed orthonormal classifier).

==============  =========================================================================
``linear``      logits = W e + b (bias optional)
``cosine``      NormedLinear (LDAM): logits_k = <e/|e|, w_k/|w_k|> in [-1, 1], e = e/|e|
``deep_linear`` logits = W_L ... W_1 e (+ b_L): L linear layers, bias only on the last (optional)
``etf``         SETF: e = BN(h)/|BN(h)|, logits = M e with a fixed simplex ETF M (buffer)
``orthonormal`` NCMC: fixed K x d matrix with orthonormal rows, optional BN + L2 as for ``etf``
==============  =========================================================================
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.registry import Registry
from ncollapse.validation import check_choice, check_int

HEADS = Registry("head", reserved=("in_dim", "num_classes"))

_EPS = 1e-12


def register_head(name: str):
    """Decorator registering ``factory(in_dim, num_classes, **options) -> Head`` under ``name``."""
    return HEADS.register(name)


def create_head(name: str, in_dim: int, num_classes: int, **kwargs) -> Head:
    """Build the head registered as ``name`` (unknown names/options raise NCollapseError)."""
    in_dim = check_int(in_dim, "in_dim", 1)
    num_classes = check_int(num_classes, "num_classes", 2)
    return HEADS.create(name, in_dim, num_classes, **kwargs)


def head_names() -> list[str]:
    return HEADS.names()


def head_options(name: str) -> dict:
    """Options of head ``name`` and their defaults."""
    return HEADS.options(name)


class HeadOutput(NamedTuple):
    logits: Tensor
    embedding: Tensor
    fixed_weight: Tensor | None = None


class Head(nn.Module):
    """Base head: optional trainable projection ``in_dim -> projection_dim``.

    Subclasses implement ``forward(h) -> HeadOutput``, ``classifier_weight() -> (K, dim)`` and
    ``classifier_bias() -> (K,) | None``; ``dim`` is the classifier's input width.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", 1)
        self.num_classes = check_int(num_classes, "num_classes", 2)
        if projection_dim is None:
            self.projection: nn.Module = nn.Identity()
            self.dim = self.in_dim
        else:
            self.dim = check_int(projection_dim, "projection_dim", 1)
            self.projection = nn.Linear(self.in_dim, self.dim, bias=bool(projection_bias))

    def classifier_weight(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def classifier_bias(self) -> Tensor | None:
        return None

    def has_fixed_classifier(self) -> bool:
        return False

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, dim={self.dim}, num_classes={self.num_classes}"


@register_head("linear")
class LinearHead(Head):
    """Learnable linear classifier: ``logits = e W^T + b`` with ``e`` the (projected) features."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        bias: bool = True,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        self.fc = nn.Linear(self.dim, self.num_classes, bias=bool(bias))

    def forward(self, h: Tensor) -> HeadOutput:
        e = self.projection(h)
        return HeadOutput(self.fc(e), e)

    def classifier_weight(self) -> Tensor:
        return self.fc.weight

    def classifier_bias(self) -> Tensor | None:
        return self.fc.bias


@register_head("cosine")
class CosineHead(Head):
    """NormedLinear (Cao et al. 2019, used by LDAM): ``logits_k = <e, w_k/|w_k|>`` with
    ``e = h/|h|``; logits are cosines in [-1, 1] and the LDAM loss applies the scale ``s``."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.dim))
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, h: Tensor) -> HeadOutput:
        e = F.normalize(self.projection(h), dim=1, eps=_EPS)
        return HeadOutput(e @ self.classifier_weight().t(), e)

    def classifier_weight(self) -> Tensor:
        return F.normalize(self.weight, dim=1, eps=_EPS)


@register_head("deep_linear")
class DeepLinearHead(Head):
    """Product of ``depth`` linear layers (Dang et al. 2023; Liu 2024):
    ``logits = W_L ... W_2 W_1 e (+ b_L)``; layers 1..L-1 are ``hidden_dim`` wide and bias-free,
    the last layer has a bias only if ``bias=True``. ``classifier_weight()`` is the product
    ``W_L ... W_1`` (K x dim). ``init="orthogonal"`` as in Dang et al.'s code."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        depth: int = 3,
        hidden_dim: int | None = None,
        bias: bool = False,
        init: str = "default",
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        depth = check_int(depth, "depth", 1)
        hidden = self.dim if hidden_dim is None else check_int(hidden_dim, "hidden_dim", 1)
        check_choice(init, "init", ("default", "orthogonal"))
        dims = [self.dim] + [hidden] * (depth - 1) + [self.num_classes]
        self.layers = nn.ModuleList(
            nn.Linear(dims[i], dims[i + 1], bias=bool(bias) and i == depth - 1)
            for i in range(depth)
        )
        if init == "orthogonal":
            for layer in self.layers:
                nn.init.orthogonal_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def forward(self, h: Tensor) -> HeadOutput:
        e = self.projection(h)
        z = e
        for layer in self.layers:
            z = layer(z)
        return HeadOutput(z, e)

    def layer_inputs(self, embedding: Tensor) -> list[Tensor]:
        """Inputs of each linear layer (``[e, W_1 e, W_2 W_1 e, ...]``), for per-layer NC."""
        out = [embedding]
        z = embedding
        for layer in self.layers[:-1]:
            z = layer(z)
            out.append(z)
        return out

    def classifier_weight(self) -> Tensor:
        w = self.layers[0].weight
        for layer in self.layers[1:]:
            w = layer.weight @ w
        return w

    def classifier_bias(self) -> Tensor | None:
        return self.layers[-1].bias


class _FixedHead(Head):
    """Fixed K x dim classifier stored as a buffer; optional BatchNorm1d -> L2 normalisation."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        weight: Tensor,
        normalize: bool,
        batchnorm: bool,
        projection_dim: int | None,
        projection_bias: bool,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        self.register_buffer("weight", weight.to(torch.get_default_dtype()).contiguous())
        self.normalize = bool(normalize)
        self.bn: nn.Module = nn.BatchNorm1d(self.dim) if batchnorm else nn.Identity()

    def forward(self, h: Tensor) -> HeadOutput:
        e = self.bn(self.projection(h))
        if self.normalize:
            e = F.normalize(e, dim=1, eps=_EPS)
        return HeadOutput(e @ self.weight.t(), e, self.weight)

    def classifier_weight(self) -> Tensor:
        return self.weight

    def has_fixed_classifier(self) -> bool:
        return True


@register_head("etf")
class ETFHead(_FixedHead):
    """SETF (Yang et al. 2022): ``e = BN(h)/|BN(h)|``, ``logits = M e`` with M (K x dim) a fixed
    simplex ETF, ``M M^T = K/(K-1) (I - 11^T/K)``, from ``ncollapse.geometry.simplex_etf(K, dim,
    seed)``. M is a buffer (saved in the state dict, never trained)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        seed: int = 0,
        batchnorm: bool = True,
        normalize: bool = True,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        dim = in_dim if projection_dim is None else projection_dim
        if check_int(dim, "dim", 1) < num_classes - 1:
            raise NCollapseError(
                f"a simplex ETF for K={num_classes} classes needs a feature dimension >= K-1 = "
                f"{num_classes - 1}, got {dim}; set projection_dim >= {num_classes - 1}"
            )
        from ncollapse.geometry import simplex_etf

        m = torch.as_tensor(simplex_etf(num_classes, dim, seed))
        super().__init__(
            in_dim, num_classes, m, normalize, batchnorm, projection_dim, projection_bias
        )


@register_head("orthonormal")
class OrthonormalHead(_FixedHead):
    """NCMC inference classifier W0: fixed K x dim matrix with orthonormal rows
    (``ncollapse.geometry.random_orthonormal(dim, K, seed).T``); by default BN -> L2 as for SETF,
    so ``logits_k = <BN(h)/|BN(h)|, w_k>``. Needs dim >= K."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        seed: int = 0,
        batchnorm: bool = True,
        normalize: bool = True,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        dim = in_dim if projection_dim is None else projection_dim
        if check_int(dim, "dim", 1) < num_classes:
            raise NCollapseError(
                f"an orthonormal classifier for K={num_classes} classes needs a feature dimension "
                f">= K, got {dim}; set projection_dim >= {num_classes}"
            )
        from ncollapse.geometry import random_orthonormal

        w = torch.as_tensor(random_orthonormal(dim, num_classes, seed)).t()
        super().__init__(
            in_dim, num_classes, w, normalize, batchnorm, projection_dim, projection_bias
        )
