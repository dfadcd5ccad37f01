"""TensorBoard views of a run: per-class figures and Gram heatmaps as images, and the run's
hyper-parameters with its final metrics in the HParams plugin (so runs compare side by side).

Tags: ``views/per_class`` and ``views/grams`` (images, one per NC epoch); ``hparams/<metric>``
(final metrics, also logged as scalars so the HParams view can read them).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["log_images", "log_hparams", "hparam_dict", "final_metrics", "IMAGE_TAGS"]

IMAGE_TAGS = ("views/per_class", "views/grams")


def log_images(writer, rec: dict[str, Any], geo: dict[str, Any], step: int) -> None:
    """Log the per-class figure of ``rec`` and the Gram heatmaps of ``geo`` at ``step``."""
    from ncollapse.report.figures import gram_figure, per_class_figure

    writer.add_figure(IMAGE_TAGS[0], per_class_figure(rec, f"epoch {step + 1}"), step, close=True)
    if geo.get("G_M") is not None:
        writer.add_figure(IMAGE_TAGS[1], gram_figure(geo, f"epoch {step + 1}"), step, close=True)
    writer.flush()


def _hp_value(v: Any):
    if isinstance(v, bool | int | float | str):
        return v
    if v is None:
        return "none"
    return json.dumps(v, sort_keys=True)


def hparam_dict(cfg) -> dict[str, Any]:
    """The config flattened to ``section.key`` -> bool/int/float/str (lists and dicts as JSON,
    None as ``"none"``), minus the run's output settings."""
    out: dict[str, Any] = {}
    for sec, vals in cfg.to_dict().items():
        if sec == "run":
            continue
        if not isinstance(vals, dict):  # top-level keys such as ``imports``
            out[sec] = _hp_value(vals)
            continue
        for k, v in vals.items():
            out[f"{sec}.{k}"] = _hp_value(v)
    return out


def _tag(label: str) -> str:
    """``"tail cos(w,w')"`` -> ``"tail_cos_w_w"``: TensorBoard-friendly tag names."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", label).strip("_")


def final_metrics(rec: dict[str, Any]) -> dict[str, float]:
    """Scalar summary of the final record (the report's comparison measures), finite values only,
    under ``hparams/<measure>``."""
    from ncollapse.report import run_summary

    out = {}
    for k, v in run_summary(rec).items():
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out["hparams/" + _tag(k)] = float(v)
    return out


def log_hparams(writer, cfg, final_rec: dict[str, Any]) -> None:
    """Write the HParams plugin summaries (experiment, session start and end) into the run's own
    event file, and the final metrics as scalars with the same tags."""
    from torch.utils.tensorboard.summary import hparams

    metrics = final_metrics(final_rec)
    exp, ssi, sei = hparams(hparam_dict(cfg), metrics)
    fw = writer._get_file_writer()
    for s in (exp, ssi, sei):
        fw.add_summary(s)
    step = int(final_rec.get("epoch", 0))
    for k, v in metrics.items():
        writer.add_scalar(k, v, step)
    writer.flush()
