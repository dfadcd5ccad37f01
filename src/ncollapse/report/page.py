"""The HTML report: one self-contained, offline page (inline CSS, SVG and a little JS; no CDN).

Layout (top to bottom): how NC was measured; the comparison table (measures as rows, methods and
the two theories as columns); per-class panels against n_c with SELI's and the ETF's predictions;
minority collapse over training with the predicted cosines; NC over epochs; measured Grams beside
SELI's; a per-class table per method; each run's config, data manifest and environment.

The page is readable from 1,280 px down to a 390 px phone without horizontal scrolling: panels
flow in a grid, wide tables scroll inside their own container. Theory references:
:mod:`ncollapse.report.theory`.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import OrderedDict
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.report.svg import Line, Panel, colorbar, fmt, heatmap, line_chart, swatch
from ncollapse.report.theory import predictions
from ncollapse.report.views import MAX_GRAM_CLASSES, NC_PASS_TEXT, load_geometry

__all__ = ["write_html_report", "build_page", "coincident_groups", "nc_pass_of", "HEAD_NOTES"]

COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#7F7F7F"]
DASHES = ["", "8 4", "2 3", "10 3 2 3", "4 2", "1 2"]
MARKERS = ["circle", "square", "triangle", "diamond", "down", "cross"]
THEORY = {
    "seli": dict(label="SELI theory", color="#222222", dash="6 3", width=1.6),
    "etf": dict(label="ETF theory", color="#999999", dash="1.5 3.5", width=2.2),
}

#: Heads whose classifier rows have equal norms by construction (so their ‖w_c‖/max line is 1).
HEAD_NOTES = {
    "cosine": "its cosine classifier normalises every row w_c to unit length",
    "etf": "its classifier is a fixed simplex ETF (equal norms, pairwise cosines −1/(K−1))",
    "orthonormal": "its classifier is fixed with orthonormal rows (equal norms, cosines 0)",
}


# ----------------------------------------------------------------------------- run data


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _arr(v, k: int) -> np.ndarray | None:
    if v is None or len(v) != k:
        return None
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def _read(p: Path) -> str | None:
    return p.read_text() if p.is_file() else None


def nc_pass_of(rec: dict[str, Any], cfg: dict[str, Any] | None) -> str:
    """Which pass the record's NC statistics came from: the record's ``nc_pass`` (written since the
    trainer records it), else what the config implies (the trainer falls back to the clean pass
    when mixup mixes the training features)."""
    if rec.get("nc_pass") in NC_PASS_TEXT:
        return rec["nc_pass"]
    tr = (cfg or {}).get("train") or {}
    if tr.get("nc_pass") == "eval" or float(tr.get("mixup_alpha") or 0) > 0:
        return "eval"
    return "train"


class _Run:
    """The first run of one label (plots use one seed per method; the table aggregates seeds)."""

    def __init__(self, label: str, run_dir: Path, index: int):
        import yaml

        from ncollapse.report import load_history

        self.label, self.dir, self.i = label, Path(run_dir), index
        self.hist = load_history(run_dir)
        self.nc_hist = [r for r in self.hist if "nc" in r]
        self.final = self.hist[-1] if self.hist else {}
        self.config_text = _read(self.dir / "config.yaml")
        self.cfg = yaml.safe_load(self.config_text) if self.config_text else {}
        self.manifest_text = _read(self.dir / "manifest.json")
        self.env_text = _read(self.dir / "env.json")
        self.geo = load_geometry(run_dir)
        nc = self.nc_hist[-1] if self.nc_hist else {}
        self.nc_final = nc
        self.counts = np.asarray(_get(nc, "nc", "data", "counts") or [], dtype=float)
        self.k = int(self.counts.size)
        self.pc = _get(nc, "nc", "per_class") or {}
        self.head = _get(self.cfg, "model", "head")
        self.color = COLORS[index % len(COLORS)]
        self.dash = DASHES[index % len(DASHES)]
        self.marker = MARKERS[index % len(MARKERS)]
        names = (self.geo or {}).get("classes")
        self.names = [str(n) for n in names] if names and len(names) == self.k else [
            str(i) for i in range(self.k)]  # fmt: skip

    def line(self, x, y, tips, key: str | None = None) -> Line:
        return Line(key or f"m{self.i}", self.label, list(x), list(y), self.color, self.dash,
                    self.marker, 2.0, tips)  # fmt: skip


# ----------------------------------------------------------------------------- coincidences


def coincident_groups(series: dict[str, np.ndarray], atol: float = 1e-3) -> list[list[str]]:
    """Labels whose series agree everywhere within ``atol`` (finite entries; same length), grouped;
    only groups of two or more are returned."""
    labels = [k for k, v in series.items() if v is not None and np.isfinite(v).any()]
    seen: set[str] = set()
    out = []
    for i, a in enumerate(labels):
        if a in seen:
            continue
        grp = [a]
        for b in labels[i + 1 :]:
            va, vb = series[a], series[b]
            if b not in seen and va.shape == vb.shape:
                ok = np.isfinite(va) & np.isfinite(vb)
                if ok.any() and np.all(np.abs(va[ok] - vb[ok]) <= atol):
                    grp.append(b)
        if len(grp) > 1:
            seen.update(grp)
            out.append(grp)
    return out


def _coincidence_note(what: str, series: dict[str, np.ndarray], runs: list[_Run]) -> str | None:
    heads = {r.label: r.head for r in runs}
    notes = []
    theory = {t["label"] for t in THEORY.values()}
    for grp in coincident_groups(series):
        methods = [g for g in grp if g in heads]
        if not methods:
            if set(grp) == theory:
                notes.append(f"In “{what}” the SELI and ETF predictions coincide (for these "
                             "counts SELI is an ETF).")  # fmt: skip
            continue
        why = [f"{m}: {HEAD_NOTES[heads[m]]}" for m in methods if heads.get(m) in HEAD_NOTES]
        names = ", ".join(grp[:-1]) + " and " + grp[-1]
        txt = f"In “{what}” the lines of {names} coincide"
        txt += " by construction (" + "; ".join(why) + ")" if why else " in this run"
        txt += ". They are drawn with different dashes and markers, so both stay visible."
        notes.append(txt)
    return " ".join(notes) or None


# ----------------------------------------------------------------------------- figures


def _theory_line(kind: str, x, y, tips) -> Line:
    t = THEORY[kind]
    return Line(kind, t["label"], list(x), list(y), t["color"], t["dash"], None, t["width"], tips)


def _per_class_panels(runs: list[_Run], seli, etf) -> tuple[list[Panel], list[str]]:
    ref = runs[0]
    k = ref.k
    order = np.argsort(-ref.counts, kind="stable")
    x = ref.counts[order]
    names = [ref.names[c] for c in order]

    def tips(label: str, what: str, y) -> list[str]:
        return [
            f"{label} · {n} (n_c = {int(c)})\n{what} = {fmt(v)}" for n, c, v in zip(names, x, y)
        ]

    def norm(v):
        if v is None or not np.isfinite(v).any() or np.nanmax(v) <= 0:
            return v
        return v / np.nanmax(v)

    specs = [
        ("Test accuracy per class", "test accuracy (%)",
         lambda r: None if _arr(r.final.get("per_class_acc"), k) is None
         else 100 * _arr(r.final.get("per_class_acc"), k), None, None),
        ("Classifier norm ‖w_c‖ / max", "‖w_c‖ / max_c ‖w_c‖",
         lambda r: norm(_arr(r.pc.get("w_norm"), k)), seli.w_norm, etf.w_norm),
        ("Class-mean norm ‖μ_c − μ_G‖ / max", "‖μ_c − μ_G‖ / max",
         lambda r: norm(_arr(r.pc.get("mean_norm"), k)), seli.mean_norm, etf.mean_norm),
        ("Self-duality cos(w_c, μ_c − μ_G)", "cosine (1 = parallel)",
         lambda r: _arr(r.pc.get("duality_cos"), k), seli.duality_cos, etf.duality_cos),
        ("Per-class NC1 (within / between)", "NC1_c",
         lambda r: _arr(r.pc.get("nc1"), k), None, None),
    ]  # fmt: skip
    panels, notes = [], []
    for title, ylab, get, ys, ye in specs:
        p = Panel(title, "training samples in the class, n_c (log)", ylab, xlog=True)
        series: dict[str, np.ndarray] = {}
        for r in runs:
            y = get(r) if r.k == k else None
            if y is None:
                continue
            series[r.label] = y[order]
            p.lines.append(r.line(x, y[order], tips(r.label, ylab, y[order])))
        for kind, yt in (("seli", ys), ("etf", ye)):
            if yt is not None:
                lab = THEORY[kind]["label"]
                series[lab] = yt[order]
                p.lines.append(_theory_line(kind, x, yt[order], tips(lab, ylab, yt[order])))
        note = _coincidence_note(title, series, runs)
        if note:
            p.note = note
            notes.append(note)
        panels.append(p)
    return panels, notes


def _tail(rec: dict[str, Any]) -> tuple[str, list[int]] | None:
    groups = _get(rec, "nc", "groups") or {}
    cands = [(g, v.get("classes")) for g, v in groups.items()
             if isinstance(v, dict) and v.get("n_classes", 0) >= 2]  # fmt: skip
    return cands[-1] if cands else None


def _minority_panels(runs: list[_Run], seli, etf) -> tuple[list[Panel], str | None]:
    from ncollapse.report.theory import group_cosines

    tail = _tail(runs[0].nc_final)
    if tail is None:
        return [], None
    g, classes = tail
    cs, ce = group_cosines(seli, classes), group_cosines(etf, classes)
    panels, notes = [], []
    for j, (sym, key, word) in enumerate(
        [("w", "classifier_cos", "classifiers"), ("μ", "mean_cos", "class means")]
    ):
        p = Panel(f"Minority collapse: cos({sym}_c, {sym}_c′), {g} {word}", "epoch",
                  "mean pairwise cosine")  # fmt: skip
        ep_all: list[int] = []
        series = {}
        for r in runs:
            ep = [h["epoch"] + 1 for h in r.nc_hist]
            y = [_get(h, "nc", "groups", g, key) for h in r.nc_hist]
            ep_all += ep
            series[r.label] = np.asarray([np.nan if v is None else v for v in y], dtype=float)
            p.lines.append(r.line(ep, y, [f"{r.label} · epoch {e}\n{word} cos = {fmt(v)}"
                                          for e, v in zip(ep, y)]))  # fmt: skip
        if ep_all:
            x0, x1 = min(ep_all), max(ep_all)
            for kind, val in (("seli", cs), ("etf", ce)):
                if val is not None:
                    v = val[j]
                    lab = THEORY[kind]["label"]
                    n_ep = len(series[runs[0].label]) if runs[0].label in series else 0
                    series[lab] = np.full(n_ep, v)
                    p.lines.append(_theory_line(kind, [x0, x1], [v, v],
                                                [f"{lab}: {fmt(v)}"] * 2))  # fmt: skip
        note = _coincidence_note(p.title, series, runs)
        if note:
            p.note = note
            notes.append(note)
        panels.append(p)
    txt = (f"Classes in the {g} group: {', '.join(runs[0].names[c] for c in classes)}. "
           "Minority collapse (Fang et al., PNAS 2021, arXiv:2101.12699) drives these cosines "
           "towards 1; SELI predicts the horizontal dashed value for these counts, the ETF "
           f"−1/(K−1) = {fmt(-1 / (runs[0].k - 1))}.")  # fmt: skip
    return panels, txt


def _epoch_panels(runs: list[_Run]) -> list[Panel]:
    specs = [
        ("Balanced test accuracy", "accuracy (%)", ("balanced_acc",), False, 100.0, False),
        ("NC1 = tr(Σ_W Σ_B†) / K", "NC1 (log)", ("nc", "nc1", "nc1"), True, 1.0, True),
        ("W Wᵀ: distance to SELI", "‖Ĝ − Ĝ_SELI‖_F", ("nc", "nc2", "dist_seli_W"), False, 1, True),
        ("W Wᵀ: distance to the ETF", "‖Ĝ − Ĝ_ETF‖_F", ("nc", "nc2", "dist_etf_W"), False, 1, True),
        ("Mᵀ M: distance to SELI", "‖Ĝ − Ĝ_SELI‖_F", ("nc", "nc2", "dist_seli_M"), False, 1, True),
        ("Mᵀ M: distance to the ETF", "‖Ĝ − Ĝ_ETF‖_F", ("nc", "nc2", "dist_etf_M"), False, 1, True),
        ("Self-duality ‖W/‖W‖ − M/‖M‖‖", "distance", ("nc", "nc3", "self_duality"), False, 1, True),
    ]
    panels = []
    for title, ylab, path, logy, scale, nc_only in specs:
        p = Panel(title, "epoch", ylab, ylog=logy)
        series = {}
        for r in runs:
            hist = r.nc_hist if nc_only else r.hist
            ep = [h["epoch"] + 1 for h in hist]
            y = [_get(h, *path) for h in hist]
            y = [None if v is None else scale * float(v) for v in y]
            series[r.label] = np.asarray([np.nan if v is None else v for v in y], dtype=float)
            p.lines.append(r.line(ep, y, [f"{r.label} · epoch {e}\n{ylab} = {fmt(v)}"
                                          for e, v in zip(ep, y)]))  # fmt: skip
        notes = [_coincidence_note(title, series, runs) or ""]
        for r in runs:
            if (path[-1], r.head) in _BY_CONSTRUCTION:
                notes.append(_BY_CONSTRUCTION[path[-1], r.head].format(m=r.label))
        p.note = " ".join(n for n in notes if n) or None
        panels.append(p)
    return panels


#: (measure, head) -> why a method's curve is what it is by construction.
_BY_CONSTRUCTION = {
    ("dist_etf_W", "etf"): "{m}: 0 by construction (its classifier is a fixed simplex ETF).",
    ("dist_etf_W", "orthonormal"): "{m}: constant by construction (fixed orthonormal classifier).",
    ("dist_seli_W", "etf"): "{m}: constant by construction (fixed ETF classifier; the value is "
    "the ETF's own distance to SELI for these counts).",
}


def _figure(fig_id: str, panels: list[Panel], legend: list[tuple[str, str, str, str, str | None]],
            caption: str | None = None) -> str:  # fmt: skip
    items = "".join(
        f'<button type="button" data-key="{escape(k)}" aria-pressed="true">'
        f"{swatch(c, d, m)}<span>{escape(lab)}</span></button>"
        for k, lab, c, d, m in legend
    )
    cells = []
    for i, p in enumerate(panels):
        note = f'<p class="note">{escape(p.note)}</p>' if p.note else ""
        cells.append(f'<figure class="panel"><figcaption>{escape(p.title)}</figcaption>'
                     f"{line_chart(p, f'{fig_id}-{i}')}{note}</figure>")  # fmt: skip
    cap = f'<p class="caption">{caption}</p>' if caption else ""
    return (f'<div class="fig-group" id="{fig_id}"><div class="legend" role="group" '
            f'aria-label="show or hide series">{items}</div>{cap}'
            f'<div class="panels">{"".join(cells)}</div></div>')  # fmt: skip


def _legend(runs: list[_Run], theory: bool = True):
    out = [(f"m{r.i}", r.label, r.color, r.dash, r.marker) for r in runs]
    if theory:
        out += [(k, t["label"], t["color"], t["dash"], None) for k, t in THEORY.items()]
    return out


def _grams(runs: list[_Run], seli) -> str:
    from ncollapse.report.figures import display_gram

    ref = runs[0]
    cells = [
        ("SELI theory", "W Wᵀ", seli.G_W, "seli"),
        ("SELI theory", "Mᵀ M", seli.G_M, "seli"),
    ]
    missing = []
    for r in runs:
        g = r.geo or {}
        if g.get("G_W") is None and g.get("G_M") is None:
            missing.append(r.label)
            continue
        if g.get("G_W") is not None:
            cells.append((r.label, "W Wᵀ", np.asarray(g["G_W"]), f"m{r.i}"))
        if g.get("G_M") is not None:
            cells.append((r.label, "Mᵀ M", np.asarray(g["G_M"]), f"m{r.i}"))
    rows_html = []
    j = 0
    for what, long in (("W Wᵀ", "Classifier Gram W Wᵀ"), ("Mᵀ M", "Class-mean Gram Mᵀ M")):
        figs = []
        for who, w, G, key in cells:
            if w != what:
                continue
            title = f"{who}: {what}"
            figs.append(f'<figure class="hm"><figcaption>{escape(who)}</figcaption>'
                        f"{heatmap(display_gram(G), ref.names, title, key, f'gram-{j}')}</figure>")  # fmt: skip
            j += 1
        rows_html.append(f"<h3>{escape(long)}</h3><div class=heatmaps>{''.join(figs)}</div>")
    miss = ""
    if missing:
        miss = (f'<p class="note">No measured Grams for {escape(", ".join(missing))}: the run '
                "has no geometry.json with Grams (older runs, or more than "
                f"{MAX_GRAM_CLASSES} classes).</p>")  # fmt: skip
    trivial = ref.names == [str(i) for i in range(ref.k)]
    order = "" if trivial else " Rows and columns: " + ", ".join(
        f"{i} = {escape(n)}" for i, n in enumerate(ref.names)) + "."  # fmt: skip
    return (f'<p>Each Gram is divided by its largest diagonal entry, so a class’s squared norm '
            f"relative to the largest is on the diagonal and scaled inner products off it. SELI "
            f"(for the same counts) has larger diagonal entries for the head classes in W Wᵀ and "
            f"for the tail classes in Mᵀ M; the ETF would be a constant diagonal with "
            f"−1/(K−1) off it. Rows and columns are class indices.{order} Hover a "
            f"cell for its value.</p>"
            f'<div class="cbar-wrap">{colorbar()}</div>{miss}{"".join(rows_html)}')  # fmt: skip


# ----------------------------------------------------------------------------- tables

_GLOSS = {
    "overall acc": "test accuracy",
    "balanced acc": "mean of the per-class test accuracies",
    "post-hoc LA acc": "test accuracy after post-hoc logit adjustment",
    "NC1": "tr(Σ_W Σ_B†)/K on the training features; 0 = collapsed",
    "dist ETF (W)": "‖Ĝ_W − Ĝ_ETF‖_F of Frobenius-normalised Grams",
    "dist SELI (W)": "‖Ĝ_W − Ĝ_SELI‖_F, SELI for the training counts",
    "dist ETF (M)": "same for the centred class means",
    "dist SELI (M)": "same for the centred class means",
    "self-duality": "‖W/‖W‖_F − M̃/‖M̃‖_F‖_F; 0 = w_c ∥ μ_c − μ_G",
    "self-duality violation (mean 1-cos)": "mean over classes of 1 − cos(w_c, μ_c − μ_G)",
    "self-duality violation (worst class)": "largest 1 − cos(w_c, μ_c − μ_G)",
    "NC_ave": "NCMC average (multi-center frame)",
}


_SECTIONS = [
    "Accuracy (%)",
    "Variability collapse (NC1)",
    "Geometry of the Grams (NC2)",
    "Minority collapse: mean pairwise cosine within a group",
    "Self-duality (NC3)",
]


def _section_of(col: str) -> str:
    if col.endswith("acc"):
        return "Accuracy (%)"
    if col in ("NC1", "NC_ave"):
        return "Variability collapse (NC1)"
    if col.startswith("dist "):
        return "Geometry of the Grams (NC2)"
    if "cos(" in col:
        return "Minority collapse: mean pairwise cosine within a group"
    return "Self-duality (NC3)"


def _gloss(col: str) -> str:
    if col in _GLOSS:
        return _GLOSS[col]
    if col.endswith(" acc"):
        return f"test accuracy on the {col[:-4]} classes"
    if "cos(w,w')" in col:
        return "classifiers; 1 = collapsed onto each other"
    if "cos(mu,mu')" in col:
        return "centred class means"
    return ""


def _comparison_table(rows: list[dict[str, Any]]) -> str:
    from ncollapse.report import _cell, _columns

    cols = _columns(rows)
    head = "".join(
        f'<th scope="col"{" class=theory" if "theory" in r["method"] else ""}>'
        f"{escape(r['method'])}"
        + (f'<span class="sub">{r["n_runs"]} seeds</span>' if r.get("n_runs", 1) > 1 else "")
        + "</th>"
        for r in rows
    )
    by_sec: OrderedDict[str, list[str]] = OrderedDict((s, []) for s in _SECTIONS)
    for c in cols:
        if any(r.get(c) is not None for r in rows if "theory" not in r["method"]):
            by_sec[_section_of(c)].append(c)
    body = []
    n = len(rows) + 1
    for sec, cs in by_sec.items():
        if not cs:
            continue
        body.append(f'<tr class="sec"><th colspan="{n}" scope="colgroup">{escape(sec)}</th></tr>')
        for c in cs:
            label = c.replace("mu", "μ")
            g = _gloss(c)
            tds = "".join(
                f"<td{' class=theory' if 'theory' in r['method'] else ''}>"
                f"{escape(_cell(r, c, c.endswith('acc')))}</td>"
                for r in rows
            )
            gl = f'<span class="sub">{escape(g)}</span>' if g else ""
            body.append(f'<tr><th scope="row">{escape(label)}{gl}</th>{tds}</tr>')
    return (f'<div class="table-scroll" tabindex="0"><table class="cmp"><thead><tr>'
            f'<th scope="col">measure</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            f"</table></div>")  # fmt: skip


def _per_class_table(r: _Run) -> str:
    k = r.k
    cols = [
        ("test acc (%)", _arr(r.final.get("per_class_acc"), k), 100.0),
        ("‖w_c‖", _arr(r.pc.get("w_norm"), k), 1.0),
        ("‖μ_c − μ_G‖", _arr(r.pc.get("mean_norm"), k), 1.0),
        ("NC1_c", _arr(r.pc.get("nc1"), k), 1.0),
        ("cos(w_c, μ_c − μ_G)", _arr(r.pc.get("duality_cos"), k), 1.0),
    ]
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c, _, _ in cols)
    body = []
    for c in np.argsort(-r.counts, kind="stable"):
        tds = "".join(
            f"<td>{'–' if v is None or not math.isfinite(v[c]) else fmt(s * v[c], 3)}</td>"
            for _, v, s in cols
        )
        body.append(f'<tr><th scope="row">{escape(r.names[c])}</th>'
                    f"<td>{int(r.counts[c])}</td>{tds}</tr>")  # fmt: skip
    note = ""
    if cols[3][1] is None:
        note = ('<p class="note">NC1_c was not recorded: the accumulator keeps per-class '
                "scatters only for K ≤ 64 classes with K·d² ≤ 2²³ "
                "(ncollapse.metrics.NCStats, per_class_scatter).</p>")  # fmt: skip
    return (f'{note}<div class="table-scroll" tabindex="0"><table class="pc"><thead><tr>'
            f'<th scope="col">class</th><th scope="col">n_c</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')  # fmt: skip


# ----------------------------------------------------------------------------- page


def _nc_pass_block(runs: list[_Run]) -> str:
    passes = OrderedDict()
    for r in runs:
        passes.setdefault(nc_pass_of(r.nc_final or r.final, r.cfg), []).append(r.label)
    items = []
    for ps, labels in passes.items():
        who = "all methods" if len(passes) == 1 else ", ".join(labels)
        cls = "ok" if ps == "eval" else "warn"
        items.append(f'<p class="pass {cls}"><strong>NC pass ({escape(ps)}), {escape(who)}:</strong>'
                     f" measured in {escape(NC_PASS_TEXT[ps])}.</p>")  # fmt: skip
    return "".join(items)


def _details(runs: list[_Run], all_runs: list[tuple[str, Path]]) -> str:
    out = []
    for r in runs:
        blocks = [("config.yaml", r.config_text), ("manifest.json", r.manifest_text),
                  ("env.json", r.env_text)]  # fmt: skip
        inner = "".join(f"<h4>{escape(n)}</h4><pre>{escape(t)}</pre>" for n, t in blocks if t)
        out.append(f"<details><summary>{escape(r.label)}: config, data manifest, environment"
                   f"</summary><p>Run directory: <code>{escape(str(r.dir))}</code></p>{inner}"
                   "</details>")  # fmt: skip
    lst = "".join(f"<li>{escape(lab)}: <code>{escape(str(d))}</code></li>" for lab, d in all_runs)
    out.append(f"<details><summary>All run directories ({len(all_runs)})</summary><ul>{lst}</ul>"
               "</details>")  # fmt: skip
    return "".join(out)


def build_page(runs: list[tuple[str, str | Path]], title: str,
               extra_rows: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The report page as a string (see the module docstring)."""
    from ncollapse import __version__
    from ncollapse.report import comparison_rows, etf_reference_row, seli_reference_row

    firsts: OrderedDict[str, Path] = OrderedDict()
    for label, d in runs:
        firsts.setdefault(label, Path(d))
    rr = [_Run(lab, d, i) for i, (lab, d) in enumerate(firsts.items())]
    ref = rr[0]
    rows = comparison_rows(runs)
    have = {r["method"] for r in rows}
    groups = _get(ref.nc_final, "nc", "groups") or {}
    if ref.k >= 2:
        for th in (seli_reference_row(ref.counts.astype(int), groups),
                   etf_reference_row(ref.counts.astype(int), groups)):  # fmt: skip
            if th["method"] not in have:
                rows.append(th)
                have.add(th["method"])
    rows += [r for r in (extra_rows or []) if r["method"] not in have]

    sec = []
    counts = [int(c) for c in ref.counts]
    ds = _get(ref.cfg, "data", "name") or "?"
    grp_txt = ", ".join(f"{g} = {v.get('n_classes', 0)} classes" for g, v in groups.items()
                        if isinstance(v, dict))  # fmt: skip
    last_ep = (ref.nc_final.get("epoch", -1) + 1) if ref.nc_final else 0
    sec.append(
        f"<p class=lead>{len(rr)} methods on <strong>{escape(str(ds))}</strong>, K = {ref.k} "
        f"classes, training counts {escape(', '.join(map(str, counts)))} "
        f"(ρ = {fmt(max(counts) / max(min(counts), 1)) if counts else '–'}); groups: "
        f"{escape(grp_txt) or '–'}. Accuracies are on the (balanced) test set; NC measures on the "
        f"training features of the last measured epoch ({last_ep}). The theory columns are what "
        "SELI (Thrampoulidis et al., arXiv:2208.05512) and the simplex ETF (Papyan et al., "
        "arXiv:2008.08186) predict for the same counts.</p>"
    )
    sec.append(f'<section id="nc-pass"><h2>How NC was measured</h2>{_nc_pass_block(rr)}</section>')
    sec.append(f'<section id="comparison"><h2>Comparison</h2>{_comparison_table(rows)}</section>')
    if ref.k >= 2:
        seli, etf = predictions(ref.counts, "seli"), predictions(ref.counts, "etf")
        pcp, _ = _per_class_panels(rr, seli, etf)
        sec.append('<section id="per-class"><h2>Per class, against class size</h2>'
                   + _figure("fig-per-class", pcp, _legend(rr),
                             "Final epoch. Classes from head (right) to tail (left); SELI and "
                             "ETF predictions for the same counts, norms relative to the "
                             "largest class value.") + "</section>")  # fmt: skip
        mp, mtxt = _minority_panels(rr, seli, etf)
        if mp:
            sec.append('<section id="minority"><h2>Minority collapse over training</h2>'
                       + _figure("fig-minority", mp, _legend(rr), escape(mtxt or ""))
                       + "</section>")  # fmt: skip
    sec.append('<section id="curves"><h2>NC over epochs</h2>'
               + _figure("fig-curves", _epoch_panels(rr), _legend(rr, theory=False),
                         "Distances are between Frobenius-normalised Grams (0 = the target "
                         "geometry up to scale).") + "</section>")  # fmt: skip
    if ref.k >= 2:
        sec.append('<section id="grams"><h2>Gram matrices: measured and SELI</h2>'
                   + _grams(rr, seli) + "</section>")  # fmt: skip
    pcs = "".join(
        f"<details{' open' if r.i == 0 else ''}><summary>{escape(r.label)}</summary>"
        f"{_per_class_table(r)}</details>"
        for r in rr
    )
    sec.append(f'<section id="per-class-table"><h2>Per-class table</h2><p>Final epoch; classes '
               f"from head to tail. NC1_c = tr(Σ_W,c Σ_B†)/K for the class’s own within-class "
               f"scatter; cos(w_c, μ_c − μ_G) is the per-class self-duality (1 = parallel).</p>"
               f"{pcs}</section>")  # fmt: skip
    sec.append(f'<section id="runs"><h2>Runs</h2>{_details(rr, [(a, Path(b)) for a, b in runs])}'
               "</section>")  # fmt: skip
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>{''.join(sec)}"
        "<noscript><p class=note>JavaScript is off: the figures are static SVG (hover texts "
        "still show); the legend buttons that hide series need JavaScript.</p></noscript>"
        f"<footer>ncollapse {escape(__version__)} · {stamp}</footer>"
        f'</main><div id="tip" role="tooltip" hidden></div><script>{JS}</script></body></html>\n'
    )


def write_html_report(
    runs: list[tuple[str, str | Path]],
    path: str | Path,
    title: str = "ncollapse report",
    extra_rows: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the self-contained HTML page and return its path. ``extra_rows`` are appended to the
    comparison table (rows whose method is already there, e.g. the theory rows, are skipped)."""
    from ncollapse.errors import NCollapseError
    from ncollapse.io import atomic_write_text

    if not runs:
        raise NCollapseError("no runs to report; pass run directories written by `ncollapse train`")
    return atomic_write_text(path, build_page(runs, title, extra_rows))


# ----------------------------------------------------------------------------- assets

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
background:#fff;overflow-wrap:anywhere}
main{max-width:1240px;margin:0 auto;padding:16px clamp(12px,3vw,32px) 40px}
h1{font-size:1.6rem;line-height:1.25;margin:.4em 0}
h2{font-size:1.3rem;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h4{margin:.8em 0 .2em}
.lead{font-size:1rem;max-width:75ch}
p,li{max-width:80ch}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:8px 10px;border-radius:4px;overflow-x:auto;white-space:pre-wrap;
overflow-wrap:anywhere;max-height:28em}
.pass{padding:8px 12px;border-left:4px solid;border-radius:3px;max-width:none}
.pass.ok{border-color:#009E73;background:#eefaf5}.pass.warn{border-color:#D55E00;background:#fdf1e8}
.table-scroll{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch;margin:.5em 0}
table{border-collapse:collapse;font-size:14px;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;border-bottom:1px solid #e3e3e3;text-align:right;vertical-align:top}
thead th{border-bottom:2px solid #bbb;white-space:nowrap;vertical-align:bottom;
overflow-wrap:normal}
td{white-space:nowrap}
tbody th,thead th:first-child{text-align:left;font-weight:600;position:sticky;left:0;
background:#fff;z-index:1}
table.cmp tbody th{min-width:11em;max-width:17em;white-space:normal}
tr.sec th{background:#f3f3f3;font-weight:700;padding-top:9px;position:static}
.sub{display:block;font-weight:400;font-size:12px;color:#666;white-space:normal}
th.theory,td.theory{background:#f7f7f7;color:#333}
.legend{display:flex;flex-wrap:wrap;gap:6px;margin:.4em 0}
.legend button{display:inline-flex;align-items:center;gap:6px;font:inherit;font-size:14px;
padding:3px 10px 3px 6px;border:1px solid #ccc;border-radius:14px;background:#fff;cursor:pointer}
.legend button[aria-pressed=false]{opacity:.45;text-decoration:line-through}
.swatch{width:30px;height:14px}
.caption{color:#444;font-size:14px;margin:.2em 0 .6em}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,360px),1fr));gap:14px}
figure{margin:0;min-width:0}
figure.panel{border:1px solid #e6e6e6;border-radius:6px;padding:8px 8px 4px}
figcaption{font-weight:600;font-size:15px;margin-bottom:2px}
svg.chart{display:block;width:100%;height:auto}
svg.chart text{font-size:12px;fill:#333}
svg.chart text.axis{font-size:12.5px;fill:#222}
svg.chart .grid line{stroke:#ececec}
svg.chart .frame{fill:none;stroke:#bbb}
svg.chart .pt{cursor:pointer}
svg .off,.heat.off{display:none}
.note{font-size:13px;color:#555;margin:.3em 0}
.heatmaps{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(46%,220px),1fr));gap:12px}
figure.hm figcaption{font-size:14px}
svg.heat{display:block;width:100%;height:auto}
svg.heat text{font-size:9px;fill:#555}
h3{font-size:1.05rem;margin:1em 0 .3em}
@media (max-width:600px){table.cmp tbody th{min-width:8.5em}table{font-size:13px}
th,td{padding:4px 6px}h1{font-size:1.35rem}thead th{white-space:normal;min-width:4.5em}}
.cbar-wrap{max-width:260px}
svg.cbar{width:100%;height:auto}svg.cbar text{font-size:10px}
details{margin:.4em 0;border:1px solid #e3e3e3;border-radius:4px;padding:4px 10px}
summary{cursor:pointer;font-weight:600}
#tip{position:fixed;z-index:10;pointer-events:none;background:#222;color:#fff;font-size:13px;
padding:5px 8px;border-radius:4px;white-space:pre-line;max-width:min(300px,90vw)}
footer{margin-top:3em;color:#777;font-size:13px}
"""

JS = r"""
(function(){
  "use strict";
  var tip = document.getElementById("tip");
  // native <title> hovers become a tooltip that also works on touch
  document.querySelectorAll("svg.chart title, svg.heat title").forEach(function(t){
    var p = t.parentNode; p.setAttribute("data-tip", t.textContent); p.removeChild(t);
  });
  function show(e){
    var el = e.target.closest ? e.target.closest("[data-tip]") : null;
    if(!el){ tip.hidden = true; return; }
    tip.textContent = el.getAttribute("data-tip"); tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = Math.min(e.clientX + 12, window.innerWidth - w - 4);
    var y = e.clientY + 14 + h > window.innerHeight ? e.clientY - h - 10 : e.clientY + 14;
    tip.style.left = Math.max(4, x) + "px"; tip.style.top = Math.max(4, y) + "px";
  }
  document.addEventListener("pointermove", show);
  document.addEventListener("pointerdown", show);
  document.addEventListener("scroll", function(){ tip.hidden = true; }, {passive: true});
  // legend buttons show / hide a series in every panel of their figure
  document.querySelectorAll(".fig-group").forEach(function(g){
    g.querySelectorAll(".legend button").forEach(function(b){
      b.addEventListener("click", function(){
        var on = b.getAttribute("aria-pressed") !== "false";
        b.setAttribute("aria-pressed", on ? "false" : "true");
        g.querySelectorAll('[data-key="' + b.getAttribute("data-key") + '"]').forEach(
          function(s){ if(s !== b){ s.classList.toggle("off", on); } });
      });
    });
  });
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""
