"""The result of :func:`ncollapse.measure`: measured values next to the theory for the same class
counts, plain-language verdicts, a rich table, ``to_dict()`` and plots.

Theory (class level, scale-free): the simplex ETF (Papyan, Han & Donoho 2020, arXiv 2008.08186,
Def. 1: all cosines ``-1/(K-1)``, equal norms) and SELI (Thrampoulidis et al. 2022, arXiv
2208.05512, Thm. 1: ``W Wᵀ = (P D_n P)^{1/2}``, ``M̃ᵀ M̃ = (P D_n P)^{+1/2}``) from
:mod:`ncollapse.geometry`; with an NCMC head, the measured NCMC collapse (Liu et al. 2023, arXiv
2310.04600 (NCMC), Sec. 3).

The verdict cut-offs (``NC1_COLLAPSED``, ``NC1_PARTIAL``, ``MINORITY_MARGIN``) are conventions for
the one-line summaries, not results of the theory; the numbers are always printed next to them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "MINORITY_MARGIN",
    "NC1_COLLAPSED",
    "NC1_PARTIAL",
    "ROW_KEYS",
    "MeasureResult",
    "build_result",
]

#: NC1 = tr(Σ_W Σ_B†)/K below this reads "collapsed", below NC1_PARTIAL "partly collapsed".
NC1_COLLAPSED = 0.1
NC1_PARTIAL = 1.0
#: Minority classifiers read "collapsed" when their mean pairwise cosine exceeds SELI's by this.
MINORITY_MARGIN = 0.1


def _head_tail_ratio(counts: np.ndarray, v: np.ndarray) -> float | None:
    """Mean of ``v`` over the classes with the largest count / over those with the smallest
    (the ``*_ratio_max_min`` convention of ``ncollapse.metrics.norms_vs_counts``)."""
    if counts.max() == counts.min():
        return None
    lo = v[counts == counts.min()].mean()
    return float(v[counts == counts.max()].mean() / lo) if lo > 0 else None


def _pair_mean(C: np.ndarray, idx) -> float:
    sub = C[np.ix_(idx, idx)]
    return float(sub[np.triu_indices(len(idx), 1)].mean())


def theory(counts, minority) -> dict:
    """ETF and SELI predictions for training ``counts`` (and the ``minority`` classes)."""
    from ncollapse.geometry import etf_gram, seli_geometry
    from ncollapse.metrics.measures import gram_distance

    n = np.asarray(counts, dtype=np.int64)
    K = int(n.size)
    g = seli_geometry(n)
    E = etf_gram(K)
    out: dict = {
        "etf": {"K": K, "cos": -1.0 / (K - 1), "norm_ratio": 1.0},
        "seli": {
            "counts": n.tolist(),
            "cos_W": g.cos_W,
            "cos_M": g.cos_M,
            "w_norms": g.w_norms,
            "mu_norms": g.mu_norms,
            "w_norm_ratio_max_min": _head_tail_ratio(n, g.w_norms),
            "mean_norm_ratio_max_min": _head_tail_ratio(n, g.mu_norms),
            "dist_etf_W": gram_distance(g.G_W, E),
            "dist_etf_M": gram_distance(g.G_M, E),
        },
    }
    if minority is not None and len(minority) >= 2:
        out["seli"]["minority_cos_W"] = _pair_mean(g.cos_W, minority)
        out["seli"]["minority_cos_M"] = _pair_mean(g.cos_M, minority)
    return out


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _f(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    from ncollapse.output import fmt

    return fmt(v, digits)


def verdicts(d: dict) -> list[str]:
    """Plain-language lines from :meth:`MeasureResult.to_dict` content."""
    tr, th = d["train"], d["theory"]
    lines = []
    v = tr["nc1"]["nc1"]
    state = (
        "collapsed to their class means"
        if v < NC1_COLLAPSED
        else ("partly collapsed" if v < NC1_PARTIAL else "not collapsed")
    )
    lines.append(f"within-class variability (NC1): features {state}: NC1 = {_f(v, 3)}")
    nc2 = tr["nc2"]
    if "dist_etf_W" in nc2:
        e, s = nc2["dist_etf_W"], nc2["dist_seli_W"]
        closer = "SELI" if s < e else "the simplex ETF"
        lines.append(
            f"classifier geometry is closer to {closer}: Gram distance {_f(s)} to SELI, {_f(e)} to "
            f"the ETF (the two targets are {_f(th['seli']['dist_etf_W'])} apart for these counts)"
        )
    e, s = nc2["dist_etf_M"], nc2["dist_seli_M"]
    closer = "SELI" if s < e else "the simplex ETF"
    lines.append(
        f"class-mean geometry is closer to {closer}: Gram distance {_f(s)} to SELI, {_f(e)} to the "
        f"ETF"
    )
    mino = tr.get("minority")
    if mino is not None and "classifier_cos" in mino and "minority_cos_W" in th["seli"]:
        m, p = mino["classifier_cos"], th["seli"]["minority_cos_W"]
        word = "collapsed" if m > p + MINORITY_MARGIN else "not collapsed"
        lines.append(
            f"minority classifiers {word}: mean cosine {_f(m)}, SELI predicts {_f(p)} "
            f"(ETF {_f(th['etf']['cos'])}; classes {', '.join(map(str, mino['classes']))})"
        )
    if "nc3" in tr and tr["nc3"].get("duality_cos_mean") is not None:
        lines.append(
            f"classifier vs class means (NC3): mean cosine(w_c, mu_c) = "
            f"{_f(tr['nc3']['duality_cos_mean'])}"
        )
    if "nc4" in tr:
        lines.append(
            f"the classifier agrees with the nearest class mean on {_pct(tr['nc4']['agreement'])} "
            f"of the training samples (NC4)"
        )
    ho = d.get("heldout")
    if ho is not None:
        if "nc4" in ho:
            lines.append(
                f"held-out NC4: on test data the classifier agrees with the nearest training class "
                f"mean on {_pct(ho['nc4'])} of the samples"
            )
        tv = tr["nc1"]["tr_within"] / tr["nc1"]["tr_between"]
        gap = f"within-class variability {_f(tv, 3)} -> {_f(ho['variability'], 3)}"
        if ho["variability"] is not None and tv > 0:
            gap += f" (x{ho['variability'] / tv:.1f})"
        acc_tr = tr.get("logits", {}).get("accuracy")
        if "accuracy" in ho and acc_tr is not None:
            gap = f"accuracy {_pct(acc_tr)} -> {_pct(ho['accuracy'])}, " + gap
        lines.append(f"train -> test gap: {gap}, relative to the training class-mean spread")
        if ho["absent_classes"]:
            lines.append(f"classes absent from the test data: {ho['absent_classes']}")
    if "ncmc" in tr and tr["ncmc"].get("NC_ave") is not None:
        lines.append(
            f"NCMC: features lie at mean squared distance NC_ave = {_f(tr['ncmc']['NC_ave'], 3)} "
            f"from their class's mean center (0 = collapsed onto the frame)"
        )
    if "ncmc" in th:
        fr = th["ncmc"]
        lines.append(
            f"NCMC frame: {sum(fr['f_counts'])} centers (per class {fr['f_counts']}), "
            f"theta = {fr['theta']:.3g}; cos(rho_k) = {_f(min(fr['cos_rho']))}..{_f(max(fr['cos_rho']))}"
        )
    return lines


#: Summary-row labels -> short keys for ``to_dict()["scalars"]`` and loggers.
ROW_KEYS = {
    "samples": "samples",
    "accuracy": "accuracy",
    "NC1 tr(Sw Sb+)/K": "nc1",
    "within/between (vs train means)": "within_between",
    "NC4 classifier = nearest mean": "nc4",
    "nearest-train-mean accuracy": "ncc_accuracy",
    "W Gram: distance to ETF": "dist_etf_W",
    "W Gram: distance to SELI": "dist_seli_W",
    "means Gram: distance to ETF": "dist_etf_M",
    "means Gram: distance to SELI": "dist_seli_M",
    "minority classifiers: mean cos": "minority_cos_W",
    "minority means: mean cos": "minority_cos_M",
    "|w| head/tail ratio": "w_norm_ratio",
    "|mu| head/tail ratio": "mean_norm_ratio",
    "NCMC NC_ave": "ncmc_nc_ave",
}


def _rows(d: dict) -> list[tuple]:
    """Summary rows ``(measure, train, test, ETF, SELI)`` (None = not applicable)."""
    tr, te, ho, th = d["train"], d.get("test"), d.get("heldout"), d["theory"]
    s = th["seli"]
    nc2 = tr["nc2"]
    rows = [
        ("samples", tr["data"]["samples"], None if ho is None else ho["samples"], None, None),
        (
            "accuracy",
            tr.get("logits", {}).get("accuracy"),
            None if ho is None else ho.get("accuracy"),
            None,
            None,
        ),
        ("NC1 tr(Sw Sb+)/K", tr["nc1"]["nc1"], None if te is None else te["nc1"]["nc1"], 0.0, 0.0),
        (
            "within/between (vs train means)",
            tr["nc1"]["tr_within"] / tr["nc1"]["tr_between"],
            None if ho is None else ho["variability"],
            0.0,
            0.0,
        ),
        (
            "NC4 classifier = nearest mean",
            tr.get("nc4", {}).get("agreement"),
            None if ho is None else ho.get("nc4"),
            1.0,
            1.0,
        ),
        (
            "nearest-train-mean accuracy",
            None,
            None if ho is None else ho["ncc_accuracy"],
            None,
            None,
        ),
    ]
    if "dist_etf_W" in nc2:
        rows += [
            ("W Gram: distance to ETF", nc2["dist_etf_W"], None, 0.0, s["dist_etf_W"]),
            ("W Gram: distance to SELI", nc2["dist_seli_W"], None, s["dist_etf_W"], 0.0),
        ]
    rows += [
        (
            "means Gram: distance to ETF",
            nc2["dist_etf_M"],
            None if te is None else te["nc2"]["dist_etf_M"],
            0.0,
            s["dist_etf_M"],
        ),
        (
            "means Gram: distance to SELI",
            nc2["dist_seli_M"],
            None if te is None else te["nc2"]["dist_seli_M"],
            s["dist_etf_M"],
            0.0,
        ),
    ]
    mino, tmino = tr.get("minority"), None if te is None else te.get("minority")
    if mino is not None:
        if "classifier_cos" in mino:
            rows.append(
                (
                    "minority classifiers: mean cos",
                    mino["classifier_cos"],
                    None,
                    th["etf"]["cos"],
                    s.get("minority_cos_W"),
                )
            )
        rows.append(
            (
                "minority means: mean cos",
                mino["mean_cos"],
                None if tmino is None else tmino["mean_cos"],
                th["etf"]["cos"],
                s.get("minority_cos_M"),
            )
        )
    norms = tr["norms"]
    if "w_norm_ratio_max_min" in norms:
        rows.append(
            (
                "|w| head/tail ratio",
                norms["w_norm_ratio_max_min"],
                None,
                1.0,
                s["w_norm_ratio_max_min"],
            )
        )
    rows.append(
        (
            "|mu| head/tail ratio",
            norms["mean_norm_ratio_max_min"],
            None if te is None else te["norms"]["mean_norm_ratio_max_min"],
            1.0,
            s["mean_norm_ratio_max_min"],
        )
    )
    if "ncmc" in tr:
        rows.append(
            (
                "NCMC NC_ave",
                tr["ncmc"].get("NC_ave"),
                None if te is None else te.get("ncmc", {}).get("NC_ave"),
                None,
                None,
            )
        )
    return rows


@dataclass
class MeasureResult:
    """What :func:`ncollapse.measure` returns. ``print(result)`` shows the table and verdicts;
    :meth:`to_dict` gives everything as JSON-able data; :meth:`plot` draws the geometry."""

    source: str
    layer: str | None
    counts: np.ndarray
    minority: list[int] | None
    train: dict
    test: dict | None
    heldout: dict | None
    theory: dict
    verdicts: list[str]
    mean: str = "unweighted"
    stats: Any = field(default=None, repr=False)
    W: np.ndarray | None = field(default=None, repr=False)
    b: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        from ncollapse.io import to_jsonable

        return to_jsonable(
            {
                "source": self.source,
                "layer": self.layer,
                "counts": self.counts,
                "minority": self.minority,
                "summary": {
                    r[0]: {"train": r[1], "test": r[2], "etf": r[3], "seli": r[4]}
                    for r in self.summary_rows()
                },
                "verdicts": self.verdicts,
                "scalars": self.scalars(),
                "train": self.train,
                "test": self.test,
                "heldout": self.heldout,
                "theory": self.theory,
            }
        )

    def scalars(self) -> dict[str, float]:
        """Flat ``{"train/nc1": ..., "test/nc4": ...}`` of the measured summary values (for
        loggers: Lightning, TensorBoard)."""
        out = {}
        for r in self.summary_rows():
            for split, v in (("train", r[1]), ("test", r[2])):
                if v is not None and np.isfinite(float(v)):
                    out[f"{split}/{ROW_KEYS[r[0]]}"] = float(v)
        return out

    def summary_rows(self) -> list[tuple]:
        return _rows(self._core())

    def _core(self) -> dict:
        return {
            "train": self.train,
            "test": self.test,
            "heldout": self.heldout,
            "theory": self.theory,
        }

    def table(self):
        """A ``rich.table.Table`` of the measured values next to the ETF and SELI."""
        from rich.table import Table

        from ncollapse.output import fmt

        K = len(self.counts)
        t = Table(
            title=f"neural collapse, K={K}, training counts {int(self.counts.max())}.."
            f"{int(self.counts.min())}",
            caption=f"features: {self.source}",
            title_justify="left",
            caption_justify="left",
        )
        test = self.heldout is not None
        cols = ["measure", "train"] + (["test"] if test else []) + ["ETF", "SELI"]
        for c in cols:
            t.add_column(c, justify="left" if c == "measure" else "right")
        for r in self.summary_rows():
            vals = [r[1]] + ([r[2]] if test else []) + [r[3], r[4]]
            if all(v is None for v in vals):
                continue
            t.add_row(r[0], *["" if v is None else fmt(v) for v in vals])
        return t

    def __rich_console__(self, console, options):
        yield self.table()
        for line in self.verdicts:
            yield f"- {line}"

    def __str__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=110, color_system=None, force_terminal=False).print(self.table())
        return buf.getvalue() + "\n".join(f"- {line}" for line in self.verdicts)

    def plot(self, path=None):
        """Three panels: measured classifier cosines (class means without a classifier), SELI's
        prediction for the same counts, and norms against counts (measured and SELI, each divided
        by its mean). Returns the matplotlib Figure; saves it when ``path`` is given."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from ncollapse.metrics.measures import centered_means, cosine_matrix

        rows = self.W if self.W is not None else centered_means(self.stats, self.mean)
        what = "classifier rows w_c" if self.W is not None else "centred class means"
        seli = self.theory["seli"]
        pred = np.asarray(seli["cos_W"] if self.W is not None else seli["cos_M"])
        fig, ax = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
        for a, C, title in (
            (ax[0], cosine_matrix(rows), f"measured cosines: {what}"),
            (ax[1], pred, "SELI prediction, same counts"),
        ):
            im = a.imshow(C, vmin=-1, vmax=1, cmap="RdBu_r")
            a.set_title(title, fontsize=9)
            a.set_xlabel("class")
            a.set_ylabel("class")
        fig.colorbar(im, ax=ax[1], shrink=0.85)
        n = self.counts.astype(float)
        order = np.argsort(-n, kind="stable")
        meas = np.linalg.norm(rows, axis=1)
        pn = np.asarray(seli["w_norms"] if self.W is not None else seli["mu_norms"])
        ax[2].plot(n[order], (meas / meas.mean())[order], "o-", label="measured")
        ax[2].plot(n[order], (pn / pn.mean())[order], "s--", label="SELI")
        ax[2].axhline(1.0, color="gray", lw=0.8, label="ETF")
        ax[2].set_xscale("log")
        ax[2].set_xlabel("training samples of the class")
        ax[2].set_ylabel("norm / mean norm")
        ax[2].set_title(f"norms of {what}", fontsize=9)
        ax[2].legend(fontsize=8)
        if path is not None:
            from pathlib import Path

            from ncollapse.io import atomic_write_bytes

            buf = io.BytesIO()
            fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
            atomic_write_bytes(path, buf.getvalue())
        return fig


def build_result(*, source, stats, W, b, counts, minority, train, test, heldout, mean, frame=None):
    th = theory(counts, minority)
    if frame is not None:
        th["ncmc"] = frame
    d = {"train": train, "test": test, "heldout": heldout, "theory": th}
    return MeasureResult(
        source=source.description,
        layer=source.layer,
        counts=np.asarray(counts),
        minority=minority,
        train=train,
        test=test,
        heldout=heldout,
        theory=th,
        verdicts=verdicts(d),
        mean=mean,
        stats=stats,
        W=W,
        b=b,
    )
