"""A finished ncollapse run: its model and data (one function, :func:`load_run`), and what the
``measure`` / ``export-features`` / ``eval`` commands compute from it.

A run directory (written by :class:`~ncollapse.train.Trainer`) holds ``config.yaml`` (resolved
config), ``manifest.json`` (the long-tailed subset), ``checkpoint.pt`` (model state of the last
finished epoch) and logs. :func:`load_run` rebuilds the model and the data exactly as the trainer
did -- through the trainer itself, so no decision (dataset, long-tail subset, normalisation, model,
head, groups) is made a second time here -- and loads the checkpoint's weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError

__all__ = ["FinishedRun", "SPLITS", "evaluate_run", "export_features", "load_run", "measure_run"]

SPLITS = ("train", "test")


@dataclass
class FinishedRun:
    """``model`` (eval mode), ``loaders`` {"train": the training subset without augmentation,
    "test": the test set}, training ``counts``, the run's class ``groups``, ``num_classes``,
    ``epoch`` of the checkpoint, and the ``trainer`` that built them."""

    run_dir: Path
    model: Any
    loaders: dict
    counts: np.ndarray
    groups: dict
    num_classes: int
    epoch: int
    trainer: Any

    def loader(self, split: str):
        if split not in SPLITS:
            raise NCollapseError(f"split={split!r} is unknown; use train or test")
        return self.loaders[split]


def load_run(run_dir, *, device: str = "cpu") -> FinishedRun:
    """Load a finished run's model (weights of its checkpoint) and data on ``device``."""
    from ncollapse.train import Trainer
    from ncollapse.train.checkpoint import CKPT_NAME

    rd = Path(run_dir)
    if not (rd / "config.yaml").is_file():
        raise NCollapseError(
            f"{rd} is not a run directory (no config.yaml); pass the folder printed when the run "
            f"started (under run.out_dir, default runs/)"
        )
    if not (rd / CKPT_NAME).is_file():
        raise NCollapseError(
            f"{rd} has no {CKPT_NAME}; the run has not finished an epoch yet (resume it with "
            f"`ncollapse train --resume {rd}`)"
        )
    tr = Trainer.load(rd, [f"train.device={device}", "train.compile=false"])  # read-only, no lock
    tr.model.eval()
    return FinishedRun(
        run_dir=rd,
        model=tr.model,
        loaders={"train": tr.nc_loader, "test": tr.test_loader},
        counts=np.asarray(tr.counts),
        groups={k: np.asarray(v).tolist() for k, v in tr.groups.items()},
        num_classes=int(tr.num_classes),
        epoch=int(tr.start_epoch) - 1,
        trainer=tr,
    )


def measure_run(run: FinishedRun, split: str = "train", *, progress: bool = False):
    """``ncollapse.measure`` on the run: NC of the training subset; with ``split="test"`` also the
    test set against the training class means."""
    from ncollapse.measuring.core import measure

    run.loader(split)
    return measure(
        run.model,
        run.loaders["train"],
        test=run.loaders["test"] if split == "test" else None,
        counts=run.counts,
        groups=run.groups,
        progress=progress,
        verbose=False,
    )


def export_features(run: FinishedRun, split: str = "train") -> dict:
    """Arrays for ``ncollapse metrics``: ``H`` (N x d, what the classifier multiplies), ``y``,
    ``logits`` (N x K), ``W`` (K x d), ``b`` (K, when the head has a bias) and the NCMC frame
    ``centers`` / ``W0`` (K x d) when the head has one; float32 features, int64 labels."""
    import torch

    from ncollapse.methods import nc_frame

    loader = run.loader(split)
    H, Y, Z = [], [], []
    model = run.model
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            H.append(out.embedding.float().cpu())
            Z.append(out.logits.float().cpu())
            Y.append(y.cpu())
    arrays = {
        "H": torch.cat(H).numpy(),
        "y": torch.cat(Y).long().numpy(),
        "logits": torch.cat(Z).numpy(),
        "W": model.classifier_weight().detach().float().cpu().numpy(),
    }
    b = model.classifier_bias()
    if b is not None:
        arrays["b"] = b.detach().float().cpu().numpy()
    centers, w0 = nc_frame(model)
    if centers is not None:
        arrays["centers"] = centers.detach().float().cpu().numpy()
        arrays["W0"] = w0.detach().float().cpu().numpy()
    return arrays


def save_npz(path, arrays: dict) -> Path:
    """Write ``arrays`` to ``path`` (.npz, atomic)."""
    import io

    from ncollapse.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def evaluate_run(run: FinishedRun, *, many: int | None = None, few: int | None = None) -> dict:
    """Test accuracy overall, balanced, per class and per shot group (many: n > MANY, medium,
    few: n < FEW training samples; thresholds default to the run's ``eval.many`` / ``eval.few``),
    computed by the trainer's own evaluation (the run's method decides the logits)."""
    from ncollapse.groups import shot_groups, shot_thresholds

    tr = run.trainer
    ec = tr.cfg.eval
    many, few = shot_thresholds(
        run.counts, ec.many if many is None else many, ec.few if few is None else few
    )
    saved = tr.groups
    try:
        tr.groups = shot_groups(run.counts, many=many, few=few)
        res = tr.evaluate()
    finally:
        tr.groups = saved
    res["thresholds"] = {"many": many, "few": few}
    res["groups"] = {
        k: np.asarray(v).tolist() for k, v in shot_groups(run.counts, many, few).items()
    }
    res["train_counts"] = run.counts.tolist()
    res["epoch"] = run.epoch
    return res


def decouple_run(
    run: FinishedRun, method: str = "crt", *, tau: float = 1.0, weight_decay: float = 5e-4
) -> dict:
    """Decoupled classifier learning on a finished run (Kang et al., ICLR 2020, arXiv 1910.09217,
    Sec. 4): keep its features, re-fit the classifier (``crt``), rescale it (``lws``) or
    normalise it (``tau_norm``) with :func:`ncollapse.methods.decoupled.decouple` on the training
    subset's features (evaluation mode, no augmentation), and compare test accuracy before and
    after: overall, balanced (mean of per-class) and per group (mean of the group's per-class
    accuracies). Returns a JSON-ready dict; the run folder is not written."""
    from ncollapse.methods.decoupled import decouple

    tr, te = export_features(run, "train"), export_features(run, "test")
    clf = decouple(method, tr["H"], tr["y"], tr["W"], tr.get("b"), tau=tau,
                   weight_decay=weight_decay)  # fmt: skip
    y = te["y"]
    K = run.num_classes

    def scores(pred: np.ndarray) -> dict:
        per = np.array([np.mean(pred[y == c] == c) if np.any(y == c) else np.nan for c in range(K)])
        groups = {g: float(np.nanmean(per[np.asarray(idx, dtype=int)])) if len(idx) else None
                  for g, idx in run.groups.items()}  # fmt: skip
        return {"test_acc": float(np.mean(pred == y)), "balanced_acc": float(np.nanmean(per)),
                "group_acc": groups, "per_class_acc": per.tolist()}  # fmt: skip

    after = clf.logits(te["H"]).argmax(1).cpu().numpy()
    return {
        "method": method,
        "tau": tau if method == "tau_norm" else None,
        "weight_decay": weight_decay if method == "crt" else None,
        "objective": clf.loss,
        "groups": run.groups,
        "train_counts": run.counts.tolist(),
        "before": scores(te["logits"].argmax(1)),
        "after": scores(after),
    }
