"""Weight decay at which a direction of Liu's deep-linear MSE UFM switches off (closed form).

Liu, "The Exploration of Neural Collapse under Imbalanced Data", arXiv 2411.17278 (L-extended UFM
with a bias, MSE loss); bias-free: Dang et al., ICML 2023. With ``lambda_W = lambda_H = lambda``
we have ``c = (lambda_W^L lambda_H)^{1/(L+1)} = lambda``, and direction ``i`` (singular value
``sigma_i`` of ``Yhat``, or ``sqrt(n_i)`` without bias) survives iff ``sigma_i`` exceeds the global
threshold :func:`~ncollapse.geometry.global_threshold` ``sigma*(N, c, L)``:

* ``L = 1``: ``sigma* = N c`` (soft thresholding), so ``lambda_i* = sigma_i / N``;
* ``L >= 2``: ``sigma* = [N c L kappa]^{(L+1)/(2L)}`` with ``kappa = (L/(L-1))^{(L-1)/(L+1)}``, so
  ``lambda_i* = sigma_i^{2L/(L+1)} / (N L kappa)``; at ``lambda_i*`` the direction jumps from
  ``t = ((L-1)/L) sigma*`` to 0.
"""

from __future__ import annotations

import numpy as np

from ncollapse.errors import check_positive
from ncollapse.geometry._validate import check_int

__all__ = ["lambda_star"]


def lambda_star(sigma, n_total: float, layers: int) -> float | np.ndarray:
    """``lambda`` (``= lambda_W = lambda_H``) at which ``global_threshold(N, lambda, L) = sigma``.

    ``sigma`` may be a scalar or an array of singular values (all > 0); see the module docstring.
    """
    L = check_int(layers, "layers", minimum=1, fix="the deep-linear UFM needs at least 1 layer")
    N = check_positive(n_total, "n_total")
    s = np.asarray(sigma, dtype=float)
    for v in np.atleast_1d(s):
        check_positive(v, "sigma")
    if L == 1:
        out = s / N
    else:
        kappa = (L / (L - 1.0)) ** ((L - 1.0) / (L + 1.0))
        out = s ** (2.0 * L / (L + 1.0)) / (N * L * kappa)
    return float(out) if out.ndim == 0 else out
