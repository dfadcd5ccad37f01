"""Backbones by name from timm or torchvision (when installed), and weights from a local file.

``model.backbone=timm:resnet18`` or ``model.backbone=torchvision:resnet18`` builds that architecture
*without* weights (``timm.create_model(name, pretrained=False, num_classes=0)``;
``torchvision.models.get_model(name, weights=None)`` with its final ``nn.Linear`` replaced by an
identity) and wraps it as a :class:`~ncollapse.models.backbones.Backbone` (``out_dim`` = the
classifier's input width). Names are registered into the backbone registry on first use
(:func:`ensure_registered`, called by ``create_backbone``).

Nothing is ever downloaded: ``pretrained=True`` is refused. Weights come from a local file with
``model.pretrained=PATH`` (or the backbone option ``pretrained: PATH``): a ``state_dict`` saved
with ``torch.save`` (``.pt``/``.pth``/``.bin``, read with ``weights_only=True``) or a
``.safetensors`` file; wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` and key prefixes
``module.`` / ``backbone.`` / ``net.`` are unwrapped; classifier weights the backbone does not have
are ignored; any *missing* backbone weight is an error.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from ncollapse.errors import NCollapseError
from ncollapse.models.backbones import BACKBONES, Backbone

__all__ = [
    "PREFIXES",
    "ExternalBackbone",
    "ensure_registered",
    "external_backbone",
    "load_pretrained",
]

#: ``prefix:`` -> (module to import, pip package).
PREFIXES = {"timm": ("timm", "timm"), "torchvision": ("torchvision.models", "torchvision")}


class ExternalBackbone(Backbone):
    """A timm / torchvision network without its classifier: ``features(x) -> (B, out_dim)``."""

    def __init__(self, net: nn.Module, out_dim: int, name: str):
        super().__init__()
        self.net = net
        self.out_dim = int(out_dim)
        self.name = name

    def features(self, x: Tensor) -> Tensor:
        h = self.net(x)
        return h.reshape(h.shape[0], -1)


def _import(lib: str):
    import importlib

    mod, pip = PREFIXES[lib]
    try:
        return importlib.import_module(mod)
    except Exception as exc:  # ImportError, or a broken install (e.g. a CUDA-only wheel)
        raise NCollapseError(
            f"backbone prefix '{lib}:' needs {pip}, which cannot be imported here "
            f"({type(exc).__name__}); install it with `pip install {pip}` (a build matching your "
            f"torch) or use a built-in backbone"
        ) from exc


def _strip_classifier(net: nn.Module) -> int:
    """Replace the final classifier ``nn.Linear`` (attribute fc / classifier / head, or the last
    Linear inside it) by an identity; return its input width."""
    for attr in ("fc", "classifier", "head"):
        sub = getattr(net, attr, None)
        if isinstance(sub, nn.Linear):
            setattr(net, attr, nn.Identity())
            return sub.in_features
        if isinstance(sub, nn.Sequential):
            for i in range(len(sub) - 1, -1, -1):
                if isinstance(sub[i], nn.Linear):
                    width = sub[i].in_features
                    sub[i] = nn.Identity()
                    return width
    raise NCollapseError(
        f"cannot find the classifier of {type(net).__name__} (no nn.Linear fc / classifier / head); "
        f"use a timm: name (num_classes=0) or a built-in backbone"
    )


def external_backbone(
    spec: str, in_channels: int = 3, pretrained=None, **kwargs
) -> ExternalBackbone:
    """Build ``timm:NAME`` / ``torchvision:NAME`` without weights (then load ``pretrained``, a
    local file, if given). Extra ``kwargs`` go to the library's constructor."""
    lib, _, arch = spec.partition(":")
    if lib not in PREFIXES or not arch:
        raise NCollapseError(
            f"backbone {spec!r} is not of the form timm:NAME or torchvision:NAME (e.g. timm:resnet18)"
        )
    if pretrained is True or kwargs.get("weights") not in (None,):
        raise NCollapseError(
            f"{spec}: downloading weights is disabled; download them yourself and pass the local "
            f"file with model.pretrained=PATH"
        )
    kwargs.pop("weights", None)
    mod = _import(lib)
    if lib == "timm":
        try:
            net = mod.create_model(
                arch, pretrained=False, num_classes=0, in_chans=in_channels, **kwargs
            )
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise NCollapseError(
                f"{spec}: {str(exc).splitlines()[0]}; see timm.list_models()"
            ) from exc
        out_dim = int(getattr(net, "num_features", 0))
        if out_dim <= 0:
            raise NCollapseError(f"{spec}: the timm model has no num_features; use another name")
    else:
        if in_channels != 3:
            raise NCollapseError(
                f"{spec}: torchvision models take 3 input channels, the data has {in_channels}; "
                f"use a timm: name (in_chans) or a built-in backbone"
            )
        try:
            net = mod.get_model(arch, weights=None, **kwargs)
        except ValueError as exc:  # torchvision: "Unknown model ..."
            raise NCollapseError(
                f"{spec}: {str(exc).splitlines()[0]}; see torchvision.models.list_models()"
            ) from exc
        out_dim = _strip_classifier(net)
    bb = ExternalBackbone(net, out_dim, spec)
    if pretrained is not None:
        load_pretrained(bb, pretrained)
    return bb


def ensure_registered(name: str) -> None:
    """Register ``timm:NAME`` / ``torchvision:NAME`` in the backbone registry (once); other names
    are left to the registry (which lists the valid ones)."""
    if not isinstance(name, str) or ":" not in name or name in BACKBONES:
        return
    lib = name.partition(":")[0]
    if lib not in PREFIXES:
        return
    _import(lib)  # fail here, naming the package, rather than as an unknown name

    def factory(in_channels: int = 3, pretrained=None, **kwargs) -> ExternalBackbone:
        return external_backbone(name, in_channels, pretrained, **kwargs)

    factory.__doc__ = f"{name} (external, no download; pretrained=local file)"
    BACKBONES.register(name, external=True)(factory)


def _read_state(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise NCollapseError(
                f"{path} is a .safetensors file; `pip install safetensors` to read it"
            ) from exc
        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise NCollapseError(
            f"cannot read weights from {path} ({type(exc).__name__}); pass a state_dict saved with "
            f"torch.save or a .safetensors file"
        ) from exc
    for key in ("state_dict", "model", "model_state", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise NCollapseError(
            f"{path} does not hold a state_dict (name -> tensor); save one with "
            f"torch.save(model.state_dict(), path)"
        )
    return obj


def load_pretrained(module: nn.Module, path) -> dict:
    """Load backbone weights from the local file ``path`` into ``module`` (a Backbone, or any
    nn.Module); returns ``{"loaded": n, "ignored": [keys not in the module]}``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise NCollapseError(
            f"pretrained weights {p} not found (nothing is downloaded); download the file yourself "
            f"and pass its local path as model.pretrained=PATH"
        )
    sd = _read_state(p)
    target = module.net if isinstance(module, ExternalBackbone) else module
    own = target.state_dict()
    clean = {}
    for k, v in sd.items():
        for pre in ("module.", "backbone.", "net."):
            if k.startswith(pre) and k not in own:
                k = k[len(pre) :]
        clean[k] = v
    missing = [k for k in own if k not in clean]
    if missing:
        raise NCollapseError(
            f"{p} lacks {len(missing)} weight(s) of the backbone (e.g. {missing[0]!r}); it was "
            f"saved for another architecture"
        )
    bad = [k for k in own if tuple(clean[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise NCollapseError(
            f"{p}: weight {k!r} has shape {tuple(clean[k].shape)}, the backbone expects "
            f"{tuple(own[k].shape)}; the file was saved for another architecture or width"
        )
    target.load_state_dict({k: clean[k] for k in own})
    return {"loaded": len(own), "ignored": sorted(set(clean) - set(own))}
