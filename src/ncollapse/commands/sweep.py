"""`ncollapse sweep SPEC.yaml [--dry-run] [--executor local|ray] [--workers N] ...`."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser(
        "sweep",
        help="run a grid of recipes x overrides x seeds (resumable; local pool or Ray)",
        description="Run every run of a sweep spec (see configs/sweeps/ and docs/sweeps.md). "
        "Finished runs are skipped and interrupted ones resume from their checkpoint, so "
        "the same command continues a killed sweep. Results: `ncollapse report SWEEP_DIR`.",
    )
    p.add_argument("spec", help="sweep spec (YAML)")
    p.add_argument("--out", default=None, help="sweep directory (default: the spec's out_dir)")
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs and their state; start nothing"
    )
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument(
        "--address",
        default=None,
        help="join this Ray cluster (e.g. auto, or ray://HEAD:10001); default: a local instance",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="runs at a time (default: one per core or GPU)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="threads per run (default: cores / workers)"
    )
    p.add_argument(
        "--gpus", type=int, default=None, help="GPUs to use (default: all visible; 0 = CPU only)"
    )
    p.add_argument("--runs-per-gpu", type=int, default=1, help="concurrent runs per GPU")
    p.add_argument("--fail-fast", action="store_true", help="stop every run at the first failure")
    add_json_flag(p)
    p.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    import sys

    from ncollapse.output import print_json, print_table
    from ncollapse.sweep import describe, load_spec, plan, plan_resources, run_sweep

    spec = load_spec(args.spec, out_dir=args.out)  # every run's config is validated here
    if args.dry_run:
        res = plan_resources(spec, args.workers, args.threads, args.gpus, args.runs_per_gpu)
        rows = describe(plan(spec))
        if args.json:
            print_json({"sweep_dir": str(spec.out_dir), "resources": res.describe(), "runs": rows})
            return 0
        n_done = sum(r["state"] == "done" for r in rows)
        print_table(
            f"sweep {spec.name}: {len(rows)} runs, {n_done} finished, in {spec.out_dir} "
            f"({res.describe()})",
            ["run", "seed", "state", "epochs"],
            [
                [r["run_id"], r["seed"], r["state"], f"{r['epochs_done']}/{r['epochs']}"]
                for r in rows
            ],
        )
        return 0
    outcome = run_sweep(
        spec,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        gpus=args.gpus,
        runs_per_gpu=args.runs_per_gpu,
        address=args.address,
        fail_fast=args.fail_fast,
    )
    if args.json:
        print_json(outcome.to_dict())
    else:
        print(
            f"sweep {spec.name}: {len(outcome.done)} run(s) done, {outcome.skipped} skipped, "
            f"{len(outcome.failed)} failed in {outcome.seconds:.1f} s; "
            f"results: ncollapse report {spec.out_dir}",
            file=sys.stderr if outcome.failed else sys.stdout,
        )
    return 1 if outcome.failed else 0
