"""Second pass over the data, given the first pass's final statistics: NC4 and per-class NC1.

Two quantities need the *final* class means, so they cannot come from one streaming pass without
storing per-sample data:

* **NC4** (Papyan et al. Fig. 7): agreement of the classifier ``argmax_c (⟨w_c, h⟩ + b_c)`` (or of
  given logits) with the nearest-class-centre rule ``argmin_c ‖h − μ_c‖`` (final μ_c). Ties go to
  the lowest class index in both rules.
* **Per-class NC1** (when the first pass did not keep per-class d x d scatters): with the
  eigen-factor ``Σ_B = U diag(λ) Uᵀ`` from the first pass (:func:`between_factor`), each sample is
  projected to ``r <= K`` numbers ``z_i = diag(λ)^{-1/2} Uᵀ (h_i − μ_{y_i})`` and
  ``Σ_{i∈c} ‖z_i‖² = n_c tr(Σ_W^(c) Σ_B†)`` is accumulated, for both mean conventions.
  This is the "end-of-pass projection": memory ``O(K d)``, cost one ``N x d x r`` GEMM.

Everything accumulated is a plain sum, so :meth:`SecondPass.merge` and :meth:`SecondPass.all_reduce`
are exact sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ncollapse.errors import NCollapseError, check_finite
from ncollapse.metrics.measures import (
    MEANS,
    PINV_RTOL,
    _check_bias,
    between_factor,
    check_classifier,
    require_classes,
)
from ncollapse.metrics.stats import Statistics, _as_tensor, validate_batch

__all__ = ["SecondPass", "SecondPassResult", "nc4_agreement", "second_pass"]


@dataclass(frozen=True)
class SecondPassResult:
    """``counts`` (K,) samples seen per class; ``agree`` (K,) NC4 agreements per class (None
    without a classifier or logits); ``proj_ss`` ``{"unweighted": (K,), "weighted": (K,)}``
    projected within-class sums; ``rtol`` of the pseudo-inverse used."""

    counts: np.ndarray
    agree: np.ndarray | None
    proj_ss: dict
    rtol: float

    def nc4(self) -> dict | None:
        """``{"agreement": fraction of all samples, "agreement_per_class": (K,)}``."""
        if self.agree is None:
            return None
        return {
            "agreement": float(self.agree.sum() / self.counts.sum()),
            "agreement_per_class": self.agree / np.maximum(self.counts, 1),
        }


class SecondPass:
    """Accumulate NC4 agreement and per-class NC1 projections given first-pass ``stats``.

    ``W`` (K x d) and ``b`` (K,) define the classifier for NC4; alternatively pass ``logits`` to
    :meth:`update`. Without either, only the projections are accumulated.
    """

    def __init__(self, stats: Statistics, W=None, b=None, *, rtol: float = PINV_RTOL, device=None):
        import torch

        require_classes(stats)
        self.stats = stats
        self.rtol = float(rtol)
        self.num_classes, self.dim = stats.num_classes, stats.dim
        self.device = None if device is None else torch.device(device)
        self._W = None if W is None else check_classifier(W, stats)
        self._b = None if b is None else _check_bias(b, stats.num_classes)
        if self._b is not None and self._W is None:
            raise NCollapseError("b was given without W; pass the classifier W (K x d) as well")
        self._ready = False

    def _prepare(self, device):
        import torch

        self.device = device if self.device is None else self.device
        t = dict(dtype=torch.float64, device=self.device)
        st = self.stats
        K = self.num_classes
        mu = np.array(st.means)
        mu_c = mu - mu.mean(0)  # centred copy: better-conditioned products, same argmin
        blocks, self._slices, start = [], {}, 0
        for mean in MEANS:
            U, lam = between_factor(st, mean, self.rtol)
            blocks.append(U / np.sqrt(lam))
            self._slices[mean] = slice(start, start + lam.size)
            start += lam.size
        if self._W is not None:
            blocks.append(self._W.T)
            self._slices["W"] = slice(start, start + K)
            start += K
            base = mu @ self._W.T + (0.0 if self._b is None else self._b)
            self.logit_base = torch.as_tensor(base, **t)  # (K, K): class-mean logits
        blocks.append(mu_c.T)
        self._slices["mu"] = slice(start, start + K)
        # one GEMM per batch: (h - μ_y) @ [A_unweighted | A_weighted | Wᵀ | μ̃ᵀ]
        self.big = torch.as_tensor(np.ascontiguousarray(np.concatenate(blocks, axis=1)), **t)
        # nearest centre: ‖h − μ_c‖² = ‖x_c‖² + 2 x_cᵀ(μ_y − μ_c) + ‖μ_y − μ_c‖² with x_c = h − μ_y
        d2 = np.sum((mu[:, None, :] - mu[None, :, :]) ** 2, axis=2)
        self.mu_d2 = torch.as_tensor(d2, **t)
        self.mu = torch.as_tensor(mu, **t)
        self.counts = torch.zeros(K, **t)
        self.agree = torch.zeros(K, **t)
        self.proj_ss = {m: torch.zeros(K, **t) for m in MEANS}
        self._has_clf = self._W is not None
        self._mixed = [0, 0]  # batches with / without logits when there is no W
        self._work = None
        self._ready = True

    def update(self, features, labels, logits=None) -> SecondPass:
        """Add a batch (same validation as :meth:`NCStats.update`)."""
        import torch

        x, y = validate_batch(features, labels, self.num_classes, self.dim)
        if not self._ready:
            self._prepare(x.device)
        y = y.to(self.device)
        m = x.shape[0]
        if m == 0:
            return self
        K = self.num_classes
        z = None
        if logits is not None:
            z = _as_tensor(logits, "logits")
            if z.shape != (m, K):
                raise NCollapseError(
                    f"logits have shape {tuple(z.shape)}, expected (N, K) = ({m}, {K})"
                )
            z = z.to(self.device, torch.float64)
            check_finite(z, "logits")
        if self._work is None or self._work.shape[0] < m:
            self._work = torch.empty(m, self.dim, dtype=torch.float64, device=self.device)
        xc = self._work[:m]
        xc.copy_(x)
        xc.sub_(self.mu[y])
        P = xc @ self.big
        if not bool(torch.isfinite(P).all()):
            check_finite(x, "features")
        self.counts += torch.bincount(y, minlength=K).to(torch.float64)
        for mean in MEANS:
            self.proj_ss[mean].index_add_(0, y, P[:, self._slices[mean]].square().sum(1))
        if z is not None:
            self._has_clf = True
            self._mixed[0] += 1
        elif "W" in self._slices:
            z = P[:, self._slices["W"]] + self.logit_base[y]
        else:
            self._mixed[1] += 1
        if z is not None:
            pred = z.argmax(1)
            # argmin_c ‖h − μ_c‖² = argmin_c ‖μ_y − μ_c‖² − 2 x_cᵀμ̃_c (+ terms constant in c)
            ncc = (self.mu_d2[y] - 2.0 * P[:, self._slices["mu"]]).argmin(1)
            hit = pred == ncc
            self.agree += torch.bincount(y[hit], minlength=K).to(torch.float64)
        return self

    def merge(self, other: SecondPass) -> SecondPass:
        """Add another second pass over the same statistics (plain sums)."""
        if not other._ready:
            return self
        if not self._ready:
            self._prepare(other.device)
        self.counts += other.counts.to(self.device)
        self.agree += other.agree.to(self.device)
        for m in MEANS:
            self.proj_ss[m] += other.proj_ss[m].to(self.device)
        self._has_clf = self._has_clf or other._has_clf
        return self

    def all_reduce(self, group=None) -> SecondPass:
        """SUM all-reduce of the (purely additive) state; no-op without torch.distributed."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        if not self._ready:
            raise NCollapseError("all_reduce before any update; give every worker a batch first")
        K = self.num_classes
        buf = torch.cat([self.counts, self.agree, *(self.proj_ss[m] for m in MEANS)])
        dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
        parts = buf.split(K)
        self.counts, self.agree = parts[0].clone(), parts[1].clone()
        for i, m in enumerate(MEANS):
            self.proj_ss[m] = parts[2 + i].clone()
        return self

    def result(self) -> SecondPassResult:
        """Snapshot; checks that the pass saw the same class counts as the statistics."""
        if not self._ready:
            raise NCollapseError("the second pass saw no samples; call update() over the data")
        if self._W is None and min(self._mixed) > 0:
            raise NCollapseError(
                "some batches had logits and some did not; without W, pass logits with every batch"
            )
        counts = np.rint(self.counts.cpu().numpy()).astype(np.int64)
        if not np.array_equal(counts, self.stats.counts):
            raise NCollapseError(
                f"the second pass saw {int(counts.sum())} samples with class counts differing from "
                f"the first pass ({self.stats.total} samples); iterate over the same data in both"
            )
        return SecondPassResult(
            counts=counts,
            agree=np.rint(self.agree.cpu().numpy()).astype(np.int64) if self._has_clf else None,
            proj_ss={m: self.proj_ss[m].cpu().numpy().copy() for m in MEANS},
            rtol=self.rtol,
        )


def second_pass(
    stats: Statistics, batches: Iterable, W=None, b=None, *, rtol: float = PINV_RTOL
) -> SecondPassResult:
    """Run a :class:`SecondPass` over ``batches`` (an iterable of ``(features, labels)`` or
    ``(features, labels, logits)`` tuples; it is consumed once)."""
    sp = SecondPass(stats, W, b, rtol=rtol)
    for batch in batches:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise NCollapseError(
                "each batch must be a (features, labels) or (features, labels, logits) tuple"
            )
        sp.update(*batch)
    return sp.result()


def nc4_agreement(stats: Statistics, batches: Iterable, W=None, b=None) -> float:
    """NC4 agreement (fraction of samples where the classifier and the nearest class centre
    agree) from a second pass over ``batches``; needs ``W`` (and optional ``b``) or logits."""
    res = second_pass(stats, batches, W, b)
    if res.agree is None:
        raise NCollapseError(
            "NC4 needs a classifier: pass W (K x d) and optional b, or logits in every batch"
        )
    return res.nc4()["agreement"]
