"""Sweep results: group runs by everything except the seed, mean ± std, and pivot tables.

A group is the set of runs whose resolved configs are equal apart from the seed key. Each run
contributes the scalar summary of its last epoch (:func:`ncollapse.report.run_summary`, the same
measures as ``ncollapse report RUN_DIR``), keyed by a short slug (``few_acc``, ``nc1``,
``dist_etf_w``); any dotted path into the last epoch record (``nc.nc1.cdnv``) is accepted too.
Std is the population std (ddof = 0) over the finished seeds, as in the run comparison.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.sweep.layout import DONE_NAME
from ncollapse.sweep.runner import RUNS_DIR, SWEEP_FILE

PSEUDO_METRIC = "metric"  # a pivot axis that lists the measures themselves


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def slug(label: str) -> str:
    """``"few acc"`` -> ``few_acc``, ``"dist ETF (W)"`` -> ``dist_etf_w``."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


@dataclass
class Group:
    factors: dict[str, Any]
    run_ids: list[str]
    planned: int
    values: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)

    def mean(self, key: str) -> float | None:
        v = self.values.get(key) or []
        return float(np.mean(v)) if v else None

    def std(self, key: str) -> float | None:
        v = self.values.get(key) or []
        return float(np.std(v)) if len(v) > 1 else None


@dataclass
class SweepTable:
    name: str
    factors: list[str]  # factor columns that vary (always 'method')
    metrics: OrderedDict[str, str]  # slug -> display label
    groups: list[Group]
    missing: list[str]  # planned runs without results

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.name,
            "factors": self.factors,
            "metrics": dict(self.metrics),
            "missing_runs": self.missing,
            "groups": [
                {
                    "factors": {k: g.factors.get(k) for k in self.factors},
                    "n_runs": len(g.run_ids),
                    "planned": g.planned,
                    "runs": g.run_ids,
                    "metrics": {
                        m: {"mean": g.mean(m), "std": g.std(m), "values": g.values.get(m, [])}
                        for m in self.metrics
                    },
                }
                for g in self.groups
            ],
        }


def _get_path(rec: dict[str, Any], path: str) -> Any:
    d: Any = rec
    for k in path.split("."):
        if isinstance(d, dict) and k in d:
            d = d[k]
        else:
            return None
    return d


def load_sweep(sweep_dir: str | Path, extra: list[str] | None = None) -> SweepTable:
    """Read every finished run of a sweep directory and aggregate by group (seed excluded)."""
    from ncollapse.report import final_record, run_summary

    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise NCollapseError(
            f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE}); pass the folder "
            "`ncollapse sweep` printed"
        )
    meta = json.loads((sweep_dir / SWEEP_FILE).read_text())
    groups: OrderedDict[str, Group] = OrderedDict()
    metrics: OrderedDict[str, str] = OrderedDict()
    missing: list[str] = []
    for r in meta["runs"]:
        g = groups.setdefault(r["group"], Group(dict(r["factors"]), [], 0))
        g.planned += 1
        run_dir = sweep_dir / RUNS_DIR / r["run_id"]
        if not (run_dir / DONE_NAME).is_file():
            missing.append(r["run_id"])
            continue
        rec = final_record(run_dir)
        g.run_ids.append(r["run_id"])
        row: dict[str, Any] = {}
        for label, v in run_summary(rec).items():
            key = slug(label)
            metrics.setdefault(key, label)
            row[key] = v
        for path in extra or []:
            metrics.setdefault(path, path)
            row[path] = _get_path(rec, path)
        for key, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
                g.values.setdefault(key, []).append(float(v))
    all_factors = list(OrderedDict.fromkeys(k for g in groups.values() for k in g.factors))
    varying = [
        k
        for k in all_factors
        if k == "method"
        or len({json.dumps(g.factors.get(k), default=str) for g in groups.values()}) > 1
    ]
    kept = [g for g in groups.values() if g.run_ids]
    return SweepTable(meta.get("name", sweep_dir.name), varying, metrics, kept, missing)


# --------------------------------------------------------------------------- formatting


def _is_pct(key: str) -> bool:
    return key.endswith("acc")


def fmt_cell(mean: float | None, std: float | None, key: str) -> str:
    if mean is None:
        return "–"
    scale, f = (100.0, "{:.1f}") if _is_pct(key) else (1.0, "{:.3f}")
    txt = f.format(mean * scale)
    if std is not None:
        txt += " ± " + f.format(std * scale)
    return txt


def _fval(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def long_rows(t: SweepTable, metrics: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per group: factors, n, then mean ± std of each metric."""
    ms = metrics or list(t.metrics)
    head = [*t.factors, "n", *[t.metrics.get(m, m) for m in ms]]
    rows = []
    for g in t.groups:
        n = f"{len(g.run_ids)}" + (f"/{g.planned}" if len(g.run_ids) != g.planned else "")
        rows.append(
            [*[_fval(g.factors.get(k)) for k in t.factors], n]
            + [fmt_cell(g.mean(m), g.std(m), m) for m in ms]
        )
    return head, rows


@dataclass
class Pivot:
    rows: list[str]
    cols: list[str]
    cell: str | None


def parse_pivot(text: str, t: SweepTable) -> Pivot:
    """``rows=method,cols=data.rho,cell=few_acc``; several factors per axis join with ``+``;
    ``metric`` as an axis lists the measures (then ``cell`` is not given)."""
    parts: dict[str, str] = {}
    for item in text.split(","):
        if "=" not in item:
            raise NCollapseError(
                f"--pivot {text!r}: {item!r} is not key=value; use e.g. "
                "rows=method,cols=data.rho,cell=few_acc"
            )
        k, v = (s.strip() for s in item.split("=", 1))
        if k not in ("rows", "cols", "cell"):
            raise NCollapseError(f"--pivot: unknown part {k!r}; use rows=, cols= and cell=")
        parts[k] = v
    rows = [s for s in parts.get("rows", "method").split("+") if s]
    cols = [s for s in parts.get("cols", "").split("+") if s]
    known = [*t.factors, PSEUDO_METRIC]
    all_factors = {k for g in t.groups for k in g.factors}
    for f in rows + cols:
        if f not in known and f not in all_factors:
            raise NCollapseError(
                f"--pivot: {f!r} is not a factor of this sweep; factors: {', '.join(known)}"
            )
    uses_metric = PSEUDO_METRIC in rows + cols
    cell = parts.get("cell")
    if uses_metric and cell:
        raise NCollapseError("--pivot: with 'metric' on an axis, leave out cell=")
    if not uses_metric:
        if not cell:
            raise NCollapseError("--pivot needs cell=MEASURE, e.g. cell=few_acc")
        cell = _metric_key(cell, t)
    return Pivot(rows, cols, cell)


def _metric_key(name: str, t: SweepTable) -> str:
    if name in t.metrics:
        return name
    for k, label in t.metrics.items():
        if name == label or slug(name) == k:
            return k
    raise NCollapseError(
        f"--pivot: unknown measure {name!r}; measures: {', '.join(t.metrics)} "
        "(or a dotted path into the last epoch record with --metric)"
    )


def pivot_rows(t: SweepTable, pv: Pivot) -> tuple[list[str], list[list[str]]]:
    """A paper-style table: one row per value of ``rows``, one column per value of ``cols``."""

    def key_of(g: Group | None, m: str | None, axis: list[str]) -> tuple:
        return tuple(m if f == PSEUDO_METRIC else _fval(g.factors.get(f)) for f in axis)

    items = []  # (group, metric)
    for g in t.groups:
        for m in t.metrics if pv.cell is None else [pv.cell]:
            items.append((g, m))
    row_keys = list(OrderedDict.fromkeys(key_of(g, m, pv.rows) for g, m in items))
    col_keys = list(OrderedDict.fromkeys(key_of(g, m, pv.cols) for g, m in items))
    cells: dict[tuple, str] = {}
    for g, m in items:
        k = (key_of(g, m, pv.rows), key_of(g, m, pv.cols))
        if k in cells and cells[k] != "–":
            if g.mean(m) is None:
                continue
            raise NCollapseError(
                f"--pivot: several groups fall in one cell {k}; add the missing factor to rows "
                f"or cols (factors: {', '.join(t.factors)})"
            )
        cells[k] = fmt_cell(g.mean(m), g.std(m), m)

    def label(axis: list[str], key: tuple) -> str:
        out = []
        for f, v in zip(axis, key):
            if f == PSEUDO_METRIC:
                out.append(t.metrics.get(v, v))
            elif f == "method":
                out.append(str(v))
            else:
                out.append(f"{f.split('.')[-1]}={v}")
        return ", ".join(out)

    title = " / ".join(pv.rows)
    if pv.cell is not None:
        title += f" ({t.metrics.get(pv.cell, pv.cell)})"
    head = [title] + [label(pv.cols, c) or t.metrics.get(pv.cell or "", "") for c in col_keys]
    body = [[label(pv.rows, r)] + [cells.get((r, c), "–") for c in col_keys] for r in row_keys]
    # drop rows without any value (e.g. NC_ave for methods that do not define it)
    body = [r for r in body if any(c != "–" for c in r[1:])]
    return head, body


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def csv_text(t: SweepTable, metrics: list[str] | None = None) -> str:
    """Machine-readable: one row per group, mean and std of each measure as raw numbers."""
    ms = metrics or list(t.metrics)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*t.factors, "n_runs", *[c for m in ms for c in (m, m + "_std")]])
    for g in t.groups:
        vals = []
        for m in ms:
            mu, sd = g.mean(m), g.std(m)
            vals += ["" if mu is None else repr(mu), "" if sd is None else repr(sd)]
        w.writerow([*[_fval(g.factors.get(k)) for k in t.factors], len(g.run_ids), *vals])
    return buf.getvalue()


def print_rich(head: list[str], rows: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=title, title_justify="left")
    for i, h in enumerate(head):
        tab.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        tab.add_row(*r)
    Console().print(tab)


def write_html(t: SweepTable, sweep_dir: str | Path, out: str | Path, title: str) -> Path:
    """The HTML report of :mod:`ncollapse.report`, one label per group (seeds aggregated)."""
    from ncollapse.report import write_html_report

    runs = []
    for g in t.groups:
        label = ", ".join(
            str(g.factors.get(k)) if k == "method" else f"{k.split('.')[-1]}={g.factors.get(k)}"
            for k in t.factors
        )
        runs += [(label, Path(sweep_dir) / RUNS_DIR / rid) for rid in g.run_ids]
    return write_html_report(runs, out, title=title)
