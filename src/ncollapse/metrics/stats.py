"""Streaming sufficient statistics for neural-collapse measures (float64, memory independent of N).

:class:`NCStats` is fed batches ``(features N x d, labels N, optional logits N x K)`` and keeps, per
class ``c`` (``n_c`` samples, mean ``μ_c``):

* ``counts[c] = n_c`` and ``sums[c] = Σ_{i∈c} h_i``;
* the within-class scatter ``S_W = Σ_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ`` (d x d, *unnormalised*);
* ``class_ss[c] = Σ_{i∈c} ‖h_i − μ_c‖²`` (trace of the class scatter; CDNV, quotient NC1);
* optionally the per-class scatters ``S_c`` (K x d x d) -- only when ``per_class_scatter`` is on
  (default: on iff ``K d² <= 2**23``, i.e. at most 64 MB, and ``K <= 64``); they give per-class
  NC1 and the class-balanced Σ_W in one pass. Otherwise those come from a second pass
  (:class:`ncollapse.metrics.second_pass.SecondPass`);
* with logits: ``logit_sums[c] = Σ_{i∈c} z_i`` (K x K) and ``correct[c] = #{i∈c: argmax z_i = c}``;
* with NCMC ``centers`` (K x d, the class-mean centers w̄^(k)) and optionally ``w0`` (K x d): per
  class the mean and M2 (sum of squared deviations) of ``nc_i = ‖h_i/‖h_i‖ − w̄_y/‖w̄_y‖‖²`` and of
  ``v_i = 1 − cos(h_i, w0_{y_i})``.

Numerical scheme (exact in exact arithmetic, stable in floating point): each batch is cut into
chunks of :data:`CHUNK_ROWS` rows; each chunk is centred at its *own* per-class means, its centred
scatter is one float64 rank-update ``X_cᵀ X_c`` (BLAS ``dsyrk`` on the CPU), and it is merged
into the running state with the parallel-axis (Chan et al.) update

    S ← S_a + S_b + Σ_c (n_a n_b / (n_a + n_b)) (m_{a,c} − m_{b,c})(m_{a,c} − m_{b,c})ᵀ,

so no large raw second moment ``Σ h hᵀ`` is ever differenced against ``n μ μᵀ`` (which loses all
digits once features collapse, i.e. when within-class spread ≪ ‖μ‖). :meth:`NCStats.merge` uses
the same update, so merging is exact: any batch split, any order, any number of workers give the
same statistics up to rounding.

Under torch.distributed :meth:`NCStats.all_reduce` needs only SUM all-reduces: first the counts
and class sums (and NCMC sums), giving the global class means; then every worker shifts its
scatters to the global means (``S + n_c δ_c δ_cᵀ``, ``δ_c = m_local − μ_global``) and a second
SUM all-reduce adds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ncollapse.errors import NCollapseError, check_finite

__all__ = [
    "CHUNK_ROWS",
    "PER_CLASS_SCATTER_BUDGET",
    "PER_CLASS_SCATTER_MAX_K",
    "NCStats",
    "Statistics",
    "statistics",
    "validate_batch",
]

#: ``per_class_scatter=None`` turns the per-class scatters on iff ``K * d * d`` is at most this
#: many float64 entries (2**23 entries = 64 MB).
PER_CLASS_SCATTER_BUDGET = 2**23
#: ... and ``K <= 64``: the per-class update loops over the classes present in a batch.
PER_CLASS_SCATTER_MAX_K = 64

#: Rows per chunk of a batch: bounds the float64 work buffers (2 x 4096 x d x 8 bytes = 32 MB
#: at d = 512) whatever the batch size.
CHUNK_ROWS = 4096

_STATE_VERSION = 1


def _check_nonzero_rows(x):
    """Row norms of ``x``; raises if one is zero (NCMC needs h/‖h‖)."""
    import torch

    hn = torch.linalg.vector_norm(x, dim=1)
    if bool((hn == 0).any()):
        i = int((hn == 0).nonzero()[0, 0])
        raise NCollapseError(
            f"features[{i}] is the zero vector; NCMC collapse needs h/‖h‖ (drop zero rows "
            f"or disable the NCMC frame)"
        )
    return hn


def _add_gram(S, xc) -> None:
    """``S += xcᵀ xc`` in float64. On the CPU this is a BLAS ``dsyrk`` (one triangle: half the
    flops of the GEMM ``xc.T @ xc``), mirrored to the full symmetric matrix."""
    import torch

    if S.device.type != "cpu" or xc.dtype != torch.float64 or not xc.is_contiguous():
        S.addmm_(xc.T, xc)
        return
    from scipy.linalg import blas

    a = xc.numpy()
    # a.T is a Fortran-ordered (d x m) view: dsyrk(trans=0) gives a.T @ a without a copy
    T = blas.dsyrk(1.0, a.T, trans=0, lower=0)
    T = np.triu(T)
    T += np.triu(T, 1).T
    S += torch.from_numpy(T)


def _ro(a):
    if a is None:
        return None
    a = np.array(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Statistics:
    """Immutable float64 snapshot of :class:`NCStats` (numpy, read-only arrays).

    ``counts`` (K,) int64; ``sums`` (K x d); ``scatter`` (d x d) = ``Σ_i (h_i − μ_{y_i})(·)ᵀ``
    (None from ``NCStats(scatter=False)``);
    ``class_ss`` (K,) = ``Σ_{i∈c} ‖h_i − μ_c‖²``; ``class_scatter`` (K x d x d) or None;
    ``logit_sums`` (K x K) and ``correct`` (K,) or None; NCMC ``nc_mean``, ``nc_m2``, ``var_mean``,
    ``var_m2`` (K,) or None (``var_*`` None when no ``w0`` was given).
    """

    counts: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray | None
    class_ss: np.ndarray
    class_scatter: np.ndarray | None = None
    logit_sums: np.ndarray | None = None
    correct: np.ndarray | None = None
    nc_mean: np.ndarray | None = None
    nc_m2: np.ndarray | None = None
    var_mean: np.ndarray | None = None
    var_m2: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for f in fields(self):
            if f.name != "_cache":
                v = getattr(self, f.name)
                if v is not None:
                    object.__setattr__(self, f.name, _ro(np.asarray(v)))
        object.__setattr__(self, "counts", _ro(np.asarray(self.counts).astype(np.int64)))

    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def dim(self) -> int:
        return int(self.sums.shape[1])

    @property
    def total(self) -> int:
        """N, the number of samples seen."""
        return int(self.counts.sum())

    @property
    def means(self) -> np.ndarray:
        """Class means μ_c (K x d); rows of empty classes are 0."""
        if "means" not in self._cache:
            m = self.sums / np.maximum(self.counts, 1)[:, None]
            m.setflags(write=False)
            self._cache["means"] = m
        return self._cache["means"]

    @property
    def has_ncmc(self) -> bool:
        return self.nc_mean is not None

    @property
    def present(self) -> np.ndarray:
        """Indices of the classes with at least one sample."""
        return np.flatnonzero(self.counts > 0)

    def restrict(self, classes) -> Statistics:
        """The statistics of the given classes only (K' = len(classes)), e.g. of the classes
        present (:attr:`present`). The within-class scatter is kept as is (classes without samples
        add nothing to it); logit sums keep the given classes' rows and logit columns."""
        idx = np.asarray(classes, dtype=np.int64)

        def take(v):
            return None if v is None else v[idx]

        return Statistics(
            counts=self.counts[idx],
            sums=self.sums[idx],
            scatter=self.scatter,
            class_ss=self.class_ss[idx],
            class_scatter=take(self.class_scatter),
            logit_sums=None if self.logit_sums is None else self.logit_sums[np.ix_(idx, idx)],
            correct=take(self.correct),
            nc_mean=take(self.nc_mean),
            nc_m2=take(self.nc_m2),
            var_mean=take(self.var_mean),
            var_m2=take(self.var_m2),
        )


def _as_tensor(x, name: str):
    import torch

    if isinstance(x, torch.Tensor):
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise NCollapseError(f"{name} could not be read as an array: {exc}") from exc
    if arr.dtype == object:
        raise NCollapseError(f"{name} is not a numeric array (dtype object); pass a numeric array")
    return torch.from_numpy(np.ascontiguousarray(arr))


def validate_batch(features, labels, num_classes: int, dim: int | None):
    """Check a batch and return ``(features, labels)`` as tensors (labels int64, on the features'
    device). Raises :class:`NCollapseError` naming the bad value and the fix."""
    import torch

    x = _as_tensor(features, "features").detach()  # features from a training loop may need grad
    y = _as_tensor(labels, "labels").detach()
    if x.ndim != 2:
        raise NCollapseError(
            f"features must be a 2-D array (N samples x d), got shape {tuple(x.shape)}; "
            f"flatten them, e.g. features.reshape(len(features), -1)"
        )
    if x.dtype == torch.bool or x.is_complex():
        raise NCollapseError(f"features have dtype {x.dtype}; pass real floating-point features")
    if y.ndim != 1:
        hint = "; for one-hot labels pass labels.argmax(1)" if y.ndim == 2 else ""
        raise NCollapseError(
            f"labels must be a 1-D vector of class indices, got shape {tuple(y.shape)}{hint}"
        )
    if y.shape[0] != x.shape[0]:
        raise NCollapseError(
            f"features have {x.shape[0]} rows but labels have {y.shape[0]} entries; "
            f"pass one label per feature row"
        )
    if y.dtype == torch.bool or y.is_complex():
        raise NCollapseError(f"labels have dtype {y.dtype}; pass integer class indices")
    if y.is_floating_point():
        if not bool(torch.isfinite(y).all()) or bool((y != y.round()).any()):
            raise NCollapseError(
                f"labels must be integers 0..{num_classes - 1}; got non-integer values"
            )
    if dim is not None and x.shape[1] != dim:
        raise NCollapseError(
            f"features have d={x.shape[1]} columns but the statistics have d={dim}; "
            f"every batch must have the same feature width"
        )
    y = y.to(device=x.device, dtype=torch.int64)
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            i = int((y == bad).nonzero()[0, 0])
            raise NCollapseError(
                f"labels[{i}]={bad} is out of range for num_classes={num_classes}; labels "
                f"must be in 0..{num_classes - 1} (pass the right num_classes or remap labels)"
            )
    return x, y


def _merge_scalar(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Chan's parallel merge of per-class (count, mean, M2) for scalars (torch tensors, K,)."""
    n = n_a + n_b
    delta = mean_b - mean_a
    frac = n_b / n.clamp(min=1)
    mean = mean_a + delta * frac
    m2 = m2_a + m2_b + delta * delta * n_a * frac
    return mean, m2


class NCStats:
    """Streaming NC statistics accumulator (see module docstring for what is kept and how).

    Parameters
    ----------
    num_classes: K >= 2.
    dim: feature dimension d (default: taken from the first batch).
    device: where the float64 state lives (default: the first batch's device).
    per_class_scatter: keep the K per-class d x d scatters (True/False; None = automatic, on iff
        ``K d² <= PER_CLASS_SCATTER_BUDGET`` and ``K <= PER_CLASS_SCATTER_MAX_K``).
    centers: NCMC class-mean centers w̄^(k) (K x d); turns on the NC_ave / NC_std statistics.
    w0: NCMC classifier W0 (K x d) for the variability ``1 − cos(h, w_k)`` (needs ``centers``... or
        may be given alone).
    scatter: keep the d x d within-class scatter ``S_W`` (default True). It costs one float64
        ``N d²`` rank-update (``syrk``, half of one ``X.T @ X``) and gives the sample-weighted NC1
        from the statistics alone. ``scatter=False`` keeps only counts, sums and per-class traces
        (a few memory passes over the data); NC1 then comes from a :class:`SecondPass` with
        ``"nc1"`` (one float64 ``N x d x (K−1)`` projection), which is the cheaper route when a
        second pass runs anyway (NC4). Ignored when ``per_class_scatter`` is on.
    """

    def __init__(
        self,
        num_classes: int,
        dim: int | None = None,
        device=None,
        *,
        per_class_scatter: bool | None = None,
        centers=None,
        w0=None,
        scatter: bool = True,
    ):
        import torch

        if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool):
            raise NCollapseError(f"num_classes={num_classes!r} must be an integer >= 2")
        if num_classes < 2:
            raise NCollapseError(
                f"num_classes={num_classes} is too small; NC metrics need at least 2 classes"
            )
        self.num_classes = int(num_classes)
        if dim is not None and (not isinstance(dim, (int, np.integer)) or dim < 1):
            raise NCollapseError(f"dim={dim!r} must be a positive integer (the feature width d)")
        self.dim = None if dim is None else int(dim)
        self.device = None if device is None else torch.device(device)
        self._per_class_arg = per_class_scatter
        self._scatter_arg = bool(scatter)
        self._centers_in = centers
        self._w0_in = w0
        self._initialised = False
        self._work: dict = {}
        if self.dim is not None and self.device is not None:
            self._init_state()

    # ------------------------------------------------------------------ state
    @property
    def per_class_scatter(self) -> bool:
        if self._per_class_arg is None:
            if self.dim is None:
                return False
            return (
                self.num_classes * self.dim * self.dim <= PER_CLASS_SCATTER_BUDGET
                and self.num_classes <= PER_CLASS_SCATTER_MAX_K
            )
        return bool(self._per_class_arg)

    def _frame(self, value, name: str):
        import torch

        if value is None:
            return None
        t = _as_tensor(value, name).to(device=self.device, dtype=torch.float64)
        if t.shape != (self.num_classes, self.dim):
            raise NCollapseError(
                f"{name} has shape {tuple(t.shape)}, expected (K, d) = ({self.num_classes}, "
                f"{self.dim}); pass one row per class in the feature space"
            )
        check_finite(t, name)
        norms = torch.linalg.vector_norm(t, dim=1)
        if bool((norms == 0).any()):
            c = int((norms == 0).nonzero()[0, 0])
            raise NCollapseError(f"{name}[{c}] is the zero vector; every class needs a nonzero row")
        return t / norms[:, None]

    def _init_state(self):
        import torch

        K, d, dev = self.num_classes, self.dim, self.device
        f64 = dict(dtype=torch.float64, device=dev)
        self.counts = torch.zeros(K, **f64)
        self.sums = torch.zeros(K, d, **f64)
        self.class_ss = torch.zeros(K, **f64)
        if self.per_class_scatter:
            self.class_scatter = torch.zeros(K, d, d, **f64)
            self.scatter = None
        else:
            self.class_scatter = None
            self.scatter = torch.zeros(d, d, **f64) if self._scatter_arg else None
        self.logit_sums = None
        self.correct = None
        self.centers = self._frame(self._centers_in, "centers")
        self.w0 = self._frame(self._w0_in, "w0")
        self.nc_mean = self.nc_m2 = self.var_mean = self.var_m2 = None
        if self.centers is not None:
            self.nc_mean = torch.zeros(K, **f64)
            self.nc_m2 = torch.zeros(K, **f64)
        if self.w0 is not None:
            self.var_mean = torch.zeros(K, **f64)
            self.var_m2 = torch.zeros(K, **f64)
        self._initialised = True

    def reset(self) -> NCStats:
        """Zero all statistics (keeps K, d, device, frame)."""
        if self._initialised:
            self._init_state()
        return self

    # ----------------------------------------------------------------- update
    def _check_batch(self, features, labels):
        x, y = validate_batch(features, labels, self.num_classes, self.dim)
        if self.dim is None:
            self.dim = int(x.shape[1])
        if self.device is None:
            self.device = x.device
        if not self._initialised:
            self._init_state()
        return x, y.to(self.device)

    def update(self, features, labels, logits=None) -> NCStats:
        """Add a batch: ``features`` (N x d), ``labels`` (N,) ints in 0..K-1, optional ``logits``
        (N x K). Accepts torch tensors or numpy arrays of any float dtype (features that require
        grad are detached); computes in float64 on ``self.device``, in chunks of
        :data:`CHUNK_ROWS` rows so the working buffers stay small whatever the batch size.
        A batch that fails validation leaves the state unchanged."""
        import torch

        x, y = self._check_batch(features, labels)
        m = x.shape[0]
        if m == 0:
            return self
        K = self.num_classes
        z = None
        if logits is not None:
            z = _as_tensor(logits, "logits").detach()
            if z.shape != (m, K):
                raise NCollapseError(
                    f"logits have shape {tuple(z.shape)}, expected (N, K) = ({m}, {K}); "
                    f"pass the classifier outputs for this batch, one column per class"
                )
            z = z.to(device=self.device, dtype=torch.float64)
            check_finite(z, "logits")
            if self.logit_sums is None and self.counts.sum() > 0:
                raise NCollapseError(
                    "logits were given for this batch but not for earlier ones; pass logits "
                    "with every batch or with none"
                )
        elif self.logit_sums is not None:
            raise NCollapseError(
                "this batch has no logits but earlier batches had; pass logits with every batch"
            )
        if m > CHUNK_ROWS:
            # chunks are merged one by one: validate the whole batch first so that a bad row
            # in a later chunk cannot leave the earlier ones merged (row sums: NaN/inf propagate;
            # the full scan runs only when one is not finite, to name the culprit)
            if not bool(torch.isfinite(x.sum(1)).all()):
                check_finite(x, "features")
            if self.centers is not None or self.w0 is not None:
                _check_nonzero_rows(x)
        for s in range(0, m, CHUNK_ROWS):
            e = min(s + CHUNK_ROWS, m)
            self._update_chunk(x[s:e], y[s:e])
        if z is not None:
            if self.logit_sums is None:
                self.logit_sums = torch.zeros(K, K, dtype=torch.float64, device=self.device)
                self.correct = torch.zeros(K, dtype=torch.float64, device=self.device)
            self.logit_sums.index_add_(0, y, z)
            hit = z.argmax(1) == y
            self.correct += torch.bincount(y[hit], minlength=K).to(torch.float64)
        return self

    def _update_chunk(self, x, y) -> None:
        import torch

        K = self.num_classes
        m = x.shape[0]
        cbuf = self._buffer("centred", m)
        if not (x.dtype == torch.float64 and x.device == self.device and x.is_contiguous()):
            x = self._buffer("converted", m).copy_(x)  # reused: no fresh N x d allocation
        nb = torch.bincount(y, minlength=K).to(torch.float64)
        sb = torch.zeros_like(self.sums).index_add_(0, y, x)
        mb = sb / nb.clamp(min=1)[:, None]
        # centred chunk, sign-flipped (mb[y] - x; the scatter is sign-invariant), in a reused buffer
        torch.index_select(mb, 0, y, out=cbuf)
        xc = cbuf.sub_(x)
        ssb = torch.zeros_like(self.class_ss).index_add_(
            0, y, torch.linalg.vector_norm(xc, dim=1).square()
        )
        # NaN/inf anywhere in x makes its class's centred rows NaN/inf, hence ssb: a K-sized check
        # instead of a pass over the batch (the full scan runs only to name the culprit)
        if not bool(torch.isfinite(ssb).all()):
            check_finite(x, "features")
            raise NCollapseError(  # pragma: no cover - finite data overflowing float64
                "features overflow float64 in the centred scatter; rescale them"
            )
        # per-chunk NCMC quantities, before the state changes
        nc_b = var_b = None
        if self.centers is not None or self.w0 is not None:
            hn = _check_nonzero_rows(x)
            xh = x / hn[:, None]
            if self.centers is not None:
                nc_b = self._batch_moments(
                    torch.linalg.vector_norm(xh - self.centers[y], dim=1).square(), y, nb
                )
            if self.w0 is not None:
                var_b = self._batch_moments(1.0 - (xh * self.w0[y]).sum(1), y, nb)
        # --- merge into the state (Chan / parallel-axis update)
        na = self.counts
        ma = self.sums / na.clamp(min=1)[:, None]
        n = na + nb
        coef = na * nb / n.clamp(min=1)  # 0 where either side is empty
        delta = mb - ma
        if self.class_scatter is not None:
            order = torch.argsort(y, stable=True)
            xs = xc[order]
            cnt = nb.to(torch.int64).tolist()
            coef_l = coef.tolist()
            start = 0
            for c in range(K):
                if cnt[c]:
                    blk = xs[start : start + cnt[c]]
                    S_c = self.class_scatter[c]
                    S_c.addmm_(blk.T, blk)
                    if coef_l[c] > 0:
                        S_c.addr_(delta[c], delta[c], alpha=coef_l[c])
                    start += cnt[c]
        elif self.scatter is not None:
            _add_gram(self.scatter, xc)
            dw = delta * coef.sqrt()[:, None]
            self.scatter.addmm_(dw.T, dw)
        self.class_ss += ssb + coef * delta.square().sum(1)
        if nc_b is not None:
            self.nc_mean, self.nc_m2 = _merge_scalar(na, self.nc_mean, self.nc_m2, nb, *nc_b)
        if var_b is not None:
            self.var_mean, self.var_m2 = _merge_scalar(na, self.var_mean, self.var_m2, nb, *var_b)
        self.counts += nb
        self.sums += sb

    def _buffer(self, name: str, m: int):
        """A reused (m x d) float64 work buffer, kept at the largest batch size seen. Not part of
        the state; it exists because page-faulting a fresh N x d allocation per batch costs about
        as much as the scatter GEMM itself."""
        import torch

        buf = self._work.get(name)
        if buf is None or buf.shape[0] < m or buf.device != self.device:
            buf = torch.empty(m, self.dim, dtype=torch.float64, device=self.device)
            self._work[name] = buf
        return buf[:m]

    def _batch_moments(self, v, y, nb):
        import torch

        mean = torch.zeros_like(nb).index_add_(0, y, v) / nb.clamp(min=1)
        m2 = torch.zeros_like(nb).index_add_(0, y, (v - mean[y]).square())
        return mean, m2

    # ------------------------------------------------------------- combining
    def _check_compatible(self, other: NCStats):
        if not isinstance(other, NCStats):
            raise NCollapseError(f"can only merge another NCStats, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise NCollapseError(
                f"cannot merge accumulators with K={self.num_classes} and K={other.num_classes}"
            )
        if self.dim is not None and other.dim is not None and other.dim != self.dim:
            raise NCollapseError(f"cannot merge accumulators with d={self.dim} and d={other.dim}")

    def clone(self) -> NCStats:
        """Deep copy (same device)."""
        new = NCStats(
            self.num_classes,
            self.dim,
            self.device,
            per_class_scatter=self._per_class_arg,
            centers=self._centers_in,
            w0=self._w0_in,
            scatter=self._scatter_arg,
        )
        if self._initialised:
            new.load_state_dict(self.state_dict())
        return new

    def merge(self, other: NCStats) -> NCStats:
        """Add ``other``'s samples into ``self`` (in place, exact parallel-axis merge)."""
        import torch

        self._check_compatible(other)
        if not other._initialised or float(other.counts.sum()) == 0:
            return self
        if not self._initialised or float(self.counts.sum()) == 0:
            # nothing here yet: become a copy of other (its layout included)
            return self.load_state_dict(other.state_dict())
        o = other.state_dict()
        o = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in o.items()}
        self._check_same_layout(o)
        self._add_shifted(o)
        return self

    def _check_same_layout(self, o: dict):
        mine = self.state_dict()
        for key in ("class_scatter", "scatter", "logit_sums", "nc_mean", "var_mean"):
            if (mine[key] is None) != (o[key] is None):
                raise NCollapseError(
                    f"cannot merge: one accumulator keeps {key} and the other does not; create "
                    f"both with the same options (per_class_scatter, scatter, centers, w0, logits)"
                )
        for key in ("centers", "w0"):
            if mine[key] is not None and not bool((mine[key] == o[key]).all()):
                raise NCollapseError(f"cannot merge: the two accumulators use different NCMC {key}")

    def _add_shifted(self, o: dict):
        """Exact merge of a state dict ``o`` into self."""
        na, nb = self.counts, o["counts"]
        ma = self.sums / na.clamp(min=1)[:, None]
        mb = o["sums"] / nb.clamp(min=1)[:, None]
        n = na + nb
        coef = na * nb / n.clamp(min=1)
        delta = mb - ma
        if self.class_scatter is not None:
            self.class_scatter += o["class_scatter"]
            self.class_scatter += coef[:, None, None] * delta[:, :, None] * delta[:, None, :]
        elif self.scatter is not None:
            dw = delta * coef.sqrt()[:, None]
            self.scatter += o["scatter"] + dw.T @ dw
        self.class_ss += o["class_ss"] + coef * delta.square().sum(1)
        if self.nc_mean is not None:
            self.nc_mean, self.nc_m2 = _merge_scalar(
                na, self.nc_mean, self.nc_m2, nb, o["nc_mean"], o["nc_m2"]
            )
        if self.var_mean is not None:
            self.var_mean, self.var_m2 = _merge_scalar(
                na, self.var_mean, self.var_m2, nb, o["var_mean"], o["var_m2"]
            )
        if self.logit_sums is not None:
            self.logit_sums += o["logit_sums"]
            self.correct += o["correct"]
        self.counts += nb
        self.sums += o["sums"]

    def all_reduce(self, group=None) -> NCStats:
        """Sum the statistics of all workers in place (torch.distributed; no-op when it is not
        initialised). Two SUM all-reduces: (1) counts, class sums, logit sums, NCMC first moments;
        (2) scatters/M2s after shifting each worker's to the global class means."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        if not self._initialised:
            raise NCollapseError(
                "all_reduce before any update: give every worker at least one batch (or create "
                "NCStats with dim and device) so the state has a shape"
            )
        K = self.num_classes
        n_loc = self.counts.clone()
        m_loc = self.sums / n_loc.clamp(min=1)[:, None]
        first = [self.counts, self.sums.flatten()]
        if self.logit_sums is not None:
            first += [self.logit_sums.flatten(), self.correct]
        if self.nc_mean is not None:
            first.append(self.nc_mean * n_loc)
        if self.var_mean is not None:
            first.append(self.var_mean * n_loc)
        buf = torch.cat(first)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
        parts = iter(torch.split(buf, [t.numel() for t in first]))
        counts = next(parts).clone()
        sums = next(parts).reshape(K, self.dim).clone()
        if self.logit_sums is not None:
            self.logit_sums = next(parts).reshape(K, K).clone()
            self.correct = next(parts).clone()
        n_safe = counts.clamp(min=1)
        m_glob = sums / n_safe[:, None]
        delta = m_loc - m_glob
        second = []
        if self.class_scatter is not None:
            cs = self.class_scatter + n_loc[:, None, None] * delta[:, :, None] * delta[:, None, :]
            second.append(cs.flatten())
        elif self.scatter is not None:
            dw = delta * n_loc.sqrt()[:, None]
            second.append((self.scatter + dw.T @ dw).flatten())
        second.append(self.class_ss + n_loc * delta.square().sum(1))
        nc_g = var_g = None
        if self.nc_mean is not None:
            nc_g = next(parts) / n_safe
            second.append(self.nc_m2 + n_loc * (self.nc_mean - nc_g).square())
        if self.var_mean is not None:
            var_g = next(parts) / n_safe
            second.append(self.var_m2 + n_loc * (self.var_mean - var_g).square())
        buf2 = torch.cat(second)
        dist.all_reduce(buf2, op=dist.ReduceOp.SUM, group=group)
        parts2 = iter(torch.split(buf2, [t.numel() for t in second]))
        if self.class_scatter is not None:
            self.class_scatter = next(parts2).reshape(K, self.dim, self.dim).clone()
        elif self.scatter is not None:
            self.scatter = next(parts2).reshape(self.dim, self.dim).clone()
        self.class_ss = next(parts2).clone()
        if nc_g is not None:
            self.nc_mean, self.nc_m2 = nc_g, next(parts2).clone()
        if var_g is not None:
            self.var_mean, self.var_m2 = var_g, next(parts2).clone()
        self.counts, self.sums = counts, sums
        return self

    # --------------------------------------------------------- (de)serialise
    _TENSORS = (
        "counts",
        "sums",
        "scatter",
        "class_scatter",
        "class_ss",
        "logit_sums",
        "correct",
        "nc_mean",
        "nc_m2",
        "var_mean",
        "var_m2",
        "centers",
        "w0",
    )

    def state_dict(self) -> dict:
        """Dict of tensors (None for absent parts) plus ``num_classes``, ``dim``, ``version``."""
        if not self._initialised:
            return {"version": _STATE_VERSION, "num_classes": self.num_classes, "dim": self.dim}
        out = {"version": _STATE_VERSION, "num_classes": self.num_classes, "dim": self.dim}
        for k in self._TENSORS:
            v = getattr(self, k)
            out[k] = None if v is None else v.detach().clone()
        return out

    def load_state_dict(self, state: dict) -> NCStats:
        """Restore a :meth:`state_dict` (validated against K and d)."""
        import torch

        if not isinstance(state, dict) or "num_classes" not in state:
            raise NCollapseError("not an NCStats state dict (missing 'num_classes')")
        if int(state["num_classes"]) != self.num_classes:
            raise NCollapseError(
                f"state has num_classes={state['num_classes']} but this accumulator has "
                f"{self.num_classes}; create NCStats with the same K"
            )
        if "counts" not in state:
            return self.reset()
        d = int(state["dim"])
        if self.dim is not None and d != self.dim:
            raise NCollapseError(f"state has dim={d} but this accumulator has dim={self.dim}")
        self.dim = d
        if self.device is None:
            self.device = state["counts"].device
        self._per_class_arg = state["class_scatter"] is not None
        self._scatter_arg = state["class_scatter"] is not None or state.get("scatter") is not None
        self._centers_in = state.get("centers")
        self._w0_in = state.get("w0")
        self._init_state()
        for k in self._TENSORS:
            v = state.get(k)
            if k in ("centers", "w0"):
                continue
            setattr(self, k, None if v is None else v.to(self.device, torch.float64).clone())
        return self

    # -------------------------------------------------------------- snapshot
    def snapshot(self) -> Statistics:
        """Immutable numpy float64 :class:`Statistics` (what the measures take)."""
        if not self._initialised or float(self.counts.sum()) == 0:
            raise NCollapseError("no samples seen yet; call update(features, labels) first")

        def np_(t):
            return None if t is None else t.detach().cpu().numpy().copy()

        scatter = self.scatter
        if scatter is None and self.class_scatter is not None:
            scatter = self.class_scatter.sum(0)
        return Statistics(
            counts=np.rint(np_(self.counts)).astype(np.int64),
            sums=np_(self.sums),
            scatter=np_(scatter),
            class_ss=np_(self.class_ss),
            class_scatter=np_(self.class_scatter),
            logit_sums=np_(self.logit_sums),
            correct=None if self.correct is None else np.rint(np_(self.correct)).astype(np.int64),
            nc_mean=np_(self.nc_mean),
            nc_m2=np_(self.nc_m2),
            var_mean=np_(self.var_mean),
            var_m2=np_(self.var_m2),
        )

    def __repr__(self) -> str:
        n = 0 if not self._initialised else int(self.counts.sum())
        return (
            f"NCStats(num_classes={self.num_classes}, dim={self.dim}, N={n}, device={self.device})"
        )


def statistics(
    features,
    labels,
    num_classes: int | None = None,
    *,
    logits=None,
    batch_size: int = 65536,
    **kwargs,
) -> Statistics:
    """One-shot helper: stream ``features``/``labels`` (in batches of ``batch_size``) through an
    :class:`NCStats` and return the snapshot. ``num_classes`` defaults to ``max(labels)+1``."""
    x = _as_tensor(features, "features")
    y = _as_tensor(labels, "labels")
    if num_classes is None:
        if y.numel() == 0:
            raise NCollapseError("labels are empty; pass at least one sample per class")
        num_classes = max(int(y.max()) + 1, 2)
    acc = NCStats(num_classes, **kwargs)
    n = x.shape[0] if x.ndim >= 1 else 0
    if x.ndim != 2 or y.ndim != 1 or y.shape[0] != n:
        acc.update(x, y, logits)  # raises the shape error
    z = None if logits is None else _as_tensor(logits, "logits")
    for s in range(0, max(n, 1), batch_size):
        acc.update(
            x[s : s + batch_size],
            y[s : s + batch_size],
            None if z is None else z[s : s + batch_size],
        )
    return acc.snapshot()
