"""Regression-type losses: dot regression onto a fixed classifier (SETF) and MSE on one-hot."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ncollapse.errors import NCollapseError, check_positive
from ncollapse.losses.base import LossFn, _upcast, register_loss


def batch_length_scale(target: Tensor, num_classes: int) -> Tensor:
    """SETF per-batch class lengths ``E_w[k] = sqrt(gamma / n_k^batch)``, ``gamma = B / #distinct
    labels in the batch``; classes absent from the batch get 1 (they are never used)."""
    counts = torch.bincount(target.long(), minlength=num_classes).to(torch.float64)
    present = counts > 0
    gamma = target.numel() / present.sum().clamp_min(1)
    return torch.where(present, torch.sqrt(gamma / counts.clamp_min(1)), torch.ones_like(counts))


@register_loss(
    "dot_regression",
    heads=("etf", "orthonormal"),
    summary="SETF dot regression onto the fixed classifier with per-batch class lengths",
)
class DotRegressionLoss(LossFn):
    """Dot-regression loss of SETF (Yang et al. 2022) for a fixed classifier M (K x dim):

    ``L = 1/2 mean_i (e_i . w_i - |w_i| c_i)^2 / c_i``,  ``w_i = E_w[y_i] M[y_i]``,
    ``c_i = |e_i|`` treated as a constant (detached), ``e_i`` the head embedding
    (BN + L2-normalised, so c_i ~ 1). ``rescale=True`` uses the per-batch class lengths
    :func:`batch_length_scale`, ``rescale=False`` ``E_w = 1``. ``reg_lam > 0`` adds
    ``reg_lam * mean_i |e_i|`` (not detached). M is read from ``output.fixed_weight``, so the
    model needs a fixed-classifier head (``etf`` or ``orthonormal``); evaluation uses the
    un-scaled M (the head's logits).
    """

    required_head = ("etf", "orthonormal")

    def __init__(self, counts=None, rescale: bool = True, reg_lam: float = 0.0):
        super().__init__(counts)
        self.rescale = bool(rescale)
        self.reg_lam = check_positive(reg_lam, "reg_lam", allow_zero=True)

    def forward(self, output, target: Tensor) -> Tensor:
        m = getattr(output, "fixed_weight", None)
        if m is None:
            raise NCollapseError(
                "dot_regression needs a fixed classifier in output.fixed_weight: use head 'etf' or "
                "'orthonormal' (and pass the ModelOutput, not bare logits)"
            )
        e = _upcast(output.embedding)
        target = self._check(output.logits, target)
        w = m.to(e.dtype)[target]
        if self.rescale:
            w = w * batch_length_scale(target, m.shape[0]).to(e.device, e.dtype)[target][:, None]
        with torch.no_grad():
            c = e.norm(dim=1).clamp_min(1e-8)
            w_len = w.norm(dim=1)
        dot = (e * w).sum(dim=1)
        loss = 0.5 * torch.mean((dot - w_len * c) ** 2 / c)
        if self.reg_lam > 0:
            loss = loss + self.reg_lam * e.norm(dim=1).mean()
        return loss


@register_loss("mse", summary="squared error against one-hot targets")
class MSELoss(LossFn):
    """Squared error against one-hot targets ``Y`` (N x K):

    * ``reduction="mean"`` (default; PyTorch ``nn.MSELoss``): ``sum_ik (z_ik - Y_ik)^2 / (N K)``
    * ``reduction="half_sum"`` (UFM convention of Dang et al. / Liu): ``||Z - Y||_F^2 / (2N)``

    The two differ by the factor ``K/2``; this scales the effective weight decay in UFM theory.
    """

    def __init__(self, counts=None, reduction: str = "mean"):
        super().__init__(counts)
        if reduction not in ("mean", "half_sum"):
            raise NCollapseError(f"reduction={reduction!r} is not valid; use mean or half_sum")
        self.reduction = reduction

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        y = F.one_hot(target, z.shape[1]).to(z.dtype)
        sq = (z - y) ** 2
        if self.reduction == "mean":
            return sq.mean()
        return sq.sum() / (2 * z.shape[0])
