"""``measure(model, data, ...)``: neural collapse of a trained network in one call.

Data flow: data -> model (features located by :func:`~ncollapse.measuring.locate.locate_features`)
-> accumulators (:class:`~ncollapse.metrics.NCStats`, :class:`~ncollapse.metrics.SecondPass`,
:class:`HeldOut`) -> measures (:func:`~ncollapse.metrics.compute_all`) -> report
(:class:`~ncollapse.measuring.result.MeasureResult`).

Passes: (1) the training data through the model into ``NCStats`` (class means, scatters, logits);
(2) the same features again into ``SecondPass`` (NC4, per-class NC1), read from an in-memory cache of
pass 1 when it fits ``cache_bytes`` (then the model runs once), else by running the model again;
(3) with ``test=``: the held-out data into its own ``NCStats`` and into :class:`HeldOut`, which
compares each test feature with the *training* class means.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.measuring.batches import as_batches, split_batch, to_device
from ncollapse.measuring.locate import FeatureSource, locate_features

__all__ = ["DEFAULT_CACHE_BYTES", "HeldOut", "measure"]

#: Features of pass 1 are kept in memory for pass 2 up to this many bytes (1 GiB).
DEFAULT_CACHE_BYTES = 2**30


class HeldOut:
    """Held-out statistics against fixed (training) class means ``mu`` (K x d).

    Per class ``c`` of the held-out data: ``counts``; ``ss = Σ_{i∈c} ‖h_i − μ_c^train‖²``;
    ``ncc_correct`` = #{nearest training mean = c}; with logits, ``correct`` = #{argmax z = c} and
    ``agree`` = #{argmax z = nearest training mean} (held-out NC4, Papyan et al. 2020, arXiv
    2008.08186, Sec. 3 / Fig. 7, evaluated on test data with the training means). Ties go to the
    lowest index in both rules.

    TODO(metrics helper, issue 13): switch to ``SecondPass`` once it accepts data whose class
    counts differ from the first pass (held-out data against the training means).
    """

    def __init__(self, mu, device):
        import torch

        t = dict(dtype=torch.float64, device=device)
        self.mu = torch.as_tensor(np.array(mu, dtype=np.float64), **t)
        K = self.mu.shape[0]
        self.mu_sq = self.mu.square().sum(1)
        self.counts = torch.zeros(K, **t)
        self.ss = torch.zeros(K, **t)
        self.ncc_correct = torch.zeros(K, **t)
        self.correct = torch.zeros(K, **t)
        self.agree = torch.zeros(K, **t)
        self.has_logits = None

    def update(self, h, y, logits=None) -> HeldOut:
        import torch

        x = h.to(self.mu.device, torch.float64)
        y = y.to(self.mu.device)
        K = self.mu.shape[0]
        # argmin_c ‖h − μ_c‖² = argmin_c ‖μ_c‖² − 2 hᵀμ_c
        ncc = (self.mu_sq[None, :] - 2.0 * (x @ self.mu.T)).argmin(1)
        self.counts += torch.bincount(y, minlength=K).to(torch.float64)
        self.ss.index_add_(0, y, (x - self.mu[y]).square().sum(1))
        self.ncc_correct += torch.bincount(y[ncc == y], minlength=K).to(torch.float64)
        has = logits is not None
        if self.has_logits is not None and has != self.has_logits:
            raise NCollapseError("logits were given for some held-out batches and not for others")
        self.has_logits = has
        if has:
            pred = logits.to(self.mu.device).argmax(1)
            self.correct += torch.bincount(y[pred == y], minlength=K).to(torch.float64)
            self.agree += torch.bincount(y[pred == ncc], minlength=K).to(torch.float64)
        return self

    def result(self, tr_between: float) -> dict:
        """JSON-able dict; ``variability`` = ``(Σ_i ‖h_i − μ^train_{y_i}‖² / N) / tr(Σ_B^train)``."""
        n = self.counts.cpu().numpy()
        N = float(n.sum())
        if N == 0:
            raise NCollapseError("the held-out data had no samples; pass test data with labels")
        present = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            per = lambda v: np.where(present, v / np.maximum(n, 1), np.nan)  # noqa: E731
            ss = self.ss.cpu().numpy()
            out = {
                "samples": int(N),
                "counts": n.astype(np.int64).tolist(),
                "absent_classes": np.flatnonzero(~present).tolist(),
                "variability": float(ss.sum() / N / tr_between) if tr_between > 0 else None,
                "ncc_accuracy": float(self.ncc_correct.sum().item() / N),
                "per_class": {
                    "variability": (per(ss) / tr_between).tolist(),
                    "ncc_accuracy": per(self.ncc_correct.cpu().numpy()).tolist(),
                },
            }
        if self.has_logits:
            out["accuracy"] = float(self.correct.sum().item() / N)
            out["nc4"] = float(self.agree.sum().item() / N)
            out["per_class"]["accuracy"] = per(self.correct.cpu().numpy()).tolist()
            out["per_class"]["nc4"] = per(self.agree.cpu().numpy()).tolist()
        return out


def _model_device(model):
    import torch

    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def _measuring(model, *, eval_mode: bool, device):
    """Eval mode (restoring every module's own flag afterwards) and the model on ``device``."""
    flags = [(m, m.training) for m in model.modules()]
    home = _model_device(model)
    try:
        if eval_mode:
            model.eval()
        if device is not None and device != home:
            model.to(device)
        yield
    finally:
        if device is not None and device != home:
            model.to(home)
        for m, f in flags:
            m.training = f


def _autocast_ctx(autocast, device):
    import torch

    if autocast is False or autocast is None:
        return contextlib.nullcontext
    dtype = torch.bfloat16 if autocast is True else autocast
    if not isinstance(dtype, torch.dtype):
        raise NCollapseError(
            f"autocast={autocast!r} must be True, False or a torch dtype (e.g. torch.bfloat16)"
        )
    return lambda: torch.autocast(device.type, dtype=dtype)


def _labels(y, device, name):
    import torch

    y = to_device(y, device)
    if not isinstance(y, torch.Tensor):
        try:
            y = torch.as_tensor(y, device=device)
        except Exception as exc:
            raise NCollapseError(
                f"{name}: labels of type {type(y).__name__} are not numeric"
            ) from exc
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(1)  # one-hot / soft labels
    return y.reshape(-1).long()


class _Pass:
    """Run the model over batches and hand ``(h, y, logits)`` (detached, at least float32) to
    callbacks."""

    def __init__(self, model, src: FeatureSource, device, *, no_grad, autocast, progress):
        self.model, self.src, self.device = model, src, device
        self.no_grad, self.progress = no_grad, progress
        self.autocast = _autocast_ctx(autocast, device)

    def run(self, batches, desc: str, callback) -> None:
        import torch
        from tqdm.auto import tqdm

        grad = torch.no_grad if self.no_grad else contextlib.nullcontext
        it = tqdm(
            batches,
            total=batches.length,
            desc=desc,
            disable=not self.progress,
            leave=False,
            file=sys.stderr,
        )
        seen = 0
        for batch in it:
            x, y = split_batch(batch, batches.name)
            x = to_device(x, self.device)
            with grad(), self.autocast():
                h, z = self.src(self.model, x)
            y = _labels(y, h.device, batches.name)
            if y.shape[0] != h.shape[0]:
                raise NCollapseError(
                    f"{batches.name}: a batch has {h.shape[0]} feature rows but {y.shape[0]} "
                    f"labels; pass one label per input"
                )
            # .detach(): NCStats/SecondPass cannot take grad-requiring tensors yet (issue 13)
            h = _full(h.detach())
            z = None if z is None else _full(z.detach())
            callback(h, y, z)
            seen += 1
        if seen == 0:
            raise NCollapseError(f"{batches.name} yielded no batches; pass non-empty data")


def _full(t):
    """Half-precision outputs (autocast) to float32; float32/float64 stay as they are."""
    import torch

    return (
        t.float() if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point() else t
    )


def _resolve_k(num_classes, src: FeatureSource, z) -> int:
    K_w = src.num_classes()
    K_z = None if z is None else int(z.shape[1])
    for a, b, what in (
        (num_classes, K_w, "rows of the classifier"),
        (num_classes, K_z, "logit columns"),
    ):
        if a is not None and b is not None and a != b:
            raise NCollapseError(
                f"num_classes={a} but the model has {b} {what}; pass the model's number of classes"
            )
    K = num_classes or K_w or K_z
    if K is None:
        raise NCollapseError(
            f"the number of classes is unknown ({src.description} has no classifier); pass "
            f"num_classes=K"
        )
    return int(K)


def _ncmc_frame(src: FeatureSource) -> dict | None:
    """The NCMC head's frame (per-class center counts, angle θ and the closed forms cos α_k, cos ρ_k
    of NCMC, arXiv 2310.04600, Sec. 3) when the model has one, else None."""
    head = src.head if src.kind == "ncollapse" else None
    f, theta = getattr(head, "f_counts", None), getattr(head, "theta", None)
    if f is None or theta is None:
        return None
    from ncollapse.geometry import cos_alpha, cos_rho

    fk = np.asarray(f.detach().cpu() if hasattr(f, "detach") else f, dtype=np.int64)
    return {
        "f_counts": fk.tolist(),
        "theta": float(theta),
        "cos_alpha": cos_alpha(fk, float(theta)).tolist(),
        "cos_rho": cos_rho(fk, float(theta)).tolist(),
    }


def _default_minority(counts: np.ndarray) -> list[int] | None:
    """The ⌈K/3⌉ (at least 2) classes with the fewest training samples; None when balanced."""
    if counts.max() == counts.min():
        return None
    k = max(2, -(-counts.size // 3))
    return sorted(np.argsort(counts, kind="stable")[:k].tolist())


def measure(
    model,
    data,
    labels=None,
    *,
    test=None,
    test_labels=None,
    layer: str | None = None,
    features=None,
    num_classes: int | None = None,
    counts: Sequence[int] | None = None,
    minority: Sequence[int] | None = None,
    groups=None,
    device=None,
    eval_mode: bool = True,
    no_grad: bool = True,
    autocast=False,
    batch_size: int = 256,
    mean: str = "unweighted",
    progress: bool = True,
    verbose: bool = True,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
):
    """Measure neural collapse of ``model`` on ``data`` (its training data) and, with ``test=``, on
    held-out data against the training class means.

    ``data`` / ``test``: a DataLoader, any iterable of ``(x, y)`` batches, a map-style Dataset, or
    tensors / arrays ``(X, y)`` (or ``data=X, labels=y``). The features are found by
    :func:`~ncollapse.measuring.locate.locate_features` (``layer=`` a module name, or
    ``features=`` a callable ``x -> (B x d)``); the choice is printed (``verbose``) and kept in
    ``result.source``.

    ``eval_mode`` / ``no_grad``: eval mode and no autograd during the passes (each module's
    training flag is restored afterwards); ``device``: where the model runs (default: where its
    parameters are; the model is moved back afterwards); ``autocast``: True (bfloat16) or a dtype
    to run under ``torch.autocast`` -- an enclosing autocast of the caller also applies.
    ``counts``: training class counts for the theory (default: the counts seen in ``data``);
    ``minority``: classes for the minority-collapse verdict (default: the ⌈K/3⌉ smallest);
    ``groups``: ``{name: class indices}`` for per-group tables. Returns a
    :class:`~ncollapse.measuring.result.MeasureResult`.
    """
    import torch

    from ncollapse.measuring.result import build_result
    from ncollapse.metrics import MEANS, NCStats, SecondPass, compute_all

    if mean not in MEANS:
        raise NCollapseError(f"mean={mean!r} is not valid; choose one of {', '.join(MEANS)}")
    src = locate_features(model, layer=layer, features=features)
    if verbose:
        print(f"ncollapse.measure: features = {src.description}", file=sys.stderr)
    train = as_batches(data, labels, batch_size=batch_size, name="data")
    held = None
    if test is not None:
        held = as_batches(test, test_labels, batch_size=batch_size, name="test")
    if isinstance(device, str):
        device = torch.device(device)
    run_device = device if device is not None else _model_device(model)
    centers = w0 = None
    from ncollapse.methods import nc_frame

    if src.kind == "ncollapse":
        centers, w0 = nc_frame(model)
        if centers is not None:
            centers, w0 = centers.detach().double().cpu(), w0.detach().double().cpu()

    state: dict = {"stats": None, "cache": [], "bytes": 0}
    n_pass = 2 if held is None else 3

    def first(h, y, z):
        if state["stats"] is None:
            K = _resolve_k(num_classes, src, z)
            state["K"] = K
            state["stats"] = NCStats(K, h.shape[1], device=h.device, centers=centers, w0=w0)
        state["stats"].update(h, y, z)
        if state["cache"] is not None:
            state["bytes"] += h.nbytes + y.nbytes + (0 if z is None else z.nbytes)
            if state["bytes"] <= cache_bytes:
                state["cache"].append((h, y, z))
            else:
                state["cache"] = None

    src.attach()
    try:
        with _measuring(model, eval_mode=eval_mode, device=device):
            runner = _Pass(
                model, src, run_device, no_grad=no_grad, autocast=autocast, progress=progress
            )
            runner.run(train, f"pass 1/{n_pass}: data", first)
            acc = state["stats"]
            K = state["K"]
            stats = acc.snapshot()
            empty = np.flatnonzero(stats.counts == 0)
            if empty.size:
                # TODO(metrics helper, issue 13): measure the classes present once NCStats/
                # compute_all accept absent classes.
                raise NCollapseError(
                    f"class(es) {empty[:10].tolist()} do not occur in data; NC measures need every "
                    f"class of the {K}-way classifier in the (training) data"
                )
            W, b = src.classifier()
            sp = SecondPass(stats)
            feed = lambda h, y, z: sp.update(h, y, z)  # noqa: E731
            if state["cache"] is not None:
                from tqdm.auto import tqdm

                for h, y, z in tqdm(
                    state["cache"],
                    desc=f"pass 2/{n_pass}: data (cached features)",
                    disable=not progress,
                    leave=False,
                    file=sys.stderr,
                ):
                    feed(h, y, z)
            elif not train.reiterable:
                raise NCollapseError(
                    f"data is a one-shot iterator and its features ({state['bytes'] / 2**20:.0f} "
                    f"MiB) exceed cache_bytes; pass a DataLoader or a list, or raise cache_bytes"
                )
            else:
                runner.run(train, f"pass 2/{n_pass}: data", feed)
            state["cache"] = None
            second = sp.result()
            heldout = test_stats = None
            if held is not None:
                ho = HeldOut(stats.means, acc.device)
                tacc = NCStats(K, stats.dim, device=acc.device, centers=centers, w0=w0)

                def third(h, y, z):
                    ho.update(h, y, z)
                    tacc.update(h, y, z)

                runner.run(held, f"pass 3/{n_pass}: test", third)
                heldout = ho
                test_stats = tacc.snapshot()
    finally:
        src.detach()

    tr_counts = stats.counts if counts is None else np.asarray(counts, dtype=np.int64)
    if tr_counts.shape != (K,):
        raise NCollapseError(f"counts has {tr_counts.size} entries; pass one count per class ({K})")
    mino = _default_minority(tr_counts) if minority is None else [int(c) for c in minority]
    train_res = compute_all(stats, W, b, second=second, groups=groups, minority=mino, mean=mean)
    test_res = None
    held_res = None
    if heldout is not None:
        held_res = heldout.result(train_res["nc1"]["tr_between"])
        if test_stats.counts.min() > 0:
            test_res = compute_all(test_stats, W, b, groups=groups, minority=mino, mean=mean)
    return build_result(
        frame=_ncmc_frame(src),
        source=src,
        stats=stats,
        W=W,
        b=b,
        counts=tr_counts,
        minority=mino,
        train=train_res,
        test=test_res,
        heldout=held_res,
        mean=mean,
    )
