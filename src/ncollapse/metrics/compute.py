"""``compute_all``: every measure in one nested, JSON-able dict (for the CLI and the trainer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.metrics.measures import (
    KERNELS,
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
    hyperspherical_uniformity,
    logit_measures,
    minority_collapse,
    nc1,
    nc1_per_class,
    nc1_quotient,
    nc2,
    ncmc,
    norms_vs_counts,
    ood_orthogonality,
    pinv_report,
    require_classes,
    self_duality,
    target_distances,
    uniform_duality,
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


def _restrict_second(second, present):
    if second is None:
        return None
    return replace(
        second,
        counts=second.counts[present],
        agree=None if second.agree is None else second.agree[present],
        proj_ss=None
        if second.proj_ss is None
        else {k: v[present] for k, v in second.proj_ss.items()},
        absent=(),
    )


def _held_out(second, divide_by_k: bool, mean: str, train_nc1) -> dict:
    """The ``held_out`` section: a second pass over other data, against the first-pass means."""
    out: dict = {
        "samples": int(second.counts.sum()),
        "counts": second.counts.tolist(),
        "reference": "class means and Sigma_B of the first pass (training) statistics",
    }
    if second.proj_ss is not None:
        v = second.nc1(mean, divide_by_k)
        out["nc1"] = v
        out["nc1_class_balanced"] = float(np.nanmean(second.nc1_per_class(mean, divide_by_k)))
        out["nc1_per_class"] = second.nc1_per_class(mean, divide_by_k).tolist()
        out["nc1_gap"] = None if train_nc1 is None else float(v - train_nc1)
    nc4 = second.nc4()
    if nc4 is not None:
        out["nc4"] = nc4["agreement"]
        out["nc4_per_class"] = nc4["agreement_per_class"].tolist()
    return out


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
    cdnv_dist_exp: float = 1.0,
    ood=None,
) -> dict:
    """All NC measures of ``stats`` (+ classifier ``W`` K x d, bias ``b`` K, optional
    :class:`SecondPassResult` ``second`` for NC4 / NC1 by projection), as a nested dict of floats,
    lists and None (NaN -> None after ``to_jsonable``).

    Sections: ``conventions``, ``data``, ``warnings`` (list of sentences: dropped directions of
    the pseudo-inverse, absent classes, ...), ``nc1``, ``nc2``, ``gnc2`` (hyperspherical
    uniformity), ``nc3`` (with W; ``unc3`` inside), ``nc4`` (with a second pass over the same
    data that had a classifier), ``held_out`` (with a second pass over other data: NC1/NC4 of
    that data against these statistics' means), ``nc5`` (with ``ood`` = OOD features, their mean
    or Statistics), ``logits``, ``ncmc``, ``norms``, ``minority``, ``groups``, ``per_class``.

    Classes without samples do not raise: the measures are computed over the classes present,
    ``data.absent_classes`` lists the others, their per-class entries are None, and a warning
    says so. Keys are documented in docs/metrics.md.
    """
    if not isinstance(stats, Statistics):
        require_classes(stats)  # raises the type error
    _check_mean(mean)
    absent = np.flatnonzero(stats.counts == 0)
    if absent.size == 0:
        return _compute(
            stats, W, b, second=second, groups=groups, minority=minority, mean=mean,
            divide_by_k=divide_by_k, rtol=rtol, unbiased_cdnv=unbiased_cdnv,
            per_class=per_class, cdnv_dist_exp=cdnv_dist_exp, ood=ood, warnings=[],
        )  # fmt: skip
    present = stats.present
    K = stats.num_classes
    if present.size < 2:
        raise NCollapseError(
            f"only class(es) {present.tolist()} have samples; NC measures need at least 2 "
            f"classes with samples (feed more classes)"
        )
    lmap = np.full(K, -1, dtype=np.int64)
    lmap[present] = np.arange(present.size)

    def remap(classes):
        idx = lmap[np.asarray(classes, dtype=np.int64).ravel()]
        return idx[idx >= 0]

    Wm = None if W is None else check_classifier(W, stats)[present]
    bv = None if b is None else _check_bias(b, K)[present]
    sub = stats.restrict(present)
    sec = second
    if second is not None and second.same_data:
        sec = _restrict_second(second, present)
    g2 = None if groups is None else {k: remap(v).tolist() for k, v in groups.items()}
    mino = minority
    if minority is not None and not isinstance(minority, str):
        mino = remap(minority).tolist()
    warn = [
        f"class(es) {absent[:20].tolist()} have no samples: measures are over the "
        f"{present.size} classes present; their per-class entries are None"
    ]
    out = _compute(
        sub, Wm, bv, second=sec, groups=g2, minority=mino, mean=mean, divide_by_k=divide_by_k,
        rtol=rtol, unbiased_cdnv=unbiased_cdnv, per_class=per_class,
        cdnv_dist_exp=cdnv_dist_exp, ood=ood, warnings=warn,
    )  # fmt: skip
    out["data"]["num_classes"] = K
    out["data"]["classes_measured"] = int(present.size)
    out["data"]["absent_classes"] = absent.tolist()
    out["data"]["counts"] = stats.counts.tolist()
    if g2 is not None:
        for name, g in out["groups"].items():
            g["classes"] = [int(c) for c in np.asarray(groups[name]).ravel()]
    if mino is not None and "minority" in out:
        out["minority"]["classes"] = [int(present[c]) for c in out["minority"]["classes"]]
    if per_class and "per_class" in out:
        full = {}
        for key, v in out["per_class"].items():
            col = [None] * K
            for i, c in enumerate(present):
                col[c] = v[i]
            if key == "count":
                col = stats.counts.tolist()
            full[key] = col
        out["per_class"] = full
    return out


def _compute(
    stats: Statistics,
    W,
    b,
    *,
    second,
    groups,
    minority,
    mean,
    divide_by_k,
    rtol,
    unbiased_cdnv,
    per_class,
    cdnv_dist_exp,
    ood,
    warnings: list,
) -> dict:
    require_classes(stats)
    K, d, N = stats.num_classes, stats.dim, stats.total
    Wm = None if W is None else check_classifier(W, stats)
    bv = None if b is None else _check_bias(b, K)
    n = stats.counts
    held = None
    if second is not None and not second.same_data:
        held, second = second, None
    _, lam = between_factor(stats, mean, rtol)
    pinv = pinv_report(stats, mean, rtol)
    if pinv["warning"]:
        warnings.append(pinv["warning"])
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
            "pinv": f"thin SVD of the centred means (null direction removed), rtol={rtol:g}",
            "std_ddof": 0,
            "cdnv_variance": "unbiased 1/(n_c-1)" if unbiased_cdnv else "1/n_c",
            "cdnv_dist_exp": float(cdnv_dist_exp),
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
        "warnings": warnings,
    }
    tr_w = float(stats.class_ss.sum() / N)
    tr_b = float(np.sum(centered_means(stats, mean) ** 2) / K)
    if stats.scatter is None and (second is None or second.proj_ss is None):
        nc1_val = None
        warnings.append(
            "NC1 not computed: the statistics keep no d x d scatter (NCStats(scatter=False)) and "
            "no second pass with 'nc1' over the same data was given"
        )
    else:
        nc1_val = nc1(stats, mean, "sample", divide_by_k, rtol, second=second)
    sec1 = {
        "nc1": nc1_val,
        "nc1_class_balanced": None if pc_nc1 is None else float(pc_nc1.mean()),
        "quotient": nc1_quotient(stats, mean, "sample"),
        "quotient_class_balanced": nc1_quotient(stats, mean, "class"),
        "cdnv": cdnv(stats, unbiased_cdnv, cdnv_dist_exp),
        "tr_within": tr_w,
        "tr_between": tr_b,
        "between_rank": int(lam.size),
        "pinv_dropped": pinv["dropped"],
        "pinv_max_dropped_ratio": pinv["max_dropped_ratio"],
    }
    if stats.class_scatter is not None:
        sec1["tr_within_class_balanced"] = float(np.trace(within_covariance(stats, "class")))
    out["nc1"] = sec1

    sec2 = nc2(stats, Wm, mean)
    sec2.update(target_distances(stats, Wm, mean))
    out["nc2"] = sec2
    out["gnc2"] = {k: hyperspherical_uniformity(stats, k, mean) for k in KERNELS}

    dual = None
    if Wm is not None:
        dual = duality_cosines(stats, Wm, mean)
        out["nc3"] = {
            "self_duality": self_duality(stats, Wm, mean),
            "self_duality_sq": self_duality(stats, Wm, mean, squared=True),
            "seli_duality": sec2["dist_WM"],
            "duality_cos_mean": float(np.nanmean(dual)) if np.isfinite(dual).any() else None,
        }
        out["nc3"].update({f"unc3_{k}": v for k, v in uniform_duality(stats, Wm, mean).items()})

    nc4 = None if second is None else second.nc4()
    if nc4 is not None:
        out["nc4"] = {"agreement": nc4["agreement"], "source": "second pass"}
    if held is not None:
        out["held_out"] = _held_out(held, divide_by_k, mean, nc1_val)
    if ood is not None:
        out["nc5"] = ood_orthogonality(stats, ood, mean)["nc5"]

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
        "cdnv": np.nanmean(cdnv_matrix(stats, unbiased_cdnv, cdnv_dist_exp), axis=1),
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
