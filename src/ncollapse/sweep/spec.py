"""Sweep specs: a base recipe, a grid and/or an explicit list of dotted overrides, and seeds.

A spec is a YAML mapping::

    name: digits-demo                   # optional; default: the spec file's stem
    recipe: configs/digits_lt_ce.yaml   # base recipe (path, or a packaged recipe name)
    out_dir: sweeps/digits-demo         # optional; default: sweeps/<name>
    set: {train.epochs: 2}              # overrides shared by every run
    runs:                               # optional explicit list; each entry may name its own
      - {name: CE}                      #   recipe and label ("name") and add overrides
      - {name: LDAM, loss.name: ldam}
    grid:                               # optional; the cross product of these values
      data.rho: [10, 50]
    seeds: [0, 1, 2]                    # written to train.seed (``seed_key`` changes that)

The runs are ``entries x grid x seeds``. Every run's config is resolved (recipe, then ``set``, then
the entry, then the grid point, then the seed) and validated by :mod:`ncollapse.config` before
anything starts; a run's id is a hash of its resolved config (``run_id``), so the same settings get
the same directory in every invocation of the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ncollapse.config import Config, config_from_dict, load_config
from ncollapse.errors import NCollapseError

SPEC_KEYS = ("name", "recipe", "out_dir", "set", "runs", "grid", "seeds", "seed_key")
ENTRY_KEYS = ("name", "recipe")  # besides dotted overrides

#: Config fields that say how a run is executed, not what it computes: left out of the run id.
#: (``train.threads`` is set by the executor; results on CPU are equal for equal thread counts.)
EXECUTION_KEYS = ("run", "train.progress", "train.threads")


@dataclass
class SweepRun:
    """One planned run: its resolved config, its id and the factors that identify its group."""

    run_id: str  # readable name + "-" + hash
    config: Config
    seed: int
    factors: dict[str, Any]  # what distinguishes this run's group (everything but the seed)
    group_hash: str  # hash of the resolved config without the seed
    recipe: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "factors": self.factors,
            "group": self.group_hash,
            "recipe": self.recipe,
            "overrides": self.overrides,
        }


@dataclass
class SweepSpec:
    name: str
    path: Path | None
    out_dir: Path
    seed_key: str
    runs: list[SweepRun]
    raw: dict[str, Any]


# --------------------------------------------------------------------------- recipes


def resolve_recipe(ref: str, spec_dir: Path | None = None) -> Path:
    """Find a recipe: as given (relative to the working directory), relative to the spec file's
    folder or any folder above it (so ``configs/x.yaml`` works from a spec in ``configs/sweeps/``),
    then among the recipes shipped in the package (by path or by name without ``.yaml``)."""
    if not isinstance(ref, str) or not ref:
        raise NCollapseError(
            f"recipe={ref!r} must be a recipe path, e.g. configs/digits_lt_ce.yaml"
        )
    cands = [Path(ref)]
    if spec_dir is not None and not Path(ref).is_absolute():
        d = spec_dir.resolve()
        cands += [p / ref for p in [d, *d.parents]]
    try:
        from importlib.resources import files

        pkg = Path(str(files("ncollapse")))
        name = ref if ref.endswith((".yaml", ".yml")) else ref + ".yaml"
        cands += [pkg / name, pkg / "configs" / name, pkg / "configs" / Path(name).name]
    except Exception:  # pragma: no cover - namespace quirks
        pass
    for c in cands:
        if c.is_file():
            return c
    where = ", ".join(str(c) for c in cands[:3])
    raise NCollapseError(
        f"recipe {ref!r} not found (looked in {where}, ...); give a path relative to the "
        "repository or the spec file, or a packaged recipe name"
    )


# --------------------------------------------------------------------------- helpers


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if any(not p for p in parts):
        raise NCollapseError(
            f"override key {key!r} is malformed; use section.key, e.g. train.epochs"
        )
    d = data
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    d[parts[-1]] = value


def _drop(data: dict[str, Any], key: str) -> None:
    parts = key.split(".")
    d = data
    for p in parts[:-1]:
        d = d.get(p, {})
    if isinstance(d, dict):
        d.pop(parts[-1], None)


def config_hash(cfg: Config, drop: tuple[str, ...] = ()) -> str:
    """sha256 (first 10 hex digits) of the resolved config without the execution-only fields."""
    data = cfg.to_dict()
    for k in (*EXECUTION_KEYS, *drop):
        _drop(data, k)
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _slug(value: Any) -> str:
    s = value if isinstance(value, str) else json.dumps(value, default=str)
    return re.sub(r"[^A-Za-z0-9.+_-]+", "_", s).strip("_") or "x"


def _readable(label: str, factors: dict[str, Any], seed: int) -> str:
    parts = [_slug(label)]
    for k, v in factors.items():
        if k == "method":
            continue
        parts.append(f"{k.split('.')[-1]}={_slug(v)}")
    name = "-".join(parts)[:80]
    return f"{name}-seed{seed}"


def _check_overrides(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NCollapseError(
            f"{where} must be a mapping of dotted keys to values, e.g. {{train.epochs: 2}}"
        )
    for k in value:
        if not isinstance(k, str) or not k.strip():
            raise NCollapseError(f"{where}: key {k!r} must be a dotted config key like loss.name")
    return dict(value)


def _check_seeds(seeds: Any) -> list[int]:
    if seeds is None:
        return [0]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise NCollapseError(
            f"seeds={seeds!r} must be a non-empty list of integers, e.g. [0, 1, 2]"
        )
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
    if bad:
        raise NCollapseError(
            f"seeds={seeds!r}: {bad[0]!r} is not an integer; give a list like [0, 1, 2]"
        )
    if len(set(seeds)) != len(seeds):
        raise NCollapseError(f"seeds={seeds!r} repeats a seed; each seed once")
    return list(seeds)


def _check_grid(grid: Any) -> dict[str, list[Any]]:
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise NCollapseError(
            "grid must map dotted keys to lists of values, e.g. {data.rho: [10, 100]}"
        )
    if not grid:
        raise NCollapseError("grid is empty; give at least one key with values or drop 'grid'")
    out = {}
    for k, vals in grid.items():
        if not isinstance(vals, list):
            raise NCollapseError(f"grid.{k}={vals!r} must be a list of values, e.g. [10, 100]")
        if not vals:
            raise NCollapseError(f"grid.{k} is an empty list; give at least one value")
        out[str(k)] = vals
    return out


# --------------------------------------------------------------------------- loading


def parse_spec(
    raw: Any, *, path: Path | None = None, out_dir: str | Path | None = None
) -> SweepSpec:
    """Validate a spec mapping and resolve every run's config (nothing is started)."""
    where = str(path) if path else "spec"
    if not isinstance(raw, dict):
        raise NCollapseError(f"{where} must hold a mapping with keys {', '.join(SPEC_KEYS)}")
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise NCollapseError(
            f"{where}: unknown spec key {unknown[0]!r}; valid keys: {', '.join(SPEC_KEYS)} "
            "(config overrides go under 'set', 'grid' or 'runs')"
        )
    name = raw.get("name") or (path.stem if path else "sweep")
    if not isinstance(name, str):
        raise NCollapseError(f"name={name!r} must be a string")
    seed_key = raw.get("seed_key", "train.seed")
    seeds = _check_seeds(raw.get("seeds"))
    grid = _check_grid(raw.get("grid"))
    shared = _check_overrides("set", raw.get("set"))
    entries = raw.get("runs")
    if entries is None:
        entries = [{}]
    if not isinstance(entries, list) or not entries:
        raise NCollapseError("runs must be a non-empty list of mappings (overrides per run)")
    base_recipe = raw.get("recipe")
    spec_dir = path.parent if path else None
    for key in [*shared, *grid]:
        if key == seed_key:
            raise NCollapseError(
                f"{key} is the seed key; list seeds under 'seeds', not in set/grid"
            )

    runs: list[SweepRun] = []
    recipe_cache: dict[str, dict[str, Any]] = {}
    grid_keys = list(grid)
    for i, entry in enumerate(entries):
        entry = _check_overrides(f"runs[{i}]", entry)
        label = entry.pop("name", None)
        recipe_ref = entry.pop("recipe", base_recipe)
        if recipe_ref is None:
            raise NCollapseError(
                f"runs[{i}] has no recipe; give 'recipe' at the top of the spec or in the entry"
            )
        if recipe_ref not in recipe_cache:
            rpath = resolve_recipe(recipe_ref, spec_dir)
            recipe_cache[recipe_ref] = load_config(rpath).to_dict()
        if label is None:
            label = Path(str(recipe_ref)).stem
            if entry:
                label += "[" + ",".join(f"{k.split('.')[-1]}={v}" for k, v in entry.items()) + "]"
        for point in itertools.product(*(grid[k] for k in grid_keys)) if grid_keys else [()]:
            gp = dict(zip(grid_keys, point))
            for seed in seeds:
                ov = {**shared, **entry, **gp, seed_key: seed}
                data = json.loads(json.dumps(recipe_cache[recipe_ref]))
                for k, v in ov.items():
                    _set_dotted(data, k, v)
                run_name = f"runs[{i}] ({label}" + (f", {gp}" if gp else "") + f", seed {seed})"
                try:
                    cfg = config_from_dict(data)
                except NCollapseError as exc:
                    raise NCollapseError(f"{run_name}: {exc}") from None
                factors = {"method": str(label), **gp}
                rid = _readable(str(label), factors, seed) + "-" + config_hash(cfg)
                runs.append(
                    SweepRun(
                        run_id=rid,
                        config=cfg,
                        seed=seed,
                        factors=factors,
                        group_hash=config_hash(cfg, drop=(seed_key,)),
                        recipe=str(recipe_ref),
                        overrides={k: v for k, v in ov.items()},
                    )
                )
    seen: dict[str, SweepRun] = {}
    for r in runs:
        h = r.run_id.rsplit("-", 1)[1]
        if h in seen:
            o = seen[h]
            raise NCollapseError(
                f"duplicate runs: {o.run_id.rsplit('-', 1)[0]} and {r.run_id.rsplit('-', 1)[0]} "
                "resolve to the same config; remove one of the entries or grid values"
            )
        seen[h] = r
    # groups must be told apart by their factors (labels); otherwise two different settings
    # would print as one row
    labels: dict[tuple, str] = {}
    for r in runs:
        key = tuple(sorted((k, json.dumps(v, default=str)) for k, v in r.factors.items()))
        if labels.setdefault(key, r.group_hash) != r.group_hash:
            raise NCollapseError(
                f"two different settings share the label {r.factors}; give each runs entry "
                "its own 'name'"
            )
    out = Path(out_dir) if out_dir else Path(raw.get("out_dir") or Path("sweeps") / name)
    return SweepSpec(name=name, path=path, out_dir=out, seed_key=seed_key, runs=runs, raw=dict(raw))


def load_spec(path: str | Path, out_dir: str | Path | None = None) -> SweepSpec:
    p = Path(path)
    if not p.is_file():
        raise NCollapseError(f"sweep spec {p} not found; see configs/sweeps/ for examples")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise NCollapseError(f"sweep spec {p} is not valid YAML: {exc}".splitlines()[0]) from None
    return parse_spec(raw, path=p, out_dir=out_dir)
