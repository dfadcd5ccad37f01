"""Run reports: comparison tables (mean ± std over seeds) and an HTML page with plots.

A *run* is a run directory written by the trainer (``metrics.jsonl``, ``config.yaml``,
``manifest.json``). Functions take ``[(label, run_dir), ...]``; several runs with the same label
(different seeds) are aggregated as mean ± std.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_text

__all__ = [
    "load_history",
    "final_record",
    "run_summary",
    "comparison_rows",
    "print_comparison",
    "write_html_report",
    "seli_reference_row",
    "markdown_table",
    "SUMMARY_KEYS",
]

#: (column label, path into the final epoch record). Group accuracies are added per group name.
SUMMARY_KEYS: list[tuple[str, tuple[str, ...]]] = [
    ("overall acc", ("test_acc",)),
    ("balanced acc", ("balanced_acc",)),
    ("NC1", ("nc", "nc1", "nc1")),
    ("dist ETF (W)", ("nc", "nc2", "dist_etf_W")),
    ("dist SELI (W)", ("nc", "nc2", "dist_seli_W")),
    ("dist ETF (M)", ("nc", "nc2", "dist_etf_M")),
    ("dist SELI (M)", ("nc", "nc2", "dist_seli_M")),
    ("self-duality", ("nc", "nc3", "self_duality")),
]


def load_history(run_dir: str | Path) -> list[dict[str, Any]]:
    p = Path(run_dir) / "metrics.jsonl"
    if not p.is_file():
        raise NCollapseError(
            f"{run_dir} has no metrics.jsonl; is it a run directory written by `ncollapse train`?"
        )
    from ncollapse.io import read_jsonl

    return read_jsonl(p)


def final_record(run_dir: str | Path) -> dict[str, Any]:
    hist = load_history(run_dir)
    if not hist:
        raise NCollapseError(f"{run_dir}/metrics.jsonl is empty: the run finished no epoch")
    return hist[-1]


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _tail_group(rec: dict[str, Any]) -> str | None:
    groups = (rec.get("nc") or {}).get("groups") or {}
    names = [g for g, v in groups.items() if isinstance(v, dict) and v.get("n_classes", 0) >= 2]
    return names[-1] if names else None


def run_summary(rec: dict[str, Any]) -> OrderedDict[str, float | None]:
    """Scalar summary of one epoch record: accuracies, NC measures, minority-collapse cosines."""
    out: OrderedDict[str, float | None] = OrderedDict()
    for label, path in SUMMARY_KEYS[:2]:
        out[label] = _get(rec, path)
    for g, v in (rec.get("group_acc") or {}).items():
        out[f"{g} acc"] = v
    if isinstance(rec.get("posthoc_acc"), dict):
        out["post-hoc LA acc"] = rec["posthoc_acc"].get("test_acc")
    for label, path in SUMMARY_KEYS[2:]:
        out[label] = _get(rec, path)
    # "complete minority collapse" diagnostics (AllNC): per-group cosines of means and classifiers
    groups = (rec.get("nc") or {}).get("groups") or {}
    for g, v in groups.items():
        if isinstance(v, dict) and v.get("n_classes", 0) >= 2:
            out[f"{g} cos(w,w')"] = v.get("classifier_cos")
            out[f"{g} cos(mu,mu')"] = v.get("mean_cos")
    dual = _get(rec, ("nc", "per_class", "duality_cos"))
    if dual:
        viol = 1.0 - np.asarray([np.nan if d is None else d for d in dual], dtype=float)
        out["self-duality violation (mean 1-cos)"] = float(np.nanmean(viol))
        out["self-duality violation (worst class)"] = float(np.nanmax(viol))
    nc = rec.get("nc") or {}
    if isinstance(nc.get("ncmc"), dict):
        out["NC_ave"] = nc["ncmc"].get("NC_ave")
    return out


def comparison_rows(runs: list[tuple[str, str | Path]]) -> list[dict[str, Any]]:
    """One row per label: ``{"method": label, "n_runs": r, col: mean, col + " std": std, ...}``."""
    by_label: OrderedDict[str, list[OrderedDict]] = OrderedDict()
    for label, run_dir in runs:
        by_label.setdefault(label, []).append(run_summary(final_record(run_dir)))
    rows = []
    for label, sums in by_label.items():
        row: dict[str, Any] = {"method": label, "n_runs": len(sums)}
        cols = list(OrderedDict.fromkeys(k for s in sums for k in s))
        for c in cols:
            vals = [s.get(c) for s in sums]
            vals = [float(v) for v in vals if isinstance(v, (int, float)) and v is not None]
            row[c] = float(np.mean(vals)) if vals else None
            row[c + " std"] = float(np.std(vals)) if len(vals) > 1 else None
        rows.append(row)
    return rows


def seli_reference_row(counts, groups: dict[str, Any]) -> dict[str, Any]:
    """A pseudo-row with what SELI (the vanishing-regularisation CE optimum, spec §1.4) predicts
    for the same training counts: distances of its Grams to the ETF, and its per-group cosines."""
    from ncollapse.geometry import etf_gram, seli_geometry
    from ncollapse.metrics import gram_distance

    geo = seli_geometry(counts)
    k = len(counts)
    row: dict[str, Any] = {"method": "SELI theory", "n_runs": 1}
    row["dist ETF (W)"] = gram_distance(geo.G_W, etf_gram(k))
    row["dist SELI (W)"] = 0.0
    row["dist ETF (M)"] = gram_distance(geo.G_M, etf_gram(k))
    row["dist SELI (M)"] = 0.0
    row["NC1"] = 0.0
    for g, idx in groups.items():
        idx = [int(i) for i in (idx.get("classes") if isinstance(idx, dict) else idx)]
        if len(idx) < 2:
            continue
        iu = np.triu_indices(len(idx), 1)
        row[f"{g} cos(w,w')"] = float(geo.cos_W[np.ix_(idx, idx)][iu].mean())
        row[f"{g} cos(mu,mu')"] = float(geo.cos_M[np.ix_(idx, idx)][iu].mean())
    row["self-duality violation (mean 1-cos)"] = None
    return row


def _cell(row: dict[str, Any], col: str, pct: bool) -> str:
    v = row.get(col)
    if v is None:
        return "–"
    s = row.get(col + " std")
    scale = 100.0 if pct else 1.0
    fmt = "{:.1f}" if pct else "{:.3f}"
    txt = fmt.format(v * scale)
    if s is not None:
        txt += " ± " + fmt.format(s * scale)
    return txt


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k in ("method", "n_runs") or k.endswith(" std") or k in cols:
                continue
            cols.append(k)
    return cols


def print_comparison(rows: list[dict[str, Any]], title: str = "comparison") -> None:
    """Print one column per method and one row per measure (readable in 100 columns)."""
    from rich.console import Console
    from rich.table import Table

    cols = _columns(rows)
    t = Table(title=title + " (accuracies in %)", title_justify="left")
    t.add_column("measure")
    for r in rows:
        label = r["method"] + (f" (n={r['n_runs']})" if r.get("n_runs", 1) > 1 else "")
        t.add_column(label, justify="right")
    for c in cols:
        t.add_row(c, *[_cell(r, c, c.endswith("acc")) for r in rows])
    Console().print(t)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    cols = _columns(rows)
    head = "| method | " + " | ".join(cols) + " |"
    sep = "|---|" + "---|" * len(cols)
    body = [
        "| " + r["method"] + " | " + " | ".join(_cell(r, c, c.endswith("acc")) for c in cols) + " |"
        for r in rows
    ]
    return "\n".join([head, sep, *body])


# ----------------------------------------------------------------------------- plots


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_nc_curves(runs: list[tuple[str, str | Path]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("NC1 = tr(Σ_W Σ_B†)/K", ("nc", "nc1", "nc1"), True),
        ("distance of W W^T to ETF / SELI", None, False),
        ("test accuracy", ("test_acc",), False),
        ("minority classifier cosine", "tail", False),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seen: dict[str, int] = {}
    for label, run_dir in runs:
        hist = [r for r in load_history(run_dir) if "nc" in r]
        if not hist or label in seen:
            continue  # one run (the first seed) per method, as in plot_per_class
        seen[label] = len(seen)
        c = colors[seen[label] % len(colors)]
        ep = [r["epoch"] + 1 for r in hist]
        for ax, (title, path, logy) in zip(axes, panels):
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            if path is None:
                ax.plot(
                    ep,
                    [_get(r, ("nc", "nc2", "dist_etf_W")) for r in hist],
                    color=c,
                    ls="--",
                    label=f"{label} (ETF)",
                )
                ax.plot(
                    ep,
                    [_get(r, ("nc", "nc2", "dist_seli_W")) for r in hist],
                    color=c,
                    label=f"{label} (SELI)",
                )
            elif path == "tail":
                tail = _tail_group(hist[-1])
                if tail:
                    ax.plot(
                        ep,
                        [_get(r, ("nc", "groups", tail, "classifier_cos")) for r in hist],
                        color=c,
                        label=label,
                    )
                    ax.set_title(f"mean cos between {tail} classifiers", fontsize=10)
            else:
                ax.plot(ep, [_get(r, path) for r in hist], color=c, label=label)
                if logy:
                    ax.set_yscale("log")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_per_class(runs: list[tuple[str, str | Path]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seen: dict[str, int] = {}
    for label, run_dir in runs:
        if label in seen:
            continue  # one seed per method keeps the plot readable
        seen[label] = len(seen)
        rec = final_record(run_dir)
        c = colors[seen[label] % len(colors)]
        n = np.asarray(_get(rec, ("nc", "data", "counts")) or [], dtype=float)
        acc = np.asarray(rec.get("per_class_acc") or [], dtype=float)
        wn = np.asarray(_get(rec, ("nc", "per_class", "w_norm")) or [], dtype=float)
        mn = np.asarray(_get(rec, ("nc", "per_class", "mean_norm")) or [], dtype=float)
        if n.size and acc.size == n.size:
            axes[0].plot(n, 100 * acc, "o-", color=c, label=label, ms=4)
        if n.size and wn.size == n.size:
            axes[1].plot(n, wn / wn.max(), "o-", color=c, label=label, ms=4)
        if n.size and mn.size == n.size:
            axes[2].plot(n, mn / mn.max(), "o-", color=c, label=label, ms=4)
        dc = _get(rec, ("nc", "per_class", "duality_cos"))
        if n.size and dc and len(dc) == n.size:
            dv = 1.0 - np.asarray([np.nan if d is None else d for d in dc], dtype=float)
            axes[3].plot(n, dv, "o-", color=c, label=label, ms=4)
    titles = [
        "per-class test accuracy (%)",
        "classifier norm ‖w_c‖ / max",
        "class-mean norm ‖μ_c − μ_G‖ / max",
        "self-duality violation 1 − cos(w_c, μ_c − μ_G)",
    ]
    for ax, t in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("training samples in the class (n_c)")
        ax.set_title(t, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_html_report(
    runs: list[tuple[str, str | Path]],
    path: str | Path,
    title: str = "ncollapse report",
    extra_rows: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a self-contained HTML page (plots embedded as PNG) and return its path.
    ``extra_rows`` (e.g. :func:`seli_reference_row`) are appended to the comparison table."""
    rows = comparison_rows(runs) + list(extra_rows or [])
    cols = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["method", *cols])
    body = "".join(
        "<tr><td>"
        + html.escape(r["method"])
        + "</td>"
        + "".join(f"<td>{html.escape(_cell(r, c, c.endswith('acc')))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    curves = _png(plot_nc_curves(runs))
    per_class = _png(plot_per_class(runs))
    first = final_record(runs[0][1])
    counts = _get(first, ("nc", "data", "counts"))
    groups = first.get("group_sizes") or {}
    run_list = "".join(
        f"<li>{html.escape(lab)}: <code>{html.escape(str(d))}</code></li>" for lab, d in runs
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}code{{font-size:90%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Training class counts: {html.escape(str(counts))}; groups: {html.escape(json.dumps(groups))}.
Accuracies in % on the balanced test set; NC measures on the training features of the last epoch
(distances are between Frobenius-normalised Grams; SELI targets use the training counts).</p>
<h2>Comparison</h2>
<table><tr>{head}</tr>{body}</table>
<h2>NC metrics over epochs</h2>
<img src="data:image/png;base64,{curves}" alt="NC curves">
<h2>Per class, against class size</h2>
<img src="data:image/png;base64,{per_class}" alt="per-class accuracy and norms">
<h2>Runs</h2><ul>{run_list}</ul>
</body></html>
"""
    return atomic_write_text(path, page)
