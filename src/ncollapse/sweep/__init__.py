"""Sweeps: grids of training runs over settings and seeds, resumable, on a local process pool
or on Ray, with results aggregated over seeds.

>>> spec = load_spec("configs/sweeps/digits_demo.yaml")   # doctest: +SKIP
>>> outcome = run_sweep(spec)                              # doctest: +SKIP
>>> table = load_sweep(spec.out_dir)                       # doctest: +SKIP

See ``docs/sweeps.md``.
"""

from ncollapse.sweep.results import (
    SweepTable,
    csv_text,
    is_sweep_dir,
    load_sweep,
    long_rows,
    markdown,
    parse_pivot,
    pivot_rows,
)
from ncollapse.sweep.runner import (
    EXECUTORS,
    Plan,
    Resources,
    SweepOutcome,
    describe,
    plan,
    plan_resources,
    run_sweep,
)
from ncollapse.sweep.spec import SweepRun, SweepSpec, config_hash, load_spec, parse_spec

__all__ = [
    "EXECUTORS",
    "Plan",
    "Resources",
    "SweepOutcome",
    "SweepRun",
    "SweepSpec",
    "SweepTable",
    "config_hash",
    "csv_text",
    "describe",
    "is_sweep_dir",
    "load_spec",
    "load_sweep",
    "long_rows",
    "markdown",
    "parse_pivot",
    "parse_spec",
    "pivot_rows",
    "plan",
    "plan_resources",
    "run_sweep",
]
