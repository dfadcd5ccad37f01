"""The sweep side of ``ncollapse report SWEEP_DIR`` (the command itself lives in
:mod:`ncollapse.commands.report`, which calls :func:`report_sweep` for sweep directories)."""

from __future__ import annotations

import argparse


def add_report_args(p: argparse.ArgumentParser) -> None:
    """Options that only apply to a sweep directory."""
    p.add_argument(
        "--pivot",
        default=None,
        metavar="rows=F,cols=F,cell=M",
        help="sweep dirs: a paper-style table, e.g. rows=method,cols=data.rho,cell=few_acc "
        "(join factors with +; 'metric' as an axis lists every measure)",
    )
    p.add_argument("--csv", action="store_true", help="sweep dirs: print CSV (mean and std)")
    p.add_argument(
        "--metric",
        action="append",
        default=None,
        metavar="PATH",
        help="sweep dirs: also aggregate this dotted path of the last epoch record "
        "(repeat), e.g. nc.nc1.cdnv",
    )


def report_sweep(args: argparse.Namespace) -> int:
    import sys

    from ncollapse.output import print_json
    from ncollapse.sweep.results import (
        Pivot,
        csv_text,
        load_sweep,
        markdown,
        parse_pivot,
        pivot_rows,
        print_rich,
        write_html,
    )

    sweep_dir = args.runs[0]
    t = load_sweep(sweep_dir, extra=getattr(args, "metric", None))
    pivot = getattr(args, "pivot", None)
    # default layout: one row per measure, one column per group (readable in a terminal)
    pv = parse_pivot(pivot, t) if pivot else Pivot(["metric"], list(t.factors), None)
    head, rows = pivot_rows(t, pv)
    html_path = None
    if getattr(args, "html", None):
        html_path = write_html(t, sweep_dir, args.html, title=args.title)
    if t.missing:
        print(
            f"note: {len(t.missing)} of the sweep's runs have no results yet (not finished)",
            file=sys.stderr,
        )
    if args.json:
        out = t.to_dict()
        out["table"] = {"head": head, "rows": rows}
        out["html"] = str(html_path) if html_path else None
        print_json(out)
    elif getattr(args, "csv", False):
        sys.stdout.write(csv_text(t))
    elif args.markdown:
        print(markdown(head, rows))
    else:
        title = t.name if args.title == "ncollapse report" else args.title
        print_rich(head, rows, title + " (accuracies in %, mean ± std over seeds)")
        if html_path:
            print(f"report: {html_path}")
    return 0
