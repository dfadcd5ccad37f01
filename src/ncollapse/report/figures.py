"""Static matplotlib figures of one run (TensorBoard images): per-class panels with the SELI and
ETF predictions, and the measured class Grams beside SELI's. Sized to be read at 100 % (about
640 px wide), not squeezed."""

from __future__ import annotations

from typing import Any

import numpy as np

from ncollapse.report.theory import predictions

__all__ = ["per_class_figure", "gram_figure", "display_gram"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def display_gram(G) -> np.ndarray:
    """A Gram divided by its largest diagonal entry (the largest squared norm -> 1), so measured
    and predicted Grams share one colour scale; the report's heatmaps show the same values."""
    G = np.asarray(G, dtype=float)
    d = float(np.max(np.diag(G))) if G.size else 0.0
    return G / d if d > 0 else G


def _arr(v, k: int) -> np.ndarray | None:
    if v is None or len(v) != k:
        return None
    return np.asarray([np.nan if x is None else x for x in v], dtype=float)


def per_class_figure(rec: dict[str, Any], title: str = ""):
    """2 x 2 panels against the class count n_c (log axis): test accuracy, ‖w_c‖/max,
    ‖μ_c − μ_G‖/max and cos(w_c, μ_c − μ_G), with SELI's and the ETF's predictions."""
    plt = _plt()
    nc = rec.get("nc") or {}
    pc = nc.get("per_class") or {}
    n = np.asarray((nc.get("data") or {}).get("counts") or [], dtype=float)
    k = n.size
    fig, axes = plt.subplots(2, 2, figsize=(8, 5.6), dpi=80)
    if k < 2:
        fig.text(0.5, 0.5, "no per-class NC measures in this record", ha="center")
        return fig
    seli, etf = predictions(n, "seli"), predictions(n, "etf")
    order = np.argsort(-n, kind="stable")
    x = n[order]
    panels = [
        ("test accuracy per class", _arr(rec.get("per_class_acc"), k), None, None),
        ("classifier norm ‖w_c‖ / max", _norm(_arr(pc.get("w_norm"), k)), seli.w_norm, etf.w_norm),
        ("class-mean norm ‖μ_c − μ_G‖ / max", _norm(_arr(pc.get("mean_norm"), k)), seli.mean_norm,
         etf.mean_norm),
        ("self-duality cos(w_c, μ_c − μ_G)", _arr(pc.get("duality_cos"), k), seli.duality_cos,
         etf.duality_cos),
    ]  # fmt: skip
    for ax, (t, y, ys, ye) in zip(axes.ravel(), panels):
        if y is not None:
            ax.plot(x, y[order], "o-", color="#0072B2", label="measured", ms=4)
        if ys is not None:
            ax.plot(x, ys[order], "--", color="black", label="SELI", lw=1.2)
        if ye is not None:
            ax.plot(x, ye[order], ":", color="#666666", label="ETF", lw=1.5)
        ax.set_xscale("log")
        ax.minorticks_off()  # (minor log ticks make this figure several times slower to draw)
        ax.set_title(t, fontsize=11)
        ax.set_xlabel("training samples n_c", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    # fixed margins instead of tight_layout: the figure is drawn every NC epoch
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.09, hspace=0.45, wspace=0.22)
    return fig


def _norm(v: np.ndarray | None) -> np.ndarray | None:
    if v is None or not np.isfinite(v).any() or np.nanmax(v) <= 0:
        return v
    return v / np.nanmax(v)


def gram_figure(geo: dict[str, Any], title: str = ""):
    """Measured W Wᵀ and M̃ᵀM̃ (``geometry.json``) beside SELI's for the same counts."""
    plt = _plt()
    counts = geo.get("counts") or []
    seli = predictions(counts, "seli")
    panels = []
    if geo.get("G_W") is not None:
        panels += [("measured W Wᵀ", geo["G_W"]), ("SELI W Wᵀ", seli.G_W)]
    if geo.get("G_M") is not None:
        panels += [("measured Mᵀ M", geo["G_M"]), ("SELI Mᵀ M", seli.G_M)]
    rows = max(1, len(panels) // 2)
    fig, axes = plt.subplots(rows, 2, figsize=(7.2, 3.4 * rows), dpi=80, squeeze=False)
    im = None
    for ax, (t, G) in zip(axes.ravel(), panels):
        im = ax.imshow(display_gram(G), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(t, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="G / max diag")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
