"""Loss base class, registry and shared helpers (class-balanced weights, DRW, target checks)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ncollapse.errors import NCollapseError, check_counts
from ncollapse.registry import Registry

LOSSES = Registry("loss", reserved=("counts",), plural="losses")


def register_loss(
    name: str,
    *,
    needs_counts: bool = False,
    heads: tuple[str, ...] | None = None,
    summary: str = "",
):
    """Decorator registering ``factory(counts=None, **options) -> LossFn`` under ``name``.

    ``needs_counts``: :func:`create_loss` refuses ``counts=None``; ``heads``: the head names this
    loss works with (``None`` = any head), checked by :func:`check_loss_head`.
    """
    return LOSSES.register(name, needs_counts=needs_counts, heads=heads, summary=summary)


def loss_names() -> list[str]:
    return LOSSES.names()


def loss_options(name: str) -> dict:
    """Options of loss ``name`` and their defaults."""
    return LOSSES.options(name)


def loss_info(name: str) -> dict[str, Any]:
    """Metadata of loss ``name``: ``needs_counts``, ``heads`` (None = any), ``summary``."""
    return LOSSES.meta(name)


def check_loss_head(loss_name: str, head_name: str) -> None:
    """Raise NCollapseError if loss ``loss_name`` cannot be trained with head ``head_name``."""
    heads = loss_info(loss_name)["heads"]
    if heads is not None and head_name not in heads:
        raise NCollapseError(
            f"loss {loss_name!r} needs head {' or '.join(repr(h) for h in heads)}, got head "
            f"{head_name!r}; set the model head to {heads[0]!r} or choose another loss"
        )


def create_loss(name: str, counts=None, **kwargs) -> LossFn:
    """Build the loss registered as ``name``.

    ``counts`` are the training-set class counts n_1..n_K (needed by count-aware losses; others
    accept and keep them to check the number of classes). Unknown names/options raise
    NCollapseError listing the valid ones.
    """
    info = loss_info(name)
    if counts is not None:
        counts = check_counts(counts, "counts")
    elif info["needs_counts"]:
        raise NCollapseError(
            f"loss {name!r} needs the training class counts: pass counts=[n_1, ..., n_K] "
            f"(e.g. the output of the long-tailed data builder)"
        )
    return LOSSES.create(name, counts=counts, **kwargs)


def class_balanced_weights(counts, beta: float) -> np.ndarray:
    """Cui et al. (CVPR 2019) class-balanced weights ``w_j = (1-beta)/(1-beta^{n_j})``,
    rescaled to sum to K (effective number ``(1-beta^n)/(1-beta)``). ``beta=0`` gives all ones."""
    n = check_counts(counts, "counts").astype(np.float64)
    beta = float(beta)
    if not (0.0 <= beta < 1.0):
        raise NCollapseError(f"beta={beta!r} must be in [0, 1); the usual value is 0.9999")
    w = (1.0 - beta) / (1.0 - np.power(beta, n))
    return w * (len(n) / w.sum())


class LossFn(nn.Module):
    """Base loss: ``loss(output, target) -> scalar``.

    ``output`` is a :class:`~ncollapse.models.ModelOutput` (or a bare logits tensor for losses
    that only need logits); ``target`` a LongTensor of class indices. ``set_epoch(epoch,
    total_epochs)`` is called by the trainer at the start of every epoch (0-based); the default is
    a no-op. ``required_head`` is the tuple of head names the loss works with (None = any).
    """

    required_head: tuple[str, ...] | None = None
    #: set False to skip the target range check (it synchronises a CUDA device once per call)
    check_targets: bool = True

    def __init__(self, counts=None):
        super().__init__()
        self.counts = None if counts is None else check_counts(counts, "counts")
        self.num_classes = None if self.counts is None else len(self.counts)
        self.epoch = 0
        self.total_epochs: int | None = None

    def set_epoch(self, epoch: int, total_epochs: int | None = None) -> None:
        self.epoch = int(epoch)
        self.total_epochs = None if total_epochs is None else int(total_epochs)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _logits(output) -> Tensor:
        """``output.logits`` (or ``output`` itself if a tensor), upcast from fp16/bf16 to fp32."""
        logits = output if isinstance(output, Tensor) else getattr(output, "logits", None)
        if not isinstance(logits, Tensor):
            raise NCollapseError(
                f"loss expects a ModelOutput (with .logits) or a logits tensor, got "
                f"{type(output).__name__}"
            )
        return _upcast(logits)

    def _check(self, logits: Tensor, target: Tensor) -> Tensor:
        """Validate shapes and the label range; returns ``target`` as int64."""
        if logits.ndim != 2:
            raise NCollapseError(
                f"logits must be (batch, num_classes), got shape {tuple(logits.shape)}"
            )
        k = logits.shape[1]
        if self.num_classes is not None and k != self.num_classes:
            raise NCollapseError(
                f"logits have {k} classes but counts has {self.num_classes}; pass the counts of "
                f"the data set the model is trained on"
            )
        if not isinstance(target, Tensor) or target.dtype.is_floating_point or target.is_complex():
            raise NCollapseError(
                f"target must be an integer (LongTensor) class-index tensor, got "
                f"{getattr(target, 'dtype', type(target).__name__)}; soft/one-hot targets are "
                f"not accepted (for mixup combine two losses: lam*L(y_a) + (1-lam)*L(y_b))"
            )
        if target.shape != logits.shape[:1]:
            raise NCollapseError(
                f"target shape {tuple(target.shape)} does not match batch size {logits.shape[0]}"
            )
        if self.check_targets and target.numel() and not torch.compiler.is_compiling():
            lo, hi = torch.stack(torch.aminmax(target)).tolist()
            if lo < 0 or hi >= k:
                bad = lo if lo < 0 else hi
                raise NCollapseError(
                    f"target contains class {bad}, outside [0, {k - 1}] for {k} classes; labels "
                    f"must be 0..K-1"
                )
        return target.long()


def _upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class _Reweighted(LossFn):
    """Class re-weighting with optional deferral (DRW, Cao et al. 2019).

    ``beta=None``: no weights. Otherwise weights :func:`class_balanced_weights` ``(counts, beta)``
    are applied from epoch ``drw_epoch`` on if ``drw`` (from the start if not). ``drw_epoch=None``
    means ``floor(drw_fraction * total_epochs)`` (160 of 200 by default; ``total_epochs`` is taken
    as 200, the LDAM-DRW recipe, until :meth:`set_epoch` gives it).
    ``weight_reduction``: ``"weighted_mean"`` = sum_i w_{y_i} l_i / sum_i w_{y_i} (PyTorch's
    ``cross_entropy(weight=...)``, used by the LDAM-DRW code) or ``"mean"`` = sum_i w_{y_i} l_i / B
    (Cui et al.).
    """

    def __init__(
        self,
        counts=None,
        beta: float | None = None,
        drw: bool = False,
        drw_epoch: int | None = None,
        drw_fraction: float = 0.8,
        weight_reduction: str = "weighted_mean",
    ):
        super().__init__(counts)
        if weight_reduction not in ("weighted_mean", "mean"):
            raise NCollapseError(
                f"weight_reduction={weight_reduction!r} is not valid; use weighted_mean or mean"
            )
        self.weight_reduction = weight_reduction
        self.beta = None if beta is None else float(beta)
        self.drw = bool(drw)
        if drw_epoch is not None and (int(drw_epoch) != drw_epoch or drw_epoch < 0):
            raise NCollapseError(f"drw_epoch={drw_epoch!r} must be an integer >= 0 (0-based)")
        self.drw_epoch = None if drw_epoch is None else int(drw_epoch)
        self.drw_fraction = float(drw_fraction)
        if not (0.0 <= self.drw_fraction <= 1.0):
            raise NCollapseError(f"drw_fraction={drw_fraction!r} must be in [0, 1]")
        w = None
        if self.beta is not None:
            if self.counts is None:
                raise NCollapseError(
                    f"beta={self.beta} (class-balanced weights) needs the class counts: pass "
                    f"counts=[n_1, ..., n_K]"
                )
            w = torch.as_tensor(class_balanced_weights(self.counts, self.beta), dtype=torch.float64)
        self.register_buffer("class_weights", w, persistent=False)

    def drw_start(self) -> int | None:
        """First (0-based) epoch with weights on; None if there are no weights."""
        if self.beta is None:
            return None
        if not self.drw:
            return 0
        if self.drw_epoch is not None:
            return self.drw_epoch
        total = 200 if self.total_epochs is None else self.total_epochs
        return int(math.floor(self.drw_fraction * total))

    def active_weights(self) -> Tensor | None:
        """The class weights in use at the current epoch (None = unweighted)."""
        start = self.drw_start()
        if start is None or self.epoch < start:
            return None
        return self.class_weights

    def _reduce(self, per_sample: Tensor, target: Tensor) -> Tensor:
        w = self.active_weights()
        if w is None:
            return per_sample.mean()
        wy = w.to(per_sample.device, per_sample.dtype)[target]
        total = (wy * per_sample).sum()
        if self.weight_reduction == "weighted_mean":
            return total / wy.sum()
        return total / per_sample.shape[0]


def _log_prior(counts: np.ndarray) -> Tensor:
    n = np.asarray(counts, dtype=np.float64)
    return torch.as_tensor(np.log(n / n.sum()), dtype=torch.float64)
