"""Closed-form minimiser of NCMC's Loss P with a fixed multi-center frame (Cor. 3.7).

Yan, Qian, Peng, Luo, Zhu & Li, "Neural Collapse to Multiple Centers for Imbalanced Data",
NeurIPS 2024 (OpenReview RJEC9fZ9Ma), §3.2 eq. (P), Cor. 3.7 and Remark 3.6. With the centers
``w_j^(k)`` of class ``k`` fixed (``C`` stacks them, F x d, unit norm) Loss P over the features is

    (1/2S) sum_i ||C h_i - t_{y_i}||^2 + (lambda_H/2) ||H||_F^2,    S = sum_k f_k n_k,

with ``t_k`` the f_k-hot target of class k. Its minimiser collapses every class onto the MEAN of
its centers ``wbar^(k)`` (not onto ``w_k``; Remark 3.6):

    h_k = f_k wbar^(k) / (f_k cos^2(alpha_k) + lambda_H S),
    ||h_k|| = f_k cos(alpha_k) / (f_k cos^2(alpha_k) + lambda_H S),

and ``cos(h_k, w_k) = cos(rho_k)`` (:func:`~ncollapse.geometry.cos_rho`).
"""

from __future__ import annotations

import numpy as np

from ncollapse.errors import NCollapseError, check_counts, check_positive

__all__ = ["loss_p_features"]


def loss_p_features(frame, counts, lambda_h: float) -> dict:
    """Cor. 3.7 for one frame (:func:`~ncollapse.geometry.multicenter_frame`) and count vector.

    Returns ``S``, ``h`` (d x K, columns = classes), ``h_norms`` (K,) and ``cos_rho`` (K,): the
    predicted ``cos(h_k, w_k)``.
    """
    n = check_counts(counts).astype(float)
    lh = check_positive(lambda_h, "lambda_h")
    fk = np.asarray(frame.f_counts, float)
    if fk.shape != n.shape:
        raise NCollapseError(
            f"the frame has {fk.size} classes but counts has {n.size}; build the frame from "
            "center counts of the same length"
        )
    S = float((fk * n).sum())
    ca = np.asarray(frame.cos_alpha, float)
    scale = fk / (fk * ca**2 + lh * S)
    return {
        "S": S,
        "h": (np.asarray(frame.mean_centers) * scale[:, None]).T,
        "h_norms": fk * ca / (fk * ca**2 + lh * S),
        "cos_rho": np.asarray(frame.cos_rho, float),
    }
