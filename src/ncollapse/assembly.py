"""The assembly layer: config sections -> library objects, one library function per decision.

The trainer (:mod:`ncollapse.train.trainer`) and the commands (:mod:`ncollapse.commands`) are thin
adapters over this module: they parse their input, call these functions and print or log the
result. Each decision they share is made by exactly one function of the library:

=========================  =================================================================
decision                   the one function
=========================  =================================================================
user modules to import     :func:`import_modules` (config key ``imports:``)
device, process backend    :func:`resolve_device`, :func:`process_backend`
datasets                   :func:`load_datasets` -> :func:`ncollapse.data.load_dataset`
long-tail profile          :func:`long_tail_profile` (which profile the options ask for)
long-tailed subset         :func:`long_tailed_subset` -> :func:`ncollapse.data.make_long_tailed`
class groups               :func:`class_groups` -> :func:`ncollapse.groups.make_groups`
                           (shot thresholds: :func:`ncollapse.groups.shot_thresholds`)
NCMC center counts         :func:`ncollapse.geometry.center_counts` (via the ``multicenter``
                           head, which gets the training counts from :func:`model_spec`)
model                      :func:`build_model`: :func:`model_spec` -> :func:`ncollapse.models.build_model`,
                           plus ``model.pretrained`` weights from a local file
loss, method, optimizer    :func:`build_loss`, :func:`build_method`, :func:`build_optimizer`
NC measures                :func:`nc_measures` -> :func:`ncollapse.metrics.two_pass_measures`
                           (minority group: :func:`ncollapse.groups.default_minority`)
=========================  =================================================================

Everything here is importable without torch except the functions that build torch objects, which
import it lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError

__all__ = [
    "build_loss",
    "build_method",
    "build_optimizer",
    "class_groups",
    "import_modules",
    "load_datasets",
    "long_tail_profile",
    "long_tailed_subset",
    "model_spec",
    "nc_measures",
    "process_backend",
    "resolve_device",
]


# ------------------------------------------------------------------------------ user modules
def import_modules(names: Sequence[str] | None) -> list[str]:
    """Import the user's modules (config key ``imports: [my_pkg.backbones, ...]``) so that the
    backbones, heads, losses and methods they register are usable by name. Returns the names."""
    done = []
    for name in names or ():
        if not isinstance(name, str) or not name.strip():
            raise NCollapseError(
                f"imports entry {name!r} is not a module name; use e.g. imports: [my_pkg.nets]"
            )
        try:
            importlib.import_module(name.strip())
        except ImportError as exc:
            raise NCollapseError(
                f"imports: cannot import module {name!r} ({exc}); install it or add its folder "
                f"to PYTHONPATH"
            ) from exc
        done.append(name.strip())
    return done


# ------------------------------------------------------------------------------------ device
def process_backend(device: str) -> str:
    """``"cuda"`` when ``device`` (``train.device``) will run on a GPU, else ``"cpu"``: the
    backend the distributed process group is initialised for."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def resolve_device(name: str, local_rank: int | None = None):
    """``train.device`` -> ``torch.device``: ``auto`` is CUDA when available, else CPU. Under DDP
    (``local_rank`` given) a CUDA device becomes ``cuda:local_rank``."""
    import torch

    if name == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name.startswith("cuda") and not torch.cuda.is_available():
        raise NCollapseError(
            f"train.device={name!r} but CUDA is not available; use train.device=cpu"
        )
    else:
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise NCollapseError(
                f"train.device={name!r} is not a device; use auto, cpu or cuda"
            ) from exc
    if local_rank is not None and dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
    return dev


# -------------------------------------------------------------------------------------- data
def load_datasets(data_cfg, datasets=None):
    """``(train, test)`` for the ``data`` section: the given pair (any map-style datasets), else
    both splits of ``data.name`` read from ``data.root`` with ``data.options``
    (:func:`ncollapse.data.load_train_test`)."""
    from ncollapse.data import load_train_test

    return load_train_test(
        data_cfg.name, data_cfg.root, getattr(data_cfg, "options", None), datasets
    )


#: The profiles :func:`ncollapse.data.make_long_tailed` builds.
LONG_TAIL_PROFILES = ("exp", "step", "counts", "none")


def long_tail_profile(
    profile: str | None = None,
    *,
    rho: float | None = None,
    tau: float | None = None,
    counts=None,
    k_maj: int | None = None,
) -> str:
    """The long-tail profile the options ask for: an explicit ``profile`` wins; otherwise
    ``counts`` -> ``"counts"``, ``k_maj`` -> ``"step"``, ``rho`` or ``tau`` -> ``"exp"``, nothing
    -> ``"none"`` (the full split). Used by the trainer (``data.profile``, default ``exp`` with
    ``data.rho=100``) and ``ncollapse data show``."""
    if profile is not None:
        p = str(profile).lower()
        if p not in LONG_TAIL_PROFILES:
            raise NCollapseError(
                f"unknown profile {profile!r} (data.profile / --profile); choose one of "
                f"{', '.join(LONG_TAIL_PROFILES)}"
            )
        return p
    if counts is not None:
        return "counts"
    if k_maj is not None:
        return "step"
    if rho is not None or tau is not None:
        return "exp"
    return "none"


def long_tailed_subset(
    labels,
    num_classes: int,
    *,
    profile: str | None = None,
    rho: float | None = None,
    tau: float | None = None,
    counts=None,
    k_maj: int | None = None,
    k_min: int | None = None,
    R: float | None = None,
    seed: int = 0,
    n_max: int | None = None,
    dataset: str = "custom",
    keep_order: bool = False,
):
    """The long-tailed subset of ``labels`` (:func:`ncollapse.data.make_long_tailed`, LDAM
    convention) for the profile chosen by :func:`long_tail_profile`.

    Returns ``(indices, counts, manifest)``; ``manifest`` is a dict with the dataset name. With the
    ``none`` profile and ``keep_order=True`` (the trainer) every sample is kept in its original
    order and the manifest records only the counts.
    """
    p = long_tail_profile(profile, rho=rho, tau=tau, counts=counts, k_maj=k_maj)
    y = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    if p == "none" and keep_order:
        full = np.bincount(y, minlength=num_classes)
        return np.arange(len(y)), full, {"dataset": dataset, "profile": "none",
                                         "counts": full.tolist()}  # fmt: skip
    if p == "exp" and rho is None and tau is None:
        raise NCollapseError("data.profile=exp needs data.rho (n_max/n_min), e.g. data.rho=100")
    from ncollapse.data import make_long_tailed

    sub = make_long_tailed(
        y,
        profile=p,
        rho=rho if p in ("exp", "step") else None,
        tau=tau if p in ("exp", "step") else None,
        counts=counts if p == "counts" else None,
        k_maj=k_maj,
        k_min=k_min,
        R=R,
        seed=seed,
        n_max=n_max,
        num_classes=num_classes,
        dataset=dataset,
    )
    manifest = sub.manifest
    manifest = manifest.to_dict() if hasattr(manifest, "to_dict") else dict(manifest)
    manifest = {**manifest, "dataset": dataset}
    return np.asarray(sub.indices), np.asarray(sub.counts), manifest


def class_groups(counts, eval_cfg=None, **kw) -> dict[str, np.ndarray]:
    """Class groups for per-group accuracy and NC views: the ``eval`` section (``groups``,
    ``many``, ``few``, ``ranges``) or keyword overrides, through
    :func:`ncollapse.groups.make_groups`; missing shot thresholds come from
    :func:`ncollapse.groups.shot_thresholds`."""
    from ncollapse.groups import make_groups

    opts = {"groups": "thresholds", "many": None, "few": None, "ranges": None}
    if eval_cfg is not None:
        opts.update({k: getattr(eval_cfg, k) for k in opts})
    opts.update({k: v for k, v in kw.items() if v is not None})
    mode = opts["groups"]
    if mode == "ranges" and not opts["ranges"]:
        raise NCollapseError("eval.groups=ranges needs eval.ranges, e.g. eval.ranges=[3,7]")
    if mode not in ("thresholds", "ranges"):
        raise NCollapseError(f"eval.groups={mode!r} is unknown; use thresholds or ranges")
    return make_groups(counts, mode, many=opts["many"], few=opts["few"], boundaries=opts["ranges"])


# ------------------------------------------------------------------------------------- model
def model_spec(model_cfg, in_shape: Sequence[int], num_classes: int, counts) -> dict[str, Any]:
    """The :func:`ncollapse.models.build_model` spec of the ``model`` section: backbones that take
    ``in_features`` get the flattened input size, heads that need the training class counts
    (``multicenter`` in CAL mode: :func:`ncollapse.geometry.center_counts`) get ``counts``."""
    from ncollapse.models import BACKBONES, HEADS
    from ncollapse.models.external import ensure_registered  # timm:NAME / torchvision:NAME

    ensure_registered(model_cfg.backbone)
    in_shape = tuple(int(s) for s in in_shape)
    bb_args = dict(model_cfg.backbone_args)
    if "in_features" in BACKBONES.options(model_cfg.backbone):
        bb_args.setdefault("in_features", int(np.prod(in_shape)))
    head_args = dict(model_cfg.head_args)
    if getattr(HEADS.get(model_cfg.head), "needs_counts", False):
        head_args.setdefault("counts", np.asarray(counts).tolist())
    return {
        "backbone": {"name": model_cfg.backbone, **bb_args},
        "head": {"name": model_cfg.head, **head_args},
        "num_classes": int(num_classes),
        "in_channels": in_shape[0] if len(in_shape) == 3 else 1,
    }


def build_model(model_cfg, in_shape: Sequence[int], num_classes: int, counts):
    """The model of the ``model`` section (:func:`model_spec`), with the backbone weights of
    ``model.pretrained`` loaded from that local file when set (nothing is downloaded)."""
    from ncollapse.models import build_model as _build

    model = _build(model_spec(model_cfg, in_shape, num_classes, counts))
    if getattr(model_cfg, "pretrained", None):
        from ncollapse.models.external import load_pretrained

        load_pretrained(model.backbone, model_cfg.pretrained)
    return model


def build_loss(loss_cfg, head_name: str, counts, model=None, device=None):
    """The loss of the ``loss`` section, checked against the head, on ``device``, bound to
    ``model`` when it needs the model (NCMC / AllNC losses)."""
    from ncollapse.losses import check_loss_head, create_loss

    check_loss_head(loss_cfg.name, head_name)
    loss_fn = create_loss(loss_cfg.name, counts=counts, **loss_cfg.params)
    if device is not None:
        loss_fn = loss_fn.to(device)
    if model is not None and hasattr(loss_fn, "bind"):
        loss_fn.bind(model)
    return loss_fn


def build_method(method_cfg, head_name: str):
    """The training method of the ``method`` section (``standard``, ``gbbn``, ...), checked
    against the head."""
    from ncollapse.methods import create_method

    method = create_method(method_cfg.name, **method_cfg.params)
    method.check_head(head_name)
    return method


def build_optimizer(optim_cfg, params):
    """The optimizer of the ``optim`` section over ``params`` (trainable tensors)."""
    import torch

    if optim_cfg.name != "sgd":
        raise NCollapseError(f"optim.name={optim_cfg.name!r} is unknown; use sgd")
    return torch.optim.SGD(
        list(params),
        lr=optim_cfg.lr,
        momentum=optim_cfg.momentum,
        nesterov=optim_cfg.nesterov,
        weight_decay=optim_cfg.weight_decay,
    )


# ----------------------------------------------------------------------------------- measures
def nc_measures(
    stats, head, groups, *, batches=None, minority="auto", grams: bool = False, **options
) -> dict:
    """NC measures of first-pass ``stats`` (a :class:`~ncollapse.metrics.Statistics`) with the
    classifier of ``head`` (``classifier_weight()`` / ``classifier_bias()``), through
    :func:`ncollapse.metrics.two_pass_measures`: the same group and minority rules as
    ``ncollapse metrics``. ``batches`` (a callable giving ``(H, y)`` batches) adds the second pass.
    ``grams=True`` adds the uncentred class Grams (:func:`ncollapse.metrics.grams.class_grams`,
    key ``"grams"``) for up to ``MAX_GRAM_CLASSES`` classes, so any theory compares after the run."""
    from ncollapse.metrics import two_pass_measures
    from ncollapse.metrics.grams import MAX_GRAM_CLASSES, class_grams

    W = head.classifier_weight().detach().double().cpu().numpy()
    b = head.classifier_bias()
    b = None if b is None else b.detach().double().cpu().numpy()
    out = two_pass_measures(
        batches,
        stats.num_classes,
        W,
        b,
        first=stats,
        second=batches is not None,
        groups=groups,
        minority=minority,
        **options,
    )
    if grams and stats.num_classes <= MAX_GRAM_CLASSES:
        out["grams"] = class_grams(stats.means, W)
    return out
