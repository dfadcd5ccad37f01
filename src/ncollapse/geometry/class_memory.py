"""Memory check for closed forms built from K x K class-level matrices (float64).

The SELI Grams (eigendecomposition of ``P D_n P``) and Liu's deep-linear minimizer (SVD of ``Ŷ``)
hold about ten K x K float64 matrices at once, so 60,000 classes need about 270 GiB. They call
:func:`check_class_matrices` before allocating anything, which turns such a request into one
line naming the memory it needs (:func:`ncollapse.errors.check_memory`).
"""

from __future__ import annotations

from ncollapse.errors import check_memory

__all__ = ["check_class_matrices"]


def check_class_matrices(k: int, n_matrices: int, what: str) -> None:
    """Raise :class:`~ncollapse.errors.NCollapseError` if ``n_matrices`` K x K float64 matrices
    do not fit in the available memory; ``what`` names the closed form (e.g. "the SELI geometry")."""
    k = int(k)
    check_memory(
        8.0 * n_matrices * k * k,
        f"{what} for K={k} classes ({n_matrices} K x K float64 matrices)",
        "use fewer classes: the closed form works on K x K class-level matrices",
    )
