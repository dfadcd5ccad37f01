"""Decoupled classifier learning: the standard two-stage long-tail baseline.

Kang, Xie, Rohrbach, Yan, Gordo, Feng, Kalantidis, ICLR 2020, "Decoupling representation and
classifier for long-tailed recognition", Sec. 4: keep the representation of a finished run (trained
with instance-balanced sampling) and fix only the classifier:

* **cRT** (classifier re-training): re-initialise the linear classifier and train it on the frozen
  features with class-balanced sampling. :func:`fit_crt` minimises the *expected* class-balanced
  loss exactly, full batch: sampling a class uniformly and then a sample of it uniformly weights
  sample i by ``1 / (K n_{y_i})``, so the objective is
  ``sum_i CE(W h_i + b, y_i) / (K n_{y_i}) + (wd / 2) |W|_F^2``.
* **tau-normalisation**: ``w~_j = w_j / |w_j|^tau`` (bias dropped, as in the paper); tau = 0 is the
  original classifier, tau = 1 the cosine classifier. :func:`tau_normalize`.
* **LWS** (learnable weight scaling): learn one scale per class, ``z_j = f_j (w_j . h + b_j)``, with
  class-balanced sampling and everything else frozen. :func:`fit_lws` minimises the expected
  class-balanced CE over ``f`` (full batch).

All three take features ``H`` (N, d) and labels ``y`` from the finished model (``ncollapse
export-features`` writes them) and return a new classifier; :func:`decoupled_logits` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ncollapse.errors import NCollapseError, check_positive


@dataclass
class DecoupledClassifier:
    """A re-fitted classifier: ``logits = scale * (H @ weight.T + bias)``."""

    method: str
    weight: Tensor  # (K, d)
    bias: Tensor | None  # (K,)
    scale: Tensor | None = None  # (K,) (LWS)
    loss: float | None = None  # final value of the fitted objective

    def logits(self, features) -> Tensor:
        return decoupled_logits(features, self)


def _as_tensor(x, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if not torch.isfinite(t.double()).all():
        raise NCollapseError(f"{name} holds NaN or inf; check the model output")
    return t.detach().to(torch.float64).cpu()


def _check_xy(features, labels, num_classes: int | None) -> tuple[Tensor, Tensor, int, Tensor]:
    h = _as_tensor(features, "features")
    if h.ndim != 2:
        raise NCollapseError(f"features must be (N, d), got shape {tuple(h.shape)}")
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels)
    if y.dtype.is_floating_point or y.ndim != 1 or y.shape[0] != h.shape[0]:
        raise NCollapseError(
            f"labels must be N={h.shape[0]} integer class indices, got shape {tuple(y.shape)} "
            f"dtype {y.dtype}"
        )
    y = y.long().cpu()
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise NCollapseError(f"labels must be in 0..{k - 1}; got {int(y.min())}..{int(y.max())}")
    counts = torch.bincount(y, minlength=k)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise NCollapseError(
            f"classes {missing} have no training sample; class-balanced re-fitting needs every "
            f"class (pass num_classes matching the data)"
        )
    return h, y, k, counts


def class_balanced_sample_weights(labels: Tensor, counts: Tensor) -> Tensor:
    """``1 / (K n_{y_i})``: the probability that class-balanced sampling draws sample i."""
    k = counts.numel()
    return 1.0 / (k * counts.to(torch.float64)[labels])


def tau_normalize(weight, tau: float = 1.0) -> Tensor:
    """``w_j / |w_j|^tau`` row-wise (Kang et al. ICLR 2020, Eq. 3)."""
    w = _as_tensor(weight, "weight")
    tau = check_positive(tau, "tau", allow_zero=True)
    norms = w.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise NCollapseError("a classifier row is zero; tau-normalisation is undefined for it")
    return w / norms**tau


def _lbfgs(params: list[Tensor], closure, max_iter: int) -> float:
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    opt.step(closure)
    with torch.no_grad():
        return float(closure(backward=False))


def fit_crt(
    features,
    labels,
    num_classes: int | None = None,
    *,
    weight_decay: float = 5e-4,
    bias: bool = True,
    max_iter: int = 500,
) -> DecoupledClassifier:
    """cRT: a new linear classifier on frozen features, class-balanced (see the module docstring).

    The objective is strictly convex for ``weight_decay > 0`` (bias unpenalised), so the result does
    not depend on the initialisation (zeros here)."""
    h, y, k, counts = _check_xy(features, labels, num_classes)
    wd = check_positive(weight_decay, "weight_decay", allow_zero=True)
    sw = class_balanced_sample_weights(y, counts)
    W = torch.zeros(k, h.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=bool(bias))
    params = [W, b] if bias else [W]

    def closure(backward: bool = True):
        if backward:
            for p in params:
                p.grad = None
        z = h @ W.t() + (b if bias else 0.0)
        loss = (F.cross_entropy(z, y, reduction="none") * sw).sum() + 0.5 * wd * (W * W).sum()
        if backward:
            loss.backward()
        return loss

    value = _lbfgs(params, closure, max_iter)
    return DecoupledClassifier("crt", W.detach(), b.detach() if bias else None, None, value)


def fit_lws(
    features,
    labels,
    weight,
    bias=None,
    *,
    max_iter: int = 200,
) -> DecoupledClassifier:
    """LWS: per-class scales ``f`` of a fixed classifier, class-balanced CE (module docstring)."""
    h, y, k, counts = _check_xy(features, labels, None if weight is None else len(weight))
    w = _as_tensor(weight, "weight")
    if w.shape != (k, h.shape[1]):
        raise NCollapseError(
            f"weight must be (K, d) = ({k}, {h.shape[1]}), got {tuple(w.shape)}; pass the "
            f"classifier matching the features"
        )
    b = None if bias is None else _as_tensor(bias, "bias")
    base = h @ w.t() + (b if b is not None else 0.0)
    sw = class_balanced_sample_weights(y, counts)
    f = torch.ones(k, dtype=torch.float64, requires_grad=True)

    def closure(backward: bool = True):
        if backward:
            f.grad = None
        loss = (F.cross_entropy(base * f, y, reduction="none") * sw).sum()
        if backward:
            loss.backward()
        return loss

    value = _lbfgs([f], closure, max_iter)
    return DecoupledClassifier("lws", w, b, f.detach(), value)


def tau_norm_classifier(weight, tau: float = 1.0) -> DecoupledClassifier:
    """tau-normalised classifier (bias dropped)."""
    return DecoupledClassifier("tau_norm", tau_normalize(weight, tau), None)


def decoupled_logits(features, clf: DecoupledClassifier) -> Tensor:
    """``scale * (H W^T + b)`` in float64."""
    h = _as_tensor(features, "features")
    z = h @ clf.weight.t()
    if clf.bias is not None:
        z = z + clf.bias
    if clf.scale is not None:
        z = z * clf.scale
    return z


DECOUPLED_METHODS = ("crt", "tau_norm", "lws")


def decouple(
    method: str,
    features,
    labels,
    weight=None,
    bias=None,
    *,
    tau: float = 1.0,
    weight_decay: float = 5e-4,
) -> DecoupledClassifier:
    """Dispatch by name: ``crt`` | ``tau_norm`` | ``lws``."""
    if method == "crt":
        k = None if weight is None else len(weight)
        return fit_crt(features, labels, k, weight_decay=weight_decay)
    if method in ("tau_norm", "lws") and weight is None:
        raise NCollapseError(f"method {method!r} needs the trained classifier weight (K, d)")
    if method == "tau_norm":
        return tau_norm_classifier(weight, tau)
    if method == "lws":
        return fit_lws(features, labels, weight, bias)
    raise NCollapseError(
        f"decoupling method {method!r} is unknown; use one of {', '.join(DECOUPLED_METHODS)}"
    )
