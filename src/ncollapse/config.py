"""Typed run configuration: YAML files plus dotted command-line overrides.

A config is a tree of dataclasses. ``load_config(path, overrides)`` reads YAML, applies overrides such
as ``train.epochs=5`` or ``loss.name=ldam`` (values parsed as YAML scalars, with YAML 1.2 numbers:
``5e-4`` is a float), and validates every key, type and range. An unknown key or a wrong type raises
:class:`NCollapseError` listing the valid keys. ``a.b=v`` sets one key and keeps its siblings;
``a.b={...}`` replaces the whole mapping at ``a.b``. An empty file and a key given twice are errors.

Free-form sections (``*.args`` / ``loss.params``) are passed as keyword arguments to registry
factories, which validate them themselves.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ncollapse.errors import NCollapseError

# --------------------------------------------------------------------------- YAML reading


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 numbers and duplicate keys refused.

    YAML 1.1 (PyYAML's default) reads ``5e-4`` and ``1e6`` as strings because its float rule needs
    a dot; people write them as numbers, so they resolve as floats here. A key given twice in one
    mapping is an error instead of silently keeping the last value.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, line: int):
        super().__init__(f"key {key!r} appears twice (second time on line {line})")
        self.key, self.line = key, line


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            dup = key in seen
        except TypeError:  # unhashable key: let PyYAML report it
            dup = False
        if dup:
            raise DuplicateKeyError(key, key_node.start_mark.line + 1)
        try:
            seen.add(key)
        except TypeError:
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: _construct_mapping(loader, node, deep=True),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text safely (no tags), with YAML 1.2 floats and duplicate keys refused."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # reader options (size, image_root, ...)
    num_workers: int = 0  # DataLoader workers for data read sample by sample (lazy images)
    profile: str = "exp"  # exp | step | counts | none
    rho: float | None = 100.0  # n_max / n_min
    counts: list[int] | None = None
    k_maj: int | None = None
    k_min: int | None = None
    R: float | None = None
    seed: int = 0  # data seed (separate from the training seed)
    batch_size: int = 128
    test_batch_size: int = 1024
    sampler: str = "instance"  # instance | class | sqrt | reversed
    augment: bool = False
    crop_padding: int = 4
    flip: bool = False
    limit_test: int | None = None  # evaluate on the first n test images (quick runs)


@dataclass
class ModelConfig:
    backbone: str = "cnn28"
    backbone_args: dict[str, Any] = field(default_factory=dict)
    head: str = "linear"
    head_args: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # local weights file for the backbone (models/external.py)


@dataclass
class LossConfig:
    name: str = "ce"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodConfig:
    name: str = "standard"  # standard | gbbn (see ncollapse.methods)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4


@dataclass
class SchedConfig:
    name: str = "step"  # step | cosine | constant
    warmup_epochs: int = 0
    milestones: list[int] = field(default_factory=list)  # epochs at which lr *= gamma
    gamma: float = 0.1


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast on CUDA
    mixup_alpha: float = 0.0
    compile: bool = False
    channels_last: bool = False
    nc_pass: str = "train"  # train: statistics from the training pass; eval: a separate clean pass
    nc_every: int = 1
    threads: int | None = None
    progress: bool = True  # progress bar on a terminal, one line per epoch otherwise
    dist_timeout: float = 600.0  # seconds a DDP collective waits for the other processes


@dataclass
class EvalConfig:
    groups: str = "thresholds"  # thresholds | ranges
    many: int | None = None  # None: ncollapse.groups.shot_thresholds (100, x10 per decade of n_max)
    few: int | None = None  # None: ncollapse.groups.shot_thresholds (20, scaled alike)
    ranges: list[int] | None = None
    posthoc_tau: float | None = None


@dataclass
class RunConfig:
    out_dir: str = "runs"
    name: str | None = None
    tensorboard: bool = True


@dataclass
class Config:
    # modules imported before the run is assembled, so that the backbones, heads, losses and
    # methods they register are usable by name (``imports: [my_pkg.nets]``)
    imports: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except NCollapseError as exc:
                errors.append(str(exc))
        raise NCollapseError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            if isinstance(value, str) and "," in value:
                value = [yaml_load(v) for v in value.split(",")]
            else:
                raise NCollapseError(f"{path}={value!r} must be a list, e.g. {path}=[1,2,3]")
        return [_coerce(v, args[0] if args else Any, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise NCollapseError(f"{path}={value!r} must be a mapping")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise NCollapseError(f"{path}={value!r} must be true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise NCollapseError(f"{path}={value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # e.g. a value set from Python: "5e-4"
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NCollapseError(f"{path}={value!r} must be a number, e.g. {path}=0.001 or 1e-3")
        if not math.isfinite(value):
            raise NCollapseError(f"{path}={value!r} must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise NCollapseError(f"{path}={value!r} must be a string")
        return value
    return value


def _apply(obj: Any, data: dict[str, Any], prefix: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise NCollapseError(
                f"unknown config key '{path}'; valid keys in '{prefix.rstrip('.') or 'config'}': "
                + ", ".join(sorted(fields))
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise NCollapseError(
                    f"'{path}' is a section; give it a mapping of {sorted(fields)}"
                )
            _apply(current, value, path + ".")
        else:
            setattr(obj, key, _coerce(value, hints[key], path))


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    out: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        out = {p: out}
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _split_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise NCollapseError(
            f"override '{item}' must look like section.key=value, e.g. train.epochs=5"
        )
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or key.startswith(".") or key.endswith(".") or ".." in key:
        raise NCollapseError(f"override '{item}' has an empty key; use section.key=value")
    try:
        value = yaml_load(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise NCollapseError(
            f"override '{item}': cannot parse value {raw!r}; quote strings, write lists as [1,2]"
        ) from exc
    return key, value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.epochs=5", "loss.name=ldam"]`` -> nested dict (values parsed as YAML scalars)."""
    merged: dict[str, Any] = {}
    for item in overrides:
        merged = _deep_merge(merged, _nest(*_split_override(item)))
    return merged


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides in order to a (YAML-loaded) config mapping; returns a new mapping.

    Semantics: ``a.b.c=v`` sets one key and keeps its siblings (``model.backbone_args.width=8``
    changes the width and keeps ``depth``); ``a.b={...}`` *replaces* the whole value at ``a.b``
    (``model.backbone_args={width: 8}`` drops every other backbone argument), as does any other
    value (lists are never merged).
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, value = _split_override(item)
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                if nxt is not None:
                    where = ".".join(parts[: i + 1])
                    raise NCollapseError(
                        f"override '{item}': {where} is {nxt!r}, not a section; "
                        f"set it whole with {where}=..."
                    )
                nxt = node[part] = {}
            node = nxt
        node[parts[-1]] = value
    return out


def validate_config(cfg: Config) -> Config:
    """Range checks that types alone cannot express; each message names the key and the fix."""

    def need(ok: bool, key: str, value: Any, rule: str) -> None:
        if not ok:
            raise NCollapseError(f"{key}={value!r} {rule}")

    t, o, d, s, e = cfg.train, cfg.optim, cfg.data, cfg.sched, cfg.eval
    need(t.epochs >= 1, "train.epochs", t.epochs, "must be >= 1, e.g. train.epochs=10")
    need(t.nc_every >= 1, "train.nc_every", t.nc_every, "must be >= 1 (NC metrics every n epochs)")
    need(t.threads is None or t.threads >= 1, "train.threads", t.threads, "must be >= 1 or null")
    need(t.mixup_alpha >= 0, "train.mixup_alpha", t.mixup_alpha, "must be >= 0 (0 = no mixup)")
    need(t.dist_timeout > 0, "train.dist_timeout", t.dist_timeout, "must be > 0 seconds")
    need(o.lr >= 0, "optim.lr", o.lr, "must be >= 0, e.g. optim.lr=0.1")
    need(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0, e.g. 5e-4")
    need(0 <= o.momentum < 1, "optim.momentum", o.momentum, "must be in [0, 1), e.g. 0.9")
    need(
        not o.nesterov or o.momentum > 0,
        "optim.nesterov",
        o.nesterov,
        "needs optim.momentum > 0 (or optim.nesterov=false)",
    )
    need(d.batch_size >= 1, "data.batch_size", d.batch_size, "must be >= 1, e.g. 128")
    need(d.test_batch_size >= 1, "data.test_batch_size", d.test_batch_size, "must be >= 1")
    need(d.crop_padding >= 0, "data.crop_padding", d.crop_padding, "must be >= 0")
    need(
        d.limit_test is None or d.limit_test >= 1,
        "data.limit_test",
        d.limit_test,
        "must be >= 1 or null (all test images)",
    )
    need(d.rho is None or d.rho >= 1, "data.rho", d.rho, "must be >= 1 (n_max / n_min)")
    need(s.warmup_epochs >= 0, "sched.warmup_epochs", s.warmup_epochs, "must be >= 0")
    need(s.gamma > 0, "sched.gamma", s.gamma, "must be > 0, e.g. 0.1")
    for key in ("many", "few"):
        v = getattr(e, key)
        need(v is None or v >= 0, f"eval.{key}", v, "must be >= 0 or null (scaled default)")
    return cfg


def config_from_dict(data: dict[str, Any] | None) -> Config:
    cfg = Config()
    if data is not None and not isinstance(data, dict):
        raise NCollapseError(f"a config must be a mapping of sections, got {type(data).__name__}")
    _apply(cfg, data or {}, "")
    return validate_config(cfg)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML recipe; an empty file, a duplicate key or a non-mapping is an error."""
    p = Path(path)
    if p.is_dir():
        raise NCollapseError(f"config {p} is a folder; pass a YAML file (see configs/)")
    if not p.is_file():
        raise NCollapseError(f"config file {p} not found; see configs/ for examples")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NCollapseError(f"cannot read config file {p} ({exc.__class__.__name__})") from exc
    try:
        loaded = yaml_load(text)
    except DuplicateKeyError as exc:
        raise NCollapseError(f"config file {p}: {exc}; keep one of them") from exc
    except yaml.YAMLError as exc:
        raise NCollapseError(f"config file {p} is not valid YAML: {exc}".splitlines()[0]) from exc
    if loaded is None:
        raise NCollapseError(
            f"config file {p} is empty; write at least one section (e.g. 'train: {{epochs: 5}}'), "
            "or '{}' for all defaults"
        )
    if not isinstance(loaded, dict):
        raise NCollapseError(
            f"config file {p} must hold a mapping of sections, got {type(loaded).__name__}"
        )
    return loaded


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a recipe, apply dotted overrides (see :func:`apply_overrides`), validate."""
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    if overrides:
        data = apply_overrides(data, overrides)
    return config_from_dict(data)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
