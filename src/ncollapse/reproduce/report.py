"""Reproduction output: prediction rows with stated tolerances, CSV tables, PNG figures, atomic writes.

A recipe collects rows ``prediction | numerics | error | tol | ok`` with :meth:`Report.check`
and writes into its output folder (default ``./outputs/ufm/<name>/``):

* ``results.json``: everything (rows, tables, settings, timings);
* ``predictions.csv`` and ``predictions.md``: the prediction table;
* ``<table>.csv`` for every data table and ``<figure>.png`` for every figure.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import numpy as np

from ncollapse.io import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable

KINDS = ("abs", "rel", "max", "min", "bool")


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "NO"
    if isinstance(x, str):
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.2e}"
    return f"{v:.4f}"


def default_out_dir(name: str) -> Path:
    return Path("outputs") / "ufm" / name


def entry_out_dir(entry_id: str, scale: str, out_dir=None) -> Path:
    """Where a trained catalogue entry writes: ``out_dir`` if given, else
    ``outputs/reproduce/ID/SCALE``."""
    return Path(out_dir) if out_dir is not None else Path("outputs/reproduce") / entry_id / scale


SMOKE_NOTE = "\n\n*Smoke scale checks the plumbing; its numbers are not comparable with the {}.*"


def entry_report(
    entry_id: str, out: Path, scale: str, head: str, scale_note: str | None = None, *,
    command_note: str = "", noun: str = "paper", **meta,
) -> Report:  # fmt: skip
    """The report of a trained catalogue entry: ``head`` (paper and claim), the scale with
    ``scale_note`` in parentheses, the command (plus ``command_note``) and, at smoke scale, the note
    that its numbers are not comparable with the ``noun``; ``meta`` is ``{"scale": scale, **meta}``."""
    intro = (
        f"{head}\n\n**Scale:** `{scale}`" + (f" ({scale_note})" if scale_note else "")
        + f"\n\n**Command:** `ncollapse reproduce {entry_id} --scale {scale}`{command_note}"
        + (SMOKE_NOTE.format(noun) if scale == "smoke" else "")
    )  # fmt: skip
    rep = Report(entry_id, out, quick=scale == "smoke", title=f"reproduce {entry_id}", intro=intro)
    rep.meta = {"scale": scale, **meta}
    return rep


class Report:
    """Collects prediction rows, tables and figures of one recipe run."""

    def __init__(
        self, name: str, out_dir=None, *, quick: bool = False, title: str | None = None,
        intro: str = "",
    ):  # fmt: skip
        self.name = name
        self.title = title or f"ufm reproduce {name}{' (quick)' if quick else ''}"
        self.intro = intro
        self.out_dir = Path(out_dir) if out_dir is not None else default_out_dir(name)
        self.quick = quick
        self.rows: list[dict] = []
        self.tables: dict[str, list[dict]] = {}
        self.figures: dict[str, Path] = {}
        self.meta: dict = {}
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}

    # ----------------------------------------------------------------------------- rows
    def check(
        self,
        section: str,
        quantity: str,
        setting: str,
        prediction,
        numerics,
        tol: float | None = None,
        *,
        kind: str = "abs",
        ok: bool | None = None,
        source: str = "",
    ) -> bool:
        """Add one prediction row and return whether it holds.

        ``kind``: ``abs`` (``|num - pred| <= tol``), ``rel`` (``|num - pred|/|pred| <= tol``),
        ``max`` (``num <= tol``; the prediction is a description such as "0"), ``min``
        (``num >= tol``), ``bool`` (``ok`` given by the caller; prediction/numerics are text).
        """
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} not in {KINDS}")
        err = None
        if kind in ("abs", "rel"):
            p, n = float(prediction), float(numerics)
            err = abs(n - p)
            if kind == "rel":
                err = err / max(abs(p), 1e-300)
            ok = bool(np.isfinite(err) and err <= tol)
        elif kind == "max":
            n = float(numerics)
            err = n
            ok = bool(np.isfinite(n) and n <= tol)
        elif kind == "min":
            n = float(numerics)
            ok = bool(np.isfinite(n) and n >= tol)
        else:
            ok = bool(ok)
        tol_txt = {"abs": "±", "rel": "rel ", "max": "≤ ", "min": "≥ ", "bool": ""}[kind]
        row = {
            "section": section,
            "quantity": quantity,
            "setting": setting,
            "prediction": prediction,
            "numerics": numerics,
            "error": err,
            "tol": None if tol is None else f"{tol_txt}{_fmt(tol)}",
            "kind": kind,
            "ok": ok,
            "source": source,
        }
        self.rows.append(row)
        return ok

    def table(self, name: str, rows: list[dict]) -> None:
        self.tables[name] = rows

    def figure(self, name: str, fig) -> Path:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        path = atomic_write_bytes(self.out_dir / f"{name}.png", buf.getvalue())
        self.figures[name] = path
        return path

    def timing(self, key: str, seconds: float) -> None:
        self.timings[key] = round(float(seconds), 3)

    # --------------------------------------------------------------------------- output
    @property
    def all_ok(self) -> bool:
        return all(r["ok"] for r in self.rows)

    def markdown(self) -> str:
        head = "| section | quantity | setting | prediction | numerics | error | tol | ok |"
        lines = [head, "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            cells = [
                r["section"],
                r["quantity"],
                r["setting"],
                _fmt(r["prediction"]),
                _fmt(r["numerics"]),
                _fmt(r["error"]),
                r["tol"] or "—",
                "yes" if r["ok"] else "**NO**",
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _csv(rows: list[dict]) -> str:
        if not rows:
            return ""
        keys: list[str] = []
        for r in rows:
            for k in r:
                if k not in keys:
                    keys.append(k)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_cell(r.get(k)) for k in keys})
        return buf.getvalue()

    def write(self) -> dict:
        total = time.perf_counter() - self.t0
        self.timing("total", total)
        out = self.out_dir
        n_ok = sum(r["ok"] for r in self.rows)
        summary = {
            "recipe": self.name,
            "quick": self.quick,
            "rows": len(self.rows),
            "passed": n_ok,
            "failed": len(self.rows) - n_ok,
            "all_ok": self.all_ok,
            "time_s": round(total, 2),
            "scale": self.meta.get("scale"),
            "out_dir": str(out),
        }
        md = f"# {self.title}\n\n" + (f"{self.intro}\n\n" if self.intro else "")
        md += "".join(f"![{n}]({p.name})\n\n" for n, p in self.figures.items())
        md += f"{n_ok}/{len(self.rows)} predictions hold; {total:.1f} s.\n\n" + self.markdown()
        atomic_write_text(out / "predictions.md", md)
        atomic_write_text(out / "predictions.csv", self._csv(self.rows))
        for name, rows in self.tables.items():
            atomic_write_text(out / f"{name}.csv", self._csv(rows))
        files = ["results.json", "predictions.md", "predictions.csv"]
        files += [f"{n}.csv" for n in self.tables] + [p.name for p in self.figures.values()]
        summary["files"] = files
        atomic_write_json(
            out / "results.json",
            {
                "summary": summary,
                "meta": self.meta,
                "timings": self.timings,
                "rows": self.rows,
                "tables": self.tables,
            },
        )
        return summary


def _csv_cell(v):
    v = to_jsonable(v)
    if isinstance(v, list):
        return " ".join(_fmt(x) if not isinstance(x, list) else str(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return v
