"""AllNC (Zhang, Li, Geng, Chen; arXiv 2408.07253, TKDE 2025) -- a RECONSTRUCTION.

The AllNC paper's equations, temperatures, loss weights and schedules could not be obtained (spec
ncmc-allnc.md §2.2). What is known (§2.1): HyCon, a hybrid contrastive loss between each
activation and the class means (NC1); P2P, a peer-to-peer alignment of class means with classifier
vectors (NC2/NC3, self-duality); GBBN, a generalized bilateral-branch network with a cumulative
schedule. Everything below follows the spec's reconstruction §2.3 and is **our design, not the
paper's definition**: every weight and temperature is a config value and every component can be
switched off, so ablations are one flag away.

Loss ``allnc``::

    L = L_cls + lambda_hycon * HyCon + lambda_p2p * P2P

* ``L_cls``: any registered loss by name (``base="ce"``, ``"balanced_softmax"``, ...).
* ``z_i = e_i / ‖e_i‖`` with ``e_i`` the head embedding (what the classifier multiplies).
* Class means ``μ_k``: classes present in the batch use the batch mean of ``z`` over the class
  (differentiable; ``batch_means=True``); classes absent from the batch use an EMA memory
  ``m_k <- momentum m_k + (1 - momentum) mean_k`` of detached batch means, initialised to the
  first batch mean seen. Classes never seen yet are left out. ``μ̂_k = μ_k / ‖μ_k‖``.
* HyCon (anchor-to-means part): ``-(1/B) Σ_i log softmax_k(z_i·μ̂_k / T)[y_i]`` over the available
  classes; plus ``supcon_weight`` times SupCon (Khosla et al. 2020) among the batch samples -- the
  "hybrid" part -- ``-(1/|A|) Σ_{i∈A} (1/|P(i)|) Σ_{p∈P(i)} log [exp(z_i·z_p/T) /
  Σ_{a≠i} exp(z_i·z_a/T)]`` (``P(i)`` same-class samples other than ``i``, ``A`` anchors with
  ``|P(i)| > 0``).
* P2P: with ``ŵ_k = w_k/‖w_k‖`` the classifier rows and ``V`` the classes with a mean,
  ``-(1/|V|) Σ_{k∈V} [ log softmax_j(μ̂_k·ŵ_j / T_p)[k] + log softmax_{j∈V}(ŵ_k·μ̂_j / T_p)[k] ]``
  (mean -> all K classifiers, classifier -> the available means).

Weights 0 or switches off give exactly the base loss (the extra terms are not even computed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ncollapse.errors import NCollapseError, check_positive
from ncollapse.losses.base import LossFn, _upcast, create_loss, register_loss

_EPS = 1e-12

__all__ = ["AllNCLoss", "hycon_loss", "p2p_loss", "supcon_loss"]


def supcon_loss(z: Tensor, y: Tensor, temperature: float) -> Tensor:
    """SupCon (Khosla et al. 2020) on unit vectors ``z`` (B x d) with labels ``y``; anchors
    without a same-class partner are skipped; 0 if no anchor has one."""
    b = z.shape[0]
    sim = z @ z.t() / temperature
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    npos = pos.sum(1)
    anchors = npos > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0
    per = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(1)
    return -(per[anchors] / npos[anchors]).mean()


def hycon_loss(
    z: Tensor,
    y: Tensor,
    means: Tensor,
    valid: Tensor,
    temperature: float,
    supcon_weight: float = 0.0,
) -> Tensor:
    """HyCon (reconstruction): anchor ``z_i`` vs normalised class means ``means`` (K x d, rows
    for classes in ``valid``), softmax over the valid classes, + ``supcon_weight`` SupCon."""
    mu = F.normalize(means, dim=1, eps=_EPS)
    logits = (z @ mu.t()) / temperature
    logits = logits.masked_fill(~valid.unsqueeze(0), float("-inf"))
    loss = F.cross_entropy(logits, y)
    if supcon_weight > 0:
        loss = loss + supcon_weight * supcon_loss(z, y, temperature)
    return loss


def p2p_loss(means: Tensor, valid: Tensor, weight: Tensor, temperature: float) -> Tensor:
    """P2P (reconstruction): two-way softmax alignment of normalised class means (rows of
    ``means`` for classes in ``valid``) with normalised classifier rows ``weight`` (K x d)."""
    idx = valid.nonzero().squeeze(1)
    mu = F.normalize(means[idx], dim=1, eps=_EPS)
    w = F.normalize(weight, dim=1, eps=_EPS)
    m2w = mu @ w.t() / temperature  # |V| x K: mean k against every classifier
    w2m = w[idx] @ mu.t() / temperature  # |V| x |V|: classifier k against every available mean
    a = F.cross_entropy(m2w, idx)
    b = F.cross_entropy(w2m, torch.arange(idx.numel(), device=idx.device))
    return a + b


@register_loss(
    "allnc",
    summary="AllNC reconstruction: base loss + lambda_hycon HyCon + lambda_p2p P2P (EMA means)",
)
class AllNCLoss(LossFn):
    """AllNC loss (a reconstruction, see the module docstring).

    Options: ``base`` (registered loss name) and ``base_params``; ``hycon`` (switch),
    ``lambda_hycon``, ``hycon_temperature``, ``supcon_weight`` (0 = anchor-to-means only);
    ``p2p`` (switch), ``lambda_p2p``, ``p2p_temperature``; ``momentum`` of the EMA class-mean
    memory; ``batch_means`` (present classes use the differentiable batch mean; False = the
    memory for every class).

    P2P needs the classifier: ``bind(model)`` (the trainer calls it) lets the loss read
    ``model.classifier_weight()``; an output carrying ``.classifier`` (GBBN's branch outputs)
    takes precedence. Outputs carrying ``.branch`` keep a separate memory per branch.
    """

    def __init__(
        self,
        counts=None,
        base: str = "ce",
        base_params: dict | None = None,
        hycon: bool = True,
        lambda_hycon: float = 1.0,
        hycon_temperature: float = 0.1,
        supcon_weight: float = 1.0,
        p2p: bool = True,
        lambda_p2p: float = 1.0,
        p2p_temperature: float = 0.1,
        momentum: float = 0.9,
        batch_means: bool = True,
    ):
        super().__init__(counts)
        if base == "allnc":
            raise NCollapseError("allnc cannot use itself as base; use base: ce (or another loss)")
        if base_params is not None and not isinstance(base_params, dict):
            raise NCollapseError(f"base_params={base_params!r} must be a mapping of options")
        self.base_name = base
        self.base = create_loss(base, counts=counts, **(base_params or {}))
        self.required_head = getattr(self.base, "required_head", None)
        self.hycon = bool(hycon)
        self.lambda_hycon = check_positive(lambda_hycon, "lambda_hycon", allow_zero=True)
        self.hycon_temperature = check_positive(hycon_temperature, "hycon_temperature")
        self.supcon_weight = check_positive(supcon_weight, "supcon_weight", allow_zero=True)
        self.p2p = bool(p2p)
        self.lambda_p2p = check_positive(lambda_p2p, "lambda_p2p", allow_zero=True)
        self.p2p_temperature = check_positive(p2p_temperature, "p2p_temperature")
        self.momentum = float(momentum)
        if not (0.0 <= self.momentum < 1.0):
            raise NCollapseError(f"momentum={momentum!r} must be in [0, 1); e.g. 0.9")
        self.batch_means = bool(batch_means)
        self._model: list = []
        self._memory: dict[str, tuple[Tensor, Tensor]] = {}
        self.last: dict[str, Tensor] = {}

    # -- plumbing --------------------------------------------------------------------------
    @property
    def use_hycon(self) -> bool:
        return self.hycon and self.lambda_hycon > 0

    @property
    def use_p2p(self) -> bool:
        return self.p2p and self.lambda_p2p > 0

    def set_epoch(self, epoch: int, total_epochs: int | None = None) -> None:
        super().set_epoch(epoch, total_epochs)
        self.base.set_epoch(epoch, total_epochs)

    def bind(self, model) -> AllNCLoss:
        """Remember ``model`` (for ``classifier_weight()``); forwarded to the base loss."""
        self._model = [model]
        if hasattr(self.base, "bind"):
            self.base.bind(model)
        return self

    def _classifier(self, output) -> Tensor:
        w = getattr(output, "classifier", None)
        if w is not None:
            return w
        if not self._model:
            raise NCollapseError(
                "loss 'allnc' with p2p needs the classifier: call loss_fn.bind(model) once after "
                "building the model (the trainer does this), or set p2p: false"
            )
        from ncollapse.methods.base import unwrap_model

        return unwrap_model(self._model[0]).classifier_weight()

    def memory(self, branch="0") -> tuple[Tensor, Tensor] | None:
        """``(means K x d, seen K bool)`` of the EMA memory of ``branch`` (None before use)."""
        return self._memory.get(str(branch))

    def reset_memory(self) -> None:
        self._memory.clear()

    def get_extra_state(self) -> dict:
        """The EMA memories travel in ``state_dict()`` (checkpoints, resume)."""
        return {
            k: {"means": m.detach().cpu(), "seen": s.cpu()} for k, (m, s) in self._memory.items()
        }

    def set_extra_state(self, state) -> None:
        self._memory = {
            str(k): (v["means"].clone(), v["seen"].clone().bool()) for k, v in (state or {}).items()
        }

    def _class_means(self, z: Tensor, y: Tensor, k: int, branch: str):
        """Per-class means ``(K x d)``, ``valid`` (K,) and the EMA memory update."""
        onehot = F.one_hot(y, k).to(z.dtype)  # B x K
        cnt = onehot.sum(0)
        present = cnt > 0
        batch_mean = (onehot.t() @ z) / cnt.clamp_min(1).unsqueeze(1)
        mem = self._memory.get(branch)
        if mem is None or mem[0].shape != (k, z.shape[1]):
            mem = (torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device),
                   torch.zeros(k, dtype=torch.bool, device=z.device))  # fmt: skip
        means, seen = mem[0].to(z.device, z.dtype), mem[1].to(z.device)
        if torch.is_grad_enabled():  # update only in training steps
            with torch.no_grad():
                bm = batch_mean.detach()
                ema = torch.where(
                    seen.unsqueeze(1), self.momentum * means + (1 - self.momentum) * bm, bm
                )
                means = torch.where(present.unsqueeze(1), ema, means)
                seen = seen | present
                self._memory[branch] = (means, seen)
        means = means.detach()
        if self.batch_means:
            means = torch.where(present.unsqueeze(1), batch_mean, means)
        return means, seen | present

    def forward(self, output, target: Tensor) -> Tensor:
        loss = self.base(output, target)
        self.last = {"base": loss.detach()}
        if not (self.use_hycon or self.use_p2p):
            return loss
        e = getattr(output, "embedding", None)
        if not isinstance(e, Tensor):
            raise NCollapseError("loss 'allnc' needs the ModelOutput (with .embedding)")
        logits = self._logits(output)
        target = self._check(logits, target)
        k = logits.shape[1]
        z = F.normalize(_upcast(e), dim=1, eps=_EPS)
        means, valid = self._class_means(z, target, k, str(getattr(output, "branch", "0")))
        if self.use_hycon:
            h = hycon_loss(z, target, means, valid, self.hycon_temperature, self.supcon_weight)
            self.last["hycon"] = h.detach()
            loss = loss + self.lambda_hycon * h
        if self.use_p2p:
            w = _upcast(self._classifier(output))
            if w.ndim != 2 or w.shape != (k, z.shape[1]):
                raise NCollapseError(
                    f"P2P needs a K x d classifier matching the embedding (K={k}, d={z.shape[1]}), "
                    f"got {tuple(w.shape)}; use a head whose embedding is the classifier's input "
                    f"(linear, cosine, etf, orthonormal, bilateral) or set p2p: false"
                )
            p = p2p_loss(means, valid, w.to(z.dtype), self.p2p_temperature)
            self.last["p2p"] = p.detach()
            loss = loss + self.lambda_p2p * p
        return loss
