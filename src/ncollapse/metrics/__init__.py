"""Streaming neural-collapse statistics and imbalance-aware measures (float64).

Statistics apart from measures: :class:`NCStats` streams batches into sufficient statistics
(memory independent of N, exact merge, DDP all-reduce); :meth:`NCStats.snapshot` gives an immutable
:class:`Statistics`; every measure is a pure function of it (plus an optional classifier W, b).
:class:`SecondPass` adds what needs the final class means (NC4, per-class NC1 by projection).
:func:`compute_all` returns everything as one JSON-able dict; :class:`NCMetric` wraps it all
torchmetrics-style. Formulas and conventions: docs/metrics.md.
"""

from ncollapse.metrics.compute import compute_all
from ncollapse.metrics.measures import (
    MEANS,
    PINV_RTOL,
    between_covariance,
    between_factor,
    cdnv,
    cdnv_matrix,
    centered_means,
    cosine_matrix,
    duality_cosines,
    equiangularity,
    equinorm,
    global_mean,
    gram_cosines,
    gram_distance,
    group_view,
    logit_measures,
    max_angle,
    mean_pairwise_cosine,
    minority_collapse,
    nc1,
    nc1_per_class,
    nc1_quotient,
    nc2,
    ncmc,
    norms_vs_counts,
    self_duality,
    seli_duality,
    target_distances,
    within_covariance,
)
from ncollapse.metrics.metric import NCMetric
from ncollapse.metrics.second_pass import (
    SecondPass,
    SecondPassResult,
    nc4_agreement,
    second_pass,
)
from ncollapse.metrics.stats import NCStats, Statistics, statistics, validate_batch

__all__ = [
    "MEANS",
    "PINV_RTOL",
    "NCMetric",
    "NCStats",
    "SecondPass",
    "SecondPassResult",
    "Statistics",
    "between_covariance",
    "between_factor",
    "cdnv",
    "cdnv_matrix",
    "centered_means",
    "compute_all",
    "cosine_matrix",
    "duality_cosines",
    "equiangularity",
    "equinorm",
    "global_mean",
    "gram_cosines",
    "gram_distance",
    "group_view",
    "logit_measures",
    "max_angle",
    "mean_pairwise_cosine",
    "minority_collapse",
    "nc1",
    "nc1_per_class",
    "nc1_quotient",
    "nc2",
    "nc4_agreement",
    "ncmc",
    "norms_vs_counts",
    "second_pass",
    "self_duality",
    "seli_duality",
    "statistics",
    "target_distances",
    "validate_batch",
    "within_covariance",
]
