"""`ncollapse reproduce list` and `ncollapse reproduce ID [--scale smoke|here|paper]`.

The catalogue (:mod:`ncollapse.reproduce`) holds one entry per figure / table / claim of the papers
the toolkit implements. Each run writes ``predictions.md`` (the paper's claim | what was measured |
holds or not), CSV tables, ``results.json`` and figures into its output folder.
"""

from __future__ import annotations

import argparse

SCALE_HELP = (
    "smoke: seconds, for CI (plumbing only, its numbers are not comparable); here: this machine "
    "(2 CPU cores; scaled-down data / width / epochs, stated in the report); paper: the paper's "
    "data, backbone and schedule (needs the data sets)"
)


def register(sub) -> None:
    from ncollapse.cli import add_json_flag

    p = sub.add_parser(
        "reproduce",
        help="the catalogue of paper figures/tables: list them, run one at a scale",
        description="`ncollapse reproduce list` shows every entry with its last verdict; "
        "`ncollapse reproduce ID --scale here` runs one (resumable: trained entries go through the "
        "sweep runner) and writes its report. Exit status 1 when a prediction does not hold.",
    )
    p.add_argument("id", help="an entry id (see `ncollapse reproduce list`) or 'list'")
    p.add_argument("--scale", choices=["smoke", "here", "paper"], default="here", help=SCALE_HELP)
    p.add_argument(
        "--out", default=None, help="output folder (default: outputs/reproduce/ID/SCALE)"
    )
    p.add_argument("--executor", default="local", choices=["local", "ray"], help="sweep executor")
    p.add_argument("--workers", type=int, default=None, help="runs at a time (trained entries)")
    add_json_flag(p)
    p.set_defaults(func=_reproduce)


def _short_paper(paper: str) -> str:
    """``"Liu, The Exploration ... (arXiv 2411.17278)"`` -> ``"Liu (arXiv 2411.17278)"``: the
    first author and the arXiv id or venue, so the catalogue table stays narrow."""
    import re

    author = paper.split(",")[0]
    m = re.search(r"arXiv \d{4}\.\d{4,5}", paper) or re.search(r"[A-Z][A-Za-z]+ \d{4}", paper)
    return f"{author} ({m.group(0)})" if m else author


def _reproduce(args: argparse.Namespace) -> int:
    from ncollapse.output import print_json, print_table
    from ncollapse.reproduce import accepts_scale, get_reproduction, reproductions, run_reproduction

    if args.id == "list":
        entries = [e.to_dict() | {"scales": "smoke, here, paper" if accepts_scale(e) else
                                  "smoke (quick), full"} for e in reproductions()]  # fmt: skip
        if args.json:
            print_json(entries)
            return 0
        rows = [[e["id"], _short_paper(e["paper"]), e["data"], "yes" if e["runnable_here"] else "no",
                 e["last_verdict"]] for e in entries]  # fmt: skip
        print_table(
            "reproduction catalogue (ncollapse reproduce ID --scale smoke|here|paper)",
            ["id", "paper", "data", "runs here", "last verdict"],
            rows,
        )
        print("each entry's claim: ncollapse reproduce list --json (field 'claim')")
        return 0
    entry = get_reproduction(args.id)
    opts = {}
    if accepts_scale(entry):
        opts = {"executor": args.executor, "workers": args.workers}
    summary = run_reproduction(entry.id, args.out, scale=args.scale, **opts)
    if args.json:
        print_json(summary)
    else:
        print(
            f"{entry.id} ({args.scale}): {summary['passed']}/{summary['rows']} predictions hold "
            f"-> {summary['out_dir']}/predictions.md"
        )
    return 0 if summary.get("all_ok") else 1
