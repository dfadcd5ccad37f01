"""Softmax-family losses on logits: CE (class-balanced), focal, LDAM(-DRW), logit-adjusted,
balanced softmax; and the post-hoc logit adjustment used at evaluation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ncollapse.errors import NCollapseError, check_counts, check_positive
from ncollapse.losses.base import LossFn, _log_prior, _Reweighted, register_loss


@register_loss("ce", summary="cross-entropy; optional class-balanced weights (beta) and DRW")
class CrossEntropyLoss(_Reweighted):
    """``l_i = -log softmax(z_i)_{y_i}``; with ``beta`` weighted by Cui et al.'s class-balanced
    weights ``w_j = (1-beta)/(1-beta^{n_j})`` (normalised to sum K), optionally deferred (``drw``).
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
        super().__init__(counts, beta, drw, drw_epoch, drw_fraction, weight_reduction)

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        return self._reduce(F.cross_entropy(z, target, reduction="none"), target)


@register_loss("focal", summary="focal loss -(1-p)^gamma log p (Lin et al. 2017)")
class FocalLoss(_Reweighted):
    """Focal loss (Lin et al. 2017): ``l_i = -(1 - p_i)^gamma log p_i`` with
    ``p_i = softmax(z_i)_{y_i}``; ``gamma=0`` is CE. Optional class-balanced weights ``w_{y_i}``
    multiply ``l_i`` (the alpha_t of the paper; ``beta`` as for ``ce``).

    Note: the LDAM-DRW code's focal baseline uses gamma=1 and computes ``p`` from the *weighted*
    CE; here ``p`` is always the true softmax probability.
    """

    def __init__(
        self,
        counts=None,
        gamma: float = 2.0,
        beta: float | None = None,
        drw: bool = False,
        drw_epoch: int | None = None,
        drw_fraction: float = 0.8,
        weight_reduction: str = "weighted_mean",
    ):
        super().__init__(counts, beta, drw, drw_epoch, drw_fraction, weight_reduction)
        self.gamma = check_positive(gamma, "gamma", allow_zero=True)

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        logp = F.log_softmax(z, dim=1).gather(1, target[:, None]).squeeze(1)
        p = logp.exp()
        per = -((1.0 - p).clamp_min(0.0) ** self.gamma) * logp
        return self._reduce(per, target)


@register_loss(
    "ldam",
    needs_counts=True,
    heads=("cosine",),
    summary="LDAM margins C/n^(1/4) (max 0.5), scale s=30, DRW from epoch 160/200 (beta=0.9999)",
)
class LDAMLoss(_Reweighted):
    """LDAM (Cao et al. 2019): ``m_j = C / n_j^{1/4}`` with C such that ``max_j m_j = max_m``;
    ``l_i = CE(s * (x_i - m_{y_i} e_{y_i}), y_i)`` where ``x_i`` are the cosine logits of the
    ``cosine`` (NormedLinear) head, weighted after ``drw_epoch`` by class-balanced weights
    (``beta=0.9999``) -- LDAM-DRW. ``drw=False`` gives plain LDAM (``beta=None``: never weighted).
    """

    required_head = ("cosine",)

    def __init__(
        self,
        counts=None,
        max_m: float = 0.5,
        s: float = 30.0,
        beta: float | None = 0.9999,
        drw: bool = True,
        drw_epoch: int | None = None,
        drw_fraction: float = 0.8,
        weight_reduction: str = "weighted_mean",
    ):
        super().__init__(counts, beta, drw, drw_epoch, drw_fraction, weight_reduction)
        if self.counts is None:
            raise NCollapseError("loss 'ldam' needs the class counts: pass counts=[n_1, ..., n_K]")
        self.max_m = check_positive(max_m, "max_m")
        self.s = check_positive(s, "s")
        inv = self.counts.astype(np.float64) ** -0.25
        self.register_buffer(
            "margins",
            torch.as_tensor(inv * (self.max_m / inv.max()), dtype=torch.float64),
            persistent=False,
        )

    def forward(self, output, target: Tensor) -> Tensor:
        x = self._logits(output)
        target = self._check(x, target)
        m = self.margins.to(x.device, x.dtype)
        adjusted = x - F.one_hot(target, x.shape[1]).to(x.dtype) * m[target][:, None]
        return self._reduce(F.cross_entropy(self.s * adjusted, target, reduction="none"), target)


@register_loss(
    "logit_adjusted",
    needs_counts=True,
    summary="CE on z + tau log pi (Menon et al. 2021)",
)
class LogitAdjustedLoss(LossFn):
    """Logit-adjusted loss (Menon et al. 2021): ``l_i = CE(z_i + tau log pi, y_i)`` with
    ``pi_j = n_j / N`` the training prior. Predict with the raw logits ``z``."""

    def __init__(self, counts=None, tau: float = 1.0):
        super().__init__(counts)
        if self.counts is None:
            raise NCollapseError("loss 'logit_adjusted' needs counts=[n_1, ..., n_K]")
        self.tau = check_positive(tau, "tau", allow_zero=True)
        self.register_buffer("log_prior", _log_prior(self.counts), persistent=False)

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        return F.cross_entropy(z + self.tau * self.log_prior.to(z.device, z.dtype), target)


@register_loss(
    "balanced_softmax",
    needs_counts=True,
    summary="CE on z + log n (Ren et al. 2020)",
)
class BalancedSoftmaxLoss(LossFn):
    """Balanced softmax (Ren et al. 2020): ``p_j ∝ n_j exp(z_j)``, i.e.
    ``l_i = CE(z_i + log n, y_i)`` (same as ``logit_adjusted`` with tau = 1)."""

    def __init__(self, counts=None):
        super().__init__(counts)
        if self.counts is None:
            raise NCollapseError("loss 'balanced_softmax' needs counts=[n_1, ..., n_K]")
        log_n = torch.as_tensor(np.log(self.counts.astype(np.float64)), dtype=torch.float64)
        self.register_buffer("log_counts", log_n, persistent=False)

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        return F.cross_entropy(z + self.log_counts.to(z.device, z.dtype), target)


def posthoc_logit_adjust(logits, counts, tau: float = 1.0):
    """Post-hoc logit adjustment (Menon et al. 2021): ``z - tau log pi``, ``pi_j = n_j / sum n``.

    Works on torch tensors (returned on the same device/dtype) and numpy arrays; the last axis
    indexes classes. ``argmax`` of the result is the balanced-error Bayes rule for a model of the
    training distribution."""
    n = check_counts(counts, "counts").astype(np.float64)
    tau = check_positive(tau, "tau", allow_zero=True)
    log_pi = np.log(n / n.sum())
    if logits.shape[-1] != len(n):
        raise NCollapseError(
            f"logits have {logits.shape[-1]} classes but counts has {len(n)}; pass matching counts"
        )
    if isinstance(logits, Tensor):
        return logits - tau * torch.as_tensor(log_pi, dtype=logits.dtype, device=logits.device)
    return np.asarray(logits) - tau * log_pi
