"""Typed run configuration: YAML files plus dotted command-line overrides.

A config is a tree of dataclasses. ``load_config(path, overrides)`` reads YAML, applies overrides such
as ``train.epochs=5`` or ``loss.name=ldam`` (values parsed as YAML scalars), and validates every key
and type. An unknown key or a wrong type raises :class:`NCollapseError` listing the valid keys.

Free-form sections (``*.args`` / ``loss.params``) are passed as keyword arguments to registry
factories, which validate them themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ncollapse.errors import NCollapseError


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    root: str | None = None
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
    progress: bool = True


@dataclass
class EvalConfig:
    groups: str = "thresholds"  # thresholds | ranges
    many: int = 100
    few: int = 20
    ranges: list[int] | None = None
    posthoc_tau: float | None = None


@dataclass
class RunConfig:
    out_dir: str = "runs"
    name: str | None = None
    tensorboard: bool = True


@dataclass
class Config:
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
                value = [yaml.safe_load(v) for v in value.split(",")]
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise NCollapseError(f"{path}={value!r} must be a number")
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


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.epochs=5", "loss.name=ldam"]`` -> nested dict (values parsed as YAML scalars)."""
    merged: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise NCollapseError(
                f"override '{item}' must look like section.key=value, e.g. train.epochs=5"
            )
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or key.startswith(".") or key.endswith("."):
            raise NCollapseError(f"override '{item}' has an empty key; use section.key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise NCollapseError(f"override '{item}': cannot parse value {raw!r}") from exc
        merged = _deep_merge(merged, _nest(key, value))
    return merged


def config_from_dict(data: dict[str, Any] | None) -> Config:
    cfg = Config()
    _apply(cfg, data or {}, "")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise NCollapseError(f"config file {p} not found; see configs/ for examples")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise NCollapseError(
                f"config file {p} is not valid YAML: {exc}".splitlines()[0]
            ) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise NCollapseError(
                f"config file {p} must hold a mapping of sections, got {type(loaded).__name__}"
            )
        data = loaded or {}
    if overrides:
        data = _deep_merge(data, parse_overrides(overrides))
    return config_from_dict(data)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
