"""``compute_all``: every measure in one nested, JSON-able dict (for the CLI and the trainer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.metrics.measures import (
    PINV_RTOL,
    _check_bias,
    _check_mean,
    between_factor,
    cdnv,
    cdnv_matrix,
    centered_means,
    check_classifier,
    duality_cosines,
    group_view,
    logit_measures,
    minority_collapse,
    nc1,
    nc1_per_class,
    nc1_quotient,
    nc2,
    ncmc,
    norms_vs_counts,
    require_classes,
    self_duality,
    target_distances,
    within_covariance,
)
from ncollapse.metrics.stats import Statistics

__all__ = ["compute_all"]


def _resolve_minority(minority, groups, K) -> list[int] | None:
    if minority is None:
        return None
    if isinstance(minority, str):
        if groups is None or minority not in groups:
            have = ", ".join(groups) if groups else "none"
            raise NCollapseError(
                f"minority group {minority!r} is not one of the groups ({have}); pass class "
                f"indices (e.g. 7,8,9) or a group name"
            )
        return [int(c) for c in np.asarray(groups[minority])]
    return [int(c) for c in np.asarray(minority).ravel()]


def compute_all(
    stats: Statistics,
    W=None,
    b=None,
    *,
    second=None,
    groups: Mapping[str, Sequence[int]] | None = None,
    minority: Sequence[int] | str | None = None,
    mean: str = "unweighted",
    divide_by_k: bool = True,
    rtol: float = PINV_RTOL,
    unbiased_cdnv: bool = False,
    per_class: bool = True,
) -> dict:
    """All NC measures of ``stats`` (+ classifier ``W`` K x d, bias ``b`` K, optional
    :class:`SecondPassResult` ``second`` for NC4 / per-class NC1), as a nested dict of floats,
    lists and None (NaN -> None after ``to_jsonable``).

    Sections: ``conventions``, ``data``, ``nc1``, ``nc2``, ``nc3`` (with W), ``nc4`` (with a second
    pass that had a classifier), ``logits`` (when logits were streamed), ``ncmc`` (with NCMC
    centers), ``norms``, ``minority`` (``minority`` = class indices or a group name), ``groups``,
    ``per_class`` (when ``per_class``). Keys are documented in docs/metrics.md.
    """
    require_classes(stats)
    _check_mean(mean)
    K, d, N = stats.num_classes, stats.dim, stats.total
    Wm = None if W is None else check_classifier(W, stats)
    bv = None if b is None else _check_bias(b, K)
    n = stats.counts
    _, lam = between_factor(stats, mean, rtol)
    pc_nc1 = nc1_per_class(stats, mean, divide_by_k=divide_by_k, rtol=rtol, second=second)
    pc_nc1_note = (
        "per-class scatters"
        if stats.class_scatter is not None
        else ("second pass" if pc_nc1 is not None else None)
    )

    out: dict = {
        "conventions": {
            "mean": mean,
            "sigma_B": "(1/K) sum_c (mu_c - mu_G)(mu_c - mu_G)^T",
            "nc1_divided_by_K": bool(divide_by_k),
            "pinv": f"eigh of the {'KxK Gram' if K <= d else 'dxd Sigma_B'}, rtol={rtol:g}",
            "std_ddof": 0,
            "cdnv_variance": "unbiased 1/(n_c-1)" if unbiased_cdnv else "1/n_c",
            "self_duality": "unsquared (self_duality) and squared (self_duality_sq)",
            "norm_ratios": "unsquared",
            "per_class_nc1_from": pc_nc1_note,
        },
        "data": {
            "num_classes": K,
            "dim": d,
            "samples": N,
            "rho": float(n.max() / n.min()),
            "counts": n.tolist(),
        },
    }
    tr_w = float(stats.class_ss.sum() / N)
    tr_b = float(np.sum(centered_means(stats, mean) ** 2) / K)
    sec1 = {
        "nc1": nc1(stats, mean, "sample", divide_by_k, rtol),
        "nc1_class_balanced": None if pc_nc1 is None else float(pc_nc1.mean()),
        "quotient": nc1_quotient(stats, mean, "sample"),
        "quotient_class_balanced": nc1_quotient(stats, mean, "class"),
        "cdnv": cdnv(stats, unbiased_cdnv),
        "tr_within": tr_w,
        "tr_between": tr_b,
        "between_rank": int(lam.size),
    }
    if stats.class_scatter is not None:
        sec1["tr_within_class_balanced"] = float(np.trace(within_covariance(stats, "class")))
    out["nc1"] = sec1

    sec2 = nc2(stats, Wm, mean)
    sec2.update(target_distances(stats, Wm, mean))
    out["nc2"] = sec2

    dual = None
    if Wm is not None:
        dual = duality_cosines(stats, Wm, mean)
        out["nc3"] = {
            "self_duality": self_duality(stats, Wm, mean),
            "self_duality_sq": self_duality(stats, Wm, mean, squared=True),
            "seli_duality": sec2["dist_WM"],
            "duality_cos_mean": float(np.nanmean(dual)) if np.isfinite(dual).any() else None,
        }

    nc4 = None if second is None else second.nc4()
    if nc4 is not None:
        out["nc4"] = {"agreement": nc4["agreement"], "source": "second pass"}

    lg = logit_measures(stats)
    if lg is not None:
        out["logits"] = {"accuracy": lg["accuracy"], "dist_logits_P": lg["dist_logits_P"]}

    nm = ncmc(stats)
    if nm is not None:
        out["ncmc"] = {k: v for k, v in nm.items() if not k.endswith("per_class")}

    nv = norms_vs_counts(stats, Wm, mean)
    out["norms"] = {k: v for k, v in nv.items() if k.endswith(("slope", "max_min"))}

    pcv = {
        "count": n,
        "mean_norm": nv["mean_norm"],
        "w_norm": nv.get("w_norm"),
        "within_var": stats.class_ss / n,
        "nc1": pc_nc1,
        "cdnv": np.nanmean(cdnv_matrix(stats, unbiased_cdnv), axis=1),
        "duality_cos": dual,
        "accuracy": None if lg is None else lg["accuracy_per_class"],
        "nc4": None if nc4 is None else nc4["agreement_per_class"],
        "NC_ave": None if nm is None else nm.get("NC_ave_per_class"),
        "variability": None if nm is None else nm.get("variability_per_class"),
        "bias": bv,
    }
    mino = _resolve_minority(minority, groups, K)
    if mino is not None:
        out["minority"] = minority_collapse(stats, mino, Wm, mean)
    if groups is not None:
        out["groups"] = group_view(
            stats, groups, {k: v for k, v in pcv.items() if k != "bias"}, Wm, mean
        )
    if per_class:
        out["per_class"] = {k: np.asarray(v).tolist() for k, v in pcv.items() if v is not None}
    return out
