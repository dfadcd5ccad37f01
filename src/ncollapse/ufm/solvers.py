"""Batched first-order and quasi-Newton solvers for the factorised UFM problems.

Both solvers optimise all ``B`` problems of a :class:`~ncollapse.ufm.models.BatchedUFM` at once:
the parameters of every problem are packed into one ``(B, P)`` tensor, each step is a handful of
batched tensor operations, and every per-problem quantity (step size, curvature pairs, stopping)
is a ``(B,)`` vector. A problem whose gradient norm falls below ``tol`` is frozen (masked), so a
batched solve gives the same per-problem iterates as solving the problems one at a time.

* :func:`gradient_descent`: full-batch heavy-ball GD, ``v <- mu v - lr g``, ``x <- x + v``.
* :func:`lbfgs`: L-BFGS (two-loop recursion, history ``m``) with a per-problem backtracking
  Armijo line search. Near the optimum the change in objective drops below float64 round-off
  before the gradient does; a step is then also accepted when the objective grows by at most
  ``1e-12 max(|F|, 1)`` (its round-off floor) and the gradient norm decreases, which lets L-BFGS
  reach gradient norms ~1e-11.

``metrics_fn(params) -> {name: (B,) tensor}`` adds extra history columns (e.g. the distance to a
known optimum); the history also records the wall time ``time_s`` since the solve started.

Stopping: ``||grad||_2 <= tol`` per problem (absolute, in the solver variables ``(W, G, b)``
with ``G = H sqrt(a)``; see :mod:`ncollapse.ufm.models`). The history records the objective, the
gradient norm and ``model.metrics`` on a geometric iteration grid (ratio ``history_ratio``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from ncollapse.errors import NCollapseError, check_memory

from .models import DTYPE, BatchedUFM


class _Flat:
    """Pack a dict of ``(B, *shape)`` tensors into one ``(B, P)`` tensor and back."""

    def __init__(self, specs, B):
        self.names = [s.name for s in specs]
        self.shapes = [tuple(s.shape) for s in specs]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.B = B
        self.P = int(self.offsets[-1])

    def pack(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([p[n].reshape(self.B, -1) for n in self.names], dim=1)

    def unpack(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            n: X[:, self.offsets[i] : self.offsets[i + 1]].reshape(self.B, *self.shapes[i])
            for i, n in enumerate(self.names)
        }


def geometric_grid(max_iter: int, ratio: float = 1.25) -> set[int]:
    """Iterations ``0, 1, 2, ...`` spaced geometrically (each ~``ratio`` times the previous)."""
    grid, x = {0}, 1.0
    while x <= max_iter:
        grid.add(int(round(x)))
        x = max(x * ratio, x + 1)
    return grid


SOLVERS = ("lbfgs", "gd", "convex")
_DEFAULT_TOL = {"lbfgs": 1e-10, "gd": 1e-9, "convex": 1e-12}
_DEFAULT_MAX_ITER = {"lbfgs": 5000, "gd": 100_000, "convex": 100_000}


@dataclass(frozen=True)
class SolverOptions:
    """How to solve a batched UFM: one object instead of a keyword list per solver function.

    ``solver``: "lbfgs" (default), "gd" (heavy-ball gradient descent) or "convex" (the exact
    class-level CE solver). ``None`` means "the solver's default" for ``tol`` (lbfgs 1e-10, gd
    1e-9, convex 1e-12; an absolute gradient-norm / gradient-mapping bound, >= 0), ``max_iter``
    (5000, 100000, 100000), ``lr`` (gd: 0.05) and ``momentum`` (gd: 0.9), and for
    ``init_scale`` (the model's own init std). ``seeds``: one init seed, or one per problem.
    ``memory`` / ``max_ls``: L-BFGS history length and line-search steps. ``history`` /
    ``history_ratio``: record objective, gradient norm and model metrics on a geometric
    iteration grid. ``progress``: tqdm bar (``None``: only on a terminal for long solves).

    Build one with :meth:`build`, which merges keyword overrides into a base (the solver
    functions accept the old keywords this way), and check the values once (:meth:`__post_init__`).
    """

    solver: str = "lbfgs"
    tol: float | None = None
    max_iter: int | None = None
    seeds: object = 0
    init_scale: float | None = None
    lr: float | None = None
    momentum: float | None = None
    memory: int = 10
    max_ls: int = 30
    history: bool = True
    history_ratio: float = 1.25
    progress: bool | None = None

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise NCollapseError(f"solver={self.solver!r} is not one of {', '.join(SOLVERS)}")
        if self.tol is not None:
            t = _number(self.tol, "tol")
            if not np.isfinite(t) or t < 0:
                raise NCollapseError(
                    f"tol={self.tol!r} must be a finite number >= 0 (a gradient-norm tolerance); "
                    "pass e.g. --tol 1e-10, or leave it out for the solver's default"
                )
        if self.max_iter is not None and (
            isinstance(self.max_iter, bool)
            or int(self.max_iter) != self.max_iter
            or self.max_iter < 1
        ):
            raise NCollapseError(f"max_iter={self.max_iter!r} must be an integer >= 1")
        if self.solver != "gd" and (self.lr is not None or self.momentum is not None):
            raise NCollapseError(f"lr/momentum apply to solver='gd' only, not {self.solver!r}")
        if self.lr is not None and not (_number(self.lr, "lr") > 0 and np.isfinite(self.lr)):
            raise NCollapseError(f"lr={self.lr!r} must be a positive number")
        if self.momentum is not None and not 0 <= _number(self.momentum, "momentum") < 1:
            raise NCollapseError(f"momentum={self.momentum!r} must be in [0, 1)")
        if self.init_scale is not None and not _number(self.init_scale, "init_scale") > 0:
            raise NCollapseError(f"init_scale={self.init_scale!r} must be > 0")
        if int(self.memory) != self.memory or self.memory < 1:
            raise NCollapseError(f"memory={self.memory} must be an integer >= 1")
        if int(self.max_ls) != self.max_ls or self.max_ls < 1:
            raise NCollapseError(f"max_ls={self.max_ls} must be an integer >= 1")
        if not _number(self.history_ratio, "history_ratio") >= 1:
            raise NCollapseError(
                f"history_ratio={self.history_ratio!r} must be >= 1 (1: every iteration)"
            )

    @classmethod
    def build(cls, options: SolverOptions | None = None, **overrides) -> SolverOptions:
        """``options`` (or the defaults) with ``overrides`` applied; ``None`` values are ignored
        (they mean "default"), unknown names raise ``TypeError`` listing the fields."""
        names = {f.name for f in fields(cls)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise TypeError(
                f"unknown solver option(s) {', '.join(bad)}; SolverOptions fields: "
                + ", ".join(sorted(names))
            )
        if options is not None and not isinstance(options, SolverOptions):
            raise TypeError(f"options must be a SolverOptions, not {type(options).__name__}")
        base = options if options is not None else cls()
        kw = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **kw) if kw else base

    @property
    def tol_value(self) -> float:
        return _DEFAULT_TOL[self.solver] if self.tol is None else float(self.tol)

    @property
    def max_iter_value(self) -> int:
        return _DEFAULT_MAX_ITER[self.solver] if self.max_iter is None else int(self.max_iter)

    @property
    def lr_value(self) -> float:
        return 0.05 if self.lr is None else float(self.lr)

    @property
    def momentum_value(self) -> float:
        return 0.9 if self.momentum is None else float(self.momentum)


def _number(x, name: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"{name}={x!r} is not a number") from exc


def _progress(total, enabled, desc):
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)()) and total >= 2000
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, mininterval=0.5)


@dataclass
class UFMSolution:
    """Result of a batched solve: per-problem parameters, diagnostics and history (numpy)."""

    model: BatchedUFM
    solver: str
    params: dict[str, np.ndarray]
    objective: np.ndarray
    grad_norm: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    stalled: np.ndarray
    time_s: float
    history: dict[str, np.ndarray] = field(default_factory=dict)
    extracted: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def B(self) -> int:
        return self.model.B

    def WWt(self) -> np.ndarray:
        """Classifier Gram ``W W^T`` (B, K, K); ``W`` is the product for deep-linear models."""
        W = self.extracted["W"]
        return W @ np.swapaxes(W, 1, 2)

    def MtM(self) -> np.ndarray:
        """Class-mean Gram ``M^T M`` (B, K, K), uncentred means."""
        M = self.extracted["M"]
        return np.swapaxes(M, 1, 2) @ M

    def WM(self) -> np.ndarray:
        """Class-mean logits without bias ``W M`` (B, K, K), columns = classes."""
        return self.extracted["W"] @ self.extracted["M"]

    def logits(self) -> np.ndarray:
        """Class-mean logits ``W M + b 1^T`` (B, K, K)."""
        return self.WM() + self.extracted["b"][:, :, None]

    def take(self, idx) -> UFMSolution:
        """The sub-batch ``idx`` (model, parameters, diagnostics and history columns)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        hist = {
            k: (v if k in ("iteration", "time_s") else v[:, idx]) for k, v in self.history.items()
        }
        return UFMSolution(
            model=self.model.take(idx),
            solver=self.solver,
            params={k: v[idx] for k, v in self.params.items()},
            objective=self.objective[idx],
            grad_norm=self.grad_norm[idx],
            iterations=self.iterations[idx],
            converged=self.converged[idx],
            stalled=self.stalled[idx],
            time_s=self.time_s,
            history=hist,
            extracted={k: v[idx] for k, v in self.extracted.items()},
        )

    def summary(self, i: int = 0) -> dict:
        """JSON-ready summary of problem ``i``."""
        out = {
            "solver": self.solver,
            "objective": float(self.objective[i]),
            "grad_norm": float(self.grad_norm[i]),
            "iterations": int(self.iterations[i]),
            "converged": bool(self.converged[i]),
            "stalled": bool(self.stalled[i]),
            "time_s": self.time_s,
        }
        return out


def _init(model: BatchedUFM, flat: _Flat, init, seeds, init_scale) -> torch.Tensor:
    if init is None:
        p = model.init_params(seeds, init_scale)
    else:
        p = {}
        for name, shape in zip(flat.names, flat.shapes):
            if name not in init:
                raise NCollapseError(f"init is missing parameter {name!r}; it needs {flat.names}")
            x = torch.as_tensor(np.asarray(init[name]), dtype=DTYPE, device=model.device)
            if x.shape == shape:
                x = x.expand(model.B, *shape)
            if tuple(x.shape) != (model.B, *shape):
                raise NCollapseError(
                    f"init[{name!r}] has shape {tuple(x.shape)}; expected {(model.B, *shape)}"
                )
            p[name] = x.clone()
    return flat.pack(p).contiguous()


def _fg(model, flat, X):
    if hasattr(model, "value_and_grad"):
        with torch.no_grad():
            f, grads = model.value_and_grad(flat.unpack(X))
            return f, flat.pack(grads)
    X = X.detach().requires_grad_(True)
    f = model.objective(flat.unpack(X))
    (g,) = torch.autograd.grad(f.sum(), X)
    return f.detach(), g.detach()


class _History:
    def __init__(self, model, flat, grid, record, extra=None):
        self.model, self.flat, self.grid, self.record = model, flat, grid, record
        self.extra = extra
        self.t0 = time.perf_counter()
        self.rows: dict[str, list] = {"iteration": [], "time_s": []}

    def maybe(self, it, X, f, gnorm, force=False):
        if not self.record or (it not in self.grid and not force):
            return
        if self.rows["iteration"] and self.rows["iteration"][-1] == it:
            return
        self.rows["iteration"].append(it)
        self.rows.setdefault("objective", []).append(f.cpu().numpy().copy())
        self.rows.setdefault("grad_norm", []).append(gnorm.cpu().numpy().copy())
        with torch.no_grad():
            p = self.flat.unpack(X)
            vals = dict(self.model.metrics(p))
            if self.extra is not None:
                vals.update(self.extra(p))
            for k, v in vals.items():
                self.rows.setdefault(k, []).append(torch.as_tensor(v).detach().cpu().numpy().copy())
        self.rows["time_s"].append(time.perf_counter() - self.t0)

    def arrays(self):
        return {k: np.asarray(v) for k, v in self.rows.items()}


def _finish(model, flat, solver, X, f, g, iters, conv, stalled, t0, hist):
    gn = g.norm(dim=1)
    with torch.no_grad():
        p = flat.unpack(X)
        extracted = model.extract(p)
    return UFMSolution(
        model=model,
        solver=solver,
        params={k: v.detach().cpu().numpy() for k, v in p.items()},
        objective=f.cpu().numpy(),
        grad_norm=gn.cpu().numpy(),
        iterations=iters.cpu().numpy(),
        converged=conv.cpu().numpy(),
        stalled=stalled.cpu().numpy(),
        time_s=time.perf_counter() - t0,
        history=hist.arrays(),
        extracted=extracted,
    )


def _check_lambda_zero(model, solver):
    lw = getattr(model, "lambda_w_np", None)
    if lw is not None and np.any(lw == 0) and solver != "gd":
        raise NCollapseError(
            f"lambda = 0 has no minimiser (the CE-UFM norms grow without bound); solver={solver!r} "
            "needs lambda > 0; use solver='gd' with a fixed max_iter for the unregularised UFM"
        )


def gradient_descent(
    model: BatchedUFM,
    options: SolverOptions | None = None,
    *,
    init=None,
    metrics_fn=None,
    **legacy,
) -> UFMSolution:
    """Full-batch heavy-ball gradient descent on all problems at once.

    ``x_{t+1} = x_t + v_{t+1}``, ``v_{t+1} = momentum * v_t - lr * grad F(x_t)`` (per problem, in
    the solver variables). A problem stops (is frozen) when ``||grad||_2 <= tol``; problems with
    ``lambda = 0`` (CE) never stop on the gradient (it vanishes only because the norms diverge)
    and report ``converged = False`` after ``max_iter`` steps.
    """
    opts = SolverOptions.build(options, solver="gd", **legacy)
    lr, momentum = opts.lr_value, opts.momentum_value
    tol, max_iter = opts.tol_value, opts.max_iter_value
    _check_lambda_zero(model, "gd")
    t0 = time.perf_counter()
    flat = _Flat(model.param_specs(), model.B)
    check_solver_memory(model, flat.P, vectors=8)
    X = _init(model, flat, init, opts.seeds, opts.init_scale)
    B = model.B
    dev = model.device
    V = torch.zeros_like(X)
    # lambda = 0: the gradient vanishes only as the norms diverge, so those problems never stop
    # on the gradient norm; they run max_iter steps
    lw = getattr(model, "lambda_w_np", None)
    tolv = torch.full((B,), float(tol), dtype=DTYPE, device=dev)
    if lw is not None:
        tolv = torch.where(torch.as_tensor(lw == 0, device=dev), torch.zeros_like(tolv), tolv)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    iters = torch.full((B,), max_iter, dtype=torch.long, device=dev)
    hist = _History(
        model, flat, geometric_grid(max_iter, opts.history_ratio), opts.history, metrics_fn
    )
    bar = _progress(max_iter, opts.progress, f"gd[{model.kind}] x{B}")
    f, g = _fg(model, flat, X)
    it = 0
    for it in range(max_iter + 1):
        if it > 0:
            f, g = _fg(model, flat, X)
        if not bool(torch.isfinite(f).all()):
            bad = int((~torch.isfinite(f)).nonzero()[0])
            raise NCollapseError(
                f"gradient descent diverged at iteration {it} (problem {bad}); lower lr={lr:g}"
            )
        gn = g.norm(dim=1)
        done = active & (gn <= tolv)
        iters = torch.where(done, torch.full_like(iters, it), iters)
        active = active & ~done
        hist.maybe(it, X, f, gn)
        if not bool(active.any()) or it == max_iter:
            break
        V = momentum * V - lr * g
        V = V * active[:, None]
        X = X + V
        if bar is not None and it % 100 == 0:
            bar.update(100)
            bar.set_postfix(active=int(active.sum()), gmax=f"{float(gn.max()):.1e}")
    if bar is not None:
        bar.close()
    gn = g.norm(dim=1)
    hist.maybe(it, X, f, gn, force=True)
    conv = (gn <= tolv) & (tolv > 0)
    stalled = torch.zeros(B, dtype=torch.bool, device=dev)
    return _finish(model, flat, "gd", X, f, g, iters, conv, stalled, t0, hist)


def lbfgs(
    model: BatchedUFM,
    options: SolverOptions | None = None,
    *,
    init=None,
    metrics_fn=None,
    **legacy,
) -> UFMSolution:
    """Batched L-BFGS with per-problem Armijo backtracking (see module docstring).

    Each problem keeps its own curvature pairs ``(s, y)`` (pairs with ``s.y <= 1e-300`` are
    skipped), its own initial scaling ``gamma = s.y / y.y`` and its own step. A problem whose line
    search fails twice in a row is frozen and flagged ``stalled`` (round-off floor reached).
    """
    opts = SolverOptions.build(options, solver="lbfgs", **legacy)
    tol, max_iter, max_ls = opts.tol_value, opts.max_iter_value, int(opts.max_ls)
    _check_lambda_zero(model, "lbfgs")
    t0 = time.perf_counter()
    flat = _Flat(model.param_specs(), model.B)
    m = int(opts.memory)
    check_solver_memory(model, flat.P, vectors=2 * m + 12)
    X = _init(model, flat, init, opts.seeds, opts.init_scale)
    B, P = X.shape
    dev = model.device
    S = torch.zeros(m, B, P, dtype=DTYPE, device=dev)
    Yv = torch.zeros(m, B, P, dtype=DTYPE, device=dev)
    rho = torch.zeros(m, B, dtype=DTYPE, device=dev)
    gamma = torch.ones(B, dtype=DTYPE, device=dev)
    has_pairs = torch.zeros(B, dtype=torch.bool, device=dev)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    stalled = torch.zeros(B, dtype=torch.bool, device=dev)
    fails = torch.zeros(B, dtype=torch.long, device=dev)
    iters = torch.full((B,), max_iter, dtype=torch.long, device=dev)
    hist = _History(
        model, flat, geometric_grid(max_iter, opts.history_ratio), opts.history, metrics_fn
    )
    bar = _progress(max_iter, opts.progress, f"lbfgs[{model.kind}] x{B}")
    f, g = _fg(model, flat, X)
    if not bool(torch.isfinite(f).all()):
        raise NCollapseError("the objective is not finite at the initial point; lower init_scale")
    c1 = 1e-4
    # objective noise floor: sums of O(|logit|) terms lose ~|logit| * eps each
    ftol = 1e-12
    slot = 0
    filled = 0
    it = 0
    for it in range(max_iter + 1):
        gn = g.norm(dim=1)
        done = active & (gn <= tol)
        iters = torch.where(done, torch.full_like(iters, it), iters)
        active = active & ~done
        hist.maybe(it, X, f, gn)
        if not bool(active.any()) or it == max_iter:
            break
        # two-loop recursion, newest pair first
        q = g.clone()
        alpha = torch.zeros(m, B, dtype=DTYPE, device=dev)
        order = [(slot - 1 - j) % m for j in range(filled)]
        for j in order:
            alpha[j] = rho[j] * (S[j] * q).sum(1)
            q = q - alpha[j][:, None] * Yv[j]
        r = gamma[:, None] * q
        for j in reversed(order):
            beta = rho[j] * (Yv[j] * r).sum(1)
            r = r + S[j] * (alpha[j] - beta)[:, None]
        d = -r
        gd = (g * d).sum(1)
        bad = ~(gd < 0) | ~torch.isfinite(gd)
        d = torch.where(bad[:, None], -g, d)
        gd = torch.where(bad, -(gn**2), gd)
        d = d * active[:, None]
        # initial step: 1 for quasi-Newton directions, 1/||g|| for a steepest-descent start
        t = torch.where(has_pairs & ~bad, torch.ones_like(gn), 1.0 / gn.clamp_min(1e-300)).clamp(
            max=1.0
        )
        accepted = ~active
        Xn, fn, gnew = X.clone(), f.clone(), g.clone()
        for _ in range(max_ls):
            Xt = X + t[:, None] * d
            ft, gt = _fg(model, flat, Xt)
            armijo = ft <= f + c1 * t * gd
            roundoff = (ft <= f + ftol * f.abs().clamp_min(1.0)) & (gt.norm(dim=1) < gn)
            ok = ~accepted & torch.isfinite(ft) & (armijo | roundoff)
            Xn = torch.where(ok[:, None], Xt, Xn)
            fn = torch.where(ok, ft, fn)
            gnew = torch.where(ok[:, None], gt, gnew)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, 0.5 * t)
        failed = active & ~accepted
        fails = torch.where(failed, fails + 1, torch.zeros_like(fails))
        newly_stalled = fails >= 2
        stalled = stalled | newly_stalled
        active = active & ~newly_stalled
        # failed problems: drop their curvature pairs and retry with steepest descent
        if bool(failed.any()):
            keep = (~failed).to(DTYPE)
            rho = rho * keep
            has_pairs = has_pairs & ~failed
        s = Xn - X
        y = gnew - g
        sy = (s * y).sum(1)
        yy = (y * y).sum(1)
        valid = accepted & (sy > 1e-300) & (yy > 0) & ~failed
        vf = valid.to(DTYPE)
        S[slot] = s * vf[:, None]
        Yv[slot] = y * vf[:, None]
        rho[slot] = torch.where(valid, 1.0 / sy.clamp_min(1e-300), torch.zeros_like(sy))
        gamma = torch.where(valid, sy / yy.clamp_min(1e-300), gamma)
        has_pairs = has_pairs | valid
        slot = (slot + 1) % m
        filled = min(filled + 1, m)
        X, f, g = Xn, fn, gnew
        if bar is not None:
            bar.update(1)
            if it % 20 == 0:
                bar.set_postfix(active=int(active.sum()), gmax=f"{float(gn.max()):.1e}")
    if bar is not None:
        bar.close()
    gn = g.norm(dim=1)
    hist.maybe(it, X, f, gn, force=True)
    conv = gn <= tol
    return _finish(model, flat, "lbfgs", X, f, g, iters, conv, stalled & ~conv, t0, hist)


def solve(
    model: BatchedUFM,
    options: SolverOptions | str | None = None,
    *,
    init=None,
    metrics_fn=None,
    **legacy,
) -> UFMSolution:
    """Run ``options.solver`` ("lbfgs" or "gd") on ``model``; ``options`` may also be the solver
    name (the old ``solve(model, "gd", lr=...)`` form); keywords override option fields."""
    if isinstance(options, str):
        legacy = {"solver": options, **legacy}
        options = None
    opts = SolverOptions.build(options, **legacy)
    if opts.solver == "lbfgs":
        return lbfgs(model, opts, init=init, metrics_fn=metrics_fn)
    if opts.solver == "gd":
        return gradient_descent(model, opts, init=init, metrics_fn=metrics_fn)
    raise NCollapseError(
        "solver='convex' is the class-level CE solver: use ufm.solve_ce or ufm.solve_ce_convex"
    )


def default_tol(solver: str) -> float:
    """The solver's default tolerance (see :class:`SolverOptions`)."""
    return _DEFAULT_TOL.get(solver, 1e-10)


def check_solver_memory(model: BatchedUFM, n_params: int, vectors: int) -> None:
    """Refuse a solve whose working set (``vectors`` copies of the ``(B, P)`` parameters plus the
    model's per-evaluation tensors) does not fit in the memory of ``model.device``."""
    need = 8.0 * model.B * n_params * vectors + model.eval_nbytes()
    avail = None
    if model.device.type == "cuda":  # pragma: no cover - needs a GPU
        avail = torch.cuda.mem_get_info(model.device)[0]
    check_memory(
        need,
        f"solving {model.B} {model.kind} UFM problem(s) with K={model.K}, d={model.d}, "
        f"{model.J} feature columns ({n_params} parameters each)",
        model.memory_fix(),
        available=avail,
    )


__all__ = [
    "SOLVERS",
    "SolverOptions",
    "UFMSolution",
    "check_solver_memory",
    "default_tol",
    "geometric_grid",
    "gradient_descent",
    "lbfgs",
    "solve",
]
