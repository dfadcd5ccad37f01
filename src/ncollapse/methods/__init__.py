"""NC-inducing methods of the seed papers (see ``docs/methods.md``).

Importing this package registers:

* heads ``multicenter`` (NCMC multi-center frame) and ``bilateral`` (BBN/GBBN two branches) in
  :mod:`ncollapse.models`;
* heads ``rotated_etf`` (RBL reconstruction: a fixed simplex ETF under a learnable rotation);
* losses ``ncmc_cosine`` (NCMC AL/CAL), ``loss_p`` (NCMC Loss P), ``allnc`` (AllNC
  reconstruction: base + HyCon + P2P), ``arb`` (ARB-Loss) and ``kcl`` (in-batch KCL) in
  :mod:`ncollapse.losses`;
* decoupled classifier re-fitting (cRT, tau-normalisation, LWS) in
  :mod:`ncollapse.methods.decoupled`;
* methods ``standard`` and ``gbbn`` (:func:`create_method`).

Trainer hooks (all optional attributes, looked up with ``getattr``):

* ``head_needs_counts(head_name)``: pass ``counts=`` (training class counts) in the head options;
* ``loss_fn.bind(model)`` after the model is built (``ncmc_cosine``, ``loss_p``, ``allnc``);
* ``model.head.nc_centers() -> (centers K x d, W0 K x d)`` for ``NCStats(centers=, w0=)``;
* ``method.aux_sampler``, ``method.step(...)``, ``method.predict_logits(model, x)``.

AllNC and GBBN are reconstructions: the AllNC paper's equations are not public.
"""

from ncollapse.methods.allnc import AllNCLoss, hycon_loss, p2p_loss, supcon_loss
from ncollapse.methods.base import (
    METHODS,
    Method,
    StepOutput,
    check_progress,
    create_method,
    loss_with_mixup,
    maybe_mixup,
    method_names,
    method_options,
    register_method,
    unwrap_model,
)
from ncollapse.methods.baselines import ARBLoss, KCLLoss, RotatedETFHead, arb_loss, kcl_loss
from ncollapse.methods.decoupled import (
    DecoupledClassifier,
    decouple,
    decoupled_logits,
    fit_crt,
    fit_lws,
    tau_normalize,
)
from ncollapse.methods.gbbn import (
    GBBN,
    BilateralHead,
    BranchOutput,
    alpha_schedule,
    branch_output,
)
from ncollapse.methods.ncmc import (
    LossP,
    MultiCenterHead,
    NCMCCosineLoss,
    center_counts,
    gcr_predict,
)


def head_needs_counts(head_name: str) -> bool:
    """True if head ``head_name`` wants the training class counts as ``counts=`` (e.g.
    ``multicenter`` in CAL mode); the trainer adds ``counts`` to the head options then."""
    from ncollapse.models.heads import HEADS

    return bool(getattr(HEADS.get(head_name), "needs_counts", False))


def nc_frame(model):
    """``(centers, w0)`` tensors for :class:`~ncollapse.metrics.NCStats` if the model's head has
    an NCMC frame (``nc_centers()``), else ``(None, None)``."""
    head = getattr(unwrap_model(model), "head", None)
    fn = getattr(head, "nc_centers", None)
    if fn is None:
        return None, None
    return fn()


__all__ = [
    "ARBLoss",
    "DecoupledClassifier",
    "KCLLoss",
    "RotatedETFHead",
    "arb_loss",
    "decouple",
    "decoupled_logits",
    "fit_crt",
    "fit_lws",
    "kcl_loss",
    "tau_normalize",
    "GBBN",
    "METHODS",
    "AllNCLoss",
    "BilateralHead",
    "BranchOutput",
    "LossP",
    "Method",
    "MultiCenterHead",
    "NCMCCosineLoss",
    "StepOutput",
    "alpha_schedule",
    "branch_output",
    "center_counts",
    "check_progress",
    "create_method",
    "gcr_predict",
    "head_needs_counts",
    "hycon_loss",
    "loss_with_mixup",
    "maybe_mixup",
    "method_names",
    "method_options",
    "nc_frame",
    "p2p_loss",
    "register_method",
    "supcon_loss",
    "unwrap_model",
]
