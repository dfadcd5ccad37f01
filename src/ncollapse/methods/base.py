"""Training *methods*: what one optimisation step does with a model, a loss and a batch.

Most methods are just a configuration (backbone + head + loss) trained by the ``standard``
method: forward, loss, optional mixup. Methods that need more than that -- a second batch from
another sampler, a schedule over training, a different evaluation rule -- implement
:class:`Method`. The trainer drives every method through the same protocol:

``method.aux_sampler``
    ``None``, or the name of a sampler (e.g. ``"reversed"``): the trainer then builds a second
    training loader with that sampler and passes one of its batches ``(x_aux, y_aux)`` as ``aux``
    to every ``step`` (the main loader defines the epoch; the auxiliary one is cycled).
``method.step(model, loss_fn, x, y, aux, progress, *, mixup_alpha=0.0, generator=None)``
    ``progress`` in [0, 1] is the fraction of training done (e.g. ``(epoch + step/steps) /
    epochs``); ``model`` is what the trainer calls (possibly DDP-wrapped or compiled). Returns
    :class:`StepOutput`; the trainer calls ``loss.backward()`` and the optimiser itself.
``method.predict_logits(model, x)``
    the evaluation rule (default ``model(x).logits``).

:class:`StepOutput` ``(loss, output, y, y_b=None, lam=1.0)``: ``output`` is a
:class:`~ncollapse.models.ModelOutput` whose rows are labelled ``y`` (train accuracy, NC
statistics); with mixup, ``y_b``/``lam`` say how the rows were mixed (accuracy
``lam acc(y) + (1-lam) acc(y_b)``; skip NC statistics for mixed rows).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.registry import Registry

METHODS = Registry("method")


class StepOutput(NamedTuple):
    """Result of :meth:`Method.step` (see the module docstring)."""

    loss: Tensor
    output: Any  # ModelOutput
    y: Tensor
    y_b: Tensor | None = None
    lam: float = 1.0


def register_method(name: str):
    """Decorator registering ``factory(**params) -> Method`` under ``name``."""
    return METHODS.register(name)


def create_method(name: str = "standard", **params) -> Method:
    """Build the method registered as ``name`` with keyword ``params`` (checked by the registry:
    unknown names or options raise :class:`~ncollapse.errors.NCollapseError`)."""
    return METHODS.create(name, **params)


def method_names() -> list[str]:
    return METHODS.names()


def method_options(name: str) -> dict:
    """Options of method ``name`` and their defaults."""
    return METHODS.options(name)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain :class:`~ncollapse.models.Classifier` inside a DDP / ``torch.compile`` wrapper."""
    seen = 0
    while seen < 4:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        else:
            break
        seen += 1
    return model


def loss_with_mixup(loss_fn, output, y: Tensor, y_b: Tensor | None, lam: float) -> Tensor:
    """``L(out, y)`` or, with mixup, ``lam L(out, y) + (1 - lam) L(out, y_b)``."""
    if y_b is None:
        return loss_fn(output, y)
    return lam * loss_fn(output, y) + (1.0 - lam) * loss_fn(output, y_b)


def maybe_mixup(x: Tensor, y: Tensor, mixup_alpha: float, generator):
    """``(x, y, None, 1.0)`` without mixup, else :func:`ncollapse.data.mixup`'s
    ``(x_mix, y_a, y_b, lam)``."""
    if not mixup_alpha or float(mixup_alpha) <= 0:
        return x, y, None, 1.0
    from ncollapse.data import mixup

    return mixup(x, y, float(mixup_alpha), generator)


class Method:
    """Base method = the ``standard`` step: forward, loss, optional mixup.

    Subclasses override :meth:`step` (and :meth:`predict_logits` if evaluation differs).
    ``required_head``: head names the method works with (None = any); checked by
    :meth:`check_head`.
    """

    name = "standard"
    aux_sampler: str | None = None
    required_head: tuple[str, ...] | None = None

    def check_head(self, head_name: str) -> None:
        """Raise NCollapseError if the method cannot train a model with head ``head_name``."""
        if self.required_head is not None and head_name not in self.required_head:
            raise NCollapseError(
                f"method {self.name!r} needs model.head={self.required_head[0]!r}, got "
                f"{head_name!r}; set model.head={self.required_head[0]}"
            )

    def step(
        self,
        model: nn.Module,
        loss_fn,
        x: Tensor,
        y: Tensor,
        aux=None,
        progress: float = 0.0,
        *,
        mixup_alpha: float = 0.0,
        generator=None,
    ) -> StepOutput:
        x, y_a, y_b, lam = maybe_mixup(x, y, mixup_alpha, generator)
        out = model(x)
        loss = loss_with_mixup(loss_fn, out, y_a, y_b, lam)
        return StepOutput(loss, out, y_a, y_b, lam)

    def predict_logits(self, model: nn.Module, x: Tensor) -> Tensor:
        return model(x).logits

    def describe(self) -> dict:
        """JSON-able description (name and parameters) for run logs."""
        return {"name": self.name, "aux_sampler": self.aux_sampler}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({params})"


@register_method("standard")
def standard() -> Method:
    """Plain training: ``loss(model(x), y)`` (mixup: ``lam L(y_a) + (1-lam) L(y_b)``)."""
    return Method()


def check_progress(progress) -> float:
    """``progress`` as a float in [0, 1] (values a hair outside are clipped)."""
    try:
        p = float(progress)
    except (TypeError, ValueError) as exc:
        raise NCollapseError(
            f"progress={progress!r} must be a number in [0, 1] (fraction of training done)"
        ) from exc
    if not (-1e-6 <= p <= 1 + 1e-6):
        raise NCollapseError(
            f"progress={p:g} must be in [0, 1]: pass (epoch + step/steps) / epochs"
        )
    return min(max(p, 0.0), 1.0)
