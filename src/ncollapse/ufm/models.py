"""Batched unconstrained-features models (UFMs) in torch float64.

Every model holds ``B`` independent problems of the same kind and shape, stacked along a leading
batch axis, so one call to :meth:`objective` evaluates all of them with batched matrix products
(``torch.bmm``). The objective returned has shape ``(B,)``; problems are separable, so
``objective.sum()`` has the per-problem gradients as its gradient.

Feature columns
---------------
The features are stored as ``J`` columns with a label ``y_j`` and a weight ``a_j``:

* ``features="class"`` (default): one column per class, ``a_c = n_c``. This is the class-level
  reduction: every global minimiser satisfies NC1 (``h_i = mu_{y_i}``; SELI, arXiv 2208.05512;
  Liu, arXiv 2411.17278), so
  restricting ``H = M Y`` loses nothing and problems with different N stack without padding.
* ``features="sample"``: one column per training sample (``a_j = 1``); problems with different N
  are padded to the largest N with weight-0 columns that start at 0 and stay at 0 (their only
  gradient is the ridge term).

The solvers work with the scaled variable ``G = H diag(sqrt(a))`` (``h_j = g_j / sqrt(a_j)``), so
the ridge term is ``(lambda_H/2) ||G||_F^2`` and the curvature per column does not grow with
``n_c``. Plain gradient descent in ``G`` is gradient descent on the sample-level problem from a
collapsed start (the class-level gradient of ``mu_c`` is ``n_c`` times a sample's gradient).

Models
------
* :class:`CERidgeUFM` (SELI: Thrampoulidis et al., NeurIPS 2022, arXiv 2208.05512): ``sum_i CE(W h_i + b; y_i) + (lambda_W/2)||W||^2 +
  (lambda_H/2)||H||^2 + (lambda_b/2)||b||^2``. Sum-CE. With an averaged CE ``(1/N) sum_i CE`` the
  same minimisers are obtained with ``lambda_sum = N * lambda_avg``.
* :class:`DeepLinearMSEUFM` (Liu, arXiv 2411.17278; bias-free: Dang et al., ICML 2023): ``(1/2N) ||W_L...W_1 H + b 1^T - Y||^2 +
  (lambda_W/2) sum_l ||W_l||^2 + (lambda_H/2)||H||^2 + (lambda_b/2)||b||^2``; bias unregularised
  by default (``lambda_b = 0``).
* :class:`NCMCLossP` (NCMC Loss P with a fixed multi-center frame; Yan et al., NeurIPS 2024,
  §3.2 eq. (P)):
  ``(1/2S) ||C H - T||^2 + (lambda_H/2) ||H||^2`` where ``C`` (F x d) holds the fixed centers,
  ``T`` the f_k-hot targets and ``S = sum_k f_k n_k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ncollapse.errors import NCollapseError, check_counts, check_memory, check_positive
from ncollapse.geometry.deep_linear import DEEP_LINEAR_BIAS

DTYPE = torch.float64


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"cpu" -> cpu; "cuda" requires CUDA (clear error otherwise); "auto" picks cuda if any."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        name = str(device).lower()
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(name)
        except (RuntimeError, TypeError) as exc:
            raise NCollapseError(
                f"device={device!r} is not a torch device; use cpu or cuda"
            ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NCollapseError("device='cuda' requested but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise NCollapseError(f"device={device!r} is not supported; use cpu or cuda")
    return dev


def _device_memory(device: torch.device) -> int | None:
    """Free memory of a CUDA device, ``None`` (= host memory) for the CPU."""
    if device.type == "cuda":  # pragma: no cover - needs a GPU
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def _counts_batch(counts) -> np.ndarray:
    """Counts as an int64 array ``(B, K)``; accepts one vector or a list of equal-length vectors."""
    arr = counts
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    try:
        arr = np.asarray(arr, dtype=float)
    except (TypeError, ValueError) as exc:
        # ragged list of count vectors
        raise NCollapseError(
            f"counts={counts!r} is not a vector or a list of equal-length vectors; problems with "
            "different numbers of classes cannot share one batch (solve them as separate batches)"
        ) from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise NCollapseError(f"counts must be (K,) or (B, K), got shape {arr.shape}")
    return np.stack([check_counts(row, name=f"counts[{i}]") for i, row in enumerate(arr)])


def _param_batch(value, B: int, name: str, *, allow_zero: bool) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size not in (1, B):
        raise NCollapseError(
            f"{name} has {arr.size} values; give one value or one per problem ({B})"
        )
    for v in arr:
        check_positive(v, name, allow_zero=allow_zero)
    return np.broadcast_to(arr, (B,)).astype(np.float64).copy()


def _broadcast_B(counts: np.ndarray, *others) -> int:
    sizes = {counts.shape[0]}
    for o in others:
        if o is None:
            continue
        n = np.atleast_1d(np.asarray(o)).size
        sizes.add(n)
    sizes.discard(1)
    if len(sizes) > 1:
        raise NCollapseError(
            f"batch sizes disagree: {sorted(sizes)}; give one value or one value per problem"
        )
    return sizes.pop() if sizes else 1


def _columns(counts: np.ndarray, features: str):
    """Labels ``(B, J)`` and weights ``(B, J)`` of the feature columns (see module docstring)."""
    B, K = counts.shape
    if features == "class":
        labels = np.broadcast_to(np.arange(K), (B, K)).copy()
        return labels, counts.astype(np.float64)
    if features == "sample":
        N = counts.sum(1)
        J = int(N.max())
        labels = np.zeros((B, J), dtype=np.int64)
        weights = np.zeros((B, J), dtype=np.float64)
        for i in range(B):
            lab = np.repeat(np.arange(K), counts[i])
            labels[i, : lab.size] = lab
            weights[i, : lab.size] = 1.0
        return labels, weights
    raise NCollapseError(f"features={features!r} is not one of 'class', 'sample'")


@dataclass
class ParamSpec:
    name: str
    shape: tuple[int, ...]  # per problem, without the batch axis
    scale: float  # init standard deviation


class BatchedUFM:
    """Common machinery: counts, feature columns, seeded init, class means. Not used directly."""

    kind = "base"

    def __init__(self, counts, d: int | None, features: str, device, B: int | None = None):
        cnt = _counts_batch(counts)
        if B is not None and cnt.shape[0] == 1 and B > 1:
            cnt = np.repeat(cnt, B, axis=0)
        self.counts_np = cnt
        self.B, self.K = cnt.shape
        self.features = features
        self.device = resolve_device(device)
        if features in ("class", "sample"):
            J = self.K if features == "class" else int(cnt.sum(1).max())
            # one-hot columns (B, J, K) in float64 and int64, plus the model's own column tensors
            check_memory(
                8.0 * self.B * J * self.K * 3,
                f"the {self.kind} UFM with K={self.K} classes, {J} feature columns and "
                f"{self.B} problem(s)",
                self.memory_fix(),
                available=_device_memory(self.device),
            )
        labels, weights = _columns(cnt, features)
        self.labels_np, self.weights_np = labels, weights
        self.J = labels.shape[1]
        dev = self.device
        self.counts = torch.as_tensor(cnt, dtype=DTYPE, device=dev)
        self.N = self.counts.sum(1)
        self.labels = torch.as_tensor(labels, device=dev)
        self.a = torch.as_tensor(weights, dtype=DTYPE, device=dev)
        self.sqrt_a = torch.where(self.a > 0, self.a.sqrt(), torch.ones_like(self.a))
        # one-hot (B, J, K), zero on padded columns
        onehot = torch.nn.functional.one_hot(self.labels, self.K).to(DTYPE)
        self.onehot = onehot * (self.a > 0).to(DTYPE)[..., None]
        self.d = d

    # ----------------------------------------------------------------- memory
    def eval_nbytes(self) -> float:
        """Bytes of the temporaries of one objective-and-gradient evaluation (logits and
        residuals of shape (B, K, J), a few copies)."""
        return 8.0 * 6 * self.B * self.K * self.J

    def memory_fix(self) -> str:
        """Which options lower the memory of this model (for the one-line error)."""
        fix = "use fewer classes or fewer problems per batch"
        if self.features == "sample":
            fix += ", or features='class' (--features class: one column per class, not per sample)"
        return fix + ", or a smaller d (--d)"

    # ----------------------------------------------------------------- params
    def param_specs(self) -> list[ParamSpec]:
        raise NotImplementedError

    def init_params(self, seeds, scale: float | None = None) -> dict[str, torch.Tensor]:
        """Per-problem seeded Gaussian init (generated on CPU, so identical on every device).

        Problem ``i`` draws every parameter from ``torch.Generator().manual_seed(seeds[i])`` in
        the order of :meth:`param_specs`; batched and one-by-one solves start from the same point.
        For sample features the padded columns are 0.
        """
        seeds = np.broadcast_to(np.atleast_1d(np.asarray(seeds, dtype=np.int64)), (self.B,))
        specs = self.param_specs()
        out = {s.name: [] for s in specs}
        for i in range(self.B):
            gen = torch.Generator().manual_seed(int(seeds[i]))
            for s in specs:
                sd = s.scale if scale is None else scale
                if s.name == "G" and self.features == "sample":
                    n_i = int(self.counts_np[i].sum())
                    x = torch.zeros(s.shape, dtype=DTYPE)
                    x[:, :n_i] = torch.randn((s.shape[0], n_i), generator=gen, dtype=DTYPE) * sd
                elif s.name == "b":
                    x = torch.zeros(s.shape, dtype=DTYPE)
                else:
                    x = torch.randn(s.shape, generator=gen, dtype=DTYPE) * sd
                out[s.name].append(x)
        return {k: torch.stack(v).to(self.device) for k, v in out.items()}

    def features_from(self, G: torch.Tensor) -> torch.Tensor:
        """Real features ``H = G / sqrt(a)`` (B, d, J)."""
        return G / self.sqrt_a[:, None, :]

    def class_means(self, H: torch.Tensor) -> torch.Tensor:
        """Class means ``M`` (B, d, K) of the (weighted) feature columns."""
        if self.features == "class":
            return H
        return torch.bmm(H, self.onehot) / self.counts[:, None, :]

    def nc1(self, H: torch.Tensor) -> torch.Tensor:
        """Relative within-class spread ``sum_i ||h_i - mu_{y_i}||^2 / sum_i ||h_i||^2`` (B,)."""
        if self.features == "class":
            return torch.zeros(self.B, dtype=DTYPE, device=self.device)
        M = self.class_means(H)
        resid = (H - torch.bmm(M, self.onehot.transpose(1, 2))) * (self.a > 0)[:, None, :]
        den = (H * H).sum((1, 2)).clamp_min(1e-300)
        return (resid * resid).sum((1, 2)) / den

    def objective(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cheap per-problem metrics recorded in the solver history."""
        return {}

    def extract(self, p: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "model": self.kind,
            "B": self.B,
            "K": self.K,
            "d": self.d,
            "features": self.features,
        }

    def _per_problem_args(self) -> dict:
        """Constructor arguments with one entry per problem (sliced by :meth:`take`)."""
        raise NotImplementedError

    def _shared_args(self) -> dict:
        raise NotImplementedError

    def take(self, idx) -> BatchedUFM:
        """A new model holding problems ``idx`` (in that order; repeats allowed)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        kw = {}
        for k, v in self._per_problem_args().items():
            kw[k] = [v[i] for i in idx] if isinstance(v, list) else np.asarray(v)[idx]
        kw.update(self._shared_args())
        return type(self)(**kw)


def _check_d(d, need: int, what: str) -> int:
    try:
        d = int(d)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(f"d={d!r} is not an integer feature dimension") from exc
    if d < need:
        raise NCollapseError(
            f"d={d} is too small: {what} needs d >= {need}; pass --d {need} or larger"
        )
    return d


def _lambdas(lam, lambda_w, lambda_h, B, *, allow_zero: bool, model: str):
    if lam is not None and (lambda_w is not None or lambda_h is not None):
        raise NCollapseError(
            "give either lambda (one value for W and H) or lambda_w and lambda_h, not both"
        )
    if lam is None and (lambda_w is None or lambda_h is None):
        raise NCollapseError(
            f"{model}: the ridge strength is missing; pass lambda (e.g. --lambda 0.1) or both "
            "lambda_w and lambda_h"
        )
    if lam is not None:
        lw = lh = _param_batch(lam, B, "lambda", allow_zero=allow_zero)
    else:
        lw = _param_batch(lambda_w, B, "lambda_w", allow_zero=allow_zero)
        lh = _param_batch(lambda_h, B, "lambda_h", allow_zero=allow_zero)
    return lw, lh


class CERidgeUFM(BatchedUFM):
    """Cross-entropy UFM with ridge (SELI: Thrampoulidis et al., arXiv 2208.05512), batched.

    Objective (sum-CE, ``d >= K``)::

        F(W, H, b) = sum_i CE(W h_i + b; y_i) + (lambda_W/2) ||W||_F^2 + (lambda_H/2) ||H||_F^2
                     + (lambda_b/2) ||b||^2

    with ``CE(x; y) = -x_y + log sum_c exp(x_c)``. ``lam`` sets ``lambda_W = lambda_H = lam``.
    The class-level convex equivalent (no bias) is ``sum_c n_c CE(xbar_c; c) +
    sqrt(lambda_W lambda_H) ||Xbar D||_*`` (see :mod:`ncollapse.ufm.convex`).
    **Averaged CE**: ``(1/N) sum_i CE + (lambda'/2)(...)`` has the same minimisers as this model with
    ``lambda = N * lambda'``. ``lam = 0`` (both zero) is allowed only for gradient descent (no
    minimiser exists: the norms grow like log t).
    """

    kind = "ce"

    def __init__(
        self,
        counts,
        lam=None,
        *,
        lambda_w=None,
        lambda_h=None,
        bias: bool = False,
        lambda_b=0.0,
        d: int | None = None,
        features: str = "class",
        device=None,
        init_scale: float = 0.1,
    ):
        cnt = _counts_batch(counts)
        B = _broadcast_B(cnt, lam, lambda_w, lambda_h, lambda_b)
        super().__init__(cnt, None, features, device, B=B)
        self.d = _check_d(self.K if d is None else d, self.K, "the CE-UFM (d >= K)")
        lw, lh = _lambdas(lam, lambda_w, lambda_h, self.B, allow_zero=True, model="ce")
        if np.any((lw == 0) != (lh == 0)):
            raise NCollapseError(
                "ce: lambda_w and lambda_h must be both > 0 or both 0 (lambda = 0 is the "
                "unregularised UFM, for --solver gd only)"
            )
        self.bias = bool(bias)
        lb = _param_batch(lambda_b, self.B, "lambda_b", allow_zero=True)
        if not self.bias and np.any(lb != 0):
            raise NCollapseError("lambda_b is set but bias is off; pass bias=True (--bias)")
        self.lambda_w_np, self.lambda_h_np, self.lambda_b_np = lw, lh, lb
        dev = self.device
        self.lambda_w = torch.as_tensor(lw, dtype=DTYPE, device=dev)
        self.lambda_h = torch.as_tensor(lh, dtype=DTYPE, device=dev)
        self.lambda_b = torch.as_tensor(lb, dtype=DTYPE, device=dev)
        self.init_scale = float(init_scale)
        # SEL matrix at class level: P D (columns sqrt(n_c)(e_c - 1/K)), for history metrics
        P = torch.eye(self.K, dtype=DTYPE, device=dev) - 1.0 / self.K
        self._PD = P[None] * self.counts.sqrt()[:, None, :]

    def _per_problem_args(self):
        return {
            "counts": self.counts_np,
            "lambda_w": self.lambda_w_np,
            "lambda_h": self.lambda_h_np,
            "lambda_b": self.lambda_b_np,
        }

    def _shared_args(self):
        return {
            "bias": self.bias,
            "d": self.d,
            "features": self.features,
            "device": self.device,
            "init_scale": self.init_scale,
        }

    @property
    def lambda_eff(self) -> np.ndarray:
        """``sqrt(lambda_W lambda_H)``: the nuclear-norm weight of the convex equivalent."""
        return np.sqrt(self.lambda_w_np * self.lambda_h_np)

    def param_specs(self):
        specs = [
            ParamSpec("W", (self.K, self.d), self.init_scale),
            ParamSpec("G", (self.d, self.J), self.init_scale),
        ]
        if self.bias:
            specs.append(ParamSpec("b", (self.K,), 0.0))
        return specs

    def logits(self, p):
        Z = torch.bmm(p["W"], self.features_from(p["G"]))
        if self.bias:
            Z = Z + p["b"][:, :, None]
        return Z

    def objective(self, p):
        Z = self.logits(p)
        ce = torch.logsumexp(Z, dim=1) - Z.gather(1, self.labels[:, None, :]).squeeze(1)
        f = (self.a * ce).sum(1)
        f = f + 0.5 * self.lambda_w * (p["W"] ** 2).sum((1, 2))
        f = f + 0.5 * self.lambda_h * (p["G"] ** 2).sum((1, 2))
        if self.bias:
            f = f + 0.5 * self.lambda_b * (p["b"] ** 2).sum(1)
        return f

    def value_and_grad(self, p):
        """Objective ``(B,)`` and its analytic gradient (dict like ``p``); ~3x faster than autograd.

        With ``R = (softmax(Z) - E) diag(a)``: ``dW = R H^T + lambda_W W``,
        ``dG = (W^T R) / sqrt(a) + lambda_H G``, ``db = R 1 + lambda_b b``.
        """
        W, G = p["W"], p["G"]
        H = G / self.sqrt_a[:, None, :]
        Z = torch.bmm(W, H)
        if self.bias:
            Z = Z + p["b"][:, :, None]
        lse = torch.logsumexp(Z, dim=1)
        E = self.onehot.transpose(1, 2)
        zy = (Z * E).sum(1)
        f = (self.a * (lse - zy)).sum(1)
        f = (
            f
            + 0.5 * self.lambda_w * (W * W).sum((1, 2))
            + 0.5 * self.lambda_h * (G * G).sum((1, 2))
        )
        Rm = (torch.exp(Z - lse[:, None, :]) - E) * self.a[:, None, :]
        gW = torch.bmm(Rm, H.transpose(1, 2)) + self.lambda_w[:, None, None] * W
        gG = torch.bmm(W.transpose(1, 2), Rm) / self.sqrt_a[:, None, :]
        gG = gG + self.lambda_h[:, None, None] * G
        grads = {"W": gW, "G": gG}
        if self.bias:
            f = f + 0.5 * self.lambda_b * (p["b"] ** 2).sum(1)
            grads["b"] = Rm.sum(2) + self.lambda_b[:, None] * p["b"]
        return f, grads

    def class_logits_nobias(self, p):
        """``Xbar = W M`` (B, K, K): class-mean logits without the bias."""
        return torch.bmm(p["W"], self.class_means(self.features_from(p["G"])))

    def metrics(self, p):
        """``norm_X = ||W H||_F`` and ``dist_WH_Z = dist(W H, Zhat)`` over all N samples (no bias);
        at class level ``W H = Xbar Y`` so both use ``Xbar D``. Sample features add ``nc1``."""
        if self.features == "class":
            X = self.class_logits_nobias(p) * self.counts.sqrt()[:, None, :]  # Xbar D
            Z = self._PD
        else:
            H = self.features_from(p["G"])
            mask = (self.a > 0).to(DTYPE)[:, None, :]
            X = torch.bmm(p["W"], H) * mask
            Z = (self.onehot.transpose(1, 2) - 1.0 / self.K) * mask
        nx = X.flatten(1).norm(dim=1)
        nz = Z.flatten(1).norm(dim=1)
        dist = (X / nx.clamp_min(1e-300)[:, None, None] - Z / nz[:, None, None]).flatten(1)
        out = {"norm_X": nx, "dist_WH_Z": dist.norm(dim=1)}
        if self.features == "sample":
            out["nc1"] = self.nc1(self.features_from(p["G"]))
        return out

    def extract(self, p):
        H = self.features_from(p["G"])
        M = self.class_means(H)
        b = p["b"] if self.bias else torch.zeros(self.B, self.K, dtype=DTYPE, device=self.device)
        return {
            "W": p["W"].detach().cpu().numpy(),
            "H": H.detach().cpu().numpy(),
            "M": M.detach().cpu().numpy(),
            "b": b.detach().cpu().numpy(),
        }

    def describe(self):
        out = super().describe()
        out.update(
            lambda_w=self.lambda_w_np,
            lambda_h=self.lambda_h_np,
            bias=self.bias,
            lambda_b=self.lambda_b_np if self.bias else None,
        )
        return out


class DeepLinearMSEUFM(BatchedUFM):
    """L-layer linear MSE UFM with optional bias (Liu; Dang et al. bias-free), batched.

    Objective (Liu, arXiv 2411.17278), ``W = W_L ... W_1`` with ``W_L`` (K x d) and ``W_l`` (d x d)::

        F = (1/2N) ||W H + b 1^T - Y||_F^2 + (lambda_W/2) sum_l ||W_l||_F^2
            + (lambda_H/2) ||H||_F^2 + (lambda_b/2) ||b||^2

    The model has a bias unless ``bias=False`` (the package-wide default
    :data:`ncollapse.geometry.DEEP_LINEAR_BIAS`, shared with ``geometry.deep_linear_ufm``); it is
    unregularised by default (``lambda_b = 0``), as in the closed form of
    :func:`ncollapse.geometry.deep_linear_ufm`. For ``L >= 2`` the origin is a local minimum, so
    the init must not be tiny: the default std is ``1/sqrt(d)`` for every factor and for G.
    """

    kind = "mse"

    def __init__(
        self,
        counts,
        lam=None,
        *,
        lambda_w=None,
        lambda_h=None,
        layers: int = 1,
        bias: bool = DEEP_LINEAR_BIAS,
        lambda_b=0.0,
        d: int | None = None,
        features: str = "class",
        device=None,
        init_scale: float | None = None,
    ):
        cnt = _counts_batch(counts)
        B = _broadcast_B(cnt, lam, lambda_w, lambda_h, lambda_b)
        super().__init__(cnt, None, features, device, B=B)
        try:
            L = int(layers)
        except (TypeError, ValueError) as exc:
            raise NCollapseError(f"layers={layers!r} is not an integer >= 1") from exc
        if L < 1 or L != layers:
            raise NCollapseError(f"layers={layers!r} must be an integer >= 1")
        self.layers = L
        self.d = _check_d(self.K if d is None else d, self.K, "the deep-linear MSE UFM (d >= K)")
        lw, lh = _lambdas(lam, lambda_w, lambda_h, self.B, allow_zero=False, model="mse")
        self.bias = bool(bias)
        lb = _param_batch(lambda_b, self.B, "lambda_b", allow_zero=True)
        if not self.bias and np.any(lb != 0):
            raise NCollapseError("lambda_b is set but bias is off; pass bias=True (--bias)")
        self.lambda_w_np, self.lambda_h_np, self.lambda_b_np = lw, lh, lb
        dev = self.device
        self.lambda_w = torch.as_tensor(lw, dtype=DTYPE, device=dev)
        self.lambda_h = torch.as_tensor(lh, dtype=DTYPE, device=dev)
        self.lambda_b = torch.as_tensor(lb, dtype=DTYPE, device=dev)
        self.init_scale = 1.0 / np.sqrt(self.d) if init_scale is None else float(init_scale)
        # target column for each feature column: e_{y_j}  (B, K, J)
        self.targets = self.onehot.transpose(1, 2)

    def _per_problem_args(self):
        return {
            "counts": self.counts_np,
            "lambda_w": self.lambda_w_np,
            "lambda_h": self.lambda_h_np,
            "lambda_b": self.lambda_b_np,
        }

    def _shared_args(self):
        return {
            "layers": self.layers,
            "bias": self.bias,
            "d": self.d,
            "features": self.features,
            "device": self.device,
            "init_scale": self.init_scale,
        }

    def param_specs(self):
        s = self.init_scale
        specs = [ParamSpec(f"W{l}", (self.d, self.d), s) for l in range(1, self.layers)]
        specs.append(ParamSpec(f"W{self.layers}", (self.K, self.d), s))
        specs.append(ParamSpec("G", (self.d, self.J), s))
        if self.bias:
            specs.append(ParamSpec("b", (self.K,), 0.0))
        return specs

    def product(self, p):
        """``W = W_L ... W_1`` (B, K, d)."""
        W = p[f"W{self.layers}"]
        for l in range(self.layers - 1, 0, -1):
            W = torch.bmm(W, p[f"W{l}"])
        return W

    def objective(self, p):
        Z = torch.bmm(self.product(p), self.features_from(p["G"]))
        if self.bias:
            Z = Z + p["b"][:, :, None]
        R = Z - self.targets
        f = (self.a * (R * R).sum(1)).sum(1) / (2.0 * self.N)
        for l in range(1, self.layers + 1):
            f = f + 0.5 * self.lambda_w * (p[f"W{l}"] ** 2).sum((1, 2))
        f = f + 0.5 * self.lambda_h * (p["G"] ** 2).sum((1, 2))
        if self.bias:
            f = f + 0.5 * self.lambda_b * (p["b"] ** 2).sum(1)
        return f

    def metrics(self, p):
        W = self.product(p)
        out = {"norm_W": W.flatten(1).norm(dim=1)}
        if self.features == "sample":
            out["nc1"] = self.nc1(self.features_from(p["G"]))
        return out

    def extract(self, p):
        H = self.features_from(p["G"])
        M = self.class_means(H)
        b = p["b"] if self.bias else torch.zeros(self.B, self.K, dtype=DTYPE, device=self.device)
        out = {
            "W": self.product(p).detach().cpu().numpy(),
            "H": H.detach().cpu().numpy(),
            "M": M.detach().cpu().numpy(),
            "b": b.detach().cpu().numpy(),
        }
        for l in range(1, self.layers + 1):
            out[f"W{l}"] = p[f"W{l}"].detach().cpu().numpy()
        return out

    def describe(self):
        out = super().describe()
        out.update(
            layers=self.layers,
            lambda_w=self.lambda_w_np,
            lambda_h=self.lambda_h_np,
            bias=self.bias,
            lambda_b=self.lambda_b_np if self.bias else None,
        )
        return out


class NCMCLossP(BatchedUFM):
    """NCMC Loss P with a fixed multi-center frame (Yan et al., NeurIPS 2024, Cor. 3.7), batched.

    Objective over the features only (the frame is fixed)::

        F(H) = (1/2S) sum_i ||C h_i - t_{y_i}||^2 + (lambda_H/2) ||H||_F^2,   S = sum_k f_k n_k

    ``C`` (F x d) stacks the centers ``w_j^(k) = cos(theta) v_j^(k) + sin(theta) w_k`` (unit norm)
    and ``t_k`` is the f_k-hot target. Cor. 3.7: ``h_k = f_k wbar^(k) / (f_k cos^2(alpha_k) +
    lambda_H S)`` with ``||h_k|| = f_k cos(alpha_k) / (f_k cos^2(alpha_k) + lambda_H S)``, i.e. the
    features collapse to the MEAN ``wbar^(k)`` of the class's centers, not to ``w_k``.

    ``frames`` is one frame (or a list of B frames) from :func:`ncollapse.geometry.multicenter_frame`
    (objects with ``centers`` (F, d) and ``center_class`` (F,)); frames with different F are padded
    with zero centers, which add nothing to the loss.
    """

    kind = "ncmc"

    def __init__(
        self,
        counts,
        frames,
        lambda_h,
        *,
        features: str = "class",
        device=None,
        init_scale: float = 0.1,
    ):
        cnt = _counts_batch(counts)
        frames = list(frames) if isinstance(frames, (list, tuple)) else [frames]
        B = _broadcast_B(cnt, lambda_h, np.zeros(len(frames)))
        super().__init__(cnt, None, features, device, B=B)
        if len(frames) == 1 and self.B > 1:
            frames = frames * self.B
        Fs = []
        ds = set()
        for i, fr in enumerate(frames):
            C = np.asarray(fr.centers, dtype=np.float64)
            cc = np.asarray(fr.center_class, dtype=np.int64)
            if C.ndim != 2 or cc.shape != (C.shape[0],):
                raise NCollapseError(f"frame {i}: centers must be (F, d) with center_class (F,)")
            if set(np.unique(cc).tolist()) != set(range(self.K)):
                raise NCollapseError(
                    f"frame {i} has centers for classes {sorted(set(cc.tolist()))}, but counts have "
                    f"{self.K} classes; build the frame from f_counts of length {self.K}"
                )
            Fs.append(C.shape[0])
            ds.add(C.shape[1])
        if len(ds) != 1:
            raise NCollapseError(f"frames have different feature dimensions {sorted(ds)}")
        self.d = ds.pop()
        Fmax = max(Fs)
        C = np.zeros((self.B, Fmax, self.d))
        T = np.zeros((self.B, Fmax, self.K))
        fcnt = np.zeros((self.B, self.K))
        for i, fr in enumerate(frames):
            c = np.asarray(fr.centers, dtype=np.float64)
            cc = np.asarray(fr.center_class, dtype=np.int64)
            C[i, : c.shape[0]] = c
            T[i, np.arange(c.shape[0]), cc] = 1.0
            fcnt[i] = np.bincount(cc, minlength=self.K)
        self.frames = frames
        self.f_counts_np = fcnt.astype(np.int64)
        self.S_np = (fcnt * cnt).sum(1)
        lh = _param_batch(lambda_h, self.B, "lambda_h", allow_zero=False)
        self.lambda_h_np = lh
        dev = self.device
        self.C = torch.as_tensor(C, dtype=DTYPE, device=dev)
        self.T = torch.as_tensor(T, dtype=DTYPE, device=dev)
        self.S = torch.as_tensor(self.S_np, dtype=DTYPE, device=dev)
        self.lambda_h = torch.as_tensor(lh, dtype=DTYPE, device=dev)
        self.init_scale = float(init_scale)
        # target per column: T[:, :, y_j]  (B, F, J)
        self.col_targets = torch.bmm(self.T, self.onehot.transpose(1, 2))

    def eval_nbytes(self) -> float:
        """Residuals ``C H - T`` and targets of shape (B, F, J), a few copies."""
        return 8.0 * 4 * self.B * self.C.shape[1] * self.J

    def _per_problem_args(self):
        return {"counts": self.counts_np, "frames": list(self.frames), "lambda_h": self.lambda_h_np}

    def _shared_args(self):
        return {"features": self.features, "device": self.device, "init_scale": self.init_scale}

    def param_specs(self):
        return [ParamSpec("G", (self.d, self.J), self.init_scale)]

    def objective(self, p):
        H = self.features_from(p["G"])
        R = torch.bmm(self.C, H) - self.col_targets
        f = (self.a * (R * R).sum(1)).sum(1) / (2.0 * self.S)
        return f + 0.5 * self.lambda_h * (p["G"] ** 2).sum((1, 2))

    def metrics(self, p):
        M = self.class_means(self.features_from(p["G"]))
        out = {"norm_M": M.flatten(1).norm(dim=1)}
        if self.features == "sample":
            out["nc1"] = self.nc1(self.features_from(p["G"]))
        return out

    def extract(self, p):
        H = self.features_from(p["G"])
        return {
            "H": H.detach().cpu().numpy(),
            "M": self.class_means(H).detach().cpu().numpy(),
            "centers": self.C.cpu().numpy(),
        }

    def describe(self):
        out = super().describe()
        out.update(lambda_h=self.lambda_h_np, f_counts=self.f_counts_np, S=self.S_np)
        return out
