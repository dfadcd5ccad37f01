"""Bar chart of class counts, coloured by shot group (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

GROUP_COLOURS = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}


def plot_class_counts(
    counts,
    groups: dict[str, np.ndarray],
    path: str | os.PathLike,
    title: str = "",
    class_names: list[str] | None = None,
    thresholds: tuple[int, int] | None = (100, 20),
    log: bool = True,
) -> Path:
    """Write a PNG bar chart of ``counts`` (one bar per class, colour = shot group), atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from ncollapse.io import atomic_write_bytes

    counts = np.asarray(counts)
    k = counts.shape[0]
    colour = ["#7f7f7f"] * k
    for name, idx in groups.items():
        for c in np.asarray(idx, dtype=np.int64):
            colour[int(c)] = GROUP_COLOURS.get(name, "#7f7f7f")
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(np.arange(k), counts, color=colour, width=0.8 if k <= 50 else 1.0)
    if log:
        ax.set_yscale("log")
        low = min(float(counts.min()), float(min(thresholds)) if thresholds else np.inf)
        ax.set_ylim(bottom=max(low * 0.5, 0.5))
    if thresholds is not None:
        for t, ls in zip(thresholds, ("--", ":")):
            ax.axhline(t, color="k", lw=0.8, ls=ls)
    from matplotlib.patches import Patch

    handles = [
        Patch(color=GROUP_COLOURS.get(n, "#7f7f7f"), label=f"{n} ({len(idx)})")
        for n, idx in groups.items()
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    if class_names is not None and k <= 20:
        ax.set_xticks(np.arange(k))
        ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=7)
    else:
        ax.set_xlabel("class index")
    ax.set_ylabel("training images" + (" (log)" if log else ""))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
