"""What the trainer records for the report beyond ``metrics.jsonl``: the measured class Grams.

At every epoch with NC measures, :func:`record_nc_views` writes ``geometry.json`` into the run
directory (atomically, replacing the previous epoch's) and, when a TensorBoard writer is open,
logs the per-class figure and the Gram heatmaps as images (:mod:`ncollapse.report.tensorboard`).
It also notes in the epoch record which pass the NC statistics came from (``nc_pass``).

``geometry.json``: ``epoch``, ``nc_pass``, ``counts``, ``classes`` (names), ``G_W`` = W Wᵀ and
``G_M`` = M̃ᵀ M̃ (K x K, unnormalised; M̃ = class means centred at the unweighted mean of the class
means, the centring of :func:`ncollapse.metrics.measures.centered_means`). The matrices are left
out above :data:`MAX_GRAM_CLASSES` classes (a heatmap of them would not be readable either).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GEOMETRY_FILE",
    "MAX_GRAM_CLASSES",
    "NC_PASS_TEXT",
    "class_grams",
    "class_names",
    "load_geometry",
    "record_nc_views",
]

GEOMETRY_FILE = "geometry.json"
MAX_GRAM_CLASSES = 100

#: How each value of ``nc_pass`` (the record's, or ``train.nc_pass``) was measured.
NC_PASS_TEXT = {
    "eval": (
        "a clean evaluation pass over the training set after the epoch: model in eval mode "
        "(BatchNorm uses its running statistics), no augmentation, fixed weights"
    ),
    "train": (
        "the training pass itself: features of the training mini-batches (augmented when "
        "data.augment is on) with BatchNorm in train mode (batch statistics), while the weights "
        "change during the epoch; cheaper, but not what the papers measure (set "
        "train.nc_pass=eval for a clean pass)"
    ),
}


def class_grams(stats, W=None, mean: str = "unweighted") -> tuple[np.ndarray | None, np.ndarray]:
    """``(W Wᵀ, M̃ᵀ M̃)`` as K x K float64 arrays (the first is None without ``W``).

    ``stats`` is a :class:`ncollapse.metrics.Statistics` (or an ``NCStats``, snapshotted here).
    """
    from ncollapse.metrics.measures import centered_means, check_classifier

    if hasattr(stats, "snapshot"):
        stats = stats.snapshot()
    Mt = centered_means(stats, mean)
    G_M = Mt @ Mt.T
    G_W = None
    if W is not None:
        Wm = check_classifier(W, stats)
        G_W = Wm @ Wm.T
    return G_W, G_M


def class_names(dataset, k: int) -> list[str]:
    """The dataset's class names (``.classes``) or ``"0".."K-1"``."""
    names = getattr(dataset, "classes", None)
    if names is not None and len(names) == k:
        return [str(c) for c in names]
    return [str(i) for i in range(k)]


def record_nc_views(
    run_dir: str | Path,
    writer,
    rec: dict[str, Any],
    stats,
    W,
    names: list[str],
    nc_pass: str,
) -> None:
    """Called by the trainer (main process) right after an epoch's NC measures, before ``rec`` is
    logged: sets ``rec["nc_pass"]``, writes ``geometry.json`` and, with a TensorBoard ``writer``,
    logs the per-class figure and the Gram heatmaps as images at step ``rec["epoch"]``."""
    from ncollapse.io import atomic_write_json

    rec["nc_pass"] = nc_pass
    if W is not None and hasattr(W, "detach"):
        W = W.detach().double().cpu().numpy()
    G_W, G_M = class_grams(stats, W)
    K = G_M.shape[0]
    counts = [int(c) for c in np.asarray((rec.get("nc") or {}).get("data", {}).get("counts", []))]
    geo: dict[str, Any] = {"epoch": rec.get("epoch"), "nc_pass": nc_pass, "counts": counts,
                           "classes": list(names)}  # fmt: skip
    if K <= MAX_GRAM_CLASSES:
        geo["G_M"] = G_M.tolist()
        geo["G_W"] = None if G_W is None else G_W.tolist()
    atomic_write_json(Path(run_dir) / GEOMETRY_FILE, geo)
    if writer is not None:
        from ncollapse.report.tensorboard import log_images

        log_images(writer, rec, geo, step=int(rec.get("epoch", 0)))


def load_geometry(run_dir: str | Path) -> dict[str, Any] | None:
    """``geometry.json`` of a run (None when the run predates it or has no NC epoch)."""
    import json

    p = Path(run_dir) / GEOMETRY_FILE
    if not p.is_file():
        return None
    return json.loads(p.read_text())
