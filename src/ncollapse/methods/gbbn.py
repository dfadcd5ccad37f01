"""GBBN -- a generalized bilateral-branch network (BBN, Zhou et al. CVPR 2020; AllNC's GBBN).

BBN facts used here are background knowledge (spec ncmc-allnc.md §3.7, marked [U]); AllNC's GBBN
details are not public (§2.2), so this is a **reconstruction**: BBN's cumulative learning with a
configurable schedule and any registered loss (e.g. ``allnc``) in place of CE.

Head ``bilateral`` (model head registry): shared (optionally projected) backbone features ``h``;
two branches ``b ∈ {c, r}`` (conventional, re-balancing), each ``e_b = ReLU(A_b h)`` (one
branch-specific layer, ``branch_layer=True``; identity otherwise) and a linear classifier
``z_b = W_b e_b + c_b``. With a mixing weight ``a``::

    logits = a z_c + (1 - a) z_r = [W_c | W_r] [a e_c ; (1 - a) e_r] + (a c_c + (1 - a) c_r)

so ``embedding = cat(a e_c, (1-a) e_r)`` and ``classifier_weight() = [W_c | W_r]`` (K x 2·width)
satisfy the head contract ``logits = embedding Wᵀ + b``. A plain forward uses ``a = test_alpha``
(0.5, BBN's test rule).

Method ``gbbn`` (:class:`GBBN`, ``aux_sampler = "reversed"``): per step, with the instance batch
``(x_c, y_c)``, the reversed-sampler batch ``(x_r, y_r)`` and ``α = α(progress)``::

    e_c = branch_c(backbone(x_c)),  e_r = branch_r(backbone(x_r))
    z   = α z_c(e_c) + (1 - α) z_r(e_r)
    L   = α L(z, y_c) + (1 - α) L(z, y_r)

where each ``L`` sees a branch output whose ``embedding``/``classifier`` are that branch's (so
HyCon/P2P of ``allnc`` act per branch). Schedules ``α(p)``, ``p`` = fraction of training done:
``parabolic`` ``1 - p²`` (BBN), ``linear`` ``1 - p``, ``cosine`` ``cos(π p / 2)``, ``power``
``1 - p^power``, ``constant`` ``alpha``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.methods.base import (
    Method,
    StepOutput,
    check_progress,
    loss_with_mixup,
    maybe_mixup,
    register_method,
    unwrap_model,
)
from ncollapse.models.classifier import ModelOutput
from ncollapse.models.heads import Head, HeadOutput, register_head
from ncollapse.validation import check_choice, check_int

__all__ = ["GBBN", "BilateralHead", "BranchOutput", "alpha_schedule", "branch_output"]

BRANCHES = ("conventional", "rebalancing")


def _alpha_value(alpha, name: str) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"{name}={alpha!r} must be a number in [0, 1]") from exc
    if not (0.0 <= a <= 1.0):
        raise NCollapseError(f"{name}={a:g} must be in [0, 1] (weight of the conventional branch)")
    return a


def _branch_index(branch) -> int:
    if branch in (0, "c", "conventional"):
        return 0
    if branch in (1, "r", "rebalancing"):
        return 1
    raise NCollapseError(f"branch={branch!r} is not valid; use 'conventional' or 'rebalancing'")


class BranchOutput(ModelOutput):
    """A :class:`ModelOutput` plus ``classifier`` (K x width) and ``branch`` (name) of one branch;
    losses that align features with the classifier (``allnc``'s P2P) read ``classifier``."""


def branch_output(logits, features, embedding, classifier, branch: str) -> BranchOutput:
    out = BranchOutput(logits, features, embedding, None)
    out.classifier = classifier
    out.branch = branch
    return out


@register_head("bilateral")
class BilateralHead(Head):
    """BBN-style two-branch head (see the module docstring).

    Options: ``branch_layer`` (a branch-specific ``Linear + ReLU``; False = branches share the
    features and differ only in their classifiers), ``branch_dim`` (width of the branch layer;
    default the projected width), ``bias`` (classifier biases), ``test_alpha`` (mixing weight of a
    plain forward, 0.5), ``projection_dim`` (shared trainable projection first).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        branch_layer: bool = True,
        branch_dim: int | None = None,
        bias: bool = True,
        test_alpha: float = 0.5,
        projection_dim: int | None = None,
        projection_bias: bool = True,
    ):
        super().__init__(in_dim, num_classes, projection_dim, projection_bias)
        self.proj_dim = self.dim
        self.branch_layer = bool(branch_layer)
        if self.branch_layer:
            width = self.dim if branch_dim is None else check_int(branch_dim, "branch_dim", 1)
            self.branches = nn.ModuleList(
                nn.Sequential(nn.Linear(self.dim, width), nn.ReLU()) for _ in range(2)
            )
        else:
            if branch_dim is not None:
                raise NCollapseError("branch_dim needs branch_layer: true")
            width = self.dim
            self.branches = nn.ModuleList([nn.Identity(), nn.Identity()])
        self.width = width
        self.classifiers = nn.ModuleList(
            nn.Linear(width, self.num_classes, bias=bool(bias)) for _ in range(2)
        )
        self.test_alpha = _alpha_value(test_alpha, "test_alpha")
        self.dim = 2 * width  # the classifier's input width (concatenated branch embeddings)

    def branch_embedding(self, h: Tensor, branch) -> Tensor:
        """``e_b`` of backbone features ``h`` (projection, then branch ``b``'s layer)."""
        return self.branches[_branch_index(branch)](self.projection(h))

    def branch_logits(self, e: Tensor, branch) -> Tensor:
        return self.classifiers[_branch_index(branch)](e)

    def branch_classifier(self, branch) -> Tensor:
        return self.classifiers[_branch_index(branch)].weight

    def forward(self, h: Tensor, alpha: float | None = None) -> HeadOutput:
        a = self.test_alpha if alpha is None else float(alpha)
        p = self.projection(h)
        e_c, e_r = self.branches[0](p), self.branches[1](p)
        z = a * self.classifiers[0](e_c) + (1.0 - a) * self.classifiers[1](e_r)
        return HeadOutput(z, torch.cat([a * e_c, (1.0 - a) * e_r], dim=1), None)

    def classifier_weight(self) -> Tensor:
        return torch.cat([self.classifiers[0].weight, self.classifiers[1].weight], dim=1)

    def classifier_bias(self, alpha: float | None = None) -> Tensor | None:
        b_c, b_r = self.classifiers[0].bias, self.classifiers[1].bias
        if b_c is None:
            return None
        a = self.test_alpha if alpha is None else float(alpha)
        return a * b_c + (1.0 - a) * b_r

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, proj_dim={self.proj_dim}, width={self.width}, "
            f"num_classes={self.num_classes}, test_alpha={self.test_alpha:g}"
        )


def alpha_schedule(progress: float, schedule: str = "parabolic", power: float = 2.0,
                   alpha: float = 0.5) -> float:  # fmt: skip
    """Cumulative-learning weight ``α(p)`` of the conventional branch, ``p`` in [0, 1]:
    ``parabolic`` 1 - p² (BBN), ``linear`` 1 - p, ``cosine`` cos(πp/2), ``power`` 1 - p^power,
    ``constant`` ``alpha``."""
    p = check_progress(progress)
    if schedule == "parabolic":
        return 1.0 - p * p
    if schedule == "linear":
        return 1.0 - p
    if schedule == "cosine":
        return max(0.0, math.cos(0.5 * math.pi * p))
    if schedule == "power":
        return 1.0 - p ** float(power)
    if schedule == "constant":
        return _alpha_value(alpha, "alpha")
    raise NCollapseError(
        f"schedule={schedule!r} is not valid; use parabolic, linear, cosine, power or constant"
    )


@register_method("gbbn")
class GBBN(Method):
    """Generalized BBN (reconstruction; see the module docstring). Needs head ``bilateral`` and an
    auxiliary batch from the ``aux_sampler`` (``"reversed"``, BBN's sampler).

    Options: ``schedule`` (parabolic | linear | cosine | power | constant), ``power``, ``alpha``
    (the constant schedule's value), ``test_alpha`` (None = the head's ``test_alpha``, 0.5),
    ``sampler`` (aux sampler name), ``joint_forward`` (one backbone pass over ``cat(x_c, x_r)``;
    False = two passes, BatchNorm statistics per branch batch as in BBN).
    """

    name = "gbbn"
    required_head = ("bilateral",)

    def __init__(
        self,
        schedule: str = "parabolic",
        power: float = 2.0,
        alpha: float = 0.5,
        test_alpha: float | None = None,
        sampler: str = "reversed",
        joint_forward: bool = True,
    ):
        check_choice(schedule, "schedule", ("parabolic", "linear", "cosine", "power", "constant"))
        self.schedule = schedule
        self.power = float(power)
        if not self.power > 0:
            raise NCollapseError(f"power={power!r} must be > 0")
        self.alpha = _alpha_value(alpha, "alpha")
        self.test_alpha = None if test_alpha is None else _alpha_value(test_alpha, "test_alpha")
        from ncollapse.data.samplers import canonical_sampler_name

        self.aux_sampler = canonical_sampler_name(sampler)
        self.joint_forward = bool(joint_forward)

    def alpha_at(self, progress: float) -> float:
        """``α(progress)`` of the configured schedule."""
        return alpha_schedule(progress, self.schedule, self.power, self.alpha)

    def _head(self, model) -> BilateralHead:
        head = getattr(unwrap_model(model), "head", None)
        if not isinstance(head, BilateralHead):
            raise NCollapseError(
                f"method 'gbbn' needs model.head=bilateral, got {type(head).__name__}; set "
                f"model.head=bilateral"
            )
        return head

    def step(
        self,
        model: nn.Module,
        loss_fn,
        x: Tensor,
        y: Tensor,
        aux=None,
        progress: float = 0.0,
        *,
        mixup_alpha: float = 0.0,
        generator=None,
    ) -> StepOutput:
        if aux is None or len(aux) != 2:
            raise NCollapseError(
                f"method 'gbbn' needs a second batch (x_aux, y_aux) from the {self.aux_sampler!r} "
                f"sampler in every step (aux=...); the trainer supplies it for methods with "
                f"aux_sampler set"
            )
        head = self._head(model)
        a = self.alpha_at(progress)
        x_c, y_c, y_cb, lam_c = maybe_mixup(x, y, mixup_alpha, generator)
        x_r, y_r, y_rb, lam_r = maybe_mixup(aux[0], aux[1], mixup_alpha, generator)
        n = x_c.shape[0]
        if self.joint_forward:
            out = model(torch.cat([x_c, x_r], dim=0))
            f_c, f_r = out.features[:n], out.features[n:]
            view = ModelOutput(out.logits[:n], f_c, out.embedding[:n], out.fixed_weight)
        else:
            out_c = model(x_c)
            f_c, f_r = out_c.features, model(x_r).features
            view = out_c
        e_c = head.branch_embedding(f_c, 0)
        e_r = head.branch_embedding(f_r, 1)
        z = a * head.branch_logits(e_c, 0) + (1.0 - a) * head.branch_logits(e_r, 1)
        o_c = branch_output(z, f_c, e_c, head.branch_classifier(0), BRANCHES[0])
        o_r = branch_output(z, f_r, e_r, head.branch_classifier(1), BRANCHES[1])
        loss = a * loss_with_mixup(loss_fn, o_c, y_c, y_cb, lam_c) + (1.0 - a) * loss_with_mixup(
            loss_fn, o_r, y_r, y_rb, lam_r
        )
        return StepOutput(loss, view, y_c, y_cb, lam_c)

    def predict_logits(self, model: nn.Module, x: Tensor) -> Tensor:
        """``test_alpha z_c + (1 - test_alpha) z_r`` on both branches of the same input."""
        if self.test_alpha is None:
            return model(x).logits
        m = unwrap_model(model)
        return self._head(m).forward(m.backbone(x), alpha=self.test_alpha).logits

    def describe(self) -> dict:
        return {
            "name": self.name,
            "aux_sampler": self.aux_sampler,
            "schedule": self.schedule,
            "power": self.power,
            "alpha": self.alpha,
            "test_alpha": self.test_alpha,
            "joint_forward": self.joint_forward,
        }
