"""UFM laboratory: unconstrained-features models of SELI, Liu and NCMC, batched solvers, recipes.

Models (:mod:`ncollapse.ufm.models`, torch float64, ``B`` problems stacked on a batch axis):
:class:`CERidgeUFM` (sum-CE + ridge, optional bias), :class:`DeepLinearMSEUFM` (L layers, optional
unregularised bias), :class:`NCMCLossP` (Loss P with a fixed multi-center frame).

Solvers: :func:`lbfgs` and :func:`gradient_descent` on the factorised problem (batched, per-problem
masks and line searches), and :func:`solve_ce_convex` (exact class-level FISTA + singular-value
soft-thresholding) as the CE ground truth. High-level helpers in :mod:`ncollapse.ufm.api`;
reproduction recipes in :mod:`ncollapse.ufm.recipes` (``ncollapse ufm reproduce seli|liu|ncmc``).
See docs/ufm.md.
"""

from ncollapse.ufm.api import (
    ce_geometry_stats,
    ce_report,
    mse_global_search,
    mse_report,
    mse_singular_values,
    mse_spectral_init,
    ncmc_frames,
    ncmc_prediction,
    ncmc_report,
    solve_ce,
    solve_mse,
    solve_mse_global,
    solve_ncmc,
    sweep_ce,
    sweep_mse,
)
from ncollapse.ufm.convex import ConvexCESolution, solve_ce_convex, zero_threshold
from ncollapse.ufm.measures import block_stats, cosine_matrix, gram_cosines, gram_distance, psd_sqrt
from ncollapse.ufm.models import (
    BatchedUFM,
    CERidgeUFM,
    DeepLinearMSEUFM,
    NCMCLossP,
    resolve_device,
)
from ncollapse.ufm.solvers import UFMSolution, geometric_grid, gradient_descent, lbfgs, solve

__all__ = [
    "BatchedUFM",
    "CERidgeUFM",
    "ConvexCESolution",
    "DeepLinearMSEUFM",
    "NCMCLossP",
    "UFMSolution",
    "block_stats",
    "ce_geometry_stats",
    "ce_report",
    "cosine_matrix",
    "geometric_grid",
    "gradient_descent",
    "gram_cosines",
    "gram_distance",
    "lbfgs",
    "mse_global_search",
    "mse_report",
    "mse_singular_values",
    "mse_spectral_init",
    "ncmc_frames",
    "ncmc_prediction",
    "ncmc_report",
    "psd_sqrt",
    "resolve_device",
    "solve",
    "solve_ce",
    "solve_ce_convex",
    "solve_mse",
    "solve_mse_global",
    "solve_ncmc",
    "sweep_ce",
    "sweep_mse",
    "zero_threshold",
]
