"""Baselines the NCMC tables compare against: ARB-Loss, KCL and RBL.

``arb`` (loss)
    Attraction-repulsion-balanced loss (Xie, Yang, Cai, He, Neurocomputing 2023,
    arXiv 2204.08735, Eq. 9): ``l_i = -log[ exp(z_{i,y}) / sum_j (n_j / n_y) exp(z_{i,j}) ]`` with
    logits clamped to [-30, 30]. ``n_j`` are the class counts of the current batch (the paper's
    default; a class absent from the batch gets weight 0) or the global training counts
    (``counts_source="global"``, the paper's "ugcc" variant). The weight ``n_j / n_y`` cuts the
    repulsion that a head class exerts on a tail class's features and leaves the attraction alone.

``kcl`` (loss)
    K-positive contrastive learning (Kang, Li, Xie, Yan, Feng, ICLR 2021, "Exploring balanced
    feature spaces for representation learning", Sec. 3): for an anchor ``q``, positives are its
    own key and the first ``k`` keys of the same class in the key set; the target distribution is
    uniform over those ``k + 1`` positives and the loss is the cross-entropy of
    ``softmax([q.k_+, q.k_-] / T)`` against it. :func:`kcl_loss` is the formula with an explicit
    key set (a MoCo queue in the paper). The registered loss uses the *batch* as the key set
    (no momentum encoder, no queue): the anchor's own key is omitted because without a second
    augmented view it would be the anchor itself, so positives are the first ``k`` other samples
    of its class in the batch. It is added to a CE term on the classifier (``ce_weight``); the
    paper's second stage, classifier re-training, is :func:`ncollapse.methods.decoupled.fit_crt`.
    This simplification is ours, stated wherever the loss is listed.

``rotated_etf`` (head) -- RBL, a reconstruction
    Rotated balanced representation (Gao, Xu, Wen, Yang, Shao, Huang, ICML 2023, "Feature
    directions matter: long-tailed learning via rotated balanced representation"). Its code is not
    public; NCMC (Yan et al., NeurIPS 2024, App. A.2) summarises it as "optimise the ETF structure
    under rotation and use post-hoc logit adjustment for prediction". Reconstructed here as a fixed
    simplex ETF ``M`` (K x d) composed with a learnable orthogonal ``Q`` (d x d, parametrised by
    :func:`torch.nn.utils.parametrizations.orthogonal`), ``W = s M Q``, on BN + L2-normalised
    features: the class Gram ``W W^T = s^2 M M^T`` is the ETF's whatever ``Q`` is, only the
    directions rotate. Train with a balanced loss (``balanced_softmax`` or ``logit_adjusted``) and
    evaluate with and without post-hoc logit adjustment (``eval.posthoc_tau``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ncollapse.errors import NCollapseError, check_positive
from ncollapse.losses.base import LossFn, _upcast, register_loss
from ncollapse.models.heads import _EPS, Head, HeadOutput, register_head

# --------------------------------------------------------------------------------------- ARB


def arb_loss(logits: Tensor, target: Tensor, class_counts: Tensor, clamp: float = 30.0) -> Tensor:
    """Per-sample ARB-Loss ``-log[ e^{z_y} / sum_j (n_j/n_y) e^{z_j} ]`` (arXiv 2204.08735, Eq. 9).

    ``class_counts`` (K,) are the ``n_j``; every ``n_{y_i}`` must be > 0. Computed in log space:
    ``-z_y + logsumexp_j (z_j + log n_j) - log n_y`` (classes with ``n_j = 0`` drop out).
    """
    z = _upcast(logits).clamp(-clamp, clamp)
    n = class_counts.to(z.device, z.dtype)
    log_n = torch.where(n > 0, n.clamp_min(1e-30).log(), torch.full_like(n, -torch.inf))
    lse = torch.logsumexp(z + log_n[None, :], dim=1)
    return -z.gather(1, target[:, None]).squeeze(1) + lse - log_n[target]


@register_loss(
    "arb",
    summary="attraction-repulsion-balanced loss (Xie et al. 2023): CE with repulsion weights n_j/n_y",
)
class ARBLoss(LossFn):
    """ARB-Loss (see the module docstring). ``counts_source``: ``"batch"`` (default, the
    paper's) or ``"global"`` (training counts; needs ``counts``)."""

    def __init__(self, counts=None, counts_source: str = "batch", clamp: float = 30.0):
        super().__init__(counts)
        if counts_source not in ("batch", "global"):
            raise NCollapseError(
                f"counts_source={counts_source!r} is not valid; use 'batch' (per-batch class "
                f"counts, the paper's default) or 'global' (training counts)"
            )
        if counts_source == "global" and self.counts is None:
            raise NCollapseError(
                "loss 'arb' with counts_source='global' needs the training counts: "
                "pass counts=[n_1, ..., n_K]"
            )
        self.counts_source = counts_source
        self.clamp = check_positive(clamp, "clamp")

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        if self.counts_source == "global":
            n = torch.as_tensor(self.counts, dtype=z.dtype, device=z.device)
        else:
            n = torch.bincount(target, minlength=z.shape[1]).to(z.dtype)
        return arb_loss(z, target, n, self.clamp).mean()


# --------------------------------------------------------------------------------------- KCL


def kcl_loss(
    q: Tensor,
    keys: Tensor,
    key_labels: Tensor,
    labels: Tensor,
    own_keys: Tensor | None = None,
    k: int = 6,
    temperature: float = 0.07,
    exclude: Tensor | None = None,
) -> Tensor:
    """Per-anchor KCL loss (Kang et al., ICLR 2021, Sec. 3).

    ``q`` (B, d) anchors and ``keys`` (M, d) the key set with labels ``key_labels`` (M,), all
    L2-normalised by the caller. ``own_keys`` (B, d): each anchor's own positive key (a second
    view), or None. Positives of anchor i: its own key (if given) and the first ``k`` keys of class
    ``labels[i]`` in the key set (fewer if the set has fewer); every other key is a negative.
    ``exclude`` (B, M) bool marks keys left out entirely for anchor i (e.g. itself).
    Loss: ``-sum_p t_p log softmax(l / T)_p`` with ``t`` uniform over the positives.
    """
    if k < 1 or int(k) != k:
        raise NCollapseError(f"k={k!r} must be an integer >= 1 (positives per anchor)")
    check_positive(temperature, "temperature")
    logits = q @ keys.t() / temperature  # (B, M)
    same = labels[:, None] == key_labels[None, :]
    if exclude is not None:
        same = same & ~exclude
        logits = logits.masked_fill(exclude, -torch.inf)
    # the first k same-class keys in key order: rank by cumulative count
    rank = torch.cumsum(same.to(torch.int64), dim=1)
    pos = same & (rank <= int(k))
    if own_keys is not None:
        own = (q * own_keys).sum(1, keepdim=True) / temperature
        logits = torch.cat([own, logits], dim=1)
        pos = torch.cat([torch.ones_like(pos[:, :1]), pos], dim=1)
    npos = pos.sum(1)
    logp = F.log_softmax(logits, dim=1)
    per = -(logp.masked_fill(~pos, 0.0)).sum(1) / npos.clamp_min(1)
    # an anchor with no positive contributes nothing
    return torch.where(npos > 0, per, torch.zeros_like(per))


@register_loss(
    "kcl",
    summary="k-positive contrastive loss on the batch (Kang et al. 2021) + CE; simplified, see docs",
)
class KCLLoss(LossFn):
    """In-batch KCL (see the module docstring) plus ``ce_weight`` x CE on the logits.

    The contrastive term acts on the L2-normalised ``features`` of the backbone (the paper's
    projection-free variant); it is averaged over anchors that have at least one positive."""

    #: needs ``output.features``: a bare logits tensor is refused
    needs_model_output = True

    def __init__(
        self,
        counts=None,
        k: int = 6,
        temperature: float = 0.07,
        ce_weight: float = 1.0,
        contrastive_weight: float = 1.0,
    ):
        super().__init__(counts)
        if int(k) != k or k < 1:
            raise NCollapseError(f"k={k!r} must be an integer >= 1")
        self.k = int(k)
        self.temperature = check_positive(temperature, "temperature")
        self.ce_weight = check_positive(ce_weight, "ce_weight", allow_zero=True)
        self.contrastive_weight = check_positive(
            contrastive_weight, "contrastive_weight", allow_zero=True
        )

    def forward(self, output, target: Tensor) -> Tensor:
        z = self._logits(output)
        target = self._check(z, target)
        feats = getattr(output, "features", None)
        if feats is None:
            raise NCollapseError("loss 'kcl' needs a ModelOutput with .features (the backbone's)")
        h = F.normalize(_upcast(feats), dim=1, eps=_EPS)
        eye = torch.eye(h.shape[0], dtype=torch.bool, device=h.device)
        per = kcl_loss(h, h, target, target, None, self.k, self.temperature, exclude=eye)
        has_pos = (target[:, None] == target[None, :]).sum(1) > 1
        con = per[has_pos].mean() if bool(has_pos.any()) else per.sum() * 0.0
        return self.contrastive_weight * con + self.ce_weight * F.cross_entropy(z, target)


# --------------------------------------------------------------------------------------- RBL


@register_head("rotated_etf")
class RotatedETFHead(Head):
    """RBL reconstruction: ``logits = s <e, (M Q)_k>`` with a fixed simplex ETF ``M`` and a
    learnable orthogonal ``Q`` (see the module docstring); ``e = BN(h)/|BN(h)|`` by default."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        seed: int = 0,
        scale: float = 16.0,
        batchnorm: bool = True,
        normalize: bool = True,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        if self.dim < num_classes - 1:
            raise NCollapseError(
                f"a simplex ETF for K={num_classes} classes needs a feature dimension >= K-1 = "
                f"{num_classes - 1}, got {self.dim}; set projection_dim >= {num_classes - 1}"
            )
        from ncollapse.geometry import simplex_etf

        self.scale = check_positive(scale, "scale")
        m = torch.as_tensor(simplex_etf(num_classes, self.dim, seed))
        self.register_buffer("etf", m.to(torch.get_default_dtype()).contiguous())
        rot = nn.Linear(self.dim, self.dim, bias=False)
        with torch.no_grad():
            rot.weight.copy_(torch.eye(self.dim))
        self.rotation = nn.utils.parametrizations.orthogonal(rot)
        self.normalize = bool(normalize)
        self.bn: nn.Module = nn.BatchNorm1d(self.dim) if batchnorm else nn.Identity()

    def rotation_matrix(self) -> Tensor:
        """The current orthogonal ``Q`` (d x d)."""
        return self.rotation.weight

    def classifier_weight(self) -> Tensor:
        return self.scale * self.etf @ self.rotation_matrix()

    def forward(self, h: Tensor) -> HeadOutput:
        e = self.bn(self.projection(h))
        if self.normalize:
            e = F.normalize(e, dim=1, eps=_EPS)
        return HeadOutput(e @ self.classifier_weight().t(), e, None)
