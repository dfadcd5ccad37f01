"""Long-tail and NC-inducing losses, looked up by name (see ``docs/losses.md``).

>>> from ncollapse.losses import create_loss
>>> loss_fn = create_loss("ldam", counts=[500, 50, 5])   # expects the "cosine" head
>>> loss = loss_fn(model_output, target)                  # doctest: +SKIP

Every loss is a :class:`LossFn` taking ``(ModelOutput, LongTensor target) -> scalar`` and has
``set_epoch(epoch, total_epochs)``; :func:`check_loss_head` rejects incompatible head choices.
"""

from ncollapse.losses.base import (
    LOSSES,
    LossFn,
    check_loss_head,
    class_balanced_weights,
    create_loss,
    loss_info,
    loss_names,
    loss_options,
    register_loss,
)
from ncollapse.losses.classification import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    posthoc_logit_adjust,
)
from ncollapse.losses.regression import DotRegressionLoss, MSELoss, batch_length_scale

__all__ = [
    "LOSSES",
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "DotRegressionLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LossFn",
    "MSELoss",
    "batch_length_scale",
    "check_loss_head",
    "class_balanced_weights",
    "create_loss",
    "loss_info",
    "loss_names",
    "loss_options",
    "posthoc_logit_adjust",
    "register_loss",
]
