"""Second pass over the data, given the first pass's final statistics: NC4 and NC1 by projection.

Two quantities need the *final* class means, so they cannot come from one streaming pass without
storing per-sample data. The pass computes only the measures asked for (``measures=``):

* ``"nc4"`` (Papyan et al., arXiv 2008.08186, Fig. 7): agreement of the classifier
  ``argmax_c (⟨w_c, h⟩ + b_c)`` (or of given logits) with the nearest-class-centre rule
  ``argmin_c ‖h − μ_c‖`` (final μ_c). Ties go to the lowest class index in both rules.
* ``"nc1"``: NC1 by projection. With ``Σ_B = U diag(λ) Uᵀ`` from the first pass
  (:func:`between_factor`), ``Σ_{i∈c} ‖diag(λ)^{-1/2} Uᵀ (h_i − μ_{y_i})‖² = n_c tr(Σ_W^(c) Σ_B†)``
  is accumulated per class for both mean conventions: per-class NC1, the class-balanced NC1, and
  the sample-weighted NC1 without a d x d scatter (``NCStats(scatter=False)``).

Cost of each measure per sample (``SecondPass.cost`` gives the numbers for a given K, d):

========  ===================================================================================
measure   work per row (d features, K classes, q = min(K − 1, d))
========  ===================================================================================
nc1       float64 projection on an orthonormal basis of the span of the centred means
          (GEMM ``d x q``), then ``q x r`` per mean convention
nc4       with ``W``: float32 GEMM ``d x K`` (classifier scores); the nearest-centre scores come
          from the ``nc1`` projection when it runs, else from the same float32 GEMM (``d x 2K``).
          Rows whose top-two gap is within the float32 rounding bound are recomputed in
          float64, so the decisions are those of float64 arithmetic. With logits: an argmax.
========  ===================================================================================

Accuracy: every row is centred at its class mean in float64 before any product, so rounding
scales with the within-class spread, not with ``‖μ‖``; the NC1 projection is float64 throughout.

**Held-out data.** The pass may run over other data than the first pass (e.g. test features with
the training statistics): the samples are then centred at the *training* means and projected on
the *training* ``Σ_B``, giving held-out NC1 (``SecondPassResult.nc1``) and NC4; the result's
``same_data`` is False. Classes without first-pass samples have no mean: they are left out of the
nearest-centre rule and of NC1 (listed in ``absent``).

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
)
from ncollapse.metrics.stats import CHUNK_ROWS, Statistics, _as_tensor, validate_batch

__all__ = [
    "SECOND_PASS_MEASURES",
    "SecondPass",
    "SecondPassResult",
    "nc4_agreement",
    "second_pass",
]

#: What a :class:`SecondPass` can compute.
SECOND_PASS_MEASURES = ("nc1", "nc4")


@dataclass(frozen=True)
class SecondPassResult:
    """``counts`` (K,) samples seen per class; ``agree`` (K,) NC4 agreements per class (None
    without ``"nc4"`` or without a classifier/logits); ``proj_ss`` ``{"unweighted": (K,),
    "weighted": (K,)}`` projected within-class sums (None without ``"nc1"``); ``rtol`` of the
    pseudo-inverse used; ``same_data`` whether the class counts equal the first pass's (False for a
    held-out pass); ``measures`` computed; ``rechecked`` rows whose float32 decision was
    recomputed in float64; ``absent`` classes without first-pass samples; ``num_ref`` the number
    of classes with a first-pass mean (the K of NC1's ``/K``)."""

    counts: np.ndarray
    agree: np.ndarray | None
    proj_ss: dict | None
    rtol: float
    same_data: bool = True
    measures: tuple = SECOND_PASS_MEASURES
    rechecked: int = 0
    absent: tuple = ()
    num_ref: int | None = None

    def nc4(self) -> dict | None:
        """``{"agreement": fraction of all samples, "agreement_per_class": (K,)}`` (NaN for a
        class without samples in this pass)."""
        if self.agree is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(self.counts > 0, self.agree / np.maximum(self.counts, 1), np.nan)
        return {
            "agreement": float(self.agree.sum() / self.counts.sum()),
            "agreement_per_class": per,
        }

    def _ref_mask(self) -> np.ndarray:
        m = np.ones(self.counts.shape[0], dtype=bool)
        m[list(self.absent)] = False
        return m

    def nc1_per_class(self, mean: str = "unweighted", divide_by_k: bool = True) -> np.ndarray:
        """Per-class NC1 of the samples of this pass around the first-pass means, relative to the
        first-pass ``Σ_B`` (NaN for classes without samples here or without a first-pass mean)."""
        if self.proj_ss is None:
            raise NCollapseError("this second pass did not compute 'nc1'; add it to measures")
        ok = (self.counts > 0) & self._ref_mask()
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(ok, self.proj_ss[mean] / np.maximum(self.counts, 1), np.nan)
        per = np.where(ok, np.maximum(per, 0.0), np.nan)
        k = self.num_ref or self.counts.shape[0]
        return per / k if divide_by_k else per

    def nc1(self, mean: str = "unweighted", divide_by_k: bool = True) -> float:
        """Sample-weighted NC1 of this pass's samples: ``Σ_i ‖Λ^{-1/2}Uᵀ(h_i − μ_{y_i})‖² / N``
        (``/K``) over the samples whose class has a first-pass mean. On the first-pass data this
        equals ``tr(Σ_W Σ_B†)/K``; on held-out data it is the held-out NC1."""
        if self.proj_ss is None:
            raise NCollapseError("this second pass did not compute 'nc1'; add it to measures")
        ok = self._ref_mask()
        n = self.counts[ok].sum()
        if n == 0:
            return float("nan")
        val = float(max(self.proj_ss[mean][ok].sum(), 0.0) / n)
        k = self.num_ref or self.counts.shape[0]
        return val / k if divide_by_k else val


def _unit_roundoff() -> float:
    """Unit roundoff of a float32 matmul under torch's float32 matmul precision setting
    (``"highest"``: float32; ``"high"``: TF32-class; ``"medium"``: bfloat16-class)."""
    import torch

    prec = torch.get_float32_matmul_precision()
    return {"highest": 2.0**-24, "high": 2.0**-11}.get(prec, 2.0**-8)


def _check_measures(measures) -> tuple:
    if measures is None:
        return SECOND_PASS_MEASURES
    if isinstance(measures, str):
        measures = (measures,)
    ms = tuple(dict.fromkeys(str(m) for m in measures))
    bad = [m for m in ms if m not in SECOND_PASS_MEASURES]
    if bad or not ms:
        raise NCollapseError(
            f"measures={list(measures)!r}: the second pass computes {list(SECOND_PASS_MEASURES)}; "
            f"pass a non-empty subset"
        )
    return ms


class SecondPass:
    """Accumulate NC4 agreement and NC1 projections given first-pass ``stats``.

    ``W`` (K x d) and ``b`` (K,) define the classifier for NC4; alternatively pass ``logits`` to
    :meth:`update`. ``measures`` (default ``("nc1", "nc4")``) says what to compute; NC4 without a
    classifier or logits is skipped. The data may be the first pass's or other (held-out) data;
    see the module docstring. :attr:`cost` says what one row costs.
    """

    def __init__(
        self,
        stats: Statistics,
        W=None,
        b=None,
        *,
        rtol: float = PINV_RTOL,
        device=None,
        measures=None,
    ):
        import torch

        if not isinstance(stats, Statistics):
            raise NCollapseError(
                f"expected ncollapse.metrics.Statistics (from NCStats.snapshot()), got "
                f"{type(stats).__name__}"
            )
        self.measures = _check_measures(measures)
        self.stats = stats
        self.rtol = float(rtol)
        self.num_classes, self.dim = stats.num_classes, stats.dim
        self.present = stats.present
        if self.present.size < 2:
            raise NCollapseError(
                f"the first-pass statistics have samples of {self.present.size} class(es); NC "
                f"needs at least 2 classes with samples"
            )
        self.device = None if device is None else torch.device(device)
        self._W = None if W is None else check_classifier(W, stats)
        self._b = None if b is None else _check_bias(b, stats.num_classes)
        if self._b is not None and self._W is None:
            raise NCollapseError("b was given without W; pass the classifier W (K x d) as well")
        self._ready = False

    @property
    def cost(self) -> dict:
        """Columns of the per-row GEMMs this pass runs (``N x d`` times that many) by precision,
        e.g. ``{"float64_cols": 99, "float32_cols": 100}``; compare with ``d`` for one
        ``X.T @ X``."""
        K, d = self.present.size, self.dim
        q = min(K - 1, d)
        f64 = q if "nc1" in self.measures else 0
        f32 = 0
        if "nc4" in self.measures and self._W is not None:
            f32 = self.num_classes + (0 if "nc1" in self.measures else K)
        return {"float64_cols": f64, "float32_cols": f32}

    def _prepare(self, device):
        import torch

        self.device = device if self.device is None else self.device
        t = dict(dtype=torch.float64, device=self.device)
        st = self.stats
        K = self.num_classes
        pres = self.present
        sub = st if pres.size == K else st.restrict(pres)
        self._sub = sub
        lmap = np.full(K, -1, dtype=np.int64)
        lmap[pres] = np.arange(pres.size)
        self.lmap = torch.as_tensor(lmap, device=self.device)
        self.present_t = torch.as_tensor(pres, device=self.device)
        mu = np.array(sub.means)  # (K', d)
        mu_c = mu - mu.mean(0)
        self.mu = torch.as_tensor(mu, **t)
        self.mu_norm = torch.linalg.vector_norm(self.mu, dim=1)
        # nearest centre: ‖h − μ_c‖² = ‖x‖² + 2 xᵀ(μ_r − μ_c) + ‖μ_r − μ_c‖², x = h − μ_r for any
        # reference class r (the row's class when it has a mean); argmin_c of ‖μ_r−μ_c‖² − 2 xᵀμ̃_c
        d2 = np.empty((pres.size, pres.size))
        for c in range(pres.size):
            diff = mu - mu[c]
            d2[c] = np.einsum("ij,ij->i", diff, diff)
        self.mu_d2 = torch.as_tensor(d2, **t)
        self.mu_c64 = torch.as_tensor(mu_c, **t)
        self._nc1 = "nc1" in self.measures
        self._nc4 = "nc4" in self.measures
        if self._nc1:
            # orthonormal basis B (d x q) of the span of the centred means (both conventions span
            # the same space: the class-mean differences); every U of between_factor lies in it
            K2 = pres.size
            Qn, _ = np.linalg.qr(np.ones((K2, 1)), mode="complete")
            B, _ = np.linalg.qr(mu_c.T @ Qn[:, 1:])
            self.B_T = torch.as_tensor(np.ascontiguousarray(B.T), **t)  # (q, d)
            self.L = {}
            for mean in MEANS:
                U, lam = between_factor(sub, mean, self.rtol)
                self.L[mean] = torch.as_tensor((U.T @ B) / np.sqrt(lam)[:, None], **t)  # (r, q)
            self.C = torch.as_tensor(B.T @ mu_c.T, **t)  # (q, K'): centred means in B coordinates
        self._W64 = self._W32 = None
        if self._nc4 and self._W is not None:
            W = self._W
            base = mu @ W.T + (0.0 if self._b is None else self._b)
            self.logit_base = torch.as_tensor(base, **t)  # (K', K): class-mean logits
            self._W64 = torch.as_tensor(W, **t)
            self.w_max = float(np.linalg.norm(W, axis=1).max())
            cols = [W.T] if self._nc1 else [W.T, mu_c.T]
            self._W32 = torch.as_tensor(np.ascontiguousarray(np.concatenate(cols, 1)), **t).to(
                torch.float32
            )
        self.mu_c_max = float(np.linalg.norm(mu_c, axis=1).max())
        self.counts = torch.zeros(K, **t)
        self.agree = torch.zeros(K, **t)
        self.proj_ss = {m: torch.zeros(K, **t) for m in MEANS}
        self._has_clf = self._nc4 and self._W is not None
        self._mixed = [0, 0]  # batches with / without logits when there is no W
        self.rechecked = 0
        self._work = {}
        self._u = _unit_roundoff()
        self._ready = True

    def _buf(self, name, m, dtype):
        import torch

        b = self._work.get(name)
        if b is None or b.shape[0] < m:
            b = torch.empty(m, self.dim, dtype=dtype, device=self.device)
            self._work[name] = b
        return b[:m]

    def update(self, features, labels, logits=None) -> SecondPass:
        """Add a batch (same validation as :meth:`NCStats.update`; features needing grad are
        detached). Works in chunks of ``CHUNK_ROWS`` rows."""
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
        if logits is not None and self._nc4:
            z = _as_tensor(logits, "logits").detach()
            if z.shape != (m, K):
                raise NCollapseError(
                    f"logits have shape {tuple(z.shape)}, expected (N, K) = ({m}, {K})"
                )
            z = z.to(self.device, torch.float64)
            check_finite(z, "logits")
        if m > CHUNK_ROWS:
            check_finite(x, "features")
        if self._nc4 and self._W is None:
            self._mixed[0 if z is not None else 1] += 1
            if z is not None:
                self._has_clf = True
        for s in range(0, m, CHUNK_ROWS):
            e = min(s + CHUNK_ROWS, m)
            self._chunk(x[s:e], y[s:e], None if z is None else z[s:e])
        return self

    def _chunk(self, x, y, z) -> None:
        import torch

        K = self.num_classes
        m = x.shape[0]
        f64 = torch.float64
        yk = self.lmap[y]  # index among the classes with a first-pass mean, -1 if none
        ok = yk >= 0
        r = yk.clamp(min=0)  # reference class for centring (any class works for NC4)
        xc = self._buf("xc", m, f64)
        torch.index_select(self.mu, 0, r, out=xc)
        xc.sub_(x).neg_()  # h − μ_r in float64
        if not bool(torch.isfinite(xc).all()):
            check_finite(x, "features")
        self.counts += torch.bincount(y, minlength=K).to(f64)
        zT = None
        if self._nc1:
            zT = self.B_T @ xc.T  # (q, m) float64
            okf = ok.to(f64)
            for mean in MEANS:
                ss = (self.L[mean] @ zT).square_().sum(0) * okf
                self.proj_ss[mean].index_add_(0, y, ss)
        if not self._nc4 or (z is None and self._W is None):
            return
        u = self._u
        xn = torch.linalg.vector_norm(xc, dim=1)
        # bound on |float32 product − exact| per unit-norm column: GEMM rounding over d terms,
        # plus rounding x and the columns to float32 (Higham, Accuracy and Stability, Sec. 3.1)
        g = (self.dim + 4) * u / (1 - (self.dim + 4) * u)
        err = (g + 2 * u) * xn + 2.0**-50 * (xn + self.mu_norm[r])
        P = None
        if self._W32 is not None:
            P = (xc.to(torch.float32) @ self._W32).to(f64)  # (m, K [+ K'])
        # --- nearest class centre (among the classes with a first-pass mean)
        if zT is not None:
            ncc_s = self.mu_d2[r] - 2.0 * (self.C.T @ zT).T
            ncc = ncc_s.argmin(1)
        else:
            if P is None:
                P = (xc.to(torch.float32) @ self._mu_c32()).to(f64)
                q = P
            else:
                q = P[:, K:]
            ncc_s = self.mu_d2[r] - 2.0 * q
            ncc = ncc_s.argmin(1)
            two = ncc_s.topk(2, dim=1, largest=False).values
            slack = 4.0 * err * self.mu_c_max + 1e-12 * two.abs().sum(1)
            bad = (two[:, 1] - two[:, 0] <= slack).nonzero().flatten()
            if bad.numel():
                self.rechecked += int(bad.numel())
                exact = self.mu_d2[r[bad]] - 2.0 * (xc[bad] @ self.mu_c64.T)
                ncc[bad] = exact.argmin(1)
        ncc_full = self.present_t[ncc]
        # --- classifier
        if z is not None:
            pred = z.argmax(1)
        else:
            s = P[:, :K] + self.logit_base[r]
            pred = s.argmax(1)
            two = s.topk(2, dim=1).values
            slack = 2.0 * err * self.w_max + 1e-12 * two.abs().sum(1)
            bad = (two[:, 0] - two[:, 1] <= slack).nonzero().flatten()
            if bad.numel():
                self.rechecked += int(bad.numel())
                exact = xc[bad] @ self._W64.T + self.logit_base[r[bad]]
                pred[bad] = exact.argmax(1)
        hit = pred == ncc_full
        self.agree += torch.bincount(y[hit], minlength=K).to(f64)

    def _mu_c32(self):
        import torch

        if "mu32" not in self._work:
            self._work["mu32"] = self.mu_c64.T.contiguous().to(torch.float32)
        return self._work["mu32"]

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
        self.rechecked += other.rechecked
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
        """Snapshot. ``same_data`` tells whether the pass saw the first pass's class counts."""
        if not self._ready:
            raise NCollapseError("the second pass saw no samples; call update() over the data")
        if self._nc4 and self._W is None and min(self._mixed) > 0:
            raise NCollapseError(
                "some batches had logits and some did not; without W, pass logits with every batch"
            )
        counts = np.rint(self.counts.cpu().numpy()).astype(np.int64)
        absent = tuple(int(c) for c in np.flatnonzero(self.stats.counts == 0))
        return SecondPassResult(
            counts=counts,
            agree=np.rint(self.agree.cpu().numpy()).astype(np.int64) if self._has_clf else None,
            proj_ss=(
                {m: self.proj_ss[m].cpu().numpy().copy() for m in MEANS} if self._nc1 else None
            ),
            rtol=self.rtol,
            same_data=bool(np.array_equal(counts, self.stats.counts)),
            measures=self.measures,
            rechecked=int(self.rechecked),
            absent=absent,
            num_ref=int(self.present.size),
        )


def second_pass(
    stats: Statistics,
    batches: Iterable,
    W=None,
    b=None,
    *,
    rtol: float = PINV_RTOL,
    measures=None,
) -> SecondPassResult:
    """Run a :class:`SecondPass` over ``batches`` (an iterable of ``(features, labels)`` or
    ``(features, labels, logits)`` tuples; it is consumed once)."""
    sp = SecondPass(stats, W, b, rtol=rtol, measures=measures)
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
    res = second_pass(stats, batches, W, b, measures=("nc4",))
    if res.agree is None:
        raise NCollapseError(
            "NC4 needs a classifier: pass W (K x d) and optional b, or logits in every batch"
        )
    return res.nc4()["agreement"]
