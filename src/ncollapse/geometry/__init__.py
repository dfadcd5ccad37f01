"""Closed-form target geometries (float64): simplex ETF, SELI, Liu's deep-linear UFM, NCMC frames.

See docs/geometry.md for the formulas and conventions.
"""

from ncollapse.geometry.ce_ridge import minority_collapse_threshold, zero_threshold
from ncollapse.geometry.deep_linear import (
    DEEP_LINEAR_BIAS,
    DeepLinearSolution,
    deep_linear_ufm,
    global_threshold,
    scalar_objective,
    shrinkage,
    stationary_threshold,
    y_hat,
)
from ncollapse.geometry.deep_linear_lambda import lambda_star
from ncollapse.geometry.etf import (
    centering,
    etf_gram,
    helmert_basis,
    random_orthonormal,
    simplex_etf,
)
from ncollapse.geometry.multicenter import (
    NCMC_THETA,
    PAPER_THETA,
    MultiCenterFrame,
    al_counts,
    center_counts,
    class_aware_counts,
    cos_alpha,
    cos_rho,
    multicenter_frame,
    paper_theta,
)
from ncollapse.geometry.ncmc_loss_p import loss_p_features
from ncollapse.geometry.seli import (
    EIG_RTOL,
    SELIFactors,
    SELIGeometry,
    one_hot,
    sel_matrix,
    seli_class_grams,
    seli_factors,
    seli_geometry,
    step_counts,
    step_seli_closed_form,
)

__all__ = [
    "DEEP_LINEAR_BIAS",
    "EIG_RTOL",
    "DeepLinearSolution",
    "MultiCenterFrame",
    "NCMC_THETA",
    "PAPER_THETA",
    "SELIFactors",
    "SELIGeometry",
    "al_counts",
    "centering",
    "center_counts",
    "class_aware_counts",
    "cos_alpha",
    "cos_rho",
    "deep_linear_ufm",
    "etf_gram",
    "global_threshold",
    "helmert_basis",
    "lambda_star",
    "loss_p_features",
    "minority_collapse_threshold",
    "multicenter_frame",
    "one_hot",
    "paper_theta",
    "random_orthonormal",
    "scalar_objective",
    "sel_matrix",
    "seli_class_grams",
    "seli_factors",
    "seli_geometry",
    "shrinkage",
    "simplex_etf",
    "stationary_threshold",
    "step_counts",
    "step_seli_closed_form",
    "y_hat",
    "zero_threshold",
]
