"""`ncollapse metrics FILE.npz [--groups thresholds|ranges] [--ranges 3,7] [--mean ...] [--json]`.

The file holds ``H`` (N x d features) and ``y`` (N integer labels), optionally ``W`` (K x d
classifier), ``b`` (K bias), ``logits`` (N x K), and NCMC ``centers`` / ``W0`` (K x d).
"""

from __future__ import annotations

import argparse

REQUIRED = "H (N x d features) and y (N integer labels 0..K-1)"
OPTIONAL = "optionally W (K x d), b (K), logits (N x K), centers (K x d), W0 (K x d)"


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser(
        "metrics",
        help="NC metrics (NC1-NC4, SELI/ETF distances, per-group, minority collapse) of an .npz",
        description=f"Compute every NC metric of the features in FILE.npz. The file must contain "
        f"{REQUIRED}; {OPTIONAL}.",
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
    p.add_argument("--many", type=int, default=100, help="many-shot: count > MANY (default 100)")
    p.add_argument("--few", type=int, default=20, help="few-shot: count < FEW (default 20)")
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
        "7,8,9 (default: the last group if it has >= 2 classes)",
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
    many: int = 100,
    few: int = 20,
    mean: str = "unweighted",
    minority: str | None = None,
    num_classes: int | None = None,
    divide_by_k: bool = True,
    batch_size: int = 65536,
) -> dict:
    """Two passes over the arrays (statistics, then NC4 / per-class NC1) and ``compute_all``."""
    import numpy as np

    from ncollapse.errors import NCollapseError
    from ncollapse.groups import make_groups, parse_int_list
    from ncollapse.metrics import NCStats, SecondPass, compute_all

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
    stats_acc = NCStats(num_classes, centers=arrays.get("centers"), w0=arrays.get("W0"), dim=None)
    if H.ndim != 2 or y.ndim != 1 or H.shape[0] != y.shape[0]:
        stats_acc.update(H, y)  # raises the shape error with its fix
    n = H.shape[0]
    if logits is not None and logits.shape != (n, num_classes):
        raise NCollapseError(
            f"logits have shape {logits.shape}, expected (N, K) = ({n}, {num_classes})"
        )
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        stats_acc.update(H[sl], y[sl], None if logits is None else logits[sl])
    if n == 0:
        raise NCollapseError("H has no rows; the file must contain at least one sample per class")
    stats = stats_acc.snapshot()
    from ncollapse.metrics.measures import require_classes

    require_classes(stats)
    sp = SecondPass(stats, W, b)
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        sp.update(H[sl], y[sl], None if logits is None or W is not None else logits[sl])
    second = sp.result()
    if groups_mode is None:
        groups_mode = "ranges" if ranges else "thresholds"
    boundaries = parse_int_list(ranges, "--ranges") if ranges else None
    groups = make_groups(stats.counts, groups_mode, many=many, few=few, boundaries=boundaries)
    if minority is None:
        nonempty = [g for g, idx in groups.items() if len(idx) >= 1]
        if nonempty and len(groups[nonempty[-1]]) >= 2 and len(nonempty) >= 2:
            minority = nonempty[-1]
    elif minority not in groups:
        try:
            minority = parse_int_list(minority, "--minority")
        except NCollapseError as exc:
            raise NCollapseError(
                f"--minority={minority!r} is neither a group ({', '.join(groups)}) nor class "
                f"indices such as 7,8,9"
            ) from exc
    res = compute_all(
        stats,
        W,
        b,
        second=second,
        groups=groups,
        minority=minority,
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
