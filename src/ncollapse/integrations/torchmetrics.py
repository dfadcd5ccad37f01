"""``NCTorchMetric``: ncollapse's streaming NC statistics as a ``torchmetrics.Metric``.

``update(features, labels[, logits])`` streams a batch (features may require grad: they are
detached), ``compute()`` returns :func:`ncollapse.metrics.compute_all`'s nested dict, ``reset()``
clears. The states are :class:`~ncollapse.metrics.NCStats`' sufficient statistics (counts, class
sums, centred within-class scatter, per-class sums of squares, optionally logit sums): float64,
memory independent of N. Under DDP torchmetrics gathers every worker's states (``dist_reduce_fx
=None``) and :meth:`NCTorchMetric.compute` merges them exactly with :meth:`NCStats.merge` (the
parallel-axis update, Chan et al. 1979), so a plain sum of scatters -- wrong, because each worker's
scatter is centred at its own class means -- never happens.

Install with ``pip install ncollapse[torchmetrics]``.
"""

from __future__ import annotations

from ncollapse.integrations._optional import require

_tm = require("torchmetrics", "torchmetrics", "torchmetrics")

__all__ = ["NCTorchMetric"]

_STATES = ("counts", "sums", "scatter", "class_ss")
_LOGIT_STATES = ("logit_sums", "correct")


class NCTorchMetric(_tm.Metric):
    """NC metrics of a K-way classifier's ``dim``-wide features.

    ``W`` (K x d) / ``b`` (K) give NC2 of the classifier and NC3 (or call
    :meth:`set_classifier`, e.g. with the current head before ``compute``); ``logits=True`` makes
    ``update`` expect logits for every batch (accuracy, logit geometry). ``groups``,
    ``minority``, ``mean``: as in :func:`~ncollapse.metrics.compute_all`. NC4 and per-class NC1 need
    a second pass over the data: use :func:`ncollapse.measure` for those.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(
        self,
        num_classes: int,
        dim: int,
        W=None,
        b=None,
        *,
        logits: bool = False,
        groups=None,
        minority=None,
        mean: str = "unweighted",
        **kwargs,
    ):
        import torch

        from ncollapse.metrics import NCStats

        super().__init__(**kwargs)
        NCStats(num_classes, dim)  # validates K and d with ncollapse's messages
        self.num_classes, self.dim = int(num_classes), int(dim)
        self.with_logits = bool(logits)
        self.options = dict(groups=groups, minority=minority, mean=mean)
        self.W, self.b = W, b
        K, d = self.num_classes, self.dim
        f64 = dict(dtype=torch.float64)
        shapes = {"counts": (K,), "sums": (K, d), "scatter": (d, d), "class_ss": (K,)}
        if self.with_logits:
            shapes.update(logit_sums=(K, K), correct=(K,))
        for name, shape in shapes.items():
            self.add_state(name, default=torch.zeros(*shape, **f64), dist_reduce_fx=None)

    def set_classifier(self, W, b=None) -> NCTorchMetric:
        self.W, self.b = W, b
        return self

    def _names(self):
        return _STATES + (_LOGIT_STATES if self.with_logits else ())

    def _stats_from(self, tensors: dict):
        from ncollapse.metrics import NCStats

        acc = NCStats(self.num_classes, self.dim, per_class_scatter=False)
        state = {"num_classes": self.num_classes, "dim": self.dim, "class_scatter": None}
        state.update({k: None for k in ("logit_sums", "correct", "nc_mean", "nc_m2")})
        state.update({k: None for k in ("var_mean", "var_m2", "centers", "w0")})
        state.update(tensors)
        return acc.load_state_dict(state)

    def _accumulator(self):
        """An NCStats of the current state; after a DDP sync the states are stacked per worker
        (leading dimension = world size) and are merged exactly here."""
        names = self._names()
        if self.counts.ndim == 1:
            return self._stats_from({k: getattr(self, k) for k in names})
        acc = None
        for r in range(self.counts.shape[0]):
            one = self._stats_from({k: getattr(self, k)[r] for k in names})
            acc = one if acc is None else acc.merge(one)
        return acc

    def update(self, features, labels, logits=None) -> None:
        from ncollapse.errors import NCollapseError

        if self.with_logits and logits is None:
            raise NCollapseError(
                "this NCTorchMetric was created with logits=True; pass logits with every batch"
            )
        if not self.with_logits and logits is not None:
            raise NCollapseError(
                "logits were given but the metric was created without logits=True; create it "
                "with NCTorchMetric(K, d, logits=True)"
            )
        acc = self._accumulator()
        acc.update(
            features.detach(),
            labels.detach() if hasattr(labels, "detach") else labels,
            None if logits is None else logits.detach(),
        )
        for k in self._names():
            getattr(self, k).copy_(getattr(acc, k))

    def compute(self) -> dict:
        from ncollapse.metrics import compute_all

        return compute_all(self._accumulator().snapshot(), self.W, self.b, **self.options)
