"""Commands for finished runs: ``ncollapse measure RUN_DIR [--split train|test]``,
``ncollapse export-features RUN_DIR [--split] [--out FILE.npz]`` and ``ncollapse eval RUN_DIR``.

Each loads the run once with :func:`ncollapse.measuring.runs.load_run` and prints a table, or JSON
with ``--json``.
"""

from __future__ import annotations

import argparse


def _common(p) -> None:
    from ncollapse.cli import add_json_flag

    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run directory (config.yaml, checkpoint.pt)"
    )
    p.add_argument("--device", default="cpu", help="where to run the model (default cpu)")
    add_json_flag(p)


def register(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="neural collapse of a finished run, next to the ETF and SELI for its class counts",
        description="Measure NC of a finished run's model on its training subset; --split test "
        "adds the test set measured against the training class means (held-out NC4, train->test "
        "gap). Rows: measured train / test values, the simplex ETF and SELI predictions for the "
        "run's class counts; then plain-language verdicts (docs/measure.md).",
    )
    _common(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="default train")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also save the geometry plot")
    p.set_defaults(func=_measure)

    p = sub.add_parser(
        "export-features",
        help="write a finished run's features H, labels y, W, b and logits to an .npz",
        description="Write H (N x d, what the classifier multiplies), y, logits (N x K), W (K x d), "
        "b (K) and, for NCMC heads, centers / W0 to an .npz that `ncollapse metrics` reads.",
    )
    _common(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="default train")
    p.add_argument("--out", default=None, help="output file (default RUN_DIR/features-SPLIT.npz)")
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "eval",
        help="test accuracy of a finished run: overall, balanced, per class, many/medium/few",
        description="Test accuracy of a finished run (its method's logits): overall, balanced "
        "(mean of per-class), per class, and per shot group by training count: many (n > MANY), "
        "medium, few (n < FEW).",
    )
    _common(p)
    p.add_argument(
        "--many", type=int, default=None, help="many-shot: n > MANY (default: the run's)"
    )
    p.add_argument("--few", type=int, default=None, help="few-shot: n < FEW (default: the run's)")
    p.set_defaults(func=_eval)
    _register_decouple(sub)


def _register_decouple(sub) -> None:
    p = sub.add_parser(
        "decouple",
        help="re-fit or rescale a finished run's classifier (cRT, LWS, tau-norm) and compare",
        description="Decoupled classifier learning (Kang et al., ICLR 2020): keep the run's "
        "features and re-train the classifier with class-balanced weighting (crt), learn one "
        "scale per class (lws) or normalise the rows w_j / |w_j|^tau (tau_norm); prints test "
        "accuracy before and after, overall, balanced and per group. Nothing is written to the "
        "run folder.",
    )
    _common(p)
    p.add_argument("--method", choices=["crt", "lws", "tau_norm"], default="crt")
    p.add_argument("--tau", type=float, default=1.0, help="tau_norm exponent (default 1)")
    p.add_argument(
        "--weight-decay", type=float, default=5e-4, help="crt: ridge on W (default 5e-4)"
    )
    p.set_defaults(func=_decouple)


def _decouple(args: argparse.Namespace) -> int:
    from ncollapse.measuring.runs import decouple_run, load_run
    from ncollapse.output import print_json, print_table

    run = load_run(args.run_dir, device=args.device)
    res = decouple_run(run, args.method, tau=args.tau, weight_decay=args.weight_decay)
    if args.json:
        print_json(res)
        return 0
    b, a = res["before"], res["after"]
    rows = [["overall", b["test_acc"], a["test_acc"]],
            ["balanced", b["balanced_acc"], a["balanced_acc"]]]  # fmt: skip
    for g in res["groups"]:
        rows.append([f"{g} ({len(res['groups'][g])} classes)", b["group_acc"][g],
                     a["group_acc"][g]])  # fmt: skip
    fmt = [[r[0], *("—" if v is None else f"{100 * v:.2f}" for v in r[1:])] for r in rows]
    print_table(f"test accuracy (%), {args.method}", ["", "run", args.method], fmt)
    return 0


def _measure(args: argparse.Namespace) -> int:
    from ncollapse.measuring.runs import load_run, measure_run
    from ncollapse.output import print_json

    run = load_run(args.run_dir, device=args.device)
    res = measure_run(run, args.split)
    if args.plot:
        res.plot(args.plot)
    if args.json:
        print_json(res.to_dict())
        return 0
    from rich.console import Console

    Console().print(res)
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ncollapse.measuring.runs import export_features, load_run, save_npz
    from ncollapse.output import print_json, print_table

    run = load_run(args.run_dir, device=args.device)
    arrays = export_features(run, args.split)
    out = Path(args.out) if args.out else run.run_dir / f"features-{args.split}.npz"
    save_npz(out, arrays)
    shapes = {k: list(v.shape) for k, v in arrays.items()}
    if args.json:
        print_json({"path": str(out), "split": args.split, "arrays": shapes})
        return 0
    print_table(
        "features", ["array", "shape"], [[k, "x".join(map(str, s))] for k, s in shapes.items()]
    )
    print(f"wrote {out}; read it with: ncollapse metrics {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ncollapse.measuring.runs import evaluate_run, load_run
    from ncollapse.output import print_json, print_table

    run = load_run(args.run_dir, device=args.device)
    res = evaluate_run(run, many=args.many, few=args.few)
    if args.json:
        print_json(res)
        return 0
    th = res["thresholds"]
    print_table(
        f"test accuracy of {run.run_dir} (epoch {res['epoch']})",
        ["overall", "balanced", *[f"{g} ({len(res['groups'][g])} cl.)" for g in res["group_acc"]]],
        [[res["test_acc"], res["balanced_acc"], *res["group_acc"].values()]],
    )
    print(f"groups by training count: many n > {th['many']}, few n < {th['few']}, medium between")
    names = {c: g for g, idx in res["groups"].items() for c in idx}
    print_table(
        "per class",
        ["class", "group", "train n", "test acc"],
        [
            [c, names.get(c, ""), n, a]
            for c, (n, a) in enumerate(zip(res["train_counts"], res["per_class_acc"]))
        ],
    )
    return 0
