"""Find what a model's classifier multiplies: the penultimate features ``h`` (and ``W``, ``b``).

One decision, :func:`locate_features`, in this order (the first that applies wins):

1. ``features=`` callable given: ``h = features(x)``; the classifier is found by the rules below
   only when its input width equals ``h``'s (else NC3/NC4 are not measured).
2. ``layer="name"``: a module of ``model.named_modules()``. An ``nn.Linear`` is the classifier and
   its *input* is ``h``; any other module's *output* (flattened) is ``h``.
3. An ncollapse :class:`~ncollapse.models.Classifier`: ``h`` is the head's ``embedding`` (what the
   classifier multiplies), ``W``/``b`` from ``head.classifier_weight()`` / ``classifier_bias()``,
   and the NCMC frame when the head has one.
4. timm-style models (``get_classifier()``, ``forward_features()``, ``forward_head()``):
   ``h = forward_head(forward_features(x), pre_logits=True)``, logits ``= get_classifier()(h)``.
5. An attribute ``fc``, ``classifier`` or ``head`` that is an ``nn.Linear`` or contains one (the last
   one inside it, e.g. torchvision VGG's ``classifier`` Sequential): the input of that Linear.
6. The last ``nn.Linear`` registered in the model.

Hooks are attached only for the duration of a pass (:meth:`FeatureSource.attach`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ncollapse.errors import NCollapseError

__all__ = ["FeatureSource", "locate_features"]

CLASSIFIER_ATTRS = ("fc", "classifier", "head")


def _linear_desc(name: str, lin) -> str:
    bias = "" if lin.bias is not None else ", no bias"
    return f"input of `{name}` (nn.Linear {lin.in_features} -> {lin.out_features}{bias})"


@dataclass
class FeatureSource:
    """How features (and logits) are read from a model; built by :func:`locate_features`.

    ``kind``: ``ncollapse`` | ``timm`` | ``hook`` | ``callable``; ``description``: the sentence
    printed to the user; ``linear``: the classifier ``nn.Linear`` when there is one.
    """

    kind: str
    description: str
    layer: str | None = None
    linear: Any = None
    module: Any = None  # hooked module (kind "hook")
    hook_input: bool = True  # hook: read the module's input (Linear) or its output
    fn: Callable | None = None
    head: Any = None  # ncollapse head / timm classifier
    _captured: dict = field(default_factory=dict, repr=False)
    _handles: list = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- classifier
    def classifier(self):
        """``(W, b)`` as detached float64 CPU numpy arrays, or ``(None, None)``."""
        W = b = None
        if self.kind == "ncollapse":
            W = self.head.classifier_weight()
            b = self.head.classifier_bias()
        elif self.linear is not None:
            W, b = self.linear.weight, self.linear.bias
        if W is None:
            return None, None
        W = W.detach().double().cpu().numpy()
        b = None if b is None else b.detach().double().cpu().numpy()
        return W, b

    def num_classes(self) -> int | None:
        W, _ = self.classifier()
        return None if W is None else int(W.shape[0])

    # ----------------------------------------------------------------- forward
    def attach(self) -> FeatureSource:
        if self.kind == "hook" and not self._handles:
            mod = self.module

            def hook(_m, inputs, output):
                self._captured["h"] = inputs[0] if self.hook_input else output
                self._captured["out"] = output
                self._captured["calls"] = self._captured.get("calls", 0) + 1

            self._handles.append(mod.register_forward_hook(hook))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._captured.clear()

    def __call__(self, model, x):
        """``(h (B x d), logits (B x K) or None)`` for one input batch."""
        if self.kind == "callable":
            h = self.fn(x)
            logits = None
            if self.linear is not None:
                logits = self.linear(h.to(self.linear.weight.dtype))
            return _flat(h, "features(x)"), logits
        if self.kind == "ncollapse":
            out = model(x)
            return out.embedding, out.logits
        if self.kind == "timm":
            h = model.forward_head(model.forward_features(x), pre_logits=True)
            logits = self.head(h) if self.linear is not None else None
            return _flat(h, "forward_head(pre_logits=True)"), logits
        self._captured.clear()
        model(x)
        if not self._captured.get("calls"):
            raise NCollapseError(
                f"layer `{self.layer}` was not called by model.forward; pass layer= naming a "
                f"module the forward pass runs, or features=callable"
            )
        h = _flat(self._captured["h"], f"the input of `{self.layer}`")
        logits = self._captured["out"] if self.linear is not None else None
        return h, logits


def _flat(h, what: str):
    import torch

    if isinstance(h, (tuple, list)):
        h = h[0]
    if not isinstance(h, torch.Tensor):
        raise NCollapseError(
            f"{what} is a {type(h).__name__}, not a tensor; pass features=callable returning "
            f"a (batch x d) tensor"
        )
    if h.ndim == 1:
        h = h[:, None]
    return h.reshape(h.shape[0], -1) if h.ndim > 2 else h


def _last_linear(module):
    from torch import nn

    if isinstance(module, nn.Linear):
        return "", module
    found = None
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            found = (name, m)
    return found


def _is_timm_like(model) -> bool:
    return all(
        callable(getattr(model, a, None))
        for a in ("get_classifier", "forward_features", "forward_head")
    )


def _auto(model, exclude_timm: bool = False) -> FeatureSource | None:
    from torch import nn

    from ncollapse.models.classifier import Classifier

    if isinstance(model, Classifier):
        head = model.head
        return FeatureSource(
            kind="ncollapse",
            description=f"embedding of the ncollapse head `head` ({type(head).__name__}, "
            f"{head.in_dim} -> {head.num_classes})",
            layer="head",
            head=head,
        )
    if not exclude_timm and _is_timm_like(model):
        clf = model.get_classifier()
        lin = clf if isinstance(clf, nn.Linear) else None
        what = (
            f"nn.Linear {lin.in_features} -> {lin.out_features}"
            if lin is not None
            else type(clf).__name__
        )
        return FeatureSource(
            kind="timm",
            description=f"forward_head(pre_logits=True) (timm-style; classifier "
            f"get_classifier() = {what})",
            layer="get_classifier()",
            linear=lin,
            head=clf,
        )
    for attr in CLASSIFIER_ATTRS:
        sub = getattr(model, attr, None)
        if isinstance(sub, nn.Module):
            found = _last_linear(sub)
            if found is not None:
                name = attr if not found[0] else f"{attr}.{found[0]}"
                return _hook_linear(name, found[1])
    found = _last_linear(model)
    if found is not None and found[0]:
        return _hook_linear(found[0], found[1])
    return None


def _hook_linear(name: str, lin) -> FeatureSource:
    return FeatureSource(
        kind="hook",
        description=_linear_desc(name, lin),
        layer=name,
        linear=lin,
        module=lin,
        hook_input=True,
    )


def locate_features(model, *, layer: str | None = None, features=None) -> FeatureSource:
    """Decide where ``h`` comes from (see the module docstring); one-line error when nothing fits."""
    import difflib

    from torch import nn

    if not isinstance(model, nn.Module):
        raise NCollapseError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; for precomputed "
            f"features use ncollapse.metrics (NCStats) or `ncollapse metrics FILE.npz`"
        )
    if layer is not None and features is not None:
        raise NCollapseError("pass either layer= or features=, not both")
    if features is not None:
        if not callable(features):
            raise NCollapseError(
                f"features={features!r} is not callable; pass a function x -> (batch x d) tensor"
            )
        auto = _auto(model)
        lin = None if auto is None else auto.linear
        return FeatureSource(
            kind="callable",
            description=f"the features= callable {getattr(features, '__name__', type(features).__name__)}",
            fn=features,
            linear=lin,
        )
    if layer is not None:
        mods = dict(model.named_modules())
        if layer not in mods or layer == "":
            close = difflib.get_close_matches(str(layer), [n for n in mods if n], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise NCollapseError(
                f"layer={layer!r} is not a module of {type(model).__name__}{hint}; pass a name "
                f"from model.named_modules()"
            )
        mod = mods[layer]
        if isinstance(mod, nn.Linear):
            return _hook_linear(layer, mod)
        return FeatureSource(
            kind="hook",
            description=f"output of `{layer}` ({type(mod).__name__}, flattened)",
            layer=layer,
            module=mod,
            hook_input=False,
        )
    src = _auto(model)
    if src is None:
        raise NCollapseError(
            f"could not find the classifier input of {type(model).__name__}: no nn.Linear and no "
            f"fc / classifier / head attribute; pass layer='name' (a module of "
            f"model.named_modules()) or features=callable"
        )
    return src
