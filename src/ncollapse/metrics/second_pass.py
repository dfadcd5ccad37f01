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
    _check_mean,
    between_factor,
    between_spectrum,
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

    def _proj(self, mean: str) -> np.ndarray:
        if self.proj_ss is None:
            raise NCollapseError("this second pass did not compute 'nc1'; add it to measures")
        if mean not in self.proj_ss:
            raise NCollapseError(
                f"this second pass computed NC1 for means={list(self.proj_ss)}, not {mean!r}"
            )
        return self.proj_ss[mean]

    def _ref_mask(self) -> np.ndarray:
        m = np.ones(self.counts.shape[0], dtype=bool)
        m[list(self.absent)] = False
        return m

    def nc1_per_class(self, mean: str = "unweighted", divide_by_k: bool = True) -> np.ndarray:
        """Per-class NC1 of the samples of this pass around the first-pass means, relative to the
        first-pass ``Σ_B`` (NaN for classes without samples here or without a first-pass mean)."""
        ss = self._proj(mean)
        ok = (self.counts > 0) & self._ref_mask()
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(ok, ss / np.maximum(self.counts, 1), np.nan)
        per = np.where(ok, np.maximum(per, 0.0), np.nan)
        k = self.num_ref or self.counts.shape[0]
        return per / k if divide_by_k else per

    def nc1(self, mean: str = "unweighted", divide_by_k: bool = True) -> float:
        """Sample-weighted NC1 of this pass's samples: ``Σ_i ‖Λ^{-1/2}Uᵀ(h_i − μ_{y_i})‖² / N``
        (``/K``) over the samples whose class has a first-pass mean. On the first-pass data this
        equals ``tr(Σ_W Σ_B†)/K``; on held-out data it is the held-out NC1."""
        ss = self._proj(mean)
        ok = self._ref_mask()
        n = self.counts[ok].sum()
        if n == 0:
            return float("nan")
        val = float(max(ss[ok].sum(), 0.0) / n)
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
    classifier or logits is skipped. ``means``: the global-mean conventions of the NC1
    projections (default both; the first one costs ``O(q)`` per row, the other a ``q x r``
    product). The data may be the first pass's or other (held-out) data;
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
        means=MEANS,
    ):
        import torch

        if not isinstance(stats, Statistics):
            raise NCollapseError(
                f"expected ncollapse.metrics.Statistics (from NCStats.snapshot()), got "
                f"{type(stats).__name__}"
            )
        self.measures = _check_measures(measures)
        if isinstance(means, str):
            means = (means,)
        self.means = tuple(dict.fromkeys(_check_mean(m) for m in means))
        if not self.means:
            raise NCollapseError("means=() is empty; pass 'unweighted' and/or 'weighted'")
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
            # B (d x q): the eigenvectors of Σ_B of the first convention, all q of them -- an
            # orthonormal basis of the class-mean differences, the same space for both
            # conventions. In it that convention's Σ_B† is diagonal (O(q) per row); the other
            # convention's factor is a (r x q) matrix L.
            first = self.means[0]
            B, lam_all = between_spectrum(sub, first)
            _, lam = between_factor(sub, first, self.rtol)
            self.B_T = torch.as_tensor(np.array(B.T, order="C"), **t)  # (q, d)
            self.inv_lam = torch.as_tensor(1.0 / lam, **t)[:, None]  # kept: the leading r
            self.L = {}
            for mean in self.means[1:]:
                U, lam_m = between_factor(sub, mean, self.rtol)
                self.L[mean] = torch.as_tensor((U.T @ B) / np.sqrt(lam_m)[:, None], **t)
            self.C_T = torch.as_tensor(mu_c @ B, **t)  # (K', q): centred means in B coordinates
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
        self.proj_ss = {m: torch.zeros(K, **t) for m in self.means}
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
        f64, f32 = torch.float64, torch.float32
        yk = self.lmap[y]  # index among the classes with a first-pass mean, -1 if none
        ok = yk >= 0
        r = yk.clamp(min=0)  # reference class for centring (any class works for NC4)
        self.counts += torch.bincount(y, minlength=K).to(f64)
        need_clf = self._nc4 and z is None and self._W is not None
        need_ncc = self._nc4 and (z is not None or self._W is not None)
        u = self._u
        g = (self.dim + 4) * u / (1 - (self.dim + 4) * u)
        # rows are centred at a class mean before any product; the sign is flipped
        # (xc = μ_r − h) to save a pass, and every formula below accounts for it
        if self._nc1:
            xc = self._buf("xc", m, f64)
            if x.dtype != f64:  # convert once into a reused buffer (a mixed-dtype sub_ would
                x = self._buf("x64", m, f64).copy_(x)  # allocate a fresh float64 copy each time)
            torch.index_select(self.mu, 0, r, out=xc)
            xc.sub_(x)
            zT = self.B_T @ xc.T  # (q, m) float64 projection, = −Bᵀ(h − μ_r)
            okf = ok.to(f64)
            r0 = self.inv_lam.shape[0]
            for mean in self.means:
                if mean == self.means[0]:
                    ss = (zT[:r0].square() * self.inv_lam).sum(0)
                else:
                    ss = (self.L[mean] @ zT).square_().sum(0)
                if not bool(torch.isfinite(ss).all()):
                    check_finite(x, "features")
                self.proj_ss[mean].index_add_(0, y, ss * okf)
            if not need_ncc:
                return
            # nearest centre in float64 from the projection: −2 (h − μ_r)ᵀμ̃_c = +2 zᵀC
            ncc_s = self.mu_d2[r].add_((self.C_T @ zT).T, alpha=2.0)
            ncc = ncc_s.argmin(1)
            if need_clf:
                x32 = self._buf("x32", m, f32).copy_(xc)
                xn = torch.linalg.vector_norm(x32, dim=1).to(f64)
                err = (g + 2 * u) * xn + 2.0**-50 * (xn + self.mu_norm[r])
                P = (x32 @ self._W32).to(f64)
        else:
            if not need_ncc:
                return
            # float32 centring: its rounding (≤ u(‖μ_r‖ + ‖h‖) per row) is inside the bound
            x32 = self._buf("x32", m, f32)
            torch.index_select(self._mu32(), 0, r, out=x32)
            x32.sub_(x if x.dtype == f32 else x.to(f32))
            xn = torch.linalg.vector_norm(x32, dim=1).to(f64)
            if not bool(torch.isfinite(xn).all()):
                check_finite(x, "features")
            err = (g + 3 * u) * xn + 3 * u * self.mu_norm[r]
            P = (x32 @ (self._W32 if self._W32 is not None else self._mu_c32())).to(f64)
            q = P[:, K:] if self._W32 is not None else P
            ncc_s = self.mu_d2[r].add_(q, alpha=2.0)  # −2 (h − μ_r)ᵀμ̃_c = +2 (μ_r − h)ᵀμ̃_c
            ncc = self._certify(ncc_s, 2.0 * err * self.mu_c_max, x, r, "ncc", largest=False)
        ncc_full = self.present_t[ncc]
        # --- classifier
        if z is not None:
            pred = z.argmax(1)
        else:
            s = self.logit_base[r].sub_(P[:, :K])  # wᵀh + b = wᵀμ_r + b − wᵀ(μ_r − h)
            pred = self._certify(s, err * self.w_max, x, r, "clf", largest=True)
        hit = pred == ncc_full
        self.agree += torch.bincount(y[hit], minlength=K).to(f64)

    def _certify(self, s, e, x, r, which: str, largest: bool):
        """Index of the best entry of each row of ``s`` (max or min); ``e`` bounds each entry's
        error (per row). Rows whose best two are within ``2e`` (+ float64 slack) are recomputed
        in float64 from the input."""
        import torch

        if largest:
            v1, i1 = s.max(1)
        else:
            v1, i1 = s.min(1)
        if s.shape[1] < 2:
            return i1
        fill = float("-inf") if largest else float("inf")
        s.scatter_(1, i1[:, None], fill)
        v2 = s.max(1).values if largest else s.min(1).values
        slack = 2.0 * e + 1e-12 * (v1.abs() + v2.abs())
        bad = ((v1 - v2).abs() <= slack).nonzero().flatten()
        if bad.numel():
            self.rechecked += int(bad.numel())
            xb = x[bad].to(torch.float64) - self.mu[r[bad]]  # h − μ_r in float64
            if which == "clf":
                exact = xb @ self._W64.T + self.logit_base[r[bad]]
                i1[bad] = exact.argmax(1)
            else:
                exact = self.mu_d2[r[bad]] - 2.0 * (xb @ self.mu_c64.T)
                i1[bad] = exact.argmin(1)
        return i1

    def _mu32(self):
        import torch

        if "mu32_rows" not in self._work:
            self._work["mu32_rows"] = self.mu.to(torch.float32)
        return self._work["mu32_rows"]

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
        for m in self.means:
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
        buf = torch.cat([self.counts, self.agree, *(self.proj_ss[m] for m in self.means)])
        dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
        parts = buf.split(K)
        self.counts, self.agree = parts[0].clone(), parts[1].clone()
        for i, m in enumerate(self.means):
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
                {m: self.proj_ss[m].cpu().numpy().copy() for m in self.means} if self._nc1 else None
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
