"""`ncollapse metrics FILE.npz [--groups thresholds|ranges] [--ranges 3,7] [--mean ...] [--json]`.

The file holds ``H`` (N x d features) and ``y`` (N integer labels), optionally ``W`` (K x d
classifier), ``b`` (K bias), ``logits`` (N x K), and NCMC ``centers`` / ``W0`` (K x d).
"""

from __future__ import annotations

import argparse

REQUIRED = "H (N x d features) and y (N integer labels 0..K-1)"
OPTIONAL = "optionally W (K x d), b (K), logits (N x K), centers (K x d), W0 (K x d)"

#: What every number the tables print means (shown by ``--help``; formulas in docs/metrics.md).
LEGEND = {
    "pinv_dropped": "directions of Σ_B (structural rank min(K−1, d)) the pseudo-inverse cut-off removed",
    "pinv_max_dropped_ratio": "largest λ/λ_max among the dropped directions (> 1e-14: NC1 may read low)",
    "unc3_dot_mean": "UNC3: mean over classes of ⟨w_c, μ̃_c⟩ (Wu & Papyan)",
    "unc3_dot_var": "UNC3: variance over classes of ⟨w_c, μ̃_c⟩ (0 = uniform duality)",
    "unc3_dot_cv": "UNC3: std/|mean| of ⟨w_c, μ̃_c⟩ over classes (scale-free)",
    "unc3_cos_mean": "UNC3: mean over classes of cos(w_c, μ̃_c)",
    "unc3_cos_var": "UNC3: variance over classes of cos(w_c, μ̃_c)",
    "unc3_cos_cv": "UNC3: std/|mean| of cos(w_c, μ̃_c) over classes",
    "nc1": "tr(Σ_W Σ_B†)/K, within- over between-class variability (Papyan et al.)",
    "nc1_class_balanced": "mean over classes of the per-class NC1 (each class weighs the same)",
    "quotient": "tr(Σ_W)/tr(Σ_B) (Tirer et al.), Σ_W over samples",
    "quotient_class_balanced": "tr(Σ_W)/tr(Σ_B), Σ_W the mean of per-class covariances",
    "cdnv": "mean over class pairs of (σ_c² + σ_c'²) / (2 ||μ_c − μ_c'||²) (Galanti et al.)",
    "tr_within": "tr(Σ_W) = (1/N) Σ_i ||h_i − μ_y||²",
    "tr_between": "tr(Σ_B) = (1/K) Σ_c ||μ_c − μ_G||²",
    "between_rank": "rank of Σ_B kept by the pseudo-inverse (at most K − 1)",
    "tr_within_class_balanced": "(1/K) Σ_c σ_c², the class-balanced within-class trace",
    "equinorm": "std / mean of the norms (0: equal norms)",
    "equiangularity": "std of the pairwise cosines (0: equal angles)",
    "max_angle": "mean |cos + 1/(K−1)| (0: the simplex ETF's angles)",
    "mean_cos": "mean pairwise cosine",
    "dist_etf_M": "||M̃M̃ᵀ/||·|| − ETF Gram/||·||||_F: class means vs the simplex ETF",
    "dist_seli_M": "the same against SELI's Gram of means for these counts",
    "dist_etf_W": "||WWᵀ/||·|| − ETF Gram/||·||||_F: classifier vs the simplex ETF",
    "dist_seli_W": "the same against SELI's Gram of classifiers for these counts",
    "dist_WM": "normalised distance of W M̃ᵀ to the centring matrix P (SELI's W M = P)",
    "self_duality": "||W/||W|| − M̃/||M̃||||_F (NC3, unsquared)",
    "self_duality_sq": "the same, squared (Papyan et al. Fig. 5)",
    "seli_duality": "d(W M̃ᵀ, P), SELI's duality W M = P (equals dist_WM)",
    "duality_cos_mean": "mean over classes of cos(w_c, μ_c − μ_G)",
    "agreement": "NC4: fraction of samples where the classifier and the nearest class mean agree",
    "source": "what the NC4 classifier was: W (+ b) or the stored logits",
    "accuracy": "fraction of samples whose argmax (logits or W h + b) is their label",
    "dist_logits_P": "d(Z̄ P, P), Z̄ the class-mean logits (P removes the bias)",
    "NC_ave": "NCMC: mean ||h/||h|| − w̄_y/||w̄_y||||² (0: features on their class's centers)",
    "NC_std": "NCMC: its standard deviation over samples",
    "NC_ave_per_class": "NCMC: NC_ave of each class",
    "NC_std_per_class": "NCMC: NC_std of each class",
    "variability": "NCMC: mean (1 − cos(h_i, w_y)) against the frame's W0",
    "variability_std": "NCMC: its standard deviation",
    "variability_per_class": "NCMC: variability of each class",
    "mean_norm_loglog_slope": "slope of log ||μ_c − μ_G|| against log n_c",
    "mean_norm_ratio_max_min": "||μ|| of the largest class / ||μ|| of the smallest",
    "w_norm_loglog_slope": "slope of log ||w_c|| against log n_c (> 0: head classifiers longer)",
    "w_norm_ratio_max_min": "||w|| of the largest class / ||w|| of the smallest",
    "classifier_cos": "mean pairwise cosine of the classifiers w_c (minority collapse: -> 1)",
    "n_classes": "classes in the group",
    "n_samples": "samples in the group",
    "within_var": "σ_c² = (1/n_c) Σ ||h_i − μ_c||²",
    "mean_norm": "||μ_c − μ_G||",
    "w_norm": "||w_c||",
    "duality_cos": "cos(w_c, μ_c − μ_G)",
    "nc4": "NC4 agreement within the group / class",
    "|mu_c|": "||μ_c − μ_G||",
    "|w_c|": "||w_c||",
    "cos(w,mu)": "cos(w_c, μ_c − μ_G)",
    "b_c": "bias of class c",
    "sigma2": "σ_c², within-class variance",
    "NC1_c": "per-class NC1: tr(Σ_W^(c) Σ_B†)/K",
    "CDNV_c": "mean CDNV of class c against the others",
    "acc": "accuracy of class c",
    "NC4_c": "NC4 agreement of class c",
}


def _epilog() -> str:
    rows = "\n".join(f"  {k:<26} {v}" for k, v in LEGEND.items())
    return (
        "minority collapse: by default the last class group when it has >= 2 classes "
        "(ncollapse.groups.default_minority); shot groups: > MANY / FEW..MANY / < FEW training "
        "samples (ncollapse.groups.shot_thresholds).\n\nprinted quantities:\n" + rows
    )


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser(
        "metrics",
        help="NC metrics (NC1-NC4, SELI/ETF distances, per-group, minority collapse) of an .npz",
        description=f"Compute every NC metric of the features in FILE.npz. The file must contain "
        f"{REQUIRED}; {OPTIONAL}.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.npz", help="numpy .npz with arrays H, y [, W, b, ...]")
    p.add_argument(
        "--groups",
        choices=["thresholds", "ranges"],
        default=None,
        help="class groups: shot thresholds on counts (default; see --many/--few) or index ranges "
        "(--ranges)",
    )
    p.add_argument("--ranges", default=None, help="index boundaries for --groups ranges, e.g. 3,7")
    p.add_argument(
        "--many",
        type=int,
        default=None,
        help="many-shot: count > MANY (default 100, x10 from n_max >= 5000)",
    )
    p.add_argument(
        "--few",
        type=int,
        default=None,
        help="few-shot: count < FEW (default 20, x10 from n_max >= 5000)",
    )
    p.add_argument(
        "--mean",
        choices=["unweighted", "weighted"],
        default="unweighted",
        help="global mean for centring: unweighted mean of class means (default; the ETF and SELI "
        "targets' centring) or the sample-weighted mean (Papyan et al.)",
    )
    p.add_argument(
        "--minority",
        default=None,
        help="minority classes for minority collapse: a group name (e.g. few, tail) or indices "
        "7,8,9 (default: the last non-empty group if it has >= 2 classes)",
    )
    p.add_argument(
        "--num-classes", type=int, default=None, help="K (default: rows of W or max(y)+1)"
    )
    p.add_argument("--no-k", action="store_true", help="report NC1 without the /K (tr(Σ_W Σ_B†))")
    p.add_argument("--batch-size", type=int, default=65536, help="streaming batch size")
    p.add_argument("--per-class", action="store_true", help="also print the per-class table")
    add_json_flag(p)
    p.set_defaults(func=_metrics)


def load_npz(path) -> dict:
    """Read the arrays; one-line NCollapseError naming what is missing and what the file needs."""
    import zipfile
    from pathlib import Path

    import numpy as np

    from ncollapse.errors import NCollapseError

    p = Path(path)
    if p.is_dir():
        raise NCollapseError(f"{p} is a folder; pass the .npz file containing {REQUIRED}")
    if not p.is_file():
        raise NCollapseError(f"{p} does not exist; pass an .npz file containing {REQUIRED}")
    if not zipfile.is_zipfile(p):
        raise NCollapseError(
            f"{p} is not an .npz (zip) archive; write it with numpy.savez(path, H=..., y=...) "
            f"containing {REQUIRED}"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NCollapseError(
            f"cannot read {p} as .npz ({msg}); write it with numpy.savez(path, H=..., y=...) "
            f"containing {REQUIRED}"
        ) from exc
    for key in ("H", "y"):
        if key not in arrays:
            have = ", ".join(sorted(arrays)) or "no arrays"
            raise NCollapseError(
                f"{p} has no array '{key}' (it has: {have}); the file must contain {REQUIRED}; "
                f"{OPTIONAL}"
            )
    return arrays


def run_metrics(
    arrays: dict,
    *,
    groups_mode: str | None = None,
    ranges: str | None = None,
    many: int | None = None,
    few: int | None = None,
    mean: str = "unweighted",
    minority: str | None = None,
    num_classes: int | None = None,
    divide_by_k: bool = True,
    batch_size: int = 65536,
) -> dict:
    """Two passes over the arrays (statistics, then NC4 / per-class NC1) through
    :func:`ncollapse.metrics.two_pass_measures`, the function the trainer uses too."""
    import numpy as np

    from ncollapse.assembly import class_groups
    from ncollapse.errors import NCollapseError
    from ncollapse.groups import parse_int_list
    from ncollapse.metrics import two_pass_measures
    from ncollapse.metrics.stats import validate_batch

    H, y = arrays["H"], arrays["y"]
    W, b, logits = arrays.get("W"), arrays.get("b"), arrays.get("logits")
    if batch_size < 1:
        raise NCollapseError(f"--batch-size={batch_size} must be >= 1")
    _check_w_shape(H, y, W)
    if num_classes is None:
        if W is not None and W.ndim == 2:
            num_classes = int(W.shape[0])
        elif np.asarray(y).size:
            if not np.issubdtype(np.asarray(y).dtype, np.number):
                raise NCollapseError("y must hold integer labels 0..K-1")
            num_classes = max(int(np.nanmax(y)) + 1, 2)
        else:
            raise NCollapseError("y is empty; the file must contain at least one sample per class")
    # shapes, integer labels in 0..K-1: the statistics' own check, with its fixes
    validate_batch(H, y, num_classes, None)
    n = H.shape[0]
    if logits is not None and logits.shape != (n, num_classes):
        raise NCollapseError(
            f"logits have shape {logits.shape}, expected (N, K) = ({n}, {num_classes})"
        )
    if n == 0:
        raise NCollapseError("H has no rows; the file must contain at least one sample per class")

    def batches():
        for s in range(0, n, batch_size):
            sl = slice(s, s + batch_size)
            yield H[sl], y[sl], None if logits is None else logits[sl]

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes)
    if groups_mode is None:
        groups_mode = "ranges" if ranges else "thresholds"
    boundaries = parse_int_list(ranges, "--ranges") if ranges else None
    groups = None
    if counts.min() > 0:  # an empty class is reported by the measures themselves
        groups = class_groups(counts, groups=groups_mode, many=many, few=few, ranges=boundaries)
    if minority is None:
        minority = "auto"
    elif groups is None or minority not in groups:
        try:
            minority = parse_int_list(minority, "--minority")
        except NCollapseError as exc:
            groups_named = ", ".join(groups) if groups else "none"
            raise NCollapseError(
                f"--minority={minority!r} is neither a group ({groups_named}) nor class "
                f"indices such as 7,8,9"
            ) from exc
    res = two_pass_measures(
        batches,
        num_classes,
        W,
        b,
        groups=groups,
        minority=minority,
        centers=arrays.get("centers"),
        w0=arrays.get("W0"),
        mean=mean,
        divide_by_k=divide_by_k,
    )
    res["groups_mode"] = groups_mode
    return res


def _check_w_shape(H, y, W) -> None:
    """W must be K x d with d = H's columns (a transposed W is named)."""
    from ncollapse.errors import NCollapseError

    if W is None or getattr(H, "ndim", 0) != 2:
        return
    d = H.shape[1]
    if W.ndim != 2 or W.shape[1] != d:
        hint = " (transposed? save W.T)" if W.ndim == 2 and W.shape[0] == d else ""
        raise NCollapseError(
            f"W has shape {tuple(W.shape)}, expected (K, d) with d = {d} (the columns of H){hint}"
        )


def _metrics(args: argparse.Namespace) -> int:
    from ncollapse.output import print_json

    arrays = load_npz(args.file)
    res = run_metrics(
        arrays,
        groups_mode=args.groups,
        ranges=args.ranges,
        many=args.many,
        few=args.few,
        mean=args.mean,
        minority=args.minority,
        num_classes=args.num_classes,
        divide_by_k=not args.no_k,
        batch_size=args.batch_size,
    )
    if args.json:
        print_json(res)
        return 0
    print_report(res, per_class=args.per_class)
    return 0


def print_report(res: dict, per_class: bool = False) -> None:
    """Readable tables, one per section."""
    from ncollapse.groups import class_group_names
    from ncollapse.output import print_table

    d = res["data"]
    print_table(
        "data",
        ["K", "d", "N", "rho", "mean", "NC1 /K"],
        [[d["num_classes"], d["dim"], d["samples"], d["rho"], res["conventions"]["mean"],
          res["conventions"]["nc1_divided_by_K"]]],
    )  # fmt: skip
    print_table("NC1 (within-class variability)", ["measure", "value"], list(res["nc1"].items()))
    nc2 = res["nc2"]
    cols = ["measure", "class means"] + (["classifier"] if "classifier" in nc2 else [])
    rows = []
    for key in ("equinorm", "equiangularity", "max_angle", "mean_cos"):
        r = [key, nc2["means"][key]]
        if "classifier" in nc2:
            r.append(nc2["classifier"][key])
        rows.append(r)
    print_table("NC2 (geometry of means / classifier)", cols, rows)
    dist = [[k, v] for k, v in nc2.items() if k.startswith("dist")]
    print_table("NC2 distances of normalised Grams to targets", ["distance", "value"], dist)
    for sec, title in (
        ("nc3", "NC3 (duality)"),
        ("nc4", "NC4 (classifier vs nearest class centre)"),
        ("logits", "logits"),
        ("ncmc", "NCMC collapse"),
        ("norms", "norms against counts"),
    ):
        if sec in res:
            print_table(title, ["measure", "value"], [[k, v] for k, v in res[sec].items()])
    if "minority" in res:
        m = res["minority"]
        print_table(
            "minority collapse (mean pairwise cosine)",
            ["classes", "means", "classifiers"],
            [[",".join(map(str, m["classes"])), m["mean_cos"], m.get("classifier_cos")]],
        )
    if "groups" in res:
        groups = res["groups"]
        keys = ["n_classes", "n_samples", "nc1", "cdnv", "within_var", "mean_norm", "w_norm",
                "duality_cos", "accuracy", "nc4", "NC_ave", "mean_cos",
                "classifier_cos"]  # fmt: skip
        present = [k for k in keys if any(g.get(k) is not None for g in groups.values())]
        print_table(
            f"per group ({res.get('groups_mode', '')})",
            ["measure", *groups],
            [[k, *[g.get(k, "") for g in groups.values()]] for k in present],
        )
    if per_class and "per_class" in res:
        pc = res["per_class"]
        K = len(pc["count"])
        names = class_group_names({n: g["classes"] for n, g in res.get("groups", {}).items()}, K)
        short = {"mean_norm": "|mu_c|", "w_norm": "|w_c|", "duality_cos": "cos(w,mu)",
                 "bias": "b_c", "within_var": "sigma2", "nc1": "NC1_c", "cdnv": "CDNV_c",
                 "accuracy": "acc", "nc4": "NC4_c", "NC_ave": "NC_ave",
                 "variability": "var"}  # fmt: skip
        for title, keys in (
            ("per class: norms", ["mean_norm", "w_norm", "duality_cos", "bias"]),
            ("per class: collapse", ["within_var", "nc1", "cdnv", "accuracy", "nc4", "NC_ave"]),
        ):
            keys = [k for k in keys if k in pc]
            print_table(
                title,
                ["class", "group", "n", *[short[k] for k in keys]],
                [[c, names[c], pc["count"][c], *[pc[k][c] for k in keys]] for c in range(K)],
            )
