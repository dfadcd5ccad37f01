"""Run reports: comparison tables (mean ± std over seeds) and an HTML page with plots.

Modules: :mod:`~ncollapse.report.page` (the HTML page), :mod:`~ncollapse.report.svg` (its
charts), :mod:`~ncollapse.report.theory` (SELI / ETF predictions for a run's counts),
:mod:`~ncollapse.report.views` (what the trainer records for the report: the class Grams),
:mod:`~ncollapse.report.figures` and :mod:`~ncollapse.report.tensorboard` (TensorBoard images and
HParams).

A *run* is a run directory written by the trainer (``metrics.jsonl``, ``config.yaml``,
``manifest.json``). Functions take ``[(label, run_dir), ...]``; several runs with the same label
(different seeds) are aggregated as mean ± std.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError

__all__ = [
    "load_history",
    "final_record",
    "run_summary",
    "comparison_rows",
    "print_comparison",
    "write_html_report",
    "seli_reference_row",
    "etf_reference_row",
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


def _theory_row(name: str, counts, groups: dict[str, Any]) -> dict[str, Any]:
    from ncollapse.metrics import gram_distance
    from ncollapse.report.theory import group_cosines, predictions

    seli, etf = predictions(counts, "seli"), predictions(counts, "etf")
    me = seli if name == "seli" else etf
    row: dict[str, Any] = {"method": f"{me.name} theory", "n_runs": 1}
    row["NC1"] = 0.0
    for t, G_W, G_M in (("ETF", etf.G_W, etf.G_M), ("SELI", seli.G_W, seli.G_M)):
        row[f"dist {t} (W)"] = gram_distance(me.G_W, G_W)
        row[f"dist {t} (M)"] = gram_distance(me.G_M, G_M)
    # ‖W/‖W‖_F − Mᵀ/‖M‖_F‖_F² = 2 − 2 tr(WM)/(‖W‖_F ‖M‖_F), and W M = P (SELI) or ∝ P (ETF)
    k = len(me.counts)
    if name == "seli":
        c = (k - 1) / np.sqrt(np.trace(me.G_W) * np.trace(me.G_M))
        row["self-duality"] = float(np.sqrt(max(2.0 - 2.0 * c, 0.0)))
    else:
        row["self-duality"] = 0.0
    for g, idx in groups.items():
        idx = idx.get("classes") if isinstance(idx, dict) else idx
        gc = group_cosines(me, idx or [])
        if gc is not None:
            row[f"{g} cos(w,w')"], row[f"{g} cos(mu,mu')"] = gc
    viol = 1.0 - me.duality_cos
    row["self-duality violation (mean 1-cos)"] = float(viol.mean())
    row["self-duality violation (worst class)"] = float(viol.max())
    return row


def seli_reference_row(counts, groups: dict[str, Any]) -> dict[str, Any]:
    """A pseudo-row with what SELI (the vanishing-regularisation CE optimum; Thrampoulidis et al.,
    arXiv:2208.05512, Thm. 1) predicts for the same training counts: distances of its Grams to the
    ETF, its per-group cosines and its self-duality (W M = P, so w_c is not parallel to μ_c under
    imbalance)."""
    return _theory_row("seli", counts, groups)


def etf_reference_row(counts, groups: dict[str, Any]) -> dict[str, Any]:
    """The same pseudo-row for the simplex ETF (Papyan et al., arXiv:2008.08186, Def. 1): equal
    norms, cosines −1/(K−1), classifiers parallel to the centred means."""
    return _theory_row("etf", counts, groups)


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


from ncollapse.report.page import write_html_report  # noqa: E402
