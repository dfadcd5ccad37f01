"""`ncollapse report RUN_DIR ... [--html OUT] [--markdown] [--json]`: compare finished runs.

Runs with the same label (by default the run name without its timestamp, i.e. the recipe) are
aggregated as mean ± std, so several seeds of one method form one row.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser("report", help="compare finished runs (mean ± std over seeds), write HTML")
    p.add_argument(
        "runs", nargs="+", help="run directories (or folders containing run directories)"
    )
    p.add_argument(
        "--label",
        action="append",
        default=None,
        help="label per run (repeat); default: the run name without its timestamp",
    )
    p.add_argument("--html", default=None, help="write a self-contained HTML report here")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--title", default="ncollapse report")
    add_json_flag(p)
    from ncollapse.sweep.cli import add_report_args  # sweep dirs: --pivot, --csv, --metric

    add_report_args(p)
    p.set_defaults(func=_report)


_STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def default_label(run_dir: Path) -> str:
    name = _STAMP.sub("", run_dir.name)
    return re.sub(r"[-_]seed\d+$", "", name)


def expand_runs(paths: list[str]) -> list[Path]:
    from ncollapse.errors import NCollapseError

    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "metrics.jsonl").is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(q.parent for q in p.glob("*/metrics.jsonl"))
            if not found:
                raise NCollapseError(f"{p} holds no run directories (no */metrics.jsonl)")
            out.extend(found)
        else:
            raise NCollapseError(
                f"{p} is not a run directory; pass folders written by `ncollapse train`"
            )
    return out


def _report(args: argparse.Namespace) -> int:
    from ncollapse.errors import NCollapseError
    from ncollapse.output import print_json
    from ncollapse.report import (
        comparison_rows,
        markdown_table,
        print_comparison,
        write_html_report,
    )
    from ncollapse.sweep import is_sweep_dir

    if len(args.runs) == 1 and is_sweep_dir(args.runs[0]):  # a sweep: group by all but the seed
        from ncollapse.sweep.cli import report_sweep

        return report_sweep(args)
    dirs = expand_runs(args.runs)
    if args.label and len(args.label) != len(dirs):
        raise NCollapseError(
            f"{len(args.label)} --label values for {len(dirs)} runs; give one per run"
        )
    labels = args.label or [default_label(d) for d in dirs]
    runs = list(zip(labels, dirs))
    rows = comparison_rows(runs)
    html_path = write_html_report(runs, args.html, title=args.title) if args.html else None
    if args.json:
        print_json({"rows": rows, "html": str(html_path) if html_path else None})
    elif args.markdown:
        print(markdown_table(rows))
    else:
        print_comparison(rows, title=args.title)
        if html_path:
            print(f"report: {html_path}")
    return 0
