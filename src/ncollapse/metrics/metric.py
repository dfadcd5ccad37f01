"""``NCMetric``: a torchmetrics-style object (update / compute / reset / sync) over NCStats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ncollapse.metrics.compute import compute_all
from ncollapse.metrics.measures import PINV_RTOL
from ncollapse.metrics.stats import NCStats

__all__ = ["NCMetric"]


class NCMetric:
    """Streaming NC metric for training loops, the same object in one process and under DDP.

    ``update(features, labels, logits=None)`` feeds the accumulator; ``compute()`` returns
    :func:`compute_all` of the statistics summed over all workers (``sync_on_compute=True``; the
    local state is left unchanged, as in torchmetrics); ``sync()`` all-reduces the local state in
    place; ``reset()`` clears it. The classifier ``W`` (K x d) and bias ``b`` can be given at
    construction or with :meth:`set_classifier` (e.g. the model's current head before ``compute``).
    Extra keyword arguments go to :class:`NCStats` (``dim``, ``device``, ``per_class_scatter``,
    ``centers``, ``w0``, ``scatter``).

    Features that still require grad (a training loop, timm's ``forward_head(pre_logits=True)``)
    are detached. Classes absent from the data are reported (``data.absent_classes``, per-class
    None), not an error. For NC4, per-class NC1 or held-out NC (e.g. test data against the
    training means): ``sp = metric.second_pass(); sp.update(...)`` over the data, then
    ``metric.compute(second=sp.result())``.
    """

    def __init__(
        self,
        num_classes: int,
        W=None,
        b=None,
        *,
        groups: Mapping[str, Sequence[int]] | None = None,
        minority: Sequence[int] | str | None = None,
        mean: str = "unweighted",
        divide_by_k: bool = True,
        rtol: float = PINV_RTOL,
        sync_on_compute: bool = True,
        per_class: bool = True,
        **stats_kwargs,
    ):
        self.stats = NCStats(num_classes, **stats_kwargs)
        self.W, self.b = W, b
        self.options = dict(
            groups=groups,
            minority=minority,
            mean=mean,
            divide_by_k=divide_by_k,
            rtol=rtol,
            per_class=per_class,
        )
        self.sync_on_compute = sync_on_compute

    def set_classifier(self, W, b=None) -> NCMetric:
        self.W, self.b = W, b
        return self

    def update(self, features, labels, logits=None) -> None:
        self.stats.update(features, labels, logits)

    def reset(self) -> None:
        self.stats.reset()

    def sync(self, group=None) -> NCMetric:
        self.stats.all_reduce(group)
        return self

    def snapshot(self):
        """The statistics (summed over workers when ``sync_on_compute``) as :class:`Statistics`."""
        acc = self.stats
        if self.sync_on_compute:
            acc = acc.clone().all_reduce()
        return acc.snapshot()

    def second_pass(self, W=None, b=None, *, measures=None, device=None):
        """A :class:`~ncollapse.metrics.SecondPass` over this metric's statistics (the classifier
        defaults to the metric's ``W``, ``b``); feed it the same data for NC4 / per-class NC1, or
        other data for held-out NC1 / NC4 against these (e.g. training) means."""
        from ncollapse.metrics.second_pass import SecondPass

        W = self.W if W is None else W
        b = self.b if b is None and W is self.W else b
        return SecondPass(
            self.snapshot(), W, b, rtol=self.options["rtol"], device=device, measures=measures
        )

    def compute(self, second=None, **kwargs) -> dict:
        """:func:`compute_all` of the statistics; ``kwargs`` (e.g. ``ood``, ``cdnv_dist_exp``)
        go to it."""
        return compute_all(
            self.snapshot(), self.W, self.b, second=second, **{**self.options, **kwargs}
        )

    def state_dict(self) -> dict:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict) -> NCMetric:
        self.stats.load_state_dict(state)
        return self
