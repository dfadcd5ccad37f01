"""`ncollapse train CONFIG [key=value ...] [--resume RUN_DIR] [--json]`."""

from __future__ import annotations

import argparse
import os


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser(
        "train",
        help="train a model from a YAML recipe (DDP: torchrun --nproc_per_node=N -m ncollapse train ...)",
        description="Train from a YAML recipe with dotted overrides, e.g. "
        "`ncollapse train fmnist_lt_ce train.epochs=5 loss.name=ldam` (a packaged recipe by name) "
        "or `ncollapse train my_recipe.yaml`.",
    )
    p.add_argument(
        "config", nargs="?", help="YAML file or packaged recipe name (omit with --resume)"
    )
    p.add_argument("--list", action="store_true", help="list the packaged recipes and exit")
    p.add_argument("overrides", nargs="*", help="dotted overrides section.key=value")
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint"
    )
    add_json_flag(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from ncollapse.errors import NCollapseError
    from ncollapse.output import print_json, print_table
    from ncollapse.train import resume_run, train_from_config

    if args.list:
        from ncollapse.recipes import RECIPES_DIR, recipe_names

        names = recipe_names()
        if args.json:
            print_json({"recipes": names, "folder": str(RECIPES_DIR)})
        else:
            print("\n".join(names))
            print(f"({len(names)} recipes in {RECIPES_DIR})")
        return 0
    overrides = list(args.overrides)
    if args.resume:
        if args.config and "=" in args.config:
            overrides.insert(0, args.config)
        elif args.config:
            raise NCollapseError("--resume takes the run directory; do not pass a config file too")
        result = resume_run(args.resume, overrides)
    else:
        if not args.config:
            raise NCollapseError(
                "pass a YAML recipe or a packaged recipe name (ncollapse train --list), "
                "or --resume RUN_DIR"
            )
        if "=" in args.config:
            raise NCollapseError(
                f"the first argument must be a YAML file, got override {args.config!r}"
            )
        result = train_from_config(args.config, overrides)
    if int(os.environ.get("RANK", "0")) != 0:  # only rank 0 reports under DDP
        return 0
    summary = result.summary()
    if args.json:
        print_json(summary)
        return 0
    from ncollapse.report import run_summary

    rows = [["run", summary["run_dir"]], ["epochs", result.epochs_done]]
    for key, value in run_summary(result.final).items():
        if value is not None:
            rows.append([key, value])
    print_table("training summary (last epoch)", ["", "value"], rows)
    return 0
