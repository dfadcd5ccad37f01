"""Exact class-level convex solver for the CE-UFM with ridge (SELI model): ground truth.

Model: Thrampoulidis et al., "Imbalance Trouble", NeurIPS 2022, arXiv 2208.05512 (CE + ridge UFM).

Because ``min {(lambda_W ||W||^2 + lambda_H ||H||^2)/2 : W H = X} = sqrt(lambda_W lambda_H) ||X||_*``
and an optimum has identical columns within a class (``X = Xbar Y``, ``||Xbar Y||_* = ||Xbar D||_*``,
``D = diag(sqrt(n))``), the factorised problem (``d >= K``) is equivalent to

    min_{Xbar, b}  sum_c n_c CE(xbar_c + b; c) + lam ||Xbar D||_* + (lambda_b/2) ||b||^2,
    lam = sqrt(lambda_W lambda_H).

We solve it in ``V = Xbar D`` (column ``v_c = sqrt(n_c) xbar_c``) and ``beta = sqrt(N) b`` with
FISTA (accelerated proximal gradient) with adaptive restart (O'Donoghue & Candes) and an adaptive
step. The smooth part has a count-independent Lipschitz constant: the softmax Hessian is
``<= 1/2``, so ``L = 1/2`` without bias and ``L = 1 + lambda_b/N`` with bias (in ``(V, beta)``).
Near the optimum the local curvature is far smaller (``~ 1 - p_true``, i.e. ``~ lambda``), so each
iteration first tries twice the last step and backtracks until the local Lipschitz estimate
``||grad f(x+) - grad f(y)|| / ||x+ - y||`` is at most ``1/t`` (never below ``1/L``, which always
qualifies): at ``lambda = 1e-6`` this needs ~100x fewer iterations
than the fixed step. The prox of ``t lam ||V||_*`` is singular-value soft-thresholding; all ``B``
problems run at once with a batched SVD and per-problem steps. Stopping: the gradient mapping at
the fixed step, ``L ||x - prox(x - grad f(x)/L)|| <= tol`` (a certificate: the distance of 0 to
the subdifferential at the prox point is at most twice this).

Recovery of the factors (balanced split, then rescaled for ``lambda_W != lambda_H`` with
``s = (lambda_H/lambda_W)^{1/4}``): ``V = U S Q^T``; ``W = s U S^{1/2} R^T``,
``M = (1/s) R S^{1/2} Q^T D^{-1}``, so ``W W^T = s^2 (V V^T)^{1/2}``,
``M^T M = s^-2 D^{-1} (V^T V)^{1/2} D^{-1}`` and ``W M = Xbar``.

The zero solution ``W = H = 0`` is optimal iff ``lam >= ||Zhat||_op`` (no bias: ``Zhat = P D``
at class level; unregularised bias: ``Zhat = (I - n 1^T/N) D``) because the CE gradient at
``X = 0`` is ``-Zhat`` (see :func:`ncollapse.geometry.zero_threshold`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from ncollapse.errors import NCollapseError, check_memory

from .models import (
    DTYPE,
    _broadcast_B,
    _counts_batch,
    _device_memory,
    _lambdas,
    _param_batch,
    resolve_device,
)


@dataclass
class ConvexCESolution:
    """Class-level optimum of the CE-UFM (numpy float64, batched)."""

    counts: np.ndarray  # (B, K)
    lam: np.ndarray  # (B,) sqrt(lambda_W lambda_H)
    scale: np.ndarray  # (B,) (lambda_H/lambda_W)^(1/4)
    V: np.ndarray  # (B, K, K) = Xbar D
    b: np.ndarray  # (B, K)
    objective: np.ndarray  # (B,)
    residual: np.ndarray  # (B,) gradient-mapping norm at the returned point
    iterations: np.ndarray  # (B,)
    converged: np.ndarray  # (B,)
    time_s: float
    bias: bool

    @property
    def B(self) -> int:
        return self.V.shape[0]

    @property
    def Xbar(self) -> np.ndarray:
        """Class-mean logits without bias ``W M`` (B, K, K), columns = classes."""
        return self.V / np.sqrt(self.counts)[:, None, :]

    def WM(self) -> np.ndarray:
        return self.Xbar

    def logits(self) -> np.ndarray:
        return self.Xbar + self.b[:, :, None]

    def norm_X(self) -> np.ndarray:
        """``||W H||_F`` over all N samples ``= ||Xbar D||_F = ||V||_F`` (B,)."""
        return np.sqrt(np.sum(self.V**2, axis=(1, 2)))

    def _svd(self):
        U, s, Qt = np.linalg.svd(self.V)
        return U, s, Qt

    def WWt(self) -> np.ndarray:
        U, s, _ = self._svd()
        return (self.scale**2)[:, None, None] * ((U * s[:, None, :]) @ np.swapaxes(U, 1, 2))

    def MtM(self) -> np.ndarray:
        _, s, Qt = self._svd()
        Q = np.swapaxes(Qt, 1, 2)
        G = (Q * s[:, None, :]) @ Qt
        dinv = 1.0 / np.sqrt(self.counts)
        return (self.scale**-2)[:, None, None] * (dinv[:, :, None] * G * dinv[:, None, :])

    def factors(self, d: int | None = None) -> dict[str, np.ndarray]:
        """Explicit optimal factors ``W`` (B, K, d), ``M`` (B, d, K), ``b`` and the solver variable
        ``G = M diag(sqrt(n))`` of :class:`~ncollapse.ufm.models.CERidgeUFM` (class features).

        ``R`` = the first K coordinate axes of ``R^d``.
        """
        B, K = self.counts.shape
        d = K if d is None else int(d)
        if d < K:
            raise NCollapseError(f"d={d} is too small for the CE-UFM factors; need d >= {K}")
        U, s, Qt = self._svd()
        rs = np.sqrt(s)
        W = np.zeros((B, K, d))
        MD = np.zeros((B, d, K))
        W[:, :, :K] = self.scale[:, None, None] * U * rs[:, None, :]
        MD[:, :K, :] = (1.0 / self.scale)[:, None, None] * rs[:, :, None] * Qt
        M = MD / np.sqrt(self.counts)[:, None, :]
        return {"W": W, "M": M, "G": MD, "b": self.b.copy()}

    def summary(self, i: int = 0) -> dict:
        return {
            "solver": "convex",
            "objective": float(self.objective[i]),
            "residual": float(self.residual[i]),
            "iterations": int(self.iterations[i]),
            "converged": bool(self.converged[i]),
            "time_s": self.time_s,
        }


def _svt(V, thr):
    U, s, Qt = torch.linalg.svd(V)
    s = (s - thr[:, None]).clamp_min(0.0)
    return (U * s[:, None, :]) @ Qt, s


def solve_ce_convex(
    counts,
    lam=None,
    *,
    lambda_w=None,
    lambda_h=None,
    bias: bool = False,
    lambda_b=0.0,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    device=None,
    progress: bool | None = None,
    init: ConvexCESolution | None = None,
) -> ConvexCESolution:
    """Solve ``B`` class-level CE-UFM problems exactly (FISTA + SVT, batched; module docstring).

    ``lam`` (or ``lambda_w``/``lambda_h``) must be > 0: at ``lambda = 0`` no minimiser exists.
    ``init`` warm-starts from a previous solution of the same shape (continuation in lambda).
    """
    cnt = _counts_batch(counts)
    B = _broadcast_B(cnt, lam, lambda_w, lambda_h, lambda_b)
    if cnt.shape[0] == 1 and B > 1:
        cnt = np.repeat(cnt, B, axis=0)
    K = cnt.shape[1]
    if not (np.isfinite(float(tol)) and float(tol) >= 0):
        raise NCollapseError(f"tol={tol!r} must be a finite number >= 0; pass e.g. --tol 1e-12")
    if int(max_iter) != max_iter or max_iter < 1:
        raise NCollapseError(f"max_iter={max_iter!r} must be an integer >= 1")
    dev = resolve_device(device)
    # iterates, momentum points, gradients, SVD factors and line-search trials: ~20 (B, K, K)
    check_memory(
        8.0 * 20 * B * K * K,
        f"the convex CE solver for {B} problem(s) with K={K} classes",
        "use fewer classes or fewer problems per batch",
        available=_device_memory(dev),
    )
    lw, lh = _lambdas(lam, lambda_w, lambda_h, B, allow_zero=False, model="ce (convex)")
    lb = _param_batch(lambda_b, B, "lambda_b", allow_zero=True)
    if not bias and np.any(lb != 0):
        raise NCollapseError("lambda_b is set but bias is off; pass bias=True (--bias)")
    t0 = time.perf_counter()
    lam_eff = np.sqrt(lw * lh)
    n = torch.as_tensor(cnt, dtype=DTYPE, device=dev)
    N = n.sum(1)
    sq = n.sqrt()
    sqN = N.sqrt()
    lam_t = torch.as_tensor(lam_eff, dtype=DTYPE, device=dev)
    lb_t = torch.as_tensor(lb, dtype=DTYPE, device=dev)
    eye = torch.eye(K, dtype=DTYPE, device=dev)
    L = torch.where(
        torch.full((B,), bias, device=dev), 1.0 + lb_t / N, torch.full((B,), 0.5, device=dev)
    ).to(DTYPE)
    # per-problem constants; every iteration works on the still-active problems only
    full = {"n": n, "sq": sq, "sqN": sqN, "N": N, "lb": lb_t, "lam": lam_t, "step0": 1.0 / L}

    def take(c, idx):
        return {k: v.index_select(0, idx) for k, v in c.items()}

    def smooth(V, beta, c, need_grad=True):
        """Smooth part f (sum-CE + bias ridge) and, optionally, its gradient in (V, beta)."""
        Z = V / c["sq"][:, None, :]
        if bias:
            Z = Z + (beta / c["sqN"][:, None])[:, :, None]
        lse = torch.logsumexp(Z, dim=1)
        f = (c["n"] * (lse - torch.diagonal(Z, dim1=1, dim2=2))).sum(1)
        if bias:
            f = f + 0.5 * c["lb"] / c["N"] * (beta**2).sum(1)
        if not need_grad:
            return f, None, None
        Pm = torch.exp(Z - lse[:, None, :]) - eye  # columns p_c - e_c
        gV = Pm * c["sq"][:, None, :]
        if bias:
            gb = (Pm * c["n"][:, None, :]).sum(2) / c["sqN"][:, None]
            gb = gb + (c["lb"] / c["N"])[:, None] * beta
        else:
            gb = torch.zeros_like(beta)
        return f, gV, gb

    def objective(V, beta):
        f = smooth(V, beta, full, need_grad=False)[0]
        return f + lam_t * torch.linalg.svdvals(V).sum(1)

    def certificate(V, beta, c):
        """Gradient-mapping norm at step 1/L: ||x - prox(x - grad f(x)/L)|| * L."""
        s0 = c["step0"]
        _, gV, gb = smooth(V, beta, c)
        Vp, _ = _svt(V - s0[:, None, None] * gV, s0 * c["lam"])
        bp = beta - s0[:, None] * gb
        return torch.sqrt(((V - Vp) ** 2).sum((1, 2)) + ((beta - bp) ** 2).sum(1)) / s0

    if init is not None:
        if init.V.shape != (B, K, K):
            raise NCollapseError(f"init has shape {init.V.shape}; expected {(B, K, K)}")
        V = torch.as_tensor(init.V, dtype=DTYPE, device=dev).clone()
        beta = torch.as_tensor(init.b, dtype=DTYPE, device=dev) * sqN[:, None]
    else:
        V = torch.zeros(B, K, K, dtype=DTYPE, device=dev)
        beta = torch.zeros(B, K, dtype=DTYPE, device=dev)
        if bias:  # start at the optimal bias of X = 0 (softmax(b) = n/N)
            beta = torch.log(n / N[:, None]) * sqN[:, None]
    yV, yb = V.clone(), beta.clone()
    theta = torch.ones(B, dtype=DTYPE, device=dev)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    iters = torch.full((B,), max_iter, dtype=torch.long, device=dev)
    res = torch.full((B,), float("inf"), dtype=DTYPE, device=dev)
    bar = None
    if (progress is None and sys.stderr.isatty() and max_iter >= 20000) or progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc=f"fista[ce] x{B}", leave=False, mininterval=0.5)
    step = full["step0"].clone()
    it = 0
    for it in range(1, max_iter + 1):
        idx = torch.nonzero(active).squeeze(1)
        c = full if idx.numel() == B else take(full, idx)
        s0, smax = c["step0"], c["step0"] * 1e8
        yVa, yba = yV.index_select(0, idx), yb.index_select(0, idx)
        Va, ba = V.index_select(0, idx), beta.index_select(0, idx)
        stepa, th = step.index_select(0, idx), theta.index_select(0, idx)
        _, gV, gb = smooth(yVa, yba, c)
        # adaptive step: try 2x the last accepted step and backtrack until the local Lipschitz
        # estimate ||grad f(x+) - grad f(y)|| / ||x+ - y|| is <= 1/t (gradients stay accurate
        # where differences of f values drown in round-off); the global 1/L always qualifies
        t = torch.minimum(2.0 * stepa, smax)
        need = torch.ones_like(th, dtype=torch.bool)
        Vn, bn = Va.clone(), ba.clone()
        for _ in range(60):
            j = torch.nonzero(need).squeeze(1)
            cj = take(c, j)
            tj = t.index_select(0, j)
            yVj, ybj = yVa.index_select(0, j), yba.index_select(0, j)
            gVj, gbj = gV.index_select(0, j), gb.index_select(0, j)
            Vt, _ = _svt(yVj - tj[:, None, None] * gVj, tj * cj["lam"])
            bt = ybj - tj[:, None] * gbj
            _, gVt, gbt = smooth(Vt, bt, cj)
            dx = torch.sqrt(((Vt - yVj) ** 2).sum((1, 2)) + ((bt - ybj) ** 2).sum(1))
            dg = torch.sqrt(((gVt - gVj) ** 2).sum((1, 2)) + ((gbt - gbj) ** 2).sum(1))
            ok = (tj * dg <= dx) | (tj <= cj["step0"] * (1 + 1e-12))
            jj = j[ok]
            Vn[jj] = Vt[ok]
            bn[jj] = bt[ok]
            stepa[jj] = tj[ok]
            need[jj] = False
            if not bool(need.any()):
                break
            t = torch.where(need, torch.maximum(0.5 * t, s0), t)
        dV, db = yVa - Vn, yba - bn
        r = torch.sqrt((dV**2).sum((1, 2)) + (db**2).sum(1)) / stepa
        # adaptive restart (O'Donoghue & Candes): momentum points uphill -> reset
        up = (dV * (Vn - Va)).sum((1, 2)) + (db * (bn - ba)).sum(1) > 0
        th = torch.where(up, torch.ones_like(th), th)
        th_n = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * th**2))
        mom = (th - 1.0) / th_n
        V[idx] = Vn
        beta[idx] = bn
        yV[idx] = Vn + mom[:, None, None] * (Vn - Va)
        yb[idx] = bn + mom[:, None] * (bn - ba)
        theta[idx] = th_n
        step[idx] = stepa
        # stop on the step-1/L gradient mapping (the adaptive-step one underestimates it)
        cand = r <= tol
        if bool(cand.any()):
            ci = idx[cand]
            rc = certificate(Vn[cand], bn[cand], take(c, torch.nonzero(cand).squeeze(1)))
            res[ci] = rc
            done = ci[rc <= tol]
            iters[done] = it
            active[done] = False
        if bar is not None and it % 500 == 0:
            bar.update(500)
            bar.set_postfix(active=int(active.sum()), res=f"{float(r.max()):.1e}")
        if not bool(active.any()):
            break
    left = torch.nonzero(active).squeeze(1)
    if left.numel():
        res[left] = certificate(V[left], beta[left], take(full, left))
    if bar is not None:
        bar.close()
    obj = objective(V, beta)
    return ConvexCESolution(
        counts=cnt,
        lam=lam_eff,
        scale=(lh / lw) ** 0.25,
        V=V.cpu().numpy(),
        b=(beta / sqN[:, None]).cpu().numpy(),
        objective=obj.cpu().numpy(),
        residual=res.cpu().numpy(),
        iterations=iters.cpu().numpy(),
        converged=(res <= tol).cpu().numpy(),
        time_s=time.perf_counter() - t0,
        bias=bool(bias),
    )
