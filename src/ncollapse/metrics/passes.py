"""The two-pass NC measurement: statistics, then the pass that needs the final class means.

One function, :func:`two_pass_measures`, used by ``ncollapse metrics`` (both passes over stored
features) and by the trainer (first-pass statistics from training, no second pass), so both apply
the same group and minority rules. Pass 1 streams ``(H, y[, logits])`` batches into
:class:`~ncollapse.metrics.NCStats`; pass 2 (:class:`~ncollapse.metrics.SecondPass`) adds NC4
agreement and per-class NC1 by projection; :func:`~ncollapse.metrics.compute_all` turns both into
the nested result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ncollapse.errors import NCollapseError
from ncollapse.metrics.compute import compute_all
from ncollapse.metrics.measures import require_classes
from ncollapse.metrics.second_pass import SecondPass
from ncollapse.metrics.stats import NCStats, Statistics

__all__ = ["resolve_minority", "two_pass_measures"]


def resolve_minority(minority, groups: Mapping[str, Sequence[int]] | None):
    """``"auto"`` -> :func:`ncollapse.groups.default_minority` of ``groups`` (or ``None``);
    ``None`` -> no minority section; a group name or class indices are passed through."""
    if isinstance(minority, str) and minority == "auto":
        from ncollapse.groups import default_minority

        return default_minority(groups) if groups else None
    return minority


def _split(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise NCollapseError(
            "each batch must be a (features, labels) or (features, labels, logits) tuple"
        )
    return batch[0], batch[1], batch[2] if len(batch) == 3 else None


def two_pass_measures(
    batches: Callable[[], Iterable] | None,
    num_classes: int,
    W=None,
    b=None,
    *,
    first: Statistics | None = None,
    second: bool = True,
    groups: Mapping[str, Sequence[int]] | None = None,
    minority: Sequence[int] | str | None = "auto",
    centers=None,
    w0=None,
    **options,
) -> dict:
    """Every NC measure of features streamed by ``batches()`` (a callable returning a fresh
    iterable of ``(H, y)`` or ``(H, y, logits)`` tuples; called once per pass).

    ``first``: statistics already collected (e.g. during a training epoch); pass 1 is skipped.
    ``second=False`` skips pass 2 (no NC4, per-class NC1 only from per-class scatters).
    ``minority="auto"``: the last group when it has >= 2 classes
    (:func:`ncollapse.groups.default_minority`). Other ``options`` go to :func:`compute_all`
    (``mean``, ``divide_by_k``, ``rtol``, ``per_class``, ...).
    """
    if first is None:
        if batches is None:
            raise NCollapseError("two_pass_measures needs batches, or first= statistics")
        acc = NCStats(num_classes, centers=centers, w0=w0, dim=None)
        for batch in batches():
            acc.update(*_split(batch))
        first = acc.snapshot()
    require_classes(first)
    sp_result = None
    if second and batches is not None:
        sp = SecondPass(first, W, b)
        for batch in batches():
            H, y, logits = _split(batch)
            # with a classifier the second pass scores W h + b itself; logits only stand in for it
            sp.update(H, y, None if W is not None else logits)
        sp_result = sp.result()
    return compute_all(
        first,
        W,
        b,
        second=sp_result,
        groups=groups,
        minority=resolve_minority(minority, groups),
        **options,
    )
