"""UFM laboratory: unconstrained-features models of SELI, Liu and NCMC, and their batched solvers.

Models (:mod:`ncollapse.ufm.models`, torch float64, ``B`` problems stacked on a batch axis):
:class:`CERidgeUFM` (sum-CE + ridge, optional bias), :class:`DeepLinearMSEUFM` (L layers, optional
unregularised bias), :class:`NCMCLossP` (Loss P with a fixed multi-center frame).

Solvers: :func:`lbfgs` and :func:`gradient_descent` on the factorised problem (batched, per-problem
masks and line searches), and :func:`solve_ce_convex` (exact class-level FISTA + singular-value
soft-thresholding) as the CE ground truth; how to solve is one :class:`SolverOptions`.
High-level helpers (solve, compare with theory, sweep) in :mod:`ncollapse.ufm.api`.

What lives elsewhere: the closed forms (``zero_threshold``, ``lambda_star``, NCMC Cor. 3.7
``loss_p_features``) in :mod:`ncollapse.geometry`; Gram / cosine measures (``gram_distance``,
``gram_cosines``, ``cosine_matrix``) in :mod:`ncollapse.metrics`; the reproduction recipes
(``ncollapse ufm reproduce seli|liu|ncmc``) in :mod:`ncollapse.reproduce`. The old names
``ufm.zero_threshold``, ``ufm.ncmc_prediction``, ``ufm.gram_distance``, ``ufm.gram_cosines`` and
``ufm.cosine_matrix`` still resolve (with a ``DeprecationWarning``). See docs/ufm.md.
"""

from ncollapse.ufm.api import (
    ce_geometry_stats,
    ce_report,
    mse_global_search,
    mse_report,
    mse_singular_values,
    mse_spectral_init,
    ncmc_frames,
    ncmc_report,
    solve_ce,
    solve_mse,
    solve_mse_global,
    solve_ncmc,
    sweep_ce,
    sweep_mse,
)
from ncollapse.ufm.convex import ConvexCESolution, solve_ce_convex
from ncollapse.ufm.models import (
    BatchedUFM,
    CERidgeUFM,
    DeepLinearMSEUFM,
    NCMCLossP,
    resolve_device,
)
from ncollapse.ufm.solvers import (
    SolverOptions,
    UFMSolution,
    geometric_grid,
    gradient_descent,
    lbfgs,
    solve,
)

# old name -> (module, new name): moved out of ufm/ (issue 9); kept importable for a while
_MOVED = {
    "zero_threshold": ("ncollapse.geometry", "zero_threshold"),
    "ncmc_prediction": ("ncollapse.geometry", "loss_p_features"),
    "gram_distance": ("ncollapse.metrics", "gram_distance"),
    "gram_cosines": ("ncollapse.metrics", "gram_cosines"),
    "cosine_matrix": ("ncollapse.metrics", "cosine_matrix"),
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        mod, new = _MOVED[name]
        warnings.warn(
            f"ncollapse.ufm.{name} moved to {mod}.{new}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(mod), new)
    raise AttributeError(f"module 'ncollapse.ufm' has no attribute {name!r}")


__all__ = [
    "BatchedUFM",
    "CERidgeUFM",
    "ConvexCESolution",
    "DeepLinearMSEUFM",
    "NCMCLossP",
    "SolverOptions",
    "UFMSolution",
    "ce_geometry_stats",
    "ce_report",
    "geometric_grid",
    "gradient_descent",
    "lbfgs",
    "mse_global_search",
    "mse_report",
    "mse_singular_values",
    "mse_spectral_init",
    "ncmc_frames",
    "ncmc_report",
    "resolve_device",
    "solve",
    "solve_ce",
    "solve_ce_convex",
    "solve_mse",
    "solve_mse_global",
    "solve_ncmc",
    "sweep_ce",
    "sweep_mse",
]
