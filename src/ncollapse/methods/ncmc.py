"""NCMC -- Neural Collapse to Multiple Centers (Yan et al., NeurIPS 2024,
OpenReview RJEC9fZ9Ma).

Head ``multicenter`` (registered in the model head registry):

* a fixed multi-center frame from :func:`ncollapse.geometry.multicenter_frame`: orthonormal
  classifier rows ``w_k`` (``W0``, K x dim) and ``F = Σ f_k`` unit centers
  ``w_j^(k) = cos θ v_j^(k) + sin θ w_k``, jointly orthonormal ``V``/``W0`` (needs
  ``dim >= F + K``; with ``f`` centers per class ``dim >= (f+1)K``);
* ``f_k`` per class: ``mode="al"`` all ``f``; ``mode="cal"`` the class-aware strategy (Sec. 3.5) on the
  training counts (``counts=``, supplied by the trainer, see :attr:`MultiCenterHead.needs_counts`);
  ``mode="custom"`` an explicit ``f_counts`` list;
* forward: ``u = BN(P h)`` (optional trainable projection ``P``, BatchNorm on by default),
  ``ê = u / ‖u‖``; prediction rule ``"paper"`` (App. F): ``logits = ê W0ᵀ``, i.e.
  ``argmax_k ⟨BN(h)/‖BN(h)‖, w_k⟩``; rule ``"gcr"`` (§3.1): ``logits_k = max_j ⟨w_j^(k), ê⟩``.
* ``embedding`` (what the losses read and what NC statistics are computed on) is by default the
  **pre-normalisation** vector ``u`` (``embedding="pre_norm"``), so the cosine loss's norm
  regulariser ``λ(‖u‖ − 1)²`` acts on a real norm. ``argmax(embedding W0ᵀ) = argmax(logits)``
  for the paper rule (a positive per-row rescaling). ``embedding="normalized"`` returns ``ê``.

Losses (registered in the loss registry, both need the ``multicenter`` head and
``loss_fn.bind(model)`` before the first call -- the trainer does this):

* ``ncmc_cosine`` -- the weighted cosine loss of App. F, per sample ``i`` of class ``k`` in a batch
  of size ``B``: ``(1/B) cos α_k Σ_{j≤f_k} (⟨w_j^(k), u_i/‖u_i‖⟩ − 1)² + λ (‖u_i‖ − 1)²``,
  summed over the batch (``λ = 6e-4``). AL or CAL is decided by the head's ``f_k``.
* ``loss_p`` -- regression onto ``f_k``-hot targets over all F centers (problem P, Sec. 3.2).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ncollapse.errors import NCollapseError, check_positive
from ncollapse.geometry.multicenter import center_counts
from ncollapse.losses.base import LossFn, _upcast, register_loss
from ncollapse.models.heads import Head, HeadOutput, register_head
from ncollapse.validation import check_choice, check_int

_EPS = 1e-12

__all__ = [
    "LossP",
    "MultiCenterHead",
    "NCMCCosineLoss",
    "center_counts",
    "gcr_predict",
]


def gcr_predict(embedding: Tensor, centers: Tensor, center_class: Tensor, num_classes: int):
    """GCR scores ``s_k = max_{j: class(j)=k} ⟨w_j, ê⟩`` (B x K) with ``ê = e/‖e‖``; the
    generalized classification rule predicts ``argmax_k s_k`` (NCMC §3.1, the f_k-NN rule)."""
    e = F.normalize(embedding, dim=1, eps=_EPS)
    s = e @ centers.to(e.dtype).t()
    idx = center_class.to(s.device).long().unsqueeze(0).expand_as(s)
    out = torch.full((s.shape[0], num_classes), float("-inf"), dtype=s.dtype, device=s.device)
    return out.scatter_reduce(1, idx, s, reduce="amax", include_self=True)


@register_head("multicenter")
class MultiCenterHead(Head):
    """NCMC head: fixed ``W0`` and multi-center frame (buffers), BN -> L2 (configurable).

    Options: ``f`` (average centers per class, 20), ``theta`` (radians; default
    :data:`~ncollapse.geometry.NCMC_THETA` = π/2 − 0.2, the paper's 0.2 read from ``w_k``), ``mode``
    (``"cal"`` | ``"al"`` | ``"custom"``), ``counts`` (training counts, needed for CAL),
    ``f_counts`` (custom), ``seed`` (frame), ``batchnorm``/``normalize`` (the paper's BN -> L2),
    ``pre_normalize`` (L2-normalise the backbone output first, App. F's DenseNet/SVHN/STL
    variant), ``rule`` (``"paper"`` | ``"gcr"``), ``embedding`` (``"pre_norm"`` |
    ``"normalized"``), ``projection_dim`` (trainable ``Linear(in_dim, projection_dim)`` first;
    needed when the backbone width is below ``F + K``).

    ``needs_counts = True``: the trainer passes ``counts=`` (training class counts) to this head.
    """

    needs_counts = True

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        f: int = 20,
        theta: float | None = None,
        mode: str = "cal",
        counts=None,
        f_counts=None,
        seed: int = 0,
        batchnorm: bool = True,
        normalize: bool = True,
        pre_normalize: bool = False,
        rule: str = "paper",
        embedding: str = "pre_norm",
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        from ncollapse.geometry import NCMC_THETA, multicenter_frame

        theta = NCMC_THETA if theta is None else theta

        k = check_int(num_classes, "num_classes", 2)
        f = check_int(f, "f", 1)
        fk = center_counts(mode, k, f, counts=counts, f_counts=f_counts)
        total = int(fk.sum())
        dim = in_dim if projection_dim is None else projection_dim
        dim = check_int(dim, "projection_dim" if projection_dim is not None else "in_dim", 1)
        if dim < total + k:
            need = total + k
            suggest = int(-(-need // 64) * 64)
            where = (
                f"projection_dim={dim}"
                if projection_dim is not None
                else f"the backbone's feature width {dim}"
            )
            raise NCollapseError(
                f"head 'multicenter' needs a feature dimension d >= F + K = {total} + {k} = {need} "
                f"(F = sum of f_k = {total} centers, mean f = {total / k:g}; the paper's "
                f"d >= (f+1)K), but {where} is too small; set model.head_args.projection_dim="
                f"{suggest} (a trainable projection before the frame) or lower f"
            )
        check_choice(rule, "rule", ("paper", "gcr"))
        check_choice(embedding, "embedding", ("pre_norm", "normalized"))
        super().__init__(in_dim, k, projection_dim, projection_bias)
        self.mode = mode
        fr = multicenter_frame(fk, self.dim, theta=theta, seed=seed)
        dt = torch.get_default_dtype()
        self.register_buffer("W0", torch.as_tensor(fr.W0, dtype=dt))
        self.register_buffer("centers", torch.as_tensor(fr.centers, dtype=dt))
        self.register_buffer("center_class", torch.as_tensor(fr.center_class, dtype=torch.long))
        self.register_buffer("f_counts", torch.as_tensor(fk, dtype=torch.long))
        self.register_buffer("cos_alpha", torch.as_tensor(fr.cos_alpha, dtype=dt))
        self.register_buffer("mean_centers", torch.as_tensor(fr.mean_centers, dtype=dt))
        self.f = f
        self.theta = float(fr.theta)
        self.seed = seed
        self.rule = rule
        self.embedding_kind = embedding
        self.normalize = bool(normalize)
        self.pre_normalize = bool(pre_normalize)
        self.bn: nn.Module = nn.BatchNorm1d(self.dim) if batchnorm else nn.Identity()

    # -- forward ---------------------------------------------------------------------------
    def pre_norm(self, h: Tensor) -> Tensor:
        """``u = BN(P h)`` (``h`` L2-normalised first if ``pre_normalize``)."""
        if self.pre_normalize:
            h = F.normalize(h, dim=1, eps=_EPS)
        return self.bn(self.projection(h))

    def forward(self, h: Tensor) -> HeadOutput:
        u = self.pre_norm(h)
        e = F.normalize(u, dim=1, eps=_EPS) if self.normalize else u
        if self.rule == "gcr":
            logits = gcr_predict(e, self.centers, self.center_class, self.num_classes)
        else:
            logits = e @ self.W0.t()
        emb = u if self.embedding_kind == "pre_norm" else e
        return HeadOutput(logits, emb, self.W0)

    def gcr_logits(self, embedding: Tensor) -> Tensor:
        """GCR scores of an embedding (works whatever ``rule`` the head predicts with)."""
        return gcr_predict(embedding, self.centers, self.center_class, self.num_classes)

    # -- frame access ----------------------------------------------------------------------
    def classifier_weight(self) -> Tensor:
        """``W0`` (K x dim): the inference classifier of the paper rule."""
        return self.W0

    def has_fixed_classifier(self) -> bool:
        return True

    def frame_centers(self) -> tuple[Tensor, Tensor]:
        """``(centers F x dim, center_class F)``: the multi-center frame and each center's class."""
        return self.centers, self.center_class

    def nc_centers(self) -> tuple[Tensor, Tensor]:
        """``(mean_centers K x dim, W0 K x dim)`` for ``NCStats(centers=..., w0=...)`` (NC_ave,
        NC_std against ``w̄^(k)``, variability against ``w_k``)."""
        return self.mean_centers, self.W0

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, mode={self.mode}, F={int(self.f_counts.sum())}, "
            f"theta={self.theta:g}, rule={self.rule}, embedding={self.embedding_kind}"
        )


def _find_head(model, needed: str, loss_name: str):
    from ncollapse.methods.base import unwrap_model

    m = unwrap_model(model)
    head = getattr(m, "head", m)
    if not hasattr(head, needed):
        raise NCollapseError(
            f"loss {loss_name!r} needs the 'multicenter' head (got {type(head).__name__}); set "
            f"model.head=multicenter"
        )
    return head


class _FrameLoss(LossFn):
    """Shared plumbing of the NCMC losses: ``bind(model)`` to the head whose frame they use."""

    required_head = ("multicenter",)
    loss_name = "?"

    def __init__(self, counts=None, mode: str | None = None):
        super().__init__(counts)
        if mode is not None:
            check_choice(mode, "mode", ("al", "cal", "custom"))
        self.mode = mode
        self._head: list = []  # not a submodule: the model owns the head

    def bind(self, model) -> _FrameLoss:
        """Use the frame of ``model``'s ``multicenter`` head (the trainer calls this once)."""
        head = _find_head(model, "frame_centers", self.loss_name)
        if self.mode is not None and getattr(head, "mode", None) != self.mode:
            raise NCollapseError(
                f"loss {self.loss_name!r} was configured with mode={self.mode!r} but the head uses "
                f"mode={head.mode!r}; the head decides AL/CAL: set model.head_args.mode or drop "
                f"loss.params.mode"
            )
        self._head = [head]
        return self

    @property
    def head(self):
        if not self._head:
            raise NCollapseError(
                f"loss {self.loss_name!r} is not bound to a model: call loss_fn.bind(model) once "
                f"after building the model (the trainer does this)"
            )
        return self._head[0]

    def _frame(self, output, target):
        e = getattr(output, "embedding", None)
        if not isinstance(e, Tensor):
            raise NCollapseError(
                f"loss {self.loss_name!r} needs the ModelOutput (with .embedding), not bare logits"
            )
        e = _upcast(e)
        target = self._check(output.logits, target)
        centers, cls = self.head.frame_centers()
        return e, target, centers.to(e.dtype), cls.to(e.device)


@register_loss(
    "ncmc_cosine",
    heads=("multicenter",),
    summary="NCMC weighted cosine loss + norm regulariser (AL/CAL by the head's f_k)",
)
class NCMCCosineLoss(_FrameLoss):
    """NCMC's training loss (App. F, "weighted cosine loss with a norm regularization").

    With ``u_i`` the head embedding (pre-normalisation, see the module docstring), ``k = y_i``,
    ``Cos(w, u) = (⟨w, u/‖u‖⟩ − 1)²`` and ``β_k = cos α_k = sqrt((cos²θ + f_k sin²θ)/f_k)``
    (``weighted=True``; ``β_k = 1`` otherwise)::

        L = Σ_i [ (1/B) β_k Σ_{j ≤ f_k} Cos(w_j^(k), u_i) ] + λ R,
        R = Σ_i (‖u_i‖ − 1)²            (norm_reduction="sum", the paper's per-sample form)
        R = (1/B) Σ_i (‖u_i‖ − 1)²      (norm_reduction="mean")

    The paper writes the per-sample loss ``(1/B) β Σ_j Cos + λ(‖h‖−1)²``: the ``1/B`` is on the
    cosine term only, so summing over the batch gives ``norm_reduction="sum"`` (default).
    ``λ = lam = 6e-4``. Only own-class centers enter (the cross-class terms of Loss P are
    dropped). With mixup the trainer combines ``lam L(y_a) + (1 − lam) L(y_b)``.
    """

    loss_name = "ncmc_cosine"

    def __init__(
        self,
        counts=None,
        lam: float = 6e-4,
        weighted: bool = True,
        norm_reduction: str = "sum",
        mode: str | None = None,
    ):
        super().__init__(counts, mode)
        self.lam = check_positive(lam, "lam", allow_zero=True)
        self.weighted = bool(weighted)
        check_choice(norm_reduction, "norm_reduction", ("sum", "mean"))
        self.norm_reduction = norm_reduction

    def forward(self, output, target: Tensor) -> Tensor:
        e, target, centers, cls = self._frame(output, target)
        b = e.shape[0]
        norm = torch.linalg.vector_norm(e, dim=1)
        s = (e / norm.clamp_min(_EPS)[:, None]) @ centers.t()  # B x F cosines
        own = cls.unsqueeze(0) == target.unsqueeze(1)
        per = torch.where(own, (s - 1.0) ** 2, torch.zeros_like(s)).sum(1)
        if self.weighted:
            per = per * self.head.cos_alpha.to(e.dtype)[target]
        loss = per.sum() / b
        if self.lam > 0:
            r = (norm - 1.0) ** 2
            loss = loss + self.lam * (r.sum() if self.norm_reduction == "sum" else r.mean())
        return loss


@register_loss(
    "loss_p",
    heads=("multicenter",),
    summary="NCMC Loss P: regression onto f_k-hot targets over all F centers, 1/(2S) scaling",
)
class LossP(_FrameLoss):
    """NCMC's Loss P (§3.2, problem P with the frame fixed) on a batch ``B``.

    ``W`` (F x dim) the frame centers, ``t_i`` the ``f_k``-hot target of ``y_i = k`` (ones on
    class k's centers), ``u_i`` the head embedding (pre-normalisation)::

        L = (1 / 2S) Σ_{i∈B} ‖W u_i − t_i‖² + (feature_decay / 2) Σ_{i∈B} ‖u_i‖²

    ``scale="batch"`` (default): ``S = S_B = Σ_{i∈B} f_{y_i}`` -- the batch is treated as the
    data set, so ``L`` is exactly P (fixed frame, ``λ_H = feature_decay``) on the batch.
    ``scale="dataset"``: ``S = Σ_k f_k n_k`` from the training counts -- the losses of one epoch's
    batches then sum to P on the whole training set. Either way the per-sample minimiser is
    Cor. 3.7: ``u_k ∝ w̄^(k)``, ``‖u_k‖ = f_k cos α_k / (f_k cos²α_k + λ_H S)``.
    """

    loss_name = "loss_p"

    def __init__(
        self,
        counts=None,
        feature_decay: float = 0.0,
        scale: str = "batch",
        mode: str | None = None,
    ):
        super().__init__(counts, mode)
        self.feature_decay = check_positive(feature_decay, "feature_decay", allow_zero=True)
        check_choice(scale, "scale", ("batch", "dataset"))
        if scale == "dataset" and self.counts is None:
            raise NCollapseError(
                "loss_p with scale='dataset' needs the training counts (S = sum_k f_k n_k): pass "
                "counts=[n_1, ..., n_K] or use scale='batch'"
            )
        self.scale = scale

    def total_s(self) -> float:
        """``S = Σ_k f_k n_k`` of the training set (needs counts and a bound head)."""
        fk = self.head.f_counts.detach().cpu().numpy()
        if self.counts is None or len(self.counts) != len(fk):
            raise NCollapseError("S = sum_k f_k n_k needs counts with one entry per class")
        return float(np.sum(fk * self.counts))

    def forward(self, output, target: Tensor) -> Tensor:
        e, target, centers, cls = self._frame(output, target)
        z = e @ centers.t()  # B x F
        t = (cls.unsqueeze(0) == target.unsqueeze(1)).to(z.dtype)
        if self.scale == "batch":
            s = self.head.f_counts.to(z.device)[target].sum().to(z.dtype)
        else:
            s = torch.tensor(self.total_s(), dtype=z.dtype, device=z.device)
        loss = ((z - t) ** 2).sum() / (2.0 * s)
        if self.feature_decay > 0:
            loss = loss + 0.5 * self.feature_decay * (e * e).sum()
        return loss
